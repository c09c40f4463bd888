package sandboxd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/procs"
	"github.com/sbx-dev/sbx/sandboxapi"
)

type procServer struct {
	ts *httptest.Server
	m  *procs.Manager
}

func newProcServer(t *testing.T) *procServer {
	t.Helper()
	m, err := procs.New(procs.Options{
		Dir:     filepath.Join(t.TempDir(), "procs"),
		Starter: testReaper,
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"},
		WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{WorkDir: t.TempDir(), Procs: m, SessionAPIKey: "k"})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); m.Close() })
	return &procServer{ts: ts, m: m}
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (p *procServer) do(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, p.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Session-API-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// follow opens a follow stream and returns a reader of its events.
func (p *procServer) follow(t *testing.T, id int, offset int64, sse bool) (*http.Response, func() map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("%s/sbx/v1/processes/%d/output?follow=1&offset=%d", p.ts.URL, id, offset), nil)
	req.Header.Set("X-Session-API-Key", "k")
	if sse {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("follow: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	return resp, func() map[string]any {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimSpace(line)
			if sse {
				if !strings.HasPrefix(line, "data: ") {
					continue
				}
				line = strings.TrimPrefix(line, "data: ")
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("event %q: %v", line, err)
			}
			return ev
		}
	}
}

func TestProcsHTTPLifecycle(t *testing.T) {
	p := newProcServer(t)
	var info procs.Info
	if st := p.do(t, "POST", "/sbx/v1/processes", `{"command":"echo out; read x; echo \"got $x $FOO\" >&2; exit 7","stdin":true,"env":{"FOO":"bar"},"tag":"t1"}`, &info); st != 201 {
		t.Fatalf("start: %d", st)
	}
	if info.ID == 0 || info.PID == 0 || info.State != procs.Running || info.Tag != "t1" {
		t.Fatalf("start: %+v", info)
	}
	var list struct{ Processes []procs.Info }
	if st := p.do(t, "GET", "/sbx/v1/processes", "", &list); st != 200 || len(list.Processes) != 1 || list.Processes[0].ID != info.ID {
		t.Fatalf("list: %d %+v", st, list)
	}
	_, next := p.follow(t, info.ID, 0, false)
	if ev := next(); ev["type"] != "output" || ev["stream"] != "stdout" || ev["data"] != "out\n" || ev["offset"] != float64(0) {
		t.Fatalf("event %v", ev)
	}
	var wr map[string]int
	if st := p.do(t, "POST", fmt.Sprintf("/sbx/v1/processes/%d/input", info.ID), `{"data":"hi\n"}`, &wr); st != 200 || wr["written"] != 3 {
		t.Fatalf("input: %d %v", st, wr)
	}
	if ev := next(); ev["type"] != "output" || ev["stream"] != "stderr" || ev["data"] != "got hi bar\n" || ev["offset"] != float64(4) {
		t.Fatalf("event %v", ev)
	}
	if ev := next(); ev["type"] != "exit" || ev["exit_code"] != float64(7) || ev["next"] != float64(15) {
		t.Fatalf("event %v", ev)
	}
	var w procs.Info
	if st := p.do(t, "POST", fmt.Sprintf("/sbx/v1/processes/%d/wait", info.ID), "", &w); st != 200 || w.State != procs.Exited || *w.ExitCode != 7 {
		t.Fatalf("wait: %d %+v", st, w)
	}
	var out sandboxapi.ProcessOutput
	if st := p.do(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d/output?offset=2", info.ID), "", &out); st != 200 {
		t.Fatalf("output: %d", st)
	}
	if len(out.Chunks) != 2 || out.Chunks[0] != (sandboxapi.ProcessChunk{Stream: "stdout", Offset: 2, Data: "t\n"}) || out.Chunks[1] != (sandboxapi.ProcessChunk{Stream: "stderr", Offset: 4, Data: "got hi bar\n"}) ||
		out.Next != 15 || !out.EOF || !out.Exited || *out.ExitCode != 7 {
		t.Fatalf("output %+v", out)
	}
	if st := p.do(t, "DELETE", fmt.Sprintf("/sbx/v1/processes/%d", info.ID), "", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st := p.do(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d", info.ID), "", nil); st != 404 {
		t.Fatalf("get after delete: %d", st)
	}
}

func TestProcsHTTPErrors(t *testing.T) {
	p := newProcServer(t)
	var running procs.Info
	if st := p.do(t, "POST", "/sbx/v1/processes", `{"argv":["sleep","100"]}`, &running); st != 201 {
		t.Fatalf("start: %d", st)
	}
	r := fmt.Sprintf("/sbx/v1/processes/%d", running.ID)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/sbx/v1/processes", `{}`, 400},
		{"POST", "/sbx/v1/processes", `{"comand":"true"}`, 400},
		{"POST", "/sbx/v1/processes", `not json`, 400},
		{"POST", "/sbx/v1/processes", `{"argv":["no-such-program-sbx"]}`, 404},
		{"GET", "/sbx/v1/processes/99", ``, 404},
		{"GET", "/sbx/v1/processes/abc", ``, 404},
		{"GET", "/sbx/v1/processes/99/output", ``, 404},
		{"GET", r + "/output?offset=1000", ``, 400},
		{"GET", r + "/output?offset=-1", ``, 400},
		{"POST", r + "/input", `{"data":"x"}`, 412}, // started without stdin
		{"POST", r + "/signal", `{"signal":"SIGNOPE"}`, 400},
		{"POST", r + "/signal", `{"signal":0}`, 400},
		{"POST", r + "/wait?timeout=0.05", ``, 412},
		{"POST", r + "/wait?timeout=x", ``, 400},
		{"DELETE", r, ``, 412},
	} {
		var body map[string]any
		if st := p.do(t, tc.method, tc.path, tc.body, &body); st != tc.status || body["detail"] == "" {
			t.Errorf("%s %s %s: %d %v, want %d", tc.method, tc.path, tc.body, st, body, tc.status)
		}
	}
	for _, sig := range []string{`"SIGTERM"`, `"TERM"`, `15`, `"15"`, `"sigterm"`} {
		if got, err := parseSignal(json.RawMessage(sig)); err != nil || got != syscall.SIGTERM {
			t.Errorf("parse %s: %v, %v", sig, got, err)
		}
	}
	if st := p.do(t, "POST", r+"/signal", `{"signal":"TERM"}`, nil); st != 204 {
		t.Fatalf("signal: %d", st)
	}
	var w procs.Info
	if st := p.do(t, "POST", r+"/wait?timeout=20", "", &w); st != 200 || w.Signal != "SIGTERM" || *w.ExitCode != 143 {
		t.Fatalf("wait: %d %+v", st, w)
	}
	var again procs.Info
	p.do(t, "POST", "/sbx/v1/processes", `{"argv":["sleep","100"]}`, &again)
	if st := p.do(t, "DELETE", fmt.Sprintf("/sbx/v1/processes/%d?kill=1", again.ID), "", nil); st != 204 {
		t.Fatalf("delete ?kill=1: %d", st)
	}
	if st := p.do(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d", again.ID), "", nil); st != 404 {
		t.Fatalf("get after kill+delete: %d", st)
	}
}

