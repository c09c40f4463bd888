package clients

// fakeService is a FAKE of sandbox-api, written from runtime-API spec's
// checklist (§10) only far enough to test the clients in this package
// before the real service exists. It is not a model of the real service
// and nothing else may use it. Its workloads are fakes as well: the
// background counter (V0's shell loop, V1's stand-in counter route) is
// computed from the time the runtime was not paused (so pausing really
// stops it), other V0 commands run in a real bash with HOME in a
// temporary directory.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type recorded struct {
	Method, Path string
	Header       http.Header
	Body         map[string]any
}

type fakeRuntime struct {
	id, session, key string
	status           string // starting, running, paused, stopped
	readyAt          time.Time
	start            map[string]any
	// counter state: when it started, and the paused time to leave out.
	counterAt   time.Time
	pausedSince time.Time
	pausedFor   time.Duration
}

type fakeBuild struct {
	image string
	polls int
}

type fakeService struct {
	t    *testing.T
	key  string
	home string
	srv  *httptest.Server

	// Knobs a test sets before the clients run.
	readyAfter    time.Duration
	podOverride   *string // reported instead of "ready" once running
	omitPodStatus bool
	omitKey       bool
	// Service bugs the lifecycles must catch.
	loseProcessesOnResume bool // a resume restarts the workload
	reviveStopped         bool // /start for a stopped session brings the old runtime back
	pausedPodReady        bool // a paused runtime still says pod_status ready
	bufferStream          bool // the proxy holds a stream's body until it ends
	// v0Upstream, when set, is a real action execution server (sandboxd)
	// that V0 runtimes' workload requests go to, with fixedKey as every
	// runtime's session key (the server has one key from its env).
	v0Upstream     *url.URL
	fixedKey       string
	aliveStatus    int // non-zero: the workload's /alive and /health answer this
	rotateOnResume bool
	build429       int // how many /build requests get 429 first
	buildFailWith  string

	mu       sync.Mutex
	n        int
	runtimes map[string]*fakeRuntime
	sessions map[string]string
	reqs     []recorded
	builds   map[string]*fakeBuild
	images   map[string]bool
}

func newFake(t *testing.T) *fakeService {
	f := &fakeService{t: t, key: "api-key-1", home: t.TempDir(), readyAfter: 150 * time.Millisecond,
		runtimes: map[string]*fakeRuntime{}, sessions: map[string]string{}, builds: map[string]*fakeBuild{}, images: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) cfg() Config {
	return Config{BaseURL: f.srv.URL, APIKey: f.key, Poll: 20 * time.Millisecond, ReadyTimeout: 5 * time.Second}
}

// requests returns the recorded requests matching method and path prefix.
func (f *fakeService) requests(method, prefix string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.reqs {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeService) all() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func detail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"detail": msg})
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(raw, &body)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()

	first, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if strings.HasPrefix(first, "rt-") {
		f.proxy(w, r, first, "/"+rest)
		return
	}
	if r.Header.Get("X-API-Key") != f.key {
		detail(w, http.StatusUnauthorized, "invalid API key")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "POST" && r.URL.Path == "/start":
		f.start(w, body)
	case r.Method == "GET" && r.URL.Path == "/sessions/batch":
		var out []any
		for _, id := range r.URL.Query()["ids"] {
			if rt, ok := f.runtimes[f.sessions[id]]; ok {
				out = append(out, f.object(rt))
			} else {
				out = append(out, nil) // clients must skip nulls (§4.3)
			}
		}
		writeJSON(w, 200, out)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/sessions/"):
		rt, ok := f.runtimes[f.sessions[strings.TrimPrefix(r.URL.Path, "/sessions/")]]
		if !ok {
			detail(w, 404, "session not found")
			return
		}
		writeJSON(w, 200, f.object(rt))
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/runtime/"):
		rt, ok := f.runtimes[strings.TrimPrefix(r.URL.Path, "/runtime/")]
		if !ok {
			detail(w, 404, "runtime not found")
			return
		}
		writeJSON(w, 200, f.object(rt))
	case r.Method == "GET" && r.URL.Path == "/list":
		list := []any{}
		for i := 1; i <= f.n; i++ { // oldest first
			if rt := f.runtimes[fmt.Sprintf("rt-%d", i)]; rt.status != "stopped" {
				list = append(list, f.object(rt))
			}
		}
		writeJSON(w, 200, map[string]any{"runtimes": list})
	case r.Method == "POST" && (r.URL.Path == "/pause" || r.URL.Path == "/resume" || r.URL.Path == "/stop"):
		id, _ := body["runtime_id"].(string)
		rt, ok := f.runtimes[id]
		if !ok || rt.status == "stopped" {
			detail(w, 404, "runtime not found")
			return
		}
		now := time.Now()
		switch r.URL.Path {
		case "/pause":
			if rt.status != "paused" {
				rt.status, rt.pausedSince = "paused", now
			}
		case "/resume":
			if rt.status == "paused" {
				rt.pausedFor += now.Sub(rt.pausedSince)
				rt.status, rt.readyAt = "starting", now.Add(f.readyAfter)
				if f.loseProcessesOnResume {
					rt.counterAt = time.Time{}
				}
				if f.rotateOnResume {
					rt.key = randHex()
				}
			}
		case "/stop":
			rt.status = "stopped"
		}
		writeJSON(w, 200, f.object(rt))
	case r.Method == "GET" && r.URL.Path == "/registry_prefix":
		writeJSON(w, 200, map[string]string{"registry_prefix": "localhost/sbx/"})
	case r.Method == "GET" && r.URL.Path == "/image_exists":
		img := r.URL.Query().Get("image")
		if f.images[img] {
			writeJSON(w, 200, map[string]any{"exists": true, "image": map[string]any{"upload_time": "2026-12-04T00:00:00Z", "image_size_bytes": 1234}})
		} else {
			writeJSON(w, 200, map[string]any{"exists": false, "image": nil})
		}
	case r.Method == "POST" && r.URL.Path == "/build":
		f.build(w, r)
	case r.Method == "GET" && r.URL.Path == "/build_status":
		b, ok := f.builds[r.URL.Query().Get("build_id")]
		if !ok {
			detail(w, 404, "no such build")
			return
		}
		b.polls++
		switch {
		case b.polls < 3:
			writeJSON(w, 200, map[string]any{"status": "WORKING"})
		case f.buildFailWith != "":
			writeJSON(w, 200, map[string]any{"status": f.buildFailWith, "error": "step 3 failed"})
		default:
			f.images[b.image] = true
			writeJSON(w, 200, map[string]any{"status": "SUCCESS", "image": b.image})
		}
	default:
		detail(w, 404, "Not Found")
	}
}

