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
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/sandboxapi"
)

func TestParseListenFD(t *testing.T) {
	base := []string{"8000", "--working-dir", "/w"}
	for _, tc := range []struct {
		env     string
		want    int
		wantErr bool
	}{
		{"", -1, false},
		{"3", 3, false},
		{" 7 ", 7, false},
		{"2", 0, true},
		{"-1", 0, true},
		{"three", 0, true},
	} {
		getenv := func(k string) string {
			if k == launch.EnvListenFD {
				return tc.env
			}
			return ""
		}
		c, err := launch.Parse(base, getenv)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), launch.EnvListenFD) {
				t.Errorf("%s=%q: err = %v, want one naming %s", launch.EnvListenFD, tc.env, err, launch.EnvListenFD)
			}
			continue
		}
		if err != nil || c.ListenFD != tc.want {
			t.Errorf("%s=%q: listenFD = %d, err = %v; want %d", launch.EnvListenFD, tc.env, c.ListenFD, err, tc.want)
		}
	}
}

// TestInheritedListener runs the built binary on a socket bound by the
// test, as the local driver does: it must answer on that socket, and
// neither the variable nor the descriptor may reach the agent's shell.
func TestInheritedListener(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sandboxd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the duplicate in f keeps the socket listening
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	const key = "0123456789abcdef0123456789abcdef"
	work := filepath.Join(dir, "work")
	cmd := exec.Command(bin, strconv.Itoa(port), "--working-dir", work, "--host", "127.0.0.1",
		"--username", me.Username, "--user-id", me.Uid, "--no-enable-browser")
	cmd.Env = append(os.Environ(), "USER="+me.Username, "SESSION_API_KEY="+key, launch.EnvListenFD+"=3")
	cmd.ExtraFiles = []*os.File{f}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := sandboxapi.NewClient(fmt.Sprintf("http://127.0.0.1:%d", port), key)
	for {
		status, err := c.Alive(ctx)
		if err == nil && status == "ok" {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("sandboxd exited: %v\n%s", err, log.String())
		case <-ctx.Done():
			t.Fatalf("not ready: %v (last: %q, %v)", ctx.Err(), status, err)
		case <-time.After(5 * time.Millisecond):
		}
	}

	// The shell lists its own descriptors: none may be our socket.
	script := `echo "var=${` + launch.EnvListenFD + `-unset}"; for f in /proc/$$/fd/*; do readlink "$f"; done; true`
	obs, ex, err := c.Run(ctx, sandboxapi.NewRunAction(script, 30))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Metadata.ExitCode != 0 {
		t.Fatalf("exit %d: %s", ex.Metadata.ExitCode, obs.Content)
	}
	if !strings.Contains(obs.Content, "var=unset") {
		t.Errorf("the shell sees %s:\n%s", launch.EnvListenFD, obs.Content)
	}
	if sock := fmt.Sprintf("socket:[%d]", st.Ino); strings.Contains(obs.Content, sock) {
		t.Errorf("the shell inherited the listening socket %s:\n%s", sock, obs.Content)
	}
}
