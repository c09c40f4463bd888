package sandboxd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// The public client drives the process routes of a real server: start,
// follow, input, exit code, and a follow resumed from an offset.
func TestClientProcesses(t *testing.T) {
	t.Parallel()
	p := newProcServer(t)
	c := sandboxapi.NewClient(p.ts.URL, "k")
	ctx := t.Context()
	info, err := c.StartProcess(ctx, sandboxapi.ProcessSpec{Command: `echo one; read l; echo "got $l"; exit 5`, Stdin: true})
	if err != nil || info.State != "running" {
		t.Fatalf("start: %+v %v", info, err)
	}
	// Follow until the first line, then drop the connection.
	fctx, cancel := context.WithCancel(ctx)
	var next int64
	_, err = c.FollowProcess(fctx, info.ID, 0, func(ev sandboxapi.ProcessEvent) error {
		if ev.Type == "output" {
			next = ev.Offset + int64(len(ev.Data))
			cancel()
		}
		return nil
	})
	if err == nil || next != 4 {
		t.Fatalf("first follow: next %d, %v", next, err)
	}
	if err := c.WriteProcessInput(ctx, info.ID, "hi\n"); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	exit, err := c.FollowProcess(ctx, info.ID, next, func(ev sandboxapi.ProcessEvent) error {
		if ev.Type == "output" {
			rest.WriteString(ev.Data)
		}
		return nil
	})
	if err != nil || rest.String() != "got hi\n" || exit.ExitCode == nil || *exit.ExitCode != 5 {
		t.Fatalf("resumed follow: %q %+v %v", rest.String(), exit, err)
	}
	got, err := c.WaitProcess(ctx, info.ID, 5*time.Second)
	if err != nil || got.State != "exited" || *got.ExitCode != 5 {
		t.Fatalf("wait: %+v %v", got, err)
	}
	out, err := c.ProcessOutput(ctx, info.ID, 0, 0)
	var all strings.Builder
	for _, ch := range out.Chunks {
		all.WriteString(ch.Data)
	}
	if err != nil || all.String() != "one\ngot hi\n" || !out.Exited || out.Next != 11 {
		t.Fatalf("output: %+v %v", out, err)
	}
	list, err := c.Processes(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := c.RemoveProcess(ctx, info.ID, false); err != nil {
		t.Fatal(err)
	}
	var he *sandboxapi.HTTPError
	if _, err := c.Process(ctx, info.ID); !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("removed process: %v", err)
	}
	long, err := c.StartProcess(ctx, sandboxapi.ProcessSpec{Argv: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignalProcess(ctx, long.ID, "TERM"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.WaitProcess(ctx, long.ID, 10*time.Second); err != nil || got.Signal != "SIGTERM" {
		t.Fatalf("after SIGTERM: %+v %v", got, err)
	}
}

// WatchDir returns once the watch is in place, so a change made right
// after it is seen.
func TestClientWatch(t *testing.T) {
	t.Parallel()
	ws := newWatchServer(t)
	c := sandboxapi.NewClient(ws.ts.URL, "")
	w, err := c.WatchDir(t.Context(), ".", true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f := filepath.Join(ws.work, "a.txt")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f, f+".bak"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for seen := map[string]bool{}; !seen["create"] || !seen["rename"]; {
		select {
		case ev := <-w.Events():
			seen[ev.Op] = true
			if ev.Op == "rename" && (ev.OldPath != f || ev.Path != f+".bak") {
				t.Fatalf("rename event %+v", ev)
			}
		case <-deadline:
			t.Fatalf("events seen: %v", seen)
		}
	}
	w.Close()
	if !errors.Is(w.Err(), context.Canceled) {
		t.Fatalf("after Close: %v", w.Err())
	}
	var he *sandboxapi.HTTPError
	if _, err := c.WatchDir(t.Context(), "missing", false); !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("missing dir: %v", err)
	}
}
