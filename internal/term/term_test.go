package term

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/reaper"
)

var testReaper *reaper.Reaper

func TestMain(m *testing.M) {
	testReaper = reaper.New(nil)
	code := m.Run()
	testReaper.Close()
	os.Exit(code)
}

func start(t *testing.T, cfg Config) *Term {
	t.Helper()
	cfg.Starter = testReaper
	cfg.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "TERM=xterm", "LANG=C.UTF-8"}
	cfg.Dir = t.TempDir()
	tm, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tm.Close)
	return tm
}

// A client that reads nothing must not slow the program: 32 MiB through a
// 64 KiB ring finish as if nobody were watching, and the idle client is
// told how much it lost when it finally reads.
func TestSlowClientNeverStallsTheProgram(t *testing.T) {
	var tapped int64
	tm := start(t, Config{Path: "/bin/sh", Args: []string{"-c", "head -c 33554432 /dev/zero | tr '\\0' x"},
		RingBytes: 64 << 10, Tap: func(b []byte, off int64) {
			if off != tapped {
				t.Errorf("tap offset %d, want %d", off, tapped)
			}
			tapped += int64(len(b))
		}})
	select {
	case <-tm.ReaderDone():
	case <-time.After(60 * time.Second):
		t.Fatal("the program stalled behind a client that reads nothing")
	}
	if tapped != 32<<20 {
		t.Fatalf("tap saw %d bytes, want %d", tapped, 32<<20)
	}
	p := make([]byte, 1<<20)
	n, from, err := tm.Ring().Read(t.Context(), 0, p)
	if err != nil || from != 32<<20-64<<10 || n != 64<<10 {
		t.Fatalf("idle client: %d bytes from %d, %v; want the last 64 KiB, %d bytes lost", n, from, err, 32<<20-64<<10)
	}
}

func TestTwoClientsSeeTheSameBytes(t *testing.T) {
	tm := start(t, Config{Path: "/bin/sh", Args: []string{"-c", "for i in 1 2 3; do echo line$i; done"}})
	<-tm.ReaderDone()
	read := func() string {
		var b strings.Builder
		p := make([]byte, 7)
		for off := int64(0); ; {
			n, from, err := tm.Ring().Read(t.Context(), off, p)
			if err != nil {
				return b.String()
			}
			b.Write(p[:n])
			off = from + int64(n)
		}
	}
	a, b := read(), read()
	if a != b || a != "line1\r\nline2\r\nline3\r\n" {
		t.Fatalf("clients read %q and %q", a, b)
	}
}

func TestResizeReachesTheProgram(t *testing.T) {
	tm := start(t, Config{Path: "/bin/bash", Args: []string{"--norc", "-i"}, Rows: 24, Cols: 80})
	if err := tm.Resize(50, 132); err != nil {
		t.Fatal(err)
	}
	if r, c := tm.Size(); r != 50 || c != 132 {
		t.Fatalf("size %dx%d", c, r)
	}
	if err := tm.Send([]byte("stty size; exit\r")); err != nil {
		t.Fatal(err)
	}
	<-tm.ReaderDone()
	p := make([]byte, 4096)
	var out strings.Builder
	for off := int64(0); ; {
		n, from, err := tm.Ring().Read(t.Context(), off, p)
		if err != nil {
			break
		}
		out.Write(p[:n])
		off = from + int64(n)
	}
	if !strings.Contains(out.String(), "50 132") {
		t.Fatalf("stty size did not see 50 132: %q", out.String())
	}
	if err := tm.Resize(0, 10); err == nil {
		t.Fatal("a zero size was accepted")
	}
}

func TestCloseEndsTheSession(t *testing.T) {
	tm := start(t, Config{Path: "/bin/sh", Args: []string{"-c", "sleep 100 & sleep 100"}})
	sid := tm.Pid()
	deadline := time.Now().Add(10 * time.Second)
	for len(SessionPids(sid)) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	tm.Close()
	if left := SessionPids(sid); len(left) != 0 {
		t.Fatalf("processes left after Close: %v", left)
	}
	if err := tm.Send([]byte("x")); err != ErrClosed {
		t.Fatalf("Send after Close: %v", err)
	}
}

// Unread counts what the program wrote that the reader has not taken:
// with the reader held (a tap that waits, as a starved goroutine on a
// loaded machine), the bytes wait in the kernel and Unread sees them.
func TestUnreadSeesALaggingReader(t *testing.T) {
	hold := make(chan struct{})
	first := make(chan struct{}, 1)
	tm := start(t, Config{Path: "/bin/sh", Args: []string{"-c", "printf a; sleep 0.2; printf 0123456789; sleep 5"},
		Tap: func(b []byte, off int64) {
			if off == 0 {
				first <- struct{}{}
				<-hold
			}
		}})
	<-first
	deadline := time.Now().Add(5 * time.Second)
	for tm.Unread() < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tm.Unread(); n < 10 {
		t.Errorf("Unread = %d with 10 bytes waiting", n)
	}
	close(hold)
	for tm.Unread() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tm.Unread(); n != 0 {
		t.Errorf("Unread = %d after the reader caught up", n)
	}
}