func TestProcsHTTPNotEnabled(t *testing.T) {
	srv := New(Options{WorkDir: t.TempDir()})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/sbx/v1/processes", "application/json", strings.NewReader(`{"command":"true"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("status %d, want 501", resp.StatusCode)
	}
}

// TestProcsHTTPFollowReconnect: a client that drops a follow stream does
// not affect the process, and reconnecting at next sees what it missed;
// SSE framing carries the same events.
func TestProcsHTTPFollowReconnect(t *testing.T) {
	p := newProcServer(t)
	var info procs.Info
	p.do(t, "POST", "/sbx/v1/processes", `{"argv":["cat"],"stdin":true}`, &info)
	in := fmt.Sprintf("/sbx/v1/processes/%d/input", info.ID)
	p.do(t, "POST", in, `{"data":"one\n"}`, nil)
	resp, next := p.follow(t, info.ID, 0, false)
	if ev := next(); ev["data"] != "one\n" {
		t.Fatalf("event %v", ev)
	}
	resp.Body.Close()
	p.do(t, "POST", in, `{"data":"twö\n"}`, nil)
	p.do(t, "POST", in, `{"data":"three\n"}`, nil)
	var st procs.Info
	p.do(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d", info.ID), "", &st)
	if st.State != procs.Running {
		t.Fatalf("after disconnect: %+v", st)
	}
	if code := p.do(t, "POST", fmt.Sprintf("/sbx/v1/processes/%d/stdin/close", info.ID), "", nil); code != 204 {
		t.Fatalf("close stdin: %d", code)
	}
	_, next = p.follow(t, info.ID, 4, true)
	var got strings.Builder
	for {
		ev := next()
		if ev["type"] == "exit" {
			if ev["exit_code"] != float64(0) {
				t.Fatalf("exit %v", ev)
			}
			break
		}
		got.WriteString(ev["data"].(string))
	}
	if got.String() != "twö\nthree\n" {
		t.Fatalf("after reconnect: %q", got.String())
	}
}

// TestProcsHTTPFollowLost: a follower that asks for rotated-away output
// gets a lost event first.
func TestProcsHTTPFollowLost(t *testing.T) {
	m, err := procs.New(procs.Options{Dir: filepath.Join(t.TempDir(), "p"), Starter: testReaper, Env: []string{"PATH=/usr/bin:/bin"}, MaxLogBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{WorkDir: t.TempDir(), Procs: m, SessionAPIKey: "k"})
	p := &procServer{ts: httptest.NewServer(srv.Handler()), m: m}
	t.Cleanup(func() { p.ts.Close(); m.Close() })
	var info procs.Info
	p.do(t, "POST", "/sbx/v1/processes", `{"command":"seq 1 20000"}`, &info)
	p.do(t, "POST", fmt.Sprintf("/sbx/v1/processes/%d/wait", info.ID), "", nil)
	_, next := p.follow(t, info.ID, 0, false)
	ev := next()
	if ev["type"] != "lost" || ev["skipped"].(float64) <= 0 {
		t.Fatalf("first event %v", ev)
	}
	skipped := int64(ev["skipped"].(float64))
	ev = next()
	if ev["type"] != "output" || int64(ev["offset"].(float64)) != skipped {
		t.Fatalf("after lost %d: %v", skipped, ev)
	}
	for ev["type"] != "exit" {
		ev = next()
	}
}

// TestProcsHTTPFollowEndsOnClose: a follower is let go when the manager
// closes (sandboxd shutting down), with an error event.
func TestProcsHTTPFollowEndsOnClose(t *testing.T) {
	p := newProcServer(t)
	var info procs.Info
	p.do(t, "POST", "/sbx/v1/processes", `{"argv":["sleep","100"]}`, &info)
	_, next := p.follow(t, info.ID, 0, false)
	done := make(chan struct{})
	go func() { p.m.Close(); close(done) }()
	if ev := next(); ev["type"] != "error" {
		t.Fatalf("event %v", ev)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
}
