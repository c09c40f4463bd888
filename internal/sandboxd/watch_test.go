package sandboxd

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const watchWait = 10 * time.Second

// watchServer is a sandboxd with no shell (the watch route needs none)
// whose handler tells when a watch request has returned.
type watchServer struct {
	ts       *httptest.Server
	work     string
	returned chan struct{}
}

func newWatchServer(t *testing.T) *watchServer {
	t.Helper()
	work := t.TempDir()
	srv := New(Options{WorkDir: work})
	ws := &watchServer{work: work, returned: make(chan struct{}, 16)}
	h := srv.Handler()
	ws.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == ExtPrefix+"watch" {
			ws.returned <- struct{}{}
		}
	}))
	t.Cleanup(ws.ts.Close)
	return ws
}

type streamEvent map[string]any

type watchClient struct {
	t      *testing.T
	resp   *http.Response
	lines  chan streamEvent
	cancel context.CancelFunc
	seen   []streamEvent
}

func (ws *watchServer) open(t *testing.T, query url.Values) *watchClient {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ws.ts.URL+ExtPrefix+"watch?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	c := &watchClient{t: t, resp: resp, lines: make(chan streamEvent, 1024), cancel: cancel}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e streamEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				e = streamEvent{"type": "bad line", "line": sc.Text()}
			}
			c.lines <- e
		}
	}()
	return c
}

func (c *watchClient) until(what string, match func(streamEvent) bool) streamEvent {
	c.t.Helper()
	timeout := time.After(watchWait)
	for {
		select {
		case e, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("stream ended before %s; seen %v", what, c.seen)
			}
			c.seen = append(c.seen, e)
			if match(e) {
				return e
			}
		case <-timeout:
			c.t.Fatalf("no %s within %v; seen %v", what, watchWait, c.seen)
		}
	}
}

func fsEvent(op, path string) func(streamEvent) bool {
	return func(e streamEvent) bool { return e["type"] == "event" && e["op"] == op && e["path"] == path }
}

func TestWatchStream(t *testing.T) {
	ws := newWatchServer(t)
	sub := filepath.Join(ws.work, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// A relative path is the server's working directory's.
	c := ws.open(t, url.Values{"path": {"sub"}, "recursive": {"1"}})
	ready := c.until("ready", func(e streamEvent) bool { return true })
	if ready["type"] != "ready" || ready["path"] != sub || ready["recursive"] != true {
		t.Fatalf("first event %v, want ready for %s", ready, sub)
	}
	f := filepath.Join(sub, "a/b/f")
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := c.until("create a/b/f", fsEvent("create", f))
	if e["is_dir"] != false {
		t.Errorf("event %v: is_dir should be false", e)
	}
	if ts, _ := e["time"].(string); ts == "" {
		t.Errorf("event %v has no time", e)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("time %q: %v", ts, err)
	}
	if _, ok := e["old_path"]; ok {
		t.Errorf("create event %v carries old_path", e)
	}
	g := filepath.Join(sub, "g")
	if err := os.Rename(f, g); err != nil {
		t.Fatal(err)
	}
	if e := c.until("rename", fsEvent("rename", g)); e["old_path"] != f {
		t.Errorf("rename event %v: old_path should be %s", e, f)
	}
	d := filepath.Join(sub, "a")
	if err := os.RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if e := c.until("remove a", fsEvent("remove", d)); e["is_dir"] != true {
		t.Errorf("remove event %v: is_dir should be true", e)
	}

	// Removing the watched directory ends the stream with an error event.
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if e := c.until("error", func(e streamEvent) bool { return e["type"] == "error" }); !strings.Contains(e["detail"].(string), "removed") {
		t.Errorf("error event %v", e)
	}
	c.end()
	select {
	case <-ws.returned:
	case <-time.After(watchWait):
		t.Fatal("the handler did not return after the watch failed")
	}
}

// end waits for the server to end the stream.
func (c *watchClient) end() {
	c.t.Helper()
	timeout := time.After(watchWait)
	for {
		select {
		case e, ok := <-c.lines:
			if !ok {
				return
			}
			c.seen = append(c.seen, e)
		case <-timeout:
			c.t.Fatalf("the stream did not end within %v; seen %v", watchWait, c.seen)
		}
	}
}

func TestWatchSSE(t *testing.T) {
	ws := newWatchServer(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ws.ts.URL+ExtPrefix+"watch?path=.", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	readEvent := func() (string, string) {
		var name, data string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				return name, data
			case strings.HasPrefix(line, "event: "):
				name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			}
		}
	}
	if name, data := readEvent(); name != "ready" || !strings.Contains(data, `"path":"`+ws.work+`"`) {
		t.Fatalf("first SSE event %q %s", name, data)
	}
	f := filepath.Join(ws.work, "x")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	name, data := readEvent()
	if name != "event" || !strings.Contains(data, `"op":"create"`) || !strings.Contains(data, `"path":"`+f+`"`) {
		t.Errorf("SSE event %q %s, want the create of %s", name, data, f)
	}
}