func randHex() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// start accepts what §10 item 1 says and replaces a stopped session.
func (f *fakeService) start(w http.ResponseWriter, body map[string]any) {
	sid, _ := body["session_id"].(string)
	img, _ := body["image"].(string)
	if sid == "" || img == "" {
		detail(w, 422, "image and session_id are required")
		return
	}
	switch body["command"].(type) {
	case string, []any:
	default:
		detail(w, 422, "command must be a string or a list")
		return
	}
	if old, ok := f.runtimes[f.sessions[sid]]; ok && f.reviveStopped && old.status == "stopped" {
		old.status, old.readyAt = "starting", time.Now().Add(f.readyAfter)
		writeJSON(w, 200, f.object(old))
		return
	}
	if old, ok := f.runtimes[f.sessions[sid]]; ok && old.status != "stopped" {
		writeJSON(w, 200, f.object(old))
		return
	}
	f.n++
	key := randHex()
	if f.fixedKey != "" {
		key = f.fixedKey
	}
	rt := &fakeRuntime{id: fmt.Sprintf("rt-%d", f.n), session: sid, key: key, status: "starting",
		readyAt: time.Now().Add(f.readyAfter), start: body}
	f.runtimes[rt.id] = rt
	f.sessions[sid] = rt.id
	writeJSON(w, 200, f.object(rt))
}

// tick moves a starting runtime to running once it is due. f.mu is held.
func (f *fakeService) tick(rt *fakeRuntime) {
	if rt.status == "starting" && !time.Now().Before(rt.readyAt) {
		rt.status = "running"
	}
}

func (f *fakeService) object(rt *fakeRuntime) map[string]any {
	f.tick(rt)
	pod := map[string]string{"starting": "pending", "running": "ready", "paused": "not found", "stopped": "not found"}[rt.status]
	if rt.status == "paused" && f.pausedPodReady {
		pod = "ready"
	}
	if rt.status == "running" && f.podOverride != nil {
		pod = *f.podOverride
	}
	o := map[string]any{
		"runtime_id": rt.id, "session_id": rt.session, "url": f.srv.URL + "/" + rt.id,
		"session_api_key": rt.key, "status": rt.status, "restart_count": 0, "restart_reasons": []any{},
		"work_hosts": map[string]int{f.srv.URL + "/" + rt.id + "/work-1": 12000},
	}
	if f.omitKey {
		delete(o, "session_api_key")
	}
	if !f.omitPodStatus {
		o["pod_status"] = pod
	}
	return o
}

func (f *fakeService) build(w http.ResponseWriter, r *http.Request) {
	if f.build429 > 0 {
		f.build429--
		detail(w, 429, "too many builds")
		return
	}
	file, hdr, err := r.FormFile("context")
	if err != nil || hdr.Filename != "context.tar.gz" {
		detail(w, 422, fmt.Sprintf("part context named context.tar.gz is required (%v)", err))
		return
	}
	text, _ := io.ReadAll(file)
	gz, err := base64.StdEncoding.DecodeString(string(text))
	if err != nil {
		detail(w, 422, "context is not base64 text")
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		detail(w, 422, "context is not gzip")
		return
	}
	tr := tar.NewReader(zr)
	if _, err := tr.Next(); err != nil {
		detail(w, 422, "context is not a tar")
		return
	}
	target := r.FormValue("target_image")
	if target == "" {
		detail(w, 422, "target_image is required")
		return
	}
	id := fmt.Sprintf("build-%d", len(f.builds)+1)
	f.builds[id] = &fakeBuild{image: target}
	writeJSON(w, 200, map[string]string{"build_id": id})
}

