package procs

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkOutput100MB measures a producer writing 100 MiB, alone and with
// a follower that takes 5 ms per 64 KiB read (about 12 MiB/s): the pipe
// readers never wait for followers, so both should run at the producer's
// speed, and the follower costs one read's worth of memory.
func BenchmarkOutput100MB(b *testing.B) {
	const total = 100 << 20
	cmd := fmt.Sprintf("yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c %d", total)
	for _, slow := range []bool{false, true} {
		name := "alone"
		if slow {
			name = "slow-follower"
		}
		b.Run(name, func(b *testing.B) {
			m, err := New(Options{Dir: b.TempDir(), Starter: testReaper, Env: []string{"PATH=/usr/bin:/bin"}})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			var heapPeak uint64
			var produced time.Duration
			for b.Loop() {
				info, err := m.Start(b.Context(), Spec{Command: cmd})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(b.Context())
				followed := make(chan struct{})
				if slow {
					go func() {
						defer close(followed)
						_ = m.Follow(ctx, info.ID, 0, func(Output) error {
							var ms runtime.MemStats
							runtime.ReadMemStats(&ms)
							heapPeak = max(heapPeak, ms.HeapInuse)
							time.Sleep(5 * time.Millisecond) // the slow client
							return nil
						})
					}()
				} else {
					close(followed)
				}
				end, err := m.Wait(b.Context(), info.ID)
				if err != nil {
					b.Fatal(err)
				}
				produced += end.EndedAt.Sub(end.StartedAt)
				cancel()
				<-followed
				if err := m.Remove(info.ID); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)/(1<<20)/(produced.Seconds()/float64(b.N)), "producer-MiB/s")
			if slow {
				b.ReportMetric(float64(heapPeak)/(1<<20), "heap-MiB")
			}
		})
	}
}
