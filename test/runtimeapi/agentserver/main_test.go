package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// start runs the stand-in in process on a free port and returns its base URL.
func start(t *testing.T, args []string, vars map[string]string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var logs bytes.Buffer
	go func() { done <- run(ctx, args, env(vars), &syncWriter{w: &logs}, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("server exited with %d before listening", code)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not listen within 10s")
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("server exited with %d", code)
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	return addr, "http://127.0.0.1:" + port
}

type syncWriter struct{ w io.Writer }

func (s *syncWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

func TestBindHost(t *testing.T) {
	for _, tc := range []struct {
		name, flag string
		vars       map[string]string
		want       string
	}{
		{"no key", "", nil, "127.0.0.1"},
		{"SESSION_API_KEY", "", map[string]string{"SESSION_API_KEY": "k"}, "0.0.0.0"},
		{"OH_SESSION_API_KEYS_0", "", map[string]string{"OH_SESSION_API_KEYS_0": "k"}, "0.0.0.0"},
		{"OH_SESSION_API_KEYS_1 alone is not read", "", map[string]string{"OH_SESSION_API_KEYS_1": "k"}, "127.0.0.1"},
		{"--host wins over no key", "0.0.0.0", nil, "0.0.0.0"},
		{"--host wins over a key", "127.0.0.1", map[string]string{"SESSION_API_KEY": "k"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bindHost(tc.flag, sessionKeys(env(tc.vars))); got != tc.want {
				t.Errorf("bindHost = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestListensWhereTheRuleSays(t *testing.T) {
	addr, _ := start(t, []string{"--port", "0"}, nil)
	if h, _, _ := net.SplitHostPort(addr); h != "127.0.0.1" {
		t.Errorf("without a key bound %s, want 127.0.0.1", addr)
	}
	addr, _ = start(t, []string{"--port", "0"}, map[string]string{"OH_SESSION_API_KEYS_0": "k"})
	if h, _, _ := net.SplitHostPort(addr); h != "0.0.0.0" {
		t.Errorf("with a key bound %s, want 0.0.0.0", addr)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--port", "x"}, {"--nope"}, {"extra"}} {
		if code := run(t.Context(), args, env(nil), io.Discard, nil); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

func do(t *testing.T, method, url, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Session-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAuth(t *testing.T) {
	_, base := start(t, []string{"--port", "0"}, map[string]string{"SESSION_API_KEY": "legacy", "OH_SESSION_API_KEYS_0": "k0"})
	for _, p := range []string{"/alive", "/health", "/ready", "/server_info"} {
		if code, body := do(t, "GET", base+p, "", nil); code != 200 {
			t.Errorf("GET %s without a key = %d %v, want 200", p, code, body)
		}
	}
	if _, body := do(t, "GET", base+"/health", "", nil); body["status"] != "ok" {
		t.Errorf("/health body = %v, want status ok", body)
	}
	for _, key := range []string{"", "wrong", "k0x", "legac"} {
		if code, _ := do(t, "POST", base+"/api/conversations", key, map[string]any{}); code != 401 {
			t.Errorf("POST /api/conversations with key %q = %d, want 401", key, code)
		}
		if code, _ := do(t, "GET", base+"/api/unknown", key, nil); code != 401 {
			t.Errorf("GET /api/unknown with key %q = %d, want 401", key, code)
		}
	}
	for _, key := range []string{"k0", "legacy"} {
		code, c := do(t, "POST", base+"/api/conversations", key, map[string]any{"agent": map[string]any{}})
		if code != 200 || c["id"] == "" {
			t.Fatalf("POST /api/conversations with key %q = %d %v", key, code, c)
		}
		id := c["id"].(string)
		if code, got := do(t, "GET", base+"/api/conversations/"+id, key, nil); code != 200 || got["id"] != id {
			t.Errorf("GET conversation = %d %v", code, got)
		}
		dashed := id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
		if code, ev := do(t, "GET", base+"/api/conversations/"+dashed+"/events/search", key, nil); code != 200 || len(ev["items"].([]any)) == 0 {
			t.Errorf("events/search by dashed id = %d %v", code, ev)
		}
	}
	if code, _ := do(t, "GET", base+"/api/conversations/feedface", "k0", nil); code != 404 {
		t.Errorf("unknown conversation = %d, want 404", code)
	}
}

func TestNoKeyNoAuth(t *testing.T) {
	_, base := start(t, []string{"--port", "0"}, nil)
	if code, _ := do(t, "POST", base+"/api/conversations", "", nil); code != 200 {
		t.Errorf("without configured keys POST /api/conversations = %d, want 200", code)
	}
}

func TestCounterRunsInProcess(t *testing.T) {
	_, base := start(t, []string{"--port", "0"}, map[string]string{"SESSION_API_KEY": "k"})
	if code, _ := do(t, "GET", base+"/api/sbx-standin/counter", "k", nil); code != 404 {
		t.Errorf("reading the counter before it starts = %d, want 404", code)
	}
	if code, _ := do(t, "POST", base+"/api/sbx-standin/counter", "", nil); code != 401 {
		t.Errorf("starting the counter without a key = %d, want 401", code)
	}
	code, res := do(t, "POST", base+"/api/sbx-standin/counter", "k", nil)
	if code != 200 || res["started"] != true {
		t.Fatalf("start = %d %v", code, res)
	}
	read := func() float64 {
		code, res := do(t, "GET", base+"/api/sbx-standin/counter", "k", nil)
		v, ok := res["value"].(float64)
		if code != 200 || !ok {
			t.Fatalf("read = %d %v", code, res)
		}
		return v
	}
	first := read()
	time.Sleep(350 * time.Millisecond)
	second := read()
	// 350 ms at 100 ms a tick is 3 ticks; 2 leaves room for a slow runner.
	if second-first < 2 {
		t.Errorf("counter went %v → %v in 350 ms: it does not tick every 100 ms", first, second)
	}
	// A second start keeps the one counter rather than resetting it.
	if code, res := do(t, "POST", base+"/api/sbx-standin/counter", "k", nil); code != 200 || res["started"] != false || res["value"].(float64) < second {
		t.Errorf("second start = %d %v, want the running counter (≥ %v)", code, res, second)
	}
}

func TestWhoamiAndNoShell(t *testing.T) {
	_, base := start(t, []string{"--port", "0"}, map[string]string{"SESSION_API_KEY": "k"})
	code, res := do(t, "GET", base+"/api/sbx-standin/whoami", "k", nil)
	wd, _ := os.Getwd()
	if code != 200 || res["uid"] != float64(os.Getuid()) || res["gid"] != float64(os.Getgid()) || res["cwd"] != wd {
		t.Errorf("whoami = %d %v, want uid %d gid %d cwd %s", code, res, os.Getuid(), os.Getgid(), wd)
	}
	if code, _ := do(t, "GET", base+"/api/sbx-standin/whoami", "", nil); code != 401 {
		t.Errorf("whoami without a key = %d, want 401", code)
	}
	code, res = do(t, "POST", base+"/api/bash/execute_bash_command", "k", map[string]any{"command": "true"})
	if d, _ := res["detail"].(string); code != 501 || !strings.Contains(d, "no shell") {
		t.Errorf("execute_bash_command = %d %v, want 501 saying there is no shell", code, res)
	}
}

func TestStreamTicks(t *testing.T) {
	_, base := start(t, []string{"--port", "0"}, map[string]string{"SESSION_API_KEY": "k"})
	ticks, err := readTicks(t.Context(), base+"/api/stream?count=5", "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 5 {
		t.Fatalf("got %d ticks, want 5", len(ticks))
	}
	if span := ticks[4].Sub(ticks[0]); span < 300*time.Millisecond {
		t.Errorf("5 ticks arrived within %s: not 100 ms apart", span)
	}
	if code, _ := do(t, "GET", base+"/api/stream", "", nil); code != 401 {
		t.Errorf("stream without key = %d, want 401", code)
	}
}

// readTicks reads an SSE stream and records when each event arrived, so a
// buffering hop would show as events arriving together.
func readTicks(ctx context.Context, url, key string) ([]time.Time, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("X-Session-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		return nil, fmt.Errorf("status %d, content type %q", resp.StatusCode, ct)
	}
	var at []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			at = append(at, time.Now())
		}
	}
	return at, sc.Err()
}

func TestWebSocketEcho(t *testing.T) {
	_, base := start(t, []string{"--port", "0"}, map[string]string{"SESSION_API_KEY": "k"})
	ws := "ws" + strings.TrimPrefix(base, "http") + "/sockets/events/abc"
	if _, resp, err := websocket.Dial(t.Context(), ws, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial without key: err %v, resp %v; want 401", err, resp)
	}
	for _, opts := range []struct {
		url string
		h   http.Header
	}{
		{ws, http.Header{"X-Session-API-Key": {"k"}}},
		{ws + "?session_api_key=k", nil},
	} {
		c, _, err := websocket.Dial(t.Context(), opts.url, &websocket.DialOptions{HTTPHeader: opts.h})
		if err != nil {
			t.Fatalf("dial %s: %v", opts.url, err)
		}
		for _, m := range []string{"hello", "second"} {
			if err := c.Write(t.Context(), websocket.MessageText, []byte(m)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(t.Context())
			if err != nil || string(got) != m {
				t.Fatalf("echo of %q = %q, %v", m, got, err)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
}

func TestFiles(t *testing.T) {
	_, base := start(t, []string{"--port", "0"}, map[string]string{"SESSION_API_KEY": "k"})
	p := filepath.Join(t.TempDir(), "sub", "f.txt")
	var body bytes.Buffer
	mw := newMultipart(&body, "file", "f.txt", "payload")
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/file/upload"+p, &body)
	req.Header.Set("Content-Type", mw)
	req.Header.Set("X-Session-API-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %v %v", err, resp)
	}
	resp.Body.Close()
	req, _ = http.NewRequestWithContext(t.Context(), "GET", base+"/api/file/download"+p, nil)
	req.Header.Set("X-Session-API-Key", "k")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "payload" {
		t.Errorf("download = %q", got)
	}
	if code, _ := do(t, "GET", base+"/api/file/download/no/such/file", "k", nil); code != 404 {
		t.Errorf("missing file = %d, want 404", code)
	}
}
