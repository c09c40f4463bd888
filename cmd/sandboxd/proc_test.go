package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// buildSandboxd builds the binary under test into a temporary directory.
func buildSandboxd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "sandboxd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a log that the test reads while the child writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child is a running sandboxd.
type child struct {
	cmd    *exec.Cmd
	url    string
	port   int
	log    *syncBuffer
	exited chan error
}

// startSandboxd runs bin as the local driver does (on a socket bound
// here, as the current user) with env added, and waits until it is
// ready. The child is stopped at the end of the test.
func startSandboxd(t *testing.T, bin, work string, env ...string) *child {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	defer f.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, strconv.Itoa(port), "--working-dir", work, "--host", "127.0.0.1",
		"--username", me.Username, "--user-id", me.Uid, "--no-enable-browser")
	cmd.Env = append(append(os.Environ(), "USER="+me.Username, launch.EnvListenFD+"=3"), env...)
	cmd.ExtraFiles = []*os.File{f}
	c := &child{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, log: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() { c.stop() })

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := sandboxapi.NewClient(c.url, "")
	for {
		status, err := cl.Alive(ctx)
		if err == nil && status == "ok" {
			return c
		}
		select {
		case err := <-c.exited:
			c.exited <- err
			t.Fatalf("sandboxd exited: %v\n%s", err, c.log.String())
		case <-ctx.Done():
			t.Fatalf("not ready: %v (last: %q, %v)\n%s", ctx.Err(), status, err, c.log.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop ends the child with SIGTERM, then SIGKILL; it may be called again.
func (c *child) stop() {
	select {
	case err := <-c.exited:
		c.exited <- err
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.exited:
		c.exited <- err
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		c.exited <- <-c.exited
	}
}

// kill9 kills the child as an OOM killer would and waits for it.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.exited <- <-c.exited
}
