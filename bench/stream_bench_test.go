package bench

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// BenchmarkStreamLineLatency: a command prints its clock every 100 ms; each
// line's delay from production (the timestamp in it) to its arrival at a
// streaming client, over 20 lines a round.
func BenchmarkStreamLineLatency(b *testing.B) {
	s := startServer(b)
	s.waitReady(b)
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		var pending string
		_, err := s.c.RunStream(ctx, sandboxapi.SessionRunRequest{Command: "for i in $(seq 20); do date +%s%N; sleep 0.1; done", Blocking: true}, sandboxapi.RunOptions{}, func(ev sandboxapi.StreamEvent) error {
			if ev.Type != sandboxapi.EventOutput {
				return nil
			}
			now := time.Now()
			pending += ev.Data
			for {
				line, rest, ok := strings.Cut(pending, "\n")
				if !ok {
					break
				}
				pending = rest
				ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
				if err == nil {
					lat = append(lat, now.Sub(time.Unix(0, ns)))
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportPercentiles(b, lat)
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

// BenchmarkStream100MBSlowClient: 100 MB printed by a command while a
// streaming client reads nothing until the command has ended, against the
// same command with nobody streaming. Reports both durations and the
// server's peak RSS growth: a slow client must neither slow the shell
// nor make sandboxd buffer.
func BenchmarkStream100MBSlowClient(b *testing.B) {
	s := startServer(b)
	s.waitReady(b)
	ctx := context.Background()
	const cmd = `yes "$(printf '%099d' 7)" | head -n 1000000`
	pid := s.cmd.Process.Pid
	before := procStatus(b, pid, "VmRSS")
	var plain, slow time.Duration
	var afterPlain int64
	for b.Loop() {
		t0 := time.Now()
		if _, err := s.c.RunIn(ctx, sandboxapi.SessionRunRequest{Command: cmd, Blocking: true}, sandboxapi.RunOptions{}); err != nil {
			b.Fatal(err)
		}
		plain += time.Since(t0)
		afterPlain = procStatus(b, pid, "VmHWM")

		t0 = time.Now()
		var once sync.Once
		gate := make(chan struct{})
		done := make(chan time.Duration, 1)
		go func() {
			// The command's end is when the shell is free again.
			for {
				info, err := s.c.Sessions(ctx)
				if err == nil && len(info) > 0 && !info[0].Busy {
					done <- time.Since(t0)
					close(gate)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		started := false
		_, err := s.c.RunStream(ctx, sandboxapi.SessionRunRequest{Command: cmd, Blocking: true}, sandboxapi.RunOptions{}, func(ev sandboxapi.StreamEvent) error {
			if !started {
				started = true
				return nil
			}
			once.Do(func() { <-gate }) // the slow client: nothing read until the end
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		slow += <-done
	}
	n := float64(b.N)
	b.ReportMetric(plain.Seconds()/n, "s-no-stream")
	b.ReportMetric(slow.Seconds()/n, "s-slow-client")
	b.ReportMetric(float64(afterPlain-before)/(1<<20), "RSS-growth-plain-MiB")
	b.ReportMetric(float64(procStatus(b, pid, "VmHWM")-before)/(1<<20), "RSS-growth-MiB")
}

// BenchmarkTwoSessionsSleep1: `sleep 1` in two sessions at once.
func BenchmarkTwoSessionsSleep1(b *testing.B) {
	s := startServer(b)
	s.waitReady(b)
	ctx := context.Background()
	if _, err := s.c.CreateSession(ctx, sandboxapi.CreateSessionRequest{Name: "other"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var wg sync.WaitGroup
		for _, name := range []string{"default", "other"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.c.RunIn(ctx, sandboxapi.SessionRunRequest{Command: "sleep 1", Blocking: true}, sandboxapi.RunOptions{Session: name}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}
