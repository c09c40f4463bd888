package clients

import (
	"reflect"
	"strings"
	"testing"
)

func TestMapStatus(t *testing.T) {
	for _, tc := range []struct {
		status, pod string
		a, b, c     SandboxStatus
	}{
		{"running", "ready", StatusRunning, StatusRunning, StatusRunning},
		{"starting", "pending", StatusStarting, StatusStarting, StatusStarting},
		{"starting", "running", StatusStarting, StatusStarting, StatusStarting},
		// The closed API's habit (status running while pods start) splits
		// the variants; sbx must not do this (§6.3).
		{"running", "pending", StatusStarting, StatusRunning, StatusRunning},
		{"paused", "not found", StatusPaused, StatusPaused, StatusPaused},
		{"paused", "", StatusPaused, StatusPaused, StatusPaused},
		// A paused runtime still reporting ready reads RUNNING in APP-a.
		{"paused", "ready", StatusRunning, StatusPaused, StatusPaused},
		{"stopped", "not found", StatusMissing, StatusMissing, StatusMissing},
		{"error", "failed", StatusError, StatusError, StatusError},
		{"running", "CrashLoopBackOff", StatusError, StatusRunning, StatusRunning},
		{"error", "", StatusError, StatusError, StatusError},
		{"provisioning", "", StatusMissing, StatusMissing, StatusStarting},
		{"weird", "weird", StatusMissing, StatusMissing, StatusMissing},
	} {
		rt := &Runtime{Status: tc.status, PodStatus: tc.pod}
		if a, b, c := MapStatusAppA(rt), MapStatusAppBC(rt, false), MapStatusAppBC(rt, true); a != tc.a || b != tc.b || c != tc.c {
			t.Errorf("status %q pod %q: a=%s b=%s c=%s, want %s %s %s", tc.status, tc.pod, a, b, c, tc.a, tc.b, tc.c)
		}
	}
	if MapStatusAppA(nil) != StatusMissing || MapStatusAppBC(nil, true) != StatusMissing {
		t.Error("no runtime must be MISSING")
	}
}

func TestServiceURL(t *testing.T) {
	for _, tc := range []struct {
		url, id, svc string
		path         bool
		want         string
	}{
		{"https://h.example/rt1", "rt1", "vscode", true, "https://h.example/rt1/vscode"},
		{"https://h.example/rt1/", "rt1", "work-1", true, "https://h.example/rt1/work-1"},
		{"https://h.example/rt1", "rt1", "vscode", false, "https://vscode-h.example/rt1"},
		{"https://rt1.h.example", "rt1", "work-2", true, "https://work-2-rt1.h.example/"},
		// APP-b's test is a plain prefix, so /rt10 counts as rt1's path.
		{"http://127.0.0.1:8000/rt10", "rt1", "vscode", true, "http://127.0.0.1:8000/rt1/vscode"},
	} {
		if got := ServiceURL(tc.url, tc.id, tc.svc, tc.path); got != tc.want {
			t.Errorf("ServiceURL(%q, %q, %q, %v) = %q, want %q", tc.url, tc.id, tc.svc, tc.path, got, tc.want)
		}
	}
}

func TestRunAppAgainstFake(t *testing.T) {
	for _, v := range []AppVariant{AppA, AppB, AppC} {
		t.Run(string(v), func(t *testing.T) {
			f := newFake(t)
			f.rotateOnResume = v == AppC
			rep, err := RunApp(t.Context(), AppOptions{Config: f.cfg(), Variant: v, Image: "sbx-test/agent-server:standin"})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Counter) != 2 || rep.SandboxID == "" {
				t.Errorf("report %+v", rep)
			}
			starts := f.requests("POST", "/start")
			if len(starts) != 1 {
				t.Fatalf("%d /start", len(starts))
			}
			b := starts[0].Body
			want := map[string]any{
				"image":   "sbx-test/agent-server:standin",
				"command": []any{"/usr/local/bin/openhands-agent-server", "--port", "60000"}, "working_dir": "/workspace",
				"session_id": rep.SandboxID, "resource_factor": float64(1),
				"run_as_user": float64(10001), "run_as_group": float64(10001), "fs_group": float64(10001),
			}
			env := b["environment"].(map[string]any)
			delete(b, "environment")
			if !reflect.DeepEqual(b, want) {
				t.Errorf("App /start body\n got %v\nwant %v", b, want)
			}
			if env["OH_VSCODE_PORT"] != "60001" || env["OH_CONVERSATIONS_PATH"] != "/workspace/conversations" || env["LOG_JSON"] != "true" {
				t.Errorf("environment %v", env)
			}
			if _, ok := env["WORKER_1"]; ok == (v == AppA) {
				t.Errorf("%s: WORKER_1 present=%v", v, ok)
			}
			if _, ok := env["OH_WEBHOOKS_0_BASE_URL"]; ok {
				t.Errorf("no web URL, yet a webhook: %v", env)
			}
			if got := len(f.requests("GET", "/sessions/batch?ids=")); (got > 0) != (v != AppA) {
				t.Errorf("%s sent %d batch reads", v, got)
			}
			for _, r := range f.all() {
				if !strings.HasPrefix(r.Path, "/rt-") && r.Header.Get("X-API-Key") != f.key {
					t.Errorf("%s %s without X-API-Key", r.Method, r.Path)
				}
			}
		})
	}
}

