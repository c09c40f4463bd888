//go:build linux

package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const benchFiles = 10000

// benchDir makes benchFiles empty files: the benchmark then writes each
// once per round, which queues exactly one IN_MODIFY (the kernel merges
// only identical events, and the names differ).
func benchDir(b *testing.B) (string, []string) {
	b.Helper()
	dir := b.TempDir()
	paths := make([]string, benchFiles)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("f%05d", i))
		if err := os.WriteFile(paths[i], nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir, paths
}

func writeOne(p string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, []byte("x"))
	unix.Close(fd)
	return err
}

func index(p string) int {
	i, err := strconv.Atoi(filepath.Base(p)[1:])
	if err != nil {
		return -1
	}
	return i
}

func report(b *testing.B, lat []time.Duration, events int, elapsed time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op") // a round is 10k writes; the rates above are what matter
}

// BenchmarkWatchBurst writes 10k files as fast as one goroutine can while
// the consumer reads: throughput, and write-to-delivery latency including
// the time an event waits behind the others.
func BenchmarkWatchBurst(b *testing.B) {
	dir, paths := benchDir(b)
	w, err := Watch(b.Context(), Options{Path: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	stamps := make([]atomic.Int64, benchFiles)
	var lat []time.Duration
	var total time.Duration
	events := 0
	for b.Loop() {
		done := make(chan struct{})
		go func() {
			for i, p := range paths {
				stamps[i].Store(time.Now().UnixNano())
				if err := writeOne(p); err != nil {
					b.Error(err)
					break
				}
			}
			close(done)
		}()
		start := time.Now()
		got := 0
		timeout := time.After(time.Minute)
		for got < benchFiles {
			select {
			case e := <-w.Events():
				if e.Op == Overflow {
					b.Fatalf("events lost in a burst of %d: %+v", benchFiles, e)
				}
				if e.Op != Write {
					continue
				}
				if i := index(e.Path); i >= 0 {
					lat = append(lat, time.Duration(time.Now().UnixNano()-stamps[i].Load()))
					got++
				}
			case <-timeout:
				b.Fatalf("only %d of %d events", got, benchFiles)
			}
		}
		total += time.Since(start)
		events += got
		<-done
	}
	report(b, lat, events, total)
}

// BenchmarkWatchLatency writes one file, waits for its event, then writes
// the next: the latency of an event on an idle watch.
func BenchmarkWatchLatency(b *testing.B) {
	dir, paths := benchDir(b)
	w, err := Watch(b.Context(), Options{Path: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	var lat []time.Duration
	var total time.Duration
	events := 0
	for b.Loop() {
		start := time.Now()
		for _, p := range paths {
			t0 := time.Now()
			if err := writeOne(p); err != nil {
				b.Fatal(err)
			}
			select {
			case e := <-w.Events():
				if e.Op != Write || e.Path != p {
					b.Fatalf("unexpected %+v", e)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("no event for %s", p)
			}
			lat = append(lat, time.Since(t0))
		}
		total += time.Since(start)
		events += len(paths)
	}
	report(b, lat, events, total)
}
