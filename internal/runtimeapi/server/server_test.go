package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/backend"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store/storetest"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for freshPostgres
)

func testImage() string {
	if s := os.Getenv("SBX_TEST_IMAGE"); s != "" {
		return s
	}
	return "sbx-test/debian:bookworm"
}

// env is one sandbox-api on the real engine with a SQLite store, whose
// sandboxes carry a label of this test only (Reconcile and the cleanup
// see nothing else).
type env struct {
	t      *testing.T
	url    string
	st     *store.Store
	srv    *Server
	be     *backend.Backend
	labels map[string]string
	ts     *httptest.Server
}

func openBackend(t *testing.T) *backend.Backend {
	t.Helper()
	cfg := config.Default()
	cfg.Runtime = "docker"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	be, err := backend.Open(ctx, cfg, backend.Options{})
	if err == nil {
		_, err = be.Driver.List(ctx, map[string]string{"dev.sbx.none": "x"})
	}
	if err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			t.Fatalf("docker engine required: %v", err)
		}
		t.Skipf("no docker engine: %v", err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, filepath.Join(t.TempDir(), "api.db"), mutate...)
}

// newEnvOn is newEnv on the store dsn names.
func newEnvOn(t *testing.T, dsn string, mutate ...func(*Config)) *env {
	t.Helper()
	be := openBackend(t)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, be: be, labels: map[string]string{"dev.sbx.runtimeapi": "true", "sbx.test": "1", "dev.sbx.runtimeapi.test": ids.New(6)}}
	e.ts = httptest.NewUnstartedServer(nil)
	e.url = "http://" + e.ts.Listener.Addr().String()
	cfg := Config{Store: st, Driver: be.Driver, Caps: be.Caps, Backend: be.Name, PublicURL: e.url, Labels: e.labels,
		StartTimeout: 60 * time.Second, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts.Config.Handler = srv
	e.ts.Start()
	t.Cleanup(func() {
		e.ts.Close()
		srv.Close()
		e.removeAll()
	})
	return e
}

