package term

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestRingKeepsTheTailAndSaysWhatWasLost(t *testing.T) {
	r := NewRing(8)
	r.Write([]byte("abcdef"))
	r.Write([]byte("ghij")) // 10 bytes written, the ring holds "cdefghij"
	if r.Start() != 2 || r.End() != 10 {
		t.Fatalf("start %d end %d, want 2 10", r.Start(), r.End())
	}
	p := make([]byte, 16)
	n, from, err := r.Read(t.Context(), 0, p)
	if err != nil || from != 2 || string(p[:n]) != "cdefghij" {
		t.Fatalf("Read(0) = %q from %d, %v; want cdefghij from 2 (2 bytes lost)", p[:n], from, err)
	}
	n, from, err = r.Read(t.Context(), 7, p[:2])
	if err != nil || from != 7 || string(p[:n]) != "hi" {
		t.Fatalf("Read(7) = %q from %d, %v", p[:n], from, err)
	}
	// A write larger than the ring keeps its last bytes.
	r.Write([]byte("0123456789AB"))
	n, from, _ = r.Read(t.Context(), 0, p)
	if from != 14 || string(p[:n]) != "456789AB" {
		t.Fatalf("after a large write: %q from %d", p[:n], from)
	}
}

func TestRingTryReadStopsAtLimit(t *testing.T) {
	r := NewRing(64)
	r.Write([]byte("output<prompt>"))
	p := make([]byte, 64)
	n, from, wake, closed := r.TryRead(0, 6, p)
	if string(p[:n]) != "output" || from != 0 || closed {
		t.Fatalf("TryRead = %q from %d closed %v", p[:n], from, closed)
	}
	n, _, wake, _ = r.TryRead(6, 6, p)
	if n != 0 || wake == nil {
		t.Fatalf("at the limit: %d bytes, wake %v", n, wake)
	}
}

func TestRingReadWaitsForWriteAndEndsAtClose(t *testing.T) {
	r := NewRing(64)
	got := make(chan string, 1)
	go func() {
		p := make([]byte, 64)
		n, _, _ := r.Read(context.Background(), 0, p)
		got <- string(p[:n])
	}()
	r.Write([]byte("late"))
	select {
	case s := <-got:
		if s != "late" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not wake on Write")
	}
	r.Close()
	if _, _, err := r.Read(t.Context(), 4, make([]byte, 4)); !errors.Is(err, io.EOF) {
		t.Fatalf("after Close: %v, want EOF", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r2 := NewRing(4)
	if _, _, err := r2.Read(ctx, 0, make([]byte, 4)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// The ring starts small and grows to its size before it wraps; what it
// holds is the same as a ring allocated whole.
func TestRingGrowsThenWraps(t *testing.T) {
	r := NewRing(1 << 20)
	var all []byte
	for i := 0; len(all) < 3<<20; i++ {
		chunk := make([]byte, 1+(i*7919)%70000)
		for j := range chunk {
			chunk[j] = byte(len(all) + j)
		}
		r.Write(chunk)
		all = append(all, chunk...)
		p := make([]byte, 1<<20)
		n, from, _, _ := r.TryRead(0, -1, p)
		if want := max(0, int64(len(all))-1<<20); from != want || !bytes.Equal(p[:n], all[from:]) {
			t.Fatalf("after %d bytes: read %d from %d, want the tail from %d", len(all), n, from, want)
		}
	}
}
