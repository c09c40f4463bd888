package clients

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunV0WithRealSandboxd runs V0's lifecycle with the fake service in
// front of a real action execution server, sbx's sandboxd, started here as
// a host process on 127.0.0.1, so V0's action bodies and its reading of
// observations are checked against a real server rather than the fake's.
func TestRunV0WithRealSandboxd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sandboxd")
	}
	ctx := t.Context()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sandboxd")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/sbx-dev/sbx/cmd/sandboxd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sandboxd: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	const key = "sk-v0-real"
	cmd := exec.Command(bin, strconv.Itoa(port), "--working-dir", filepath.Join(dir, "ws"),
		"--username", u.Username, "--user-id", u.Uid, "--no-enable-browser", "--host", "127.0.0.1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SESSION_API_KEY="+key, "SBX_STATE_DIR="+filepath.Join(dir, "state"),
		"SBX_URL_FILE="+filepath.Join(dir, "url"), "HOME="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(CounterRunFile) // ends the lifecycle's background counter
		defer os.Remove(counterFile)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("sandboxd output:\n%s", out.String())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/alive")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandboxd did not answer /alive: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	f := newFake(t)
	f.v0Upstream, _ = url.Parse(base)
	f.fixedKey = key
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep, err := RunV0(rctx, V0Options{Config: f.cfg(), Image: "img", SessionID: "real-1", StartupEnv: map[string]string{"FOO": "x y"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Counter) != 3 {
		t.Errorf("report %+v", rep)
	}
	// The wrong key is refused by the real server (403, §2.3 of
	// openhands-runtime.md), which V0 does not treat as disconnected.
	r := &V0Runtime{opts: V0Options{Config: f.cfg()}, hc: http.DefaultClient, URL: base,
		session: http.Header{"X-Session-Api-Key": {"wrong"}}}
	if _, err := r.Run(rctx, "true"); StatusOf(err) != 403 || strings.Contains(err.Error(), "Disconnected") {
		t.Errorf("wrong key: %v, want HTTP 403", err)
	}
}