// removeAll removes this test's sandboxes (its own label only).
func (e *env) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sbs, err := e.be.Driver.List(ctx, map[string]string{"dev.sbx.runtimeapi.test": e.labels["dev.sbx.runtimeapi.test"]})
	if err != nil {
		e.t.Logf("cleanup: %v", err)
		return
	}
	for _, sb := range sbs {
		if err := e.be.Driver.Remove(ctx, sb.ID); err != nil {
			e.t.Logf("cleanup %s: %v", sb.Name, err)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) key(name string) string {
	e.t.Helper()
	_, secret, err := e.st.CreateKey(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// call sends one request and decodes a JSON answer into out (if not nil).
func (e *env) call(method, path string, hdr map[string]string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %d %q is not JSON: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func v0Command() []string {
	return []string{"/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run", "python", "-u", "-m",
		"openhands.runtime.action_execution_server", "60000", "--working-dir", "/workspace", "--plugins", "agent_skills",
		"--username", "root", "--user-id", "0"}
}

func v0Start(session string) map[string]any {
	return map[string]any{"image": testImage(), "command": v0Command(), "working_dir": "/openhands/code/",
		"environment": map[string]string{"DEBUG": "false"}, "session_id": session, "resource_factor": 1}
}

// waitRunning polls /runtime/{id} as V0 does until running or error.
func (e *env) waitRunning(key, id string) runtimeObject {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var o runtimeObject
		if code := e.call("GET", "/runtime/"+id, map[string]string{"X-API-Key": key}, nil, &o); code != 200 {
			e.t.Fatalf("GET /runtime/%s: %d", id, code)
		}
		switch o.Status {
		case "running":
			if o.PodStatus != "ready" {
				e.t.Fatalf("running with pod_status %q", o.PodStatus)
			}
			return o
		case "error", "stopped":
			e.t.Fatalf("runtime %s is %s: %s", id, o.Status, o.Reason)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("runtime %s still %s/%s", id, o.Status, o.PodStatus)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run sends an OpenHands run action through the proxy.
func (e *env) run(o runtimeObject, command string) (int, string) {
	e.t.Helper()
	body := map[string]any{"action": map[string]any{"action": "run", "args": map[string]any{"command": command, "blocking": true, "timeout": 20}}}
	path := strings.TrimPrefix(o.URL, e.url) + "/execute_action"
	var obs struct {
		Content string `json:"content"`
	}
	code := e.call("POST", path, map[string]string{"X-Session-API-Key": o.SessionAPIKey, "Content-Type": "application/json"}, body, &obs)
	return code, obs.Content
}

func TestV0Lifecycle(t *testing.T) {
	e := newEnv(t)
	key := e.key("alice")
	h := map[string]string{"X-API-Key": key}
	var o runtimeObject
	if code := e.call("POST", "/start", h, v0Start("sess-1"), &o); code != 200 {
		t.Fatalf("/start: %d", code)
	}
	if o.Status != "starting" || o.PodStatus != "pending" || !strings.HasPrefix(o.RuntimeID, "rt-") || o.URL != e.url+"/"+o.RuntimeID || len(o.SessionAPIKey) < 32 {
		t.Fatalf("/start answered %+v", o)
	}
	if o.WorkHosts[o.URL+"/work-1"] != appPort1 {
		t.Errorf("work_hosts %v", o.WorkHosts)
	}
	// A second /start of a live session is the same runtime.
	var again runtimeObject
	e.call("POST", "/start", h, v0Start("sess-1"), &again)
	if again.RuntimeID != o.RuntimeID {
		t.Errorf("second /start made %s beside %s", again.RuntimeID, o.RuntimeID)
	}
	o = e.waitRunning(key, o.RuntimeID)
	// The engine is local: the proxy dials the container's own address,
	// not the engine's port proxy on 127.0.0.1.
	if rt, ok := e.srv.routes.get(o.RuntimeID); !ok || strings.HasPrefix(rt.targets[svcMain].Host, "127.0.0.1:") {
		t.Errorf("route %+v: want the container's address", rt.targets)
	}
	// Through the proxy, with the session key; a wrong key is sandboxd's 403.
	if code := e.call("GET", "/"+o.RuntimeID+"/alive", map[string]string{"X-Session-API-Key": o.SessionAPIKey}, nil, nil); code != 200 {
		t.Fatalf("proxied /alive: %d", code)
	}
	if code, _ := e.run(runtimeObject{URL: o.URL, SessionAPIKey: "wrong"}, "true"); code != 403 {
		t.Errorf("wrong session key: %d", code)
	}
	code, out := e.run(o, `echo hi-$((6*7)); (while :; do echo x >> /tmp/ticks; sleep 0.1; done) >/dev/null 2>&1 &`)
	if code != 200 || !strings.Contains(out, "hi-42") {
		t.Fatalf("run: %d %q", code, out)
	}
	// GET /sessions/{id} and /list find it.
	var bySess runtimeObject
	e.call("GET", "/sessions/sess-1", h, nil, &bySess)
	if bySess.RuntimeID != o.RuntimeID || bySess.Status != "running" {
		t.Errorf("/sessions: %+v", bySess)
	}
	var list struct{ Runtimes []runtimeObject }
	e.call("GET", "/list", h, nil, &list)
	if len(list.Runtimes) != 1 || list.Runtimes[0].RuntimeID != o.RuntimeID {
		t.Errorf("/list: %+v", list)
	}
	var batch []runtimeObject
	e.call("GET", "/sessions/batch?ids=sess-1&ids=nope", h, nil, &batch)
	if len(batch) != 1 || batch[0].SessionID != "sess-1" {
		t.Errorf("/sessions/batch: %+v", batch)
	}

	// Pause: the proxy answers 503 (V0 reads that as paused), the process
	// keeps its state; resume: starting until healthy, then running.
	var p runtimeObject
	if code := e.call("POST", "/pause", h, map[string]string{"runtime_id": o.RuntimeID}, &p); code != 200 || p.Status != "paused" {
		t.Fatalf("/pause: %d %+v", code, p)
	}
	if code := e.call("GET", "/"+o.RuntimeID+"/alive", nil, nil, nil); code != 503 {
		t.Errorf("proxied request to a paused runtime: %d, want 503", code)
	}
	if code := e.call("POST", "/pause", h, map[string]string{"runtime_id": o.RuntimeID}, &p); code != 200 {
		t.Errorf("pausing a paused runtime: %d", code)
	}
	var r runtimeObject
	if code := e.call("POST", "/resume", h, map[string]string{"runtime_id": o.RuntimeID}, &r); code != 200 || r.SessionAPIKey != o.SessionAPIKey {
		t.Fatalf("/resume: %d %+v", code, r)
	}
	o = e.waitRunning(key, o.RuntimeID)
	_, before := e.run(o, "wc -l < /tmp/ticks")
	time.Sleep(400 * time.Millisecond)
	_, after := e.run(o, "wc -l < /tmp/ticks")
	if strings.TrimSpace(before) == "" || strings.TrimSpace(before) == strings.TrimSpace(after) {
		t.Errorf("the background process did not survive pause/resume: %q then %q", before, after)
	}

	// Stop: the sandbox goes, the proxy says 404, the session shows stopped;
	// /start with the same session id makes a new runtime.
	var s runtimeObject
	if code := e.call("POST", "/stop", h, map[string]string{"runtime_id": o.RuntimeID}, &s); code != 200 || s.Status != "stopped" {
		t.Fatalf("/stop: %d %+v", code, s)
	}
	if code := e.call("GET", "/"+o.RuntimeID+"/alive", nil, nil, nil); code != 404 {
		t.Errorf("proxied request to a stopped runtime: %d, want 404", code)
	}
	if _, err := e.be.Driver.Inspect(context.Background(), o.RuntimeID); err == nil {
		t.Error("the sandbox of a stopped runtime is still there")
	}
	e.call("GET", "/sessions/sess-1", h, nil, &bySess)
	if bySess.Status != "stopped" {
		t.Errorf("session after stop: %s", bySess.Status)
	}
	if code := e.call("POST", "/stop", h, map[string]string{"runtime_id": o.RuntimeID}, nil); code != 200 {
		t.Errorf("stopping twice: %d", code)
	}
	var n runtimeObject
	e.call("POST", "/start", h, v0Start("sess-1"), &n)
	if n.RuntimeID == "" || n.RuntimeID == o.RuntimeID {
		t.Fatalf("restart of the session: %+v", n)
	}
	e.waitRunning(key, n.RuntimeID)
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	a, b := e.key("a"), e.key("b")
	var o runtimeObject
	e.call("POST", "/start", map[string]string{"X-API-Key": a}, v0Start("shared"), &o)
	o = e.waitRunning(a, o.RuntimeID)
	hb := map[string]string{"X-API-Key": b}
	for _, c := range []struct{ method, path string }{{"GET", "/runtime/" + o.RuntimeID}, {"GET", "/sessions/shared"}} {
		if code := e.call(c.method, c.path, hb, nil, nil); code != 404 {
			t.Errorf("%s %s with another key: %d, want 404", c.method, c.path, code)
		}
	}
	for _, p := range []string{"/pause", "/resume", "/stop"} {
		if code := e.call("POST", p, hb, map[string]string{"runtime_id": o.RuntimeID}, nil); code != 404 {
			t.Errorf("%s with another key: %d, want 404", p, code)
		}
	}
	var list struct{ Runtimes []runtimeObject }
	e.call("GET", "/list", hb, nil, &list)
	if len(list.Runtimes) != 0 {
		t.Errorf("b lists a's runtimes: %+v", list)
	}
	var batch []runtimeObject
	e.call("GET", "/sessions/batch?ids=shared", hb, nil, &batch)
	if len(batch) != 0 {
		t.Errorf("b's batch: %+v", batch)
	}
	// b's runtime with the same session id is b's own.
	var ob runtimeObject
	e.call("POST", "/start", hb, v0Start("shared"), &ob)
	if ob.RuntimeID == o.RuntimeID {
		t.Fatal("b got a's runtime")
	}
	ob = e.waitRunning(b, ob.RuntimeID)
	// One runtime's session key does not open the other.
	if code, _ := e.run(runtimeObject{URL: ob.URL, SessionAPIKey: o.SessionAPIKey}, "true"); code != 403 {
		t.Errorf("a's session key on b's runtime: %d, want 403 (sandboxd's answer)", code)
	}
	if code, out := e.run(o, "true"); code != 200 {
		t.Fatalf("a's own key on a's runtime: %d %s", code, out)
	}
}

func TestAPIBadInput(t *testing.T) {
	e := newEnv(t)
	key := e.key("k")
	h := map[string]string{"X-API-Key": key}
	for _, c := range []struct {
		name string
		hdr  map[string]string
		path string
		body string
		want int
	}{
		{"no key", nil, "/list", "", 401},
		{"wrong key", map[string]string{"X-API-Key": "sbxk_0000000000000000_x"}, "/list", "", 401},
		{"session key is not an API key", map[string]string{"X-Session-API-Key": key}, "/list", "", 401},
		{"not JSON", h, "/start", "{", 400},
		{"no image", h, "/start", `{"command":["a"],"session_id":"s"}`, 400},
		{"no session", h, "/start", `{"image":"x","command":["a"]}`, 400},
		{"no command", h, "/start", `{"image":"x","session_id":"s"}`, 400},
		{"command object", h, "/start", `{"image":"x","session_id":"s","command":{"a":1}}`, 400},
		{"unterminated quote", h, "/start", `{"image":"x","session_id":"s","command":"a 'b"}`, 400},
		{"relative working dir", h, "/start", `{"image":"x","session_id":"s","command":"a","working_dir":"w"}`, 400},
		{"resource factor 3", h, "/start", `{"image":"x","session_id":"s","command":"a","resource_factor":3}`, 400},
		{"bad pull policy", h, "/start", `{"image":"x","session_id":"s","command":"a","image_pull_policy":"Sometimes"}`, 400},
		{"negative uid", h, "/start", `{"image":"x","session_id":"s","command":"a","run_as_user":-1}`, 400},
		{"NUL in env", h, "/start", `{"image":"x","session_id":"s","command":"a","environment":{"A":"\u0000"}}`, 400},
		{"bad V0 command", h, "/start", `{"image":"x","session_id":"s","command":["python","-m","openhands.runtime.action_execution_server","notaport"]}`, 400},
		{"too large", h, "/start", `{"image":"` + strings.Repeat("x", maxBody) + `"}`, 413},
		{"pause without id", h, "/pause", `{}`, 400},
		{"pause unknown", h, "/pause", `{"runtime_id":"rt-nope"}`, 404},
		{"stop unknown", h, "/stop", `{"runtime_id":"rt-nope"}`, 404},
		{"unknown route", h, "/nope", "", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if c.body == "" {
				method = "GET"
			}
			var out map[string]any
			code := e.call(method, c.path, c.hdr, c.body, &out)
			if code != c.want {
				t.Errorf("%d %v, want %d", code, out, c.want)
			}
			if d, _ := out["detail"].(string); d == "" {
				t.Errorf("no detail: %v", out)
			}
		})
	}
	for _, p := range []string{"/runtime/rt-nope", "/sessions/nope"} {
		if code := e.call("GET", p, h, nil, nil); code != 404 {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	if code := e.call("GET", "/rt-nope/alive", nil, nil, nil); code != 404 {
		t.Errorf("proxy to an unknown runtime: %d", code)
	}
	if code := e.call("GET", "/healthz", nil, nil, nil); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}

// A start that cannot work ends in error with the reason, and leaves no
// sandbox.
func TestStartFailureIsReported(t *testing.T) {
	e := newEnv(t)
	key := e.key("k")
	h := map[string]string{"X-API-Key": key}
	body := v0Start("s")
	body["image"] = "sbx-test/no-such-image:never"
	var o runtimeObject
	e.call("POST", "/start", h, body, &o)
	deadline := time.Now().Add(30 * time.Second)
	for o.Status != "error" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		e.call("GET", "/runtime/"+o.RuntimeID, h, nil, &o)
	}
	if o.Status != "error" || o.PodStatus != "failed" || !strings.Contains(o.Reason, "no-such-image") {
		t.Fatalf("%+v", o)
	}
	// /start again replaces the errored runtime.
	var n runtimeObject
	e.call("POST", "/start", h, v0Start("s"), &n)
	if n.RuntimeID == o.RuntimeID {
		t.Fatal("the errored runtime was returned again")
	}
	e.waitRunning(key, n.RuntimeID)
	var old runtimeObject
	e.call("GET", "/runtime/"+o.RuntimeID, h, nil, &old)
	if old.Status != "stopped" {
		t.Errorf("the replaced runtime is %s", old.Status)
	}
}

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	key := e.key("k")
	h := map[string]string{"X-API-Key": key}
	var keep, gone runtimeObject
	e.call("POST", "/start", h, v0Start("keep"), &keep)
	e.call("POST", "/start", h, v0Start("gone"), &gone)
	keep = e.waitRunning(key, keep.RuntimeID)
	gone = e.waitRunning(key, gone.RuntimeID)
	ctx := context.Background()
	// Behind the service's back: one sandbox vanishes, one appears with
	// the service's labels but no record.
	if err := e.be.Driver.Remove(ctx, gone.RuntimeID); err != nil {
		t.Fatal(err)
	}
	orphan := driver.Spec{ID: "rt-orphan" + ids.New(4), Image: testImage(), Labels: map[string]string{}}
	for k, v := range e.labels {
		orphan.Labels[k] = v
	}
	orphan.Labels[LabelRuntime] = orphan.ID
	if _, err := e.be.Driver.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	// A new server on the same store, as after a restart.
	srv2, err := New(Config{Store: e.st, Driver: e.be.Driver, Caps: e.be.Caps, Backend: "docker", PublicURL: e.url, Labels: e.labels})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	rec, err := srv2.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rec.Adopted) != fmt.Sprint([]string{keep.RuntimeID}) || fmt.Sprint(rec.Failed) != fmt.Sprint([]string{gone.RuntimeID}) || fmt.Sprint(rec.Removed) != fmt.Sprint([]string{orphan.ID}) {
		t.Errorf("reconciled %+v", rec)
	}
	if _, err := e.be.Driver.Inspect(ctx, orphan.ID); err == nil {
		t.Error("the orphan sandbox is still there")
	}
	g, _ := e.st.Runtime(ctx, "", gone.RuntimeID)
	if g.State != store.Error || !strings.Contains(g.Reason, "gone") {
		t.Errorf("gone runtime: %s %q", g.State, g.Reason)
	}
	// The adopted one is proxied by the new server.
	ts := httptest.NewServer(srv2)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/" + keep.RuntimeID + "/alive")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("adopted runtime through the new server: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}

// With AutoResume the first proxied request to a paused runtime resumes
// it and is answered, instead of 503.
func TestAutoResume(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AutoResume = true })
	key := e.key("k")
	h := map[string]string{"X-API-Key": key}
	var o runtimeObject
	e.call("POST", "/start", h, v0Start("ar"), &o)
	o = e.waitRunning(key, o.RuntimeID)
	if code := e.call("POST", "/pause", h, map[string]string{"runtime_id": o.RuntimeID}, nil); code != 200 {
		t.Fatalf("/pause: %d", code)
	}
	if code, out := e.run(o, "echo woke"); code != 200 || !strings.Contains(out, "woke") {
		t.Fatalf("proxied action to a paused runtime with auto-resume: %d %q", code, out)
	}
	var now runtimeObject
	e.call("GET", "/runtime/"+o.RuntimeID, h, nil, &now)
	if now.Status != "running" {
		t.Errorf("after the auto-resume: %s", now.Status)
	}
}

// The lifecycle on PostgreSQL: the service is the same on either store.
func TestV0LifecyclePostgres(t *testing.T) {
	e := newEnvOn(t, storetest.Postgres(t))
	a, b := e.key("a"), e.key("b")
	var o runtimeObject
	e.call("POST", "/start", map[string]string{"X-API-Key": a}, v0Start("pg"), &o)
	o = e.waitRunning(a, o.RuntimeID)
	if code, out := e.run(o, "echo on-postgres"); code != 200 || !strings.Contains(out, "on-postgres") {
		t.Fatalf("run: %d %q", code, out)
	}
	if code := e.call("GET", "/runtime/"+o.RuntimeID, map[string]string{"X-API-Key": b}, nil, nil); code != 404 {
		t.Errorf("another tenant: %d", code)
	}
	if code := e.call("POST", "/pause", map[string]string{"X-API-Key": a}, map[string]string{"runtime_id": o.RuntimeID}, nil); code != 200 {
		t.Errorf("/pause: %d", code)
	}
	e.call("POST", "/resume", map[string]string{"X-API-Key": a}, map[string]string{"runtime_id": o.RuntimeID}, nil)
	e.waitRunning(a, o.RuntimeID)
	if code := e.call("POST", "/stop", map[string]string{"X-API-Key": a}, map[string]string{"runtime_id": o.RuntimeID}, nil); code != 200 {
		t.Errorf("/stop: %d", code)
	}
}

// Subdomain mode on the real engine: the runtime's url and work_hosts are
// host names under the domain, and a request with that Host reaches
// sandboxd (no name resolution needed: the Host header routes).
func TestSubdomainMode(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Domain = "sbx.test" })
	key := e.key("alice")
	var o runtimeObject
	if code := e.call("POST", "/start", map[string]string{"X-API-Key": key}, v0Start("sub-"+ids.New(4)), &o); code != 200 {
		t.Fatalf("/start: %d", code)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.url, "http://"))
	host := o.RuntimeID + ".sbx.test:" + port
	if o.URL != "http://"+host {
		t.Fatalf("url %q, want http://%s", o.URL, host)
	}
	if _, ok := o.WorkHosts["http://work-1-"+host]; !ok || len(o.WorkHosts) != 2 {
		t.Errorf("work_hosts %v", o.WorkHosts)
	}
	o = e.waitRunning(key, o.RuntimeID)
	body := `{"action":{"action":"run","args":{"command":"echo by host name","blocking":true,"timeout":20}}}`
	req, _ := http.NewRequest("POST", e.url+"/execute_action", strings.NewReader(body))
	req.Host = host
	req.Header.Set("X-Session-API-Key", o.SessionAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var obs struct {
		Content string `json:"content"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&obs); err != nil || resp.StatusCode != 200 || obs.Content != "by host name" {
		t.Fatalf("through the runtime's host name: %d %+v %v", resp.StatusCode, obs, err)
	}
	// The API host is the API's.
	if code := e.call("GET", "/list", map[string]string{"X-API-Key": key}, nil, nil); code != 200 {
		t.Errorf("/list on the API host: %d", code)
	}
}
