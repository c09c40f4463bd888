package clients

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestV0Command(t *testing.T) {
	got := V0Command(V0Options{})
	want := []string{"/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run", "python", "-u", "-m",
		"openhands.runtime.action_execution_server", "60000", "--working-dir", "/workspace",
		"--plugins", "agent_skills", "jupyter", "--username", "openhands", "--user-id", "1000"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("V0Command\n got %q\nwant %q", got, want)
	}
	got = V0Command(V0Options{Plugins: []string{}, RunAsRoot: true, DisableBrowser: true, WorkspaceMount: "/ws"})
	if s := strings.Join(got, " "); !strings.HasSuffix(s, "60000 --working-dir /ws --username root --user-id 0 --no-enable-browser") {
		t.Errorf("V0Command root = %q", s)
	}
}

func TestRunV0AgainstFake(t *testing.T) {
	f := newFake(t)
	rep, err := RunV0(t.Context(), V0Options{Config: f.cfg(), Image: "sbx-test/debian:bookworm", SessionID: "conv-1",
		StartupEnv: map[string]string{"FOO": "bar baz"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RuntimeIDs) != 2 || len(rep.Counter) != 3 || len(rep.WorkHosts) != 1 {
		t.Errorf("report %+v", rep)
	}
	starts := f.requests("POST", "/start")
	if len(starts) != 2 {
		t.Fatalf("%d /start", len(starts))
	}
	b := starts[0].Body
	if b["working_dir"] != "/openhands/code/" || b["resource_factor"] != float64(1) || b["session_id"] != "conv-1" {
		t.Errorf("V0 /start body %v", b)
	}
	for _, k := range []string{"run_as_user", "run_as_group", "fs_group", "runtime_class", "image_pull_policy"} {
		if _, ok := b[k]; ok {
			t.Errorf("V0 sends no %s: %v", k, b)
		}
	}
	if env := b["environment"].(map[string]any); !reflect.DeepEqual(env, map[string]any{"FOO": "bar baz"}) {
		t.Errorf("environment %v", env)
	}
	if cmd, _ := b["command"].([]any); len(cmd) == 0 || cmd[0] != "/openhands/micromamba/bin/micromamba" {
		t.Errorf("command %v", b["command"])
	}
	if len(f.requests("GET", "/runtime/")) == 0 {
		t.Error("V0 never polled /runtime/{id}")
	}
	// The shared session: workload calls carry both keys (§3).
	acts := f.requests("POST", "/rt-1/execute_action")
	if len(acts) == 0 {
		t.Fatal("no actions")
	}
	for _, r := range acts {
		if r.Header.Get("X-API-Key") != f.key || r.Header.Get("X-Session-API-Key") == "" {
			t.Errorf("action headers %v", r.Header)
		}
	}
	a := acts[0].Body["action"].(map[string]any)
	if a["action"] != "run" || a["timeout"] != 120.0 || !strings.HasPrefix(a["args"].(map[string]any)["command"].(string), "export FOO=\"bar baz\";") {
		t.Errorf("first action %v", a)
	}
	// The 503 path: one action met a paused runtime, so /resume was sent
	// by the workload wrapper: two resumes in all (attach, then 503).
	if n := len(f.requests("POST", "/resume")); n != 2 {
		t.Errorf("%d /resume, want 2 (attach to paused, then 503)", n)
	}
}

func TestV0ReadinessAssertions(t *testing.T) {
	f := newFake(t)
	f.omitPodStatus = true
	_, err := ConnectV0(t.Context(), V0Options{Config: f.cfg(), Image: "img"})
	if err == nil || !strings.Contains(err.Error(), "pod_status") {
		t.Fatalf("no pod_status: %v", err)
	}
	if n := len(f.requests("GET", "/runtime/")); n != 1 {
		t.Errorf("%d polls, want 1: an AssertionError is not retried", n)
	}
}

func TestV0AliveDisconnectedFailsAtOnce(t *testing.T) {
	for _, st := range []int{404, 502, 504, 503} {
		f := newFake(t)
		f.aliveStatus = st
		_, err := ConnectV0(t.Context(), V0Options{Config: f.cfg(), Image: "img", SessionID: "s"})
		var de *V0DisconnectedError
		if !errors.As(err, &de) || de.Status != st {
			t.Errorf("/alive %d: err %v, want AgentRuntimeDisconnectedError", st, err)
		}
	}
	// Other statuses are retried until the timeout.
	f := newFake(t)
	f.aliveStatus = 500
	cfg := f.cfg()
	cfg.ReadyTimeout = 300 * time.Millisecond
	_, err := ConnectV0(t.Context(), V0Options{Config: cfg, Image: "img"})
	if !errors.Is(err, errdefs.ErrUnavailable) || len(f.requests("GET", "/rt-1/alive")) < 3 {
		t.Errorf("/alive 500: %v after %d tries, want retries then a timeout", err, len(f.requests("GET", "/rt-1/alive")))
	}
}

func TestV0TerminalPodStatus(t *testing.T) {
	pod := "CrashLoopBackOff"
	f := newFake(t)
	f.readyAfter = 0
	f.podOverride = &pod
	_, err := ConnectV0(t.Context(), V0Options{Config: f.cfg(), Image: "img"})
	if err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("crashloopbackoff: %v", err)
	}
}

func TestV0AttachToExistingWithoutRuntime(t *testing.T) {
	f := newFake(t)
	_, err := ConnectV0(t.Context(), V0Options{Config: f.cfg(), Image: "img", AttachToExisting: true})
	if !errors.Is(err, errdefs.ErrNotFound) || len(f.requests("POST", "/start")) != 0 {
		t.Errorf("attach_to_existing with no runtime: %v", err)
	}
}

func tarGz(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	df := []byte("FROM sbx-test/debian:bookworm\n")
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))})
	tw.Write(df)
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestV0Build(t *testing.T) {
	f := newFake(t)
	f.build429 = 2
	o := V0BuildOptions{Config: f.cfg(), Context: tarGz(t), Tags: []string{"oh_v0.62.0_lock_source", "oh_v0.62.0_lock"}, RetryAfter429: 10 * time.Millisecond}
	res, err := V0Build(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image != "localhost/sbx/runtime:oh_v0.62.0_lock_source" || res.BuildID == "" || res.Prefix != "localhost/sbx/" {
		t.Errorf("result %+v", res)
	}
	if n := len(f.requests("POST", "/build")); n != 3 {
		t.Errorf("%d POST /build, want 3 (two 429s)", n)
	}
	if n := len(f.requests("GET", "/build_status?build_id=")); n != 3 {
		t.Errorf("%d status polls, want 3", n)
	}
	// Built once, found the second time.
	res, err = V0Build(t.Context(), o)
	if err != nil || res.BuildID != "" {
		t.Errorf("second build: %+v %v, want the existing image", res, err)
	}

	f.buildFailWith = "FAILURE"
	o.Tags = []string{"other"}
	if _, err := V0Build(t.Context(), o); err == nil || !strings.Contains(err.Error(), "FAILURE") {
		t.Errorf("failed build: %v", err)
	}
}