// proxy is the fake's workload URL: 404 unknown or stopped, 503 paused,
// 502 not yet up (§10 item 6); then the fake workload, which checks the
// session key.
func (f *fakeService) proxy(w http.ResponseWriter, r *http.Request, id, path string) {
	f.mu.Lock()
	rt, ok := f.runtimes[id]
	var status, key string
	var rtCopy fakeRuntime
	if ok {
		f.tick(rt)
		status, key, rtCopy = rt.status, rt.key, *rt
	}
	f.mu.Unlock()
	switch {
	case !ok || status == "stopped":
		detail(w, 404, "runtime not found")
		return
	case status == "paused":
		detail(w, 503, "runtime paused")
		return
	}
	if f.v0Upstream != nil {
		r.URL.Path, r.URL.RawPath = path, ""
		r.Host = f.v0Upstream.Host
		httputil.NewSingleHostReverseProxy(f.v0Upstream).ServeHTTP(w, r)
		return
	}
	if f.aliveStatus != 0 && (path == "/alive" || path == "/health") {
		detail(w, f.aliveStatus, "workload says no")
		return
	}
	if path == "/alive" || path == "/health" {
		writeJSON(w, 200, map[string]string{"status": "ok"})
		return
	}
	_, v0 := rtCopy.start["command"].([]any)
	v0 = v0 && rtCopy.start["working_dir"] == "/openhands/code/"
	if r.Header.Get("X-Session-API-Key") != key && r.URL.Query().Get("session_api_key") != key {
		if v0 {
			detail(w, 403, "Invalid API Key")
		} else {
			detail(w, 401, "Unauthorized")
		}
		return
	}
	switch {
	case v0 && r.Method == "POST" && path == "/execute_action":
		var req struct {
			Action struct {
				Action string `json:"action"`
				Args   struct {
					Command string `json:"command"`
				} `json:"args"`
				Timeout float64 `json:"timeout"`
			} `json:"action"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Action.Action != "run" {
			detail(w, 422, "Invalid request parameters")
			return
		}
		out, code := f.bash(id, req.Action.Args.Command)
		writeJSON(w, 200, map[string]any{"observation": "run", "content": out,
			"extras": map[string]any{"command": req.Action.Args.Command, "metadata": map[string]any{"exit_code": code}}, "success": code == 0})
	case !v0 && r.Method == "POST" && path == "/api/conversations":
		writeJSON(w, 200, map[string]string{"id": "c0ffee" + id[3:] + strings.Repeat("0", 26-len(id[3:]))})
	case !v0 && r.Method == "GET" && strings.HasPrefix(path, "/api/conversations/c0ffee"):
		writeJSON(w, 200, map[string]any{"items": []any{}})
	case !v0 && r.Method == "GET" && path == "/api/stream":
		n, _ := strconv.Atoi(r.URL.Query().Get("count"))
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i)
			if !f.bufferStream {
				w.(http.Flusher).Flush()
			}
			if i < n {
				time.Sleep(100 * time.Millisecond)
			}
		}
	case !v0 && strings.HasPrefix(path, "/sockets/events/"):
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, m, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, m) != nil {
				return
			}
		}
	case !v0 && r.Method == "POST" && path == "/api/sbx-standin/counter":
		f.bash(id, counterStart())
		writeJSON(w, 200, map[string]any{"value": 0, "started": true})
	case !v0 && r.Method == "GET" && path == "/api/sbx-standin/counter":
		out, code := f.bash(id, counterRead())
		if code != 0 {
			detail(w, 404, "counter not started")
			return
		}
		n, _ := atoiTrim(out)
		writeJSON(w, 200, map[string]any{"value": n})
	default:
		detail(w, 404, "Not Found")
	}
}

// bash fakes the counter from running time; any other command runs in a
// real bash with HOME in a temporary directory.
func (f *fakeService) bash(id, command string) (string, int) {
	f.mu.Lock()
	rt := f.runtimes[id]
	switch command {
	case counterStart():
		rt.counterAt = time.Now()
		rt.pausedFor = 0
		f.mu.Unlock()
		return "", 0
	case counterRead():
		defer f.mu.Unlock()
		if rt.counterAt.IsZero() {
			return "cat: no such file", 1
		}
		return fmt.Sprintf("%d\n", int((time.Since(rt.counterAt)-rt.pausedFor)/(100*time.Millisecond))), 0
	}
	f.mu.Unlock()
	cmd := exec.Command("bash", "-c", command)
	cmd.Env = []string{"HOME=" + f.home, "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	return string(out), 0
}