// With a rotated key on resume, only APP-c (which reads the /resume reply)
// keeps working with the key it holds; the run proves the key from the
// reply is the one used.
func TestAppCUsesKeyFromResume(t *testing.T) {
	f := newFake(t)
	f.rotateOnResume = true
	a := NewAppService(AppOptions{Config: f.cfg(), Variant: AppC, Image: "img"})
	si, err := a.StartSandbox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitRunning(t.Context(), si.ID); err != nil {
		t.Fatal(err)
	}
	first := a.Key(si.ID)
	if ok, err := a.PauseSandbox(t.Context(), si.ID); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if a.Key(si.ID) != "" {
		t.Error("APP-c keeps the key while paused")
	}
	if ok, err := a.ResumeSandbox(t.Context(), si.ID); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if a.Key(si.ID) == "" || a.Key(si.ID) == first {
		t.Errorf("key after resume %q (before %q): not taken from the reply", a.Key(si.ID), first)
	}
}

func TestAppLifecycleOnUnknown(t *testing.T) {
	f := newFake(t)
	a := NewAppService(AppOptions{Config: f.cfg(), Image: "img"})
	if ok, err := a.PauseSandbox(t.Context(), "nope"); ok || err != nil {
		t.Errorf("pause unknown = %v %v, want false, nil", ok, err)
	}
	if ok, err := a.ResumeSandbox(t.Context(), "nope"); ok || err != nil {
		t.Errorf("resume unknown = %v %v, want false, nil", ok, err)
	}
	si, err := a.GetSandbox(t.Context(), "nope")
	if err != nil || si.Status != StatusMissing || si.ExposedURLs != nil {
		t.Errorf("get unknown = %+v %v", si, err)
	}
}

func TestAppStartRequiresSessionKey(t *testing.T) {
	f := newFake(t)
	f.omitKey = true
	a := NewAppService(AppOptions{Config: f.cfg(), Image: "img"})
	if _, err := a.StartSandbox(t.Context()); err == nil || !strings.Contains(err.Error(), "session_api_key") {
		t.Errorf("start without session_api_key in the reply: %v, want APP's KeyError", err)
	}
}

func TestPauseOldSandboxes(t *testing.T) {
	f := newFake(t)
	a := NewAppService(AppOptions{Config: f.cfg(), Image: "img", MaxNumSandboxes: 2})
	var ids []string
	for range 3 {
		si, err := a.StartSandbox(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, si.ID)
	}
	// Before the third start, two were listed: more than max-1, so one
	// was paused.
	paused := 0
	for _, id := range ids {
		if si, _ := a.GetSandbox(t.Context(), id); si.Status == StatusPaused {
			paused++
		}
	}
	if paused != 1 {
		t.Errorf("%d sandboxes paused by the limit, want 1 (before the third start two were listed, more than max-1)", paused)
	}
	// APP-b orders by created_at descending and pauses the first: the
	// newest of the two listed.
	if si, _ := a.GetSandbox(t.Context(), ids[1]); si.Status != StatusPaused {
		t.Errorf("the second sandbox is %s, want it paused", si.Status)
	}
}

func TestExposedURLs(t *testing.T) {
	rt := &Runtime{RuntimeID: "rt-1", URL: "https://h.example/rt-1", SessionAPIKey: "K", Status: "running", PodStatus: "ready"}
	b := NewAppService(AppOptions{Variant: AppB}).info("s", rt).ExposedURLs
	if b["VSCODE"] != "https://h.example/rt-1/vscode?tkn=K&folder=%2Fworkspace%2Fproject" || b["WORKER_1"] != "https://h.example/rt-1/work-1" || b["AGENT_SERVER"] != rt.URL {
		t.Errorf("APP-b urls %v", b)
	}
	a := NewAppService(AppOptions{Variant: AppA}).info("s", rt).ExposedURLs
	if a["VSCODE"] != "https://vscode-h.example/rt-1/?tkn=K&folder=%2Fworkspace%2Fproject" || a["WORKER_2"] != "https://work-2-h.example/rt-1" {
		t.Errorf("APP-a urls %v", a)
	}
	rt.Status = "paused"
	if u := NewAppService(AppOptions{}).info("s", rt).ExposedURLs; u != nil {
		t.Errorf("a paused sandbox exposes %v", u)
	}
}
