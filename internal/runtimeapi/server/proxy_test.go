package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// The proxy on its own, in front of a real HTTP server standing in for a
// sandbox's workload (no engine needed): headers, streaming, upgrades,
// paths, and the statuses of its own.
func TestProxy(t *testing.T) {
	seen := make(chan http.Header, 16)
	paths := make(chan string, 16)
	backend := http.NewServeMux()
	backend.HandleFunc("/echo/", func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		paths <- r.URL.RawPath + "|" + r.URL.Path + "?" + r.URL.RawQuery
		io.Copy(w, r.Body)
	})
	backend.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			io.WriteString(w, "data: tick\n\n")
			w.(http.Flusher).Flush()
			if i < 2 {
				time.Sleep(300 * time.Millisecond)
			}
		}
	})
	backend.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, append([]byte("echo:"), b...))
		}
	})
	back := httptest.NewServer(backend)
	defer back.Close()
	bu, _ := url.Parse(back.URL)

	srv, err := New(Config{Store: nopStore{}, Driver: nil, PublicURL: "http://x"})
	if err == nil {
		t.Fatal("New without a driver")
	}
	srv = &Server{routes: newRouteTable(), cfg: Config{Store: nopStore{}}, log: slog.New(slog.DiscardHandler)}
	srv.routes.set(route{id: "rt-a", state: store.Running, targets: map[string]*url.URL{svcMain: bu, svcWorker1: bu}})
	srv.routes.set(route{id: "rt-p", state: store.Paused, targets: map[string]*url.URL{svcMain: bu}})
	srv.routes.set(route{id: "rt-down", state: store.Running, targets: map[string]*url.URL{svcMain: {Scheme: "http", Host: "127.0.0.1:1"}}})
	front := httptest.NewServer(http.HandlerFunc(srv.proxy))
	defer front.Close()

	req, _ := http.NewRequest("POST", front.URL+"/rt-a/echo/a%2Fb?q=1", strings.NewReader("body"))
	req.Header.Set("X-API-Key", "tenant-secret")
	req.Header.Set("X-Session-API-Key", "sk")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "body" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	h := <-seen
	if h.Get("X-API-Key") != "" {
		t.Error("the tenant's X-API-Key reached the sandbox")
	}
	if h.Get("X-Session-API-Key") != "sk" {
		t.Error("the session key did not reach the sandbox")
	}
	if h.Get("X-Hop") != "" {
		t.Error("a hop-by-hop header (named in Connection) was forwarded")
	}
	if p := <-paths; p != "/echo/a%2Fb|/echo/a/b?q=1" {
		t.Errorf("path forwarded as %q", p)
	}
	// work-1 goes to its own target, without the service segment.
	resp, err = http.Post(front.URL+"/rt-a/work-1/echo/w", "text/plain", strings.NewReader("w"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("work-1: %v %v", resp, err)
	}
	resp.Body.Close()
	<-seen
	if p := <-paths; p != "|/echo/w?" {
		t.Errorf("work-1 path %q", p)
	}

	// Server-Sent Events arrive as they are sent, not at the end.
	resp, err = http.Get(front.URL + "/rt-a/sse")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: tick\n" || time.Since(start) > 250*time.Millisecond {
		t.Errorf("first event %q after %v (%v): buffered?", line, time.Since(start), err)
	}
	resp.Body.Close()

	// WebSocket upgrade through the proxy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/rt-a/ws", nil)
	if err != nil {
		t.Fatalf("websocket through the proxy: %v", err)
	}
	c.Write(ctx, websocket.MessageText, []byte("hi"))
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "echo:hi" {
		t.Errorf("websocket echo %q %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	for _, c := range []struct {
		path string
		want int
	}{
		{"/rt-p/echo/x", 503},    // paused: V0 resumes on 503
		{"/rt-down/echo/x", 502}, // not listening
		{"/rt-a/vscode/", 404},   // no such service
		{"/rt-none/echo/x", 404}, // unknown runtime
	} {
		resp, err := http.Get(front.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.path, resp.StatusCode, c.want)
		}
	}
}

func TestSplitProxyPath(t *testing.T) {
	for in, want := range map[string][3]string{
		"/rt-a":              {"rt-a", "", "/"},
		"/rt-a/":             {"rt-a", "", "/"},
		"/rt-a/alive":        {"rt-a", "", "/alive"},
		"/rt-a/vscode":       {"rt-a", "vscode", "/"},
		"/rt-a/vscode/x/y":   {"rt-a", "vscode", "/x/y"},
		"/rt-a/work-1/":      {"rt-a", "work-1", "/"},
		"/rt-a/work-2/a?b":   {"rt-a", "work-2", "/a?b"},
		"/rt-a/work-10/x":    {"rt-a", "", "/work-10/x"},
		"/rt-a/api/vscode/x": {"rt-a", "", "/api/vscode/x"},
	} {
		id, svc, rest := splitProxyPath(in)
		if [3]string{id, svc, rest} != want {
			t.Errorf("%q → %q %q %q, want %q", in, id, svc, rest, want)
		}
	}
}

// nopStore finds nothing: the proxy test's runtimes live in its route table.
type nopStore struct{ Store }

func (nopStore) Runtime(context.Context, string, string) (store.Runtime, error) {
	return store.Runtime{}, errdefs.New(errdefs.ErrNotFound, "no runtime")
}

// A workload that answers before reading the whole (streamed) request
// body gets the rest of it, and the client the whole answer.
func TestProxyFullDuplex(t *testing.T) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		io.WriteString(w, "started\n")
		_ = rc.Flush()
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "read %d %v\n", n, err)
	}))
	defer back.Close()
	bu, _ := url.Parse(back.URL)
	srv := &Server{routes: newRouteTable(), cfg: Config{Store: nopStore{}}, log: slog.New(slog.DiscardHandler)}
	srv.routes.set(route{id: "rt-a", state: store.Running, targets: map[string]*url.URL{svcMain: bu}})
	front := httptest.NewServer(http.HandlerFunc(srv.proxy))
	defer front.Close()
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(strings.Repeat("a", 100<<10)))
		time.Sleep(300 * time.Millisecond)
		pw.Write([]byte(strings.Repeat("b", 1000)))
		pw.Close()
	}()
	resp, err := http.Post(front.URL+"/rt-a/run", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != fmt.Sprintf("started\nread %d <nil>\n", 100<<10+1000) {
		t.Fatalf("through the proxy: %q, %v", b, err)
	}
}