func TestWatchBadRequests(t *testing.T) {
	ws := newWatchServer(t)
	file := filepath.Join(ws.work, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		query  string
		status int
		detail string
	}{
		{"", http.StatusBadRequest, "path parameter is required"},
		{"path=missing", http.StatusNotFound, "no such directory"},
		{"path=" + url.QueryEscape(file), http.StatusBadRequest, "not a directory"},
		{"path=.&recursive=maybe", http.StatusBadRequest, "recursive"},
	}
	for _, c := range cases {
		resp, err := http.Get(ws.ts.URL + ExtPrefix + "watch?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct{ Detail string }
		_ = json.Unmarshal(b, &body)
		if resp.StatusCode != c.status || !strings.Contains(body.Detail, c.detail) {
			t.Errorf("?%s: %d %s, want %d with %q", c.query, resp.StatusCode, b, c.status, c.detail)
		}
	}
	resp, err := http.Post(ws.ts.URL+ExtPrefix+"watch?path=.", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The route is GET only; other methods fall to the catch-all, which
	// knows only OpenHands' routes' methods.
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST: status %d, want 404", resp.StatusCode)
	}
}

// A client that goes away must take its watcher with it: a sandbox whose
// agent reconnects in a loop would otherwise run out of inotify instances.
func TestWatchClientDisconnectReleasesDescriptor(t *testing.T) {
	ws := newWatchServer(t)
	base := inotifyFDs(t)
	for i := range 3 {
		c := ws.open(t, url.Values{"path": {ws.work}, "recursive": {"true"}})
		c.until("ready", func(e streamEvent) bool { return e["type"] == "ready" })
		if n := inotifyFDs(t); n != base+1 {
			t.Fatalf("round %d: %d inotify descriptors while watching, want %d", i, n, base+1)
		}
		c.cancel()
		c.resp.Body.Close()
		select {
		case <-ws.returned:
		case <-time.After(watchWait):
			t.Fatalf("round %d: the handler did not return after the client left", i)
		}
		if n := inotifyFDs(t); n != base {
			t.Fatalf("round %d: %d inotify descriptors after the client left, want %d", i, n, base)
		}
	}
}

func inotifyFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

func TestWatchKeepalive(t *testing.T) {
	ws := newWatchServer(t)
	get := func(interval string) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ws.ts.URL+ExtPrefix+"watch?path=.", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Keepalive-Ping-Interval", interval)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get("soon"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Keepalive-Ping-Interval: soon: status %d, want 400", resp.StatusCode)
	}
	resp := get("1")
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	want := []string{`{"type":"ready","path":"` + ws.work + `","recursive":false}`, `{"type":"keepalive"}`, `{"type":"keepalive"}`}
	for _, w := range want {
		select {
		case l := <-lines:
			if l != w {
				t.Fatalf("got %s, want %s", l, w)
			}
		case <-time.After(watchWait):
			t.Fatalf("no %s within %v", w, watchWait)
		}
	}
}
