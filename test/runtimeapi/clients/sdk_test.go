package clients

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestRunSDKAgainstFake(t *testing.T) {
	f := newFake(t)
	rep, err := RunSDK(t.Context(), SDKOptions{Config: f.cfg(), ServerImage: "sbx-test/agent-server:standin"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.SessionID, "agent-server-") || len(rep.SessionID) != len("agent-server-")+36 {
		t.Errorf("session id %q is not agent-server-<uuid4>", rep.SessionID)
	}
	if len(rep.RuntimeIDs) != 2 || rep.RuntimeIDs[0] == rep.RuntimeIDs[1] || len(rep.Counter) != 3 {
		t.Errorf("report %+v", rep)
	}

	starts := f.requests("POST", "/start")
	if len(starts) != 2 {
		t.Fatalf("%d /start requests, want 2 (first, and after stop)", len(starts))
	}
	want := map[string]any{
		"image": "sbx-test/agent-server:standin", "command": "/usr/local/bin/openhands-agent-server --port 60000",
		"working_dir": "/", "environment": map[string]any{}, "session_id": rep.SessionID,
		"run_as_user": float64(10001), "fs_group": float64(10001), "image_pull_policy": "IfNotPresent",
		"runtime_class": "sysbox-runc",
	}
	if !reflect.DeepEqual(starts[0].Body, want) {
		t.Errorf("SDK /start body\n got %v\nwant %v", starts[0].Body, want)
	}
	for _, r := range f.all() {
		if strings.HasPrefix(r.Path, "/rt-") {
			if strings.HasSuffix(r.Path, "/health") && r.Header.Get("X-Session-API-Key") != "" {
				t.Errorf("readiness GET %s carried X-Session-API-Key; the SDK's urllib check sends none", r.Path)
			}
			continue
		}
		if r.Header.Get("X-API-Key") != f.key {
			t.Errorf("%s %s without X-API-Key", r.Method, r.Path)
		}
	}
	// After readiness the SDK's client carries the session key on the
	// runtime-API calls too (§3).
	for _, p := range []string{"/pause", "/resume", "/stop"} {
		rs := f.requests("POST", p)
		if len(rs) == 0 {
			t.Errorf("no %s request", p)
			continue
		}
		if rs[len(rs)-1].Header.Get("X-Session-API-Key") == "" {
			t.Errorf("the last %s lacks the stray X-Session-API-Key", p)
		}
		if rs[0].Body["runtime_id"] != rep.RuntimeIDs[0] {
			t.Errorf("%s body %v", p, rs[0].Body)
		}
	}
}

func TestSDKStartBodyOptions(t *testing.T) {
	none := ""
	w := &SDKWorkspace{opts: SDKOptions{ServerImage: "img", SessionID: "s", ResourceFactor: 4, RuntimeClass: &none,
		TargetType: "source", ImagePullPolicy: "Never", Environment: map[string]string{"A": "1"}}}
	b := w.StartBody()
	if b["resource_factor"] != 4 || b["command"] != "/agent-server/.venv/bin/python -m openhands.agent_server --port 60000" ||
		b["image_pull_policy"] != "Never" {
		t.Errorf("body %v", b)
	}
	if _, ok := b["runtime_class"]; ok {
		t.Errorf("an empty runtime_class was sent: %v", b)
	}
	if _, ok := b["run_as_group"]; ok {
		t.Errorf("the SDK sends no run_as_group: %v", b)
	}
}

func TestSDKRejectsResourceFactor(t *testing.T) {
	_, err := NewSDKWorkspace(t.Context(), SDKOptions{Config: Config{BaseURL: "http://127.0.0.1:1"}, ResourceFactor: 3})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("resource factor 3: %v, want ErrInvalidArgument", err)
	}
}

func TestSDKTerminalPodStatusIsNotRetried(t *testing.T) {
	for _, pod := range []string{"failed", "Unknown", "CrashLoopBackOff"} {
		t.Run(pod, func(t *testing.T) {
			f := newFake(t)
			f.readyAfter = 0
			f.podOverride = &pod
			_, err := NewSDKWorkspace(t.Context(), SDKOptions{Config: f.cfg(), ServerImage: "img", SessionID: "s1"})
			if err == nil {
				t.Fatal("no error")
			}
			if polls := len(f.requests("GET", "/sessions/s1")); polls != 2 { // attach check + one readiness attempt
				t.Errorf("%d GET /sessions/s1, want 2: a terminal status must not be retried", polls)
			}
			if strings.EqualFold(pod, "crashloopbackoff") && !strings.Contains(err.Error(), "OOM") {
				t.Errorf("crashloopbackoff error %q lacks the OOM hint", err)
			}
			// Failure cleans up: /stop was sent.
			if len(f.requests("POST", "/stop")) != 1 {
				t.Errorf("no cleanup /stop after a failed start")
			}
		})
	}
}

func TestSDKReadinessRetriesUntilHealthAnswers(t *testing.T) {
	f := newFake(t)
	f.aliveStatus = 502
	cfg := f.cfg()
	cfg.ReadyTimeout = 400 * time.Millisecond
	_, err := NewSDKWorkspace(t.Context(), SDKOptions{Config: cfg, ServerImage: "img", SessionID: "s2"})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "/health") {
		t.Fatalf("err = %v, want a timeout naming /health", err)
	}
	if n := len(f.requests("GET", "/rt-1/health")); n < 3 {
		t.Errorf("/health tried %d times, want retries", n)
	}
}

func TestSDKInvalidRuntimeResponse(t *testing.T) {
	w := &SDKWorkspace{}
	if err := w.parse([]byte(`{"id":"x"}`)); err == nil || !strings.Contains(err.Error(), "Invalid runtime response") {
		t.Errorf("parse without url: %v", err)
	}
	if err := w.parse([]byte(`{"id":"x","url":"http://u"}`)); err != nil || w.RuntimeID != "x" {
		t.Errorf("id fallback: %v, %q", err, w.RuntimeID)
	}
}
