package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// forwardPlain is a lighter httputil.ReverseProxy for requests without
// an upgrade: the same requests, through both, reach the backend alike
// and come back alike.
func TestForwardPlainAsReverseProxy(t *testing.T) {
	type seen struct {
		Method, URL, Host string
		Header            http.Header
		Body              string
		Trailer           http.Header
	}
	seenc := make(chan seen, 1)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seenc <- seen{r.Method, r.URL.String(), r.Host, r.Header.Clone(), string(b), r.Trailer.Clone()}
		h := w.Header()
		switch r.URL.Path {
		case "/hop":
			h.Set("Connection", "X-Resp-Hop")
			h.Set("X-Resp-Hop", "1")
			h.Set("Keep-Alive", "timeout=5")
			h.Add("X-Multi", "a")
			h.Add("X-Multi", "b")
			io.WriteString(w, "hop")
		case "/trailers":
			h.Set("Trailer", "X-T1")
			io.WriteString(w, "body")
			h.Set("X-T1", "v1")
			h.Set(http.TrailerPrefix+"X-T2", "v2")
		case "/hints":
			h.Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
			io.WriteString(w, "after hints")
		case "/stream":
			for i := range 3 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/notmod":
			h.Set("ETag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/cut":
			h.Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, "short")
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		default:
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "ok:"+string(b))
		}
	}))
	defer back.Close()
	bu, _ := url.Parse(back.URL)
	srv := &Server{routes: newRouteTable(), log: slog.New(slog.DiscardHandler), tr: newTransport()}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.forwardPlain(w, r, bu, r.URL.EscapedPath())
	}))
	defer plain.Close()
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.forwardUpgrade(w, r, bu, r.URL.EscapedPath())
	}))
	defer rp.Close()

	type got struct {
		Status  int
		Header  http.Header
		Body    string
		Err     string
		Trailer http.Header
		Seen    seen
	}
	do := func(front, method, path string, body func() io.Reader, hdr http.Header, trailer http.Header) got {
		u, _ := url.Parse(front)
		var rd io.Reader
		if body != nil {
			rd = body()
		}
		req, err := http.NewRequest(method, front+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, vv := range hdr {
			req.Header[k] = vv
		}
		if trailer != nil {
			req.Trailer = trailer.Clone()
			req.ContentLength = -1
		}
		var g got
		var hints []string
		req = req.WithContext(withHints(req.Context(), &hints))
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			// Cut short: what the client sees, and the backend still saw it.
			g.Err = strings.ReplaceAll(err.Error(), u.Host, "front")
			g.Seen = <-seenc
			g.Seen.Header.Del("X-Forwarded-Host")
			return g
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			g.Err = err.Error()
		}
		g.Status, g.Header, g.Body, g.Trailer = resp.StatusCode, resp.Header, string(b), resp.Trailer
		g.Header.Del("Date")
		if len(hints) > 0 {
			g.Header["X-Test-Hints"] = hints
		}
		select {
		case g.Seen = <-seenc:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s %s: the backend saw nothing", method, path)
		}
		g.Seen.Header.Del("X-Forwarded-Host") // the two fronts' own addresses
		if h := g.Seen.Host; h != bu.Host {
			t.Errorf("%s: Host %q", path, h)
		}
		return g
	}
	hdr := http.Header{
		"Connection":        {"X-Hop, keep-alive"},
		"X-Hop":             {"1"},
		"Keep-Alive":        {"timeout=5"},
		"X-Forwarded-For":   {"1.2.3.4"},
		"X-Forwarded-Proto": {"https"},
		"Forwarded":         {"for=1.2.3.4"},
		"X-Api-Key":         {"tenant-secret"},
		"X-Session-Api-Key": {"sk"},
		"Te":                {"trailers, deflate"},
		"Proxy-Connection":  {"keep-alive"},
		"X-Multi":           {"a", "b"},
	}
	for _, c := range []struct {
		method, path string
		body         func() io.Reader
		hdr, trailer http.Header
	}{
		{"GET", "/plain?x=1", nil, hdr, nil},
		{"GET", "/plain", nil, http.Header{"User-Agent": {""}}, nil},
		{"GET", "/plain/a%2Fb?q=a;b&c=%zz&d=1", nil, nil, nil},
		{"POST", "/plain", func() io.Reader { return strings.NewReader(`{"a":1}`) }, http.Header{"Content-Type": {"application/json"}}, nil},
		{"POST", "/plain", func() io.Reader { return strings.NewReader("chunked body") }, nil, http.Header{"X-Req-Trailer": {"t"}}},
		{"POST", "/plain", func() io.Reader { return strings.NewReader("") }, nil, nil},
		{"POST", "/plain", func() io.Reader { return strings.NewReader(strings.Repeat("x", 100<<10)) }, nil, nil}, // streamed, not read first
		{"PUT", "/plain", func() io.Reader { return strings.NewReader("continue") }, http.Header{"Expect": {"100-continue"}}, nil},
		{"HEAD", "/plain", nil, nil, nil},
		{"GET", "/hop", nil, nil, nil},
		{"GET", "/trailers", nil, nil, nil},
		{"GET", "/hints", nil, nil, nil},
		{"GET", "/stream", nil, nil, nil},
		{"GET", "/empty", nil, nil, nil},
		{"GET", "/notmod", nil, http.Header{"If-None-Match": {`"x"`}}, nil},
		{"GET", "/cut", nil, nil, nil},
	} {
		a := do(plain.URL, c.method, c.path, c.body, c.hdr, c.trailer)
		b := do(rp.URL, c.method, c.path, c.body, c.hdr, c.trailer)
		if c.trailer != nil {
			// ReverseProxy sends a request's trailers without their values
			// (it clones them before the body is read); forwardPlain
			// sends them whole.
			if !reflect.DeepEqual(a.Seen.Trailer, c.trailer) {
				t.Errorf("%s %s: trailers %v reached the backend as %v", c.method, c.path, c.trailer, a.Seen.Trailer)
			}
			a.Seen.Trailer = b.Seen.Trailer
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s %s:\nforwardPlain  %+v\nReverseProxy  %+v", c.method, c.path, a, b)
		}
		if c.path == "/hints" && len(a.Header["X-Test-Hints"]) != 1 || c.path == "/trailers" && a.Trailer.Get("X-T2") != "v2" {
			t.Errorf("%s: 103 or trailers not passed on: %+v", c.path, a)
		}
		if a.Seen.Header.Get("X-Api-Key") != "" || a.Seen.Header.Get("X-Hop") != "" {
			t.Errorf("%s %s: a header that must not reach the sandbox did: %v", c.method, c.path, a.Seen.Header)
		}
	}
}

// A stream of unknown length reaches the client as it comes.
func TestForwardPlainStreams(t *testing.T) {
	next := make(chan struct{})
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "second\n")
	}))
	defer back.Close()
	bu, _ := url.Parse(back.URL)
	srv := &Server{routes: newRouteTable(), log: slog.New(slog.DiscardHandler), tr: newTransport()}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.forwardPlain(w, r, bu, r.URL.EscapedPath())
	}))
	defer front.Close()
	resp, err := http.Get(front.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	done := make(chan string, 1)
	go func() { l, _ := br.ReadString('\n'); done <- l }()
	select {
	case l := <-done:
		if l != "first\n" {
			t.Errorf("first line %q", l)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the first part did not arrive before the backend sent the second: buffered")
	}
	close(next)
	if l, _ := br.ReadString('\n'); l != "second\n" {
		t.Errorf("second line %q", l)
	}
}

// withHints records the 1xx answers a client gets.
func withHints(ctx context.Context, hints *[]string) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		*hints = append(*hints, fmt.Sprintf("%d %v", code, h))
		return nil
	}})
}
