package attach

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sbx-dev/sbx/sandboxapi"
)

func TestAttachURL(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, "/sbx/v1/attach"},
		{Options{Rows: 40, Cols: 120, Term: "vt100", Cwd: "/w"}, "/sbx/v1/attach?cols=120&cwd=%2Fw&rows=40&term=vt100"},
		{Options{Script: "echo $HOME"}, "/sbx/v1/attach?cmd=echo+%24HOME"},
		{Options{Command: []string{"vi", "a b"}}, "/sbx/v1/attach?arg=vi&arg=a+b"},
		{Options{Session: "w 1"}, "/sbx/v1/sessions/w%201/attach"},
	} {
		got, err := attachURL("http://h:1/", tc.o)
		if err != nil || got != "http://h:1"+tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.o, got, err, tc.want)
		}
	}
	for _, o := range []Options{
		{Session: "s", Script: "x"},
		{Script: "x", Command: []string{"y"}},
		{Session: "a/b"},
	} {
		if _, err := attachURL("http://h", o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// fakeServer answers one attach: it echoes the input back, reports the
// resize it got as output, tells a loss, then exits with code 5.
func fakeServer(t *testing.T) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(sandboxapi.HeaderSessionAPIKey) != "k" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"detail":"Invalid API Key"}`)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		send := func(ctl sandboxapi.Control) {
			b, _ := json.Marshal(ctl)
			_ = c.Write(ctx, websocket.MessageText, b)
		}
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				if string(b) == "quit" {
					send(sandboxapi.Control{Type: sandboxapi.ControlLost, Skipped: 9})
					code := 5
					send(sandboxapi.Control{Type: sandboxapi.ControlExit, ExitCode: &code})
					_ = c.Close(websocket.StatusNormalClosure, "")
					return
				}
				_ = c.Write(ctx, websocket.MessageBinary, append([]byte("echo:"), b...))
				continue
			}
			var ctl sandboxapi.Control
			_ = json.Unmarshal(b, &ctl)
			_ = c.Write(ctx, websocket.MessageBinary, []byte("size:"+r.URL.Query().Get("rows")+"->"+strings.TrimSpace(jsonSize(ctl))))
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func jsonSize(c sandboxapi.Control) string {
	b, _ := json.Marshal([]uint16{c.Rows, c.Cols})
	return string(b)
}

func readFor(t *testing.T, r io.Reader, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
}

func TestConn(t *testing.T) {
	ts := fakeServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var notices []sandboxapi.Control
	c, err := Dial(ctx, ts.URL, "k", Options{Rows: 3, Cols: 4, OnNotice: func(n sandboxapi.Control) { notices = append(notices, n) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	readFor(t, c, "echo:hi")
	if err := c.Resize(7, 8); err != nil {
		t.Fatal(err)
	}
	readFor(t, c, "size:3->[7,8]")
	if _, err := c.Write([]byte("quit")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("after exit: %q, %v; want EOF", b, err)
	}
	if code, err := c.Wait(); code != 5 || err != nil {
		t.Fatalf("wait = %d, %v; want 5", code, err)
	}
	if len(notices) != 1 || notices[0].Type != sandboxapi.ControlLost || notices[0].Skipped != 9 {
		t.Errorf("notices = %+v; want one loss of 9 bytes", notices)
	}
}

func TestDialRefused(t *testing.T) {
	ts := fakeServer(t)
	_, err := Dial(t.Context(), ts.URL, "wrong", Options{})
	var he *sandboxapi.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Detail != "Invalid API Key" {
		t.Fatalf("err = %v; want the 403 and its detail", err)
	}
}

// TestConnGoneIsAnError: a connection that ends without an exit message
// is Wait's error, not an exit code.
func TestConnGoneIsAnError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.CloseNow()
	}))
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	c, err := Dial(t.Context(), u.String(), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go io.Copy(io.Discard, c)
	if code, err := c.Wait(); code != -1 || err == nil {
		t.Fatalf("wait = %d, %v; want -1 and an error", code, err)
	}
}
