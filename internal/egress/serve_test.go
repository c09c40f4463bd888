package egress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// freeTCP is a port free on every loopback address at the moment.
func freeTCP(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// loopbackProxy serves a proxy whose "interfaces" are loopback addresses
// the test adds and takes away: 127.0.0.1 is the control side, the pool
// is 127.0.77.0/24 (Linux answers on all of 127/8).
type loopbackProxy struct {
	s     *Server
	ports Ports
	mu    sync.Mutex
	addrs []netip.Addr
}

func (p *loopbackProxy) set(addrs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addrs = nil
	for _, a := range addrs {
		p.addrs = append(p.addrs, netip.MustParseAddr(a))
	}
	p.s.nudge()
}

func newLoopbackProxy(t *testing.T) *loopbackProxy {
	t.Helper()
	p := &loopbackProxy{ports: Ports{Proxy: freeTCP(t), HTTP: freeTCP(t), TLS: freeTCP(t), DNS: freeTCP(t), Control: freeTCP(t)}}
	p.addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	s, err := New(Config{Default: netpolicy.MustParse("none"), Pool: netip.MustParsePrefix("127.0.77.0/24"), Token: "tok",
		Addrs: func() ([]netip.Addr, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return append([]netip.Addr(nil), p.addrs...), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	p.s = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, p.ports) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitDial(t, "127.0.0.1", p.ports.Control, true)
	return p
}

// waitDial waits (up to 3 s) for a TCP connect to succeed (up) or fail.
func waitDial(t *testing.T, host string, port int, up bool) {
	t.Helper()
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if c != nil {
			c.Close()
		}
		if (err == nil) == up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: connect error %v, want up=%v", addr, err, up)
		}
	}
}

// Sandbox-side listeners follow the addresses in the pool as sandbox
// networks come and go; the control side is never served inside it.
func TestServeFollowsSandboxNetworks(t *testing.T) {
	p := newLoopbackProxy(t)
	waitDial(t, "127.0.77.2", p.ports.Proxy, false)
	p.set("127.0.0.1", "127.0.77.2")
	waitDial(t, "127.0.77.2", p.ports.Proxy, true)
	waitDial(t, "127.0.77.2", p.ports.HTTP, true)
	waitDial(t, "127.0.77.2", p.ports.TLS, true)
	waitDial(t, "127.0.77.2", p.ports.DNS, true)
	// Data ports are never bound off the pool, the control port never
	// in it.
	waitDial(t, "127.0.0.1", p.ports.Proxy, false)
	waitDial(t, "127.0.77.2", p.ports.Control, false)
	p.set("127.0.0.1")
	waitDial(t, "127.0.77.2", p.ports.Proxy, false)
	waitDial(t, "127.0.0.1", p.ports.Control, true)
}

// A control-side connection from a sandbox network is dropped, whatever
// address it was sent to.
func TestControlRefusesPoolSources(t *testing.T) {
	p := newLoopbackProxy(t)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.77.3")}, Timeout: 2 * time.Second}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 3 * time.Second}
	if resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/healthz", p.ports.Control)); err == nil {
		resp.Body.Close()
		t.Fatalf("a source in the pool got an answer from the control side: %s", resp.Status)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/v1/healthz", p.ports.Control), nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the control side from the host: %v %v", resp, err)
	}
	resp.Body.Close()
}

// The relay reaches registered sandboxes only, keeps the path's escaping
// and the query, and streams.
func TestRelay(t *testing.T) {
	p := newLoopbackProxy(t)
	port := freeTCP(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.77.3:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("X-Session-API-Key"))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	base := fmt.Sprintf("http://127.0.0.1:%d", p.ports.Control)
	sbIP := netip.MustParseAddr("127.0.77.3")
	target := RelayKey("tok", sbIP) + fmt.Sprintf("/127.0.77.3:%d", port)
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-Session-API-Key", "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/relay/" + target + "/alive"); code != http.StatusNotFound {
		t.Errorf("an unregistered address: %d %q, want 404", code, body)
	}
	if err := p.s.Register(netip.MustParseAddr("127.0.77.3"), "sb", netpolicy.MustParse("none")); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/relay/" + target + "/a%2Fb/c?x=1&y=%20"); code != 200 || body != "GET /a%2Fb/c x=1&y=%20 k" {
		t.Errorf("relayed: %d %q", code, body)
	}
	if code, body := get("/relay/" + target); code != 200 || !strings.HasPrefix(body, "GET / ") {
		t.Errorf("relayed root: %d %q", code, body)
	}
	if got := RelayPath("tok", sbIP, port); got != "/relay/"+target {
		t.Errorf("RelayPath = %q, want %q", got, "/relay/"+target)
	}
	// Without the key, with another proxy's, or with another address's,
	// a registered sandbox is as unknown as an unregistered one.
	for _, key := range []string{"x", RelayKey("other", sbIP), RelayKey("tok", netip.MustParseAddr("127.0.77.4")), RelayKey("tok", sbIP)[:31]} {
		path := fmt.Sprintf("/relay/%s/127.0.77.3:%d/alive", key, port)
		if code, body := get(path); code != http.StatusNotFound || !strings.Contains(body, "no sandbox of this proxy") {
			t.Errorf("%s: %d %q, want 404", path, code, body)
		}
	}
	for _, bad := range []string{"/relay/", fmt.Sprintf("/relay/127.0.77.3:%d/alive", port), "/relay/k/127.0.77.3/x", "/relay/k/127.0.77.3:0/x", "/relay/k/host.test:80/x", "/relay//127.0.77.3:80/x", "/relay/k/[fe80::1%25eth0]:80/x"} {
		if code, _ := get(bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
	// Outside the pool even when registered (the registration table
	// is the proxy's, the pool the driver's).
	if err := p.s.Register(netip.MustParseAddr("127.0.0.1"), "x", netpolicy.MustParse("none")); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(fmt.Sprintf("/relay/%s/127.0.0.1:%d/v1/clients", RelayKey("tok", netip.MustParseAddr("127.0.0.1")), p.ports.Control)); code != http.StatusNotFound {
		t.Errorf("relay to the control side: %d, want 404", code)
	}
	// An event stream arrives before the handler ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/relay/"+target+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 11)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data: one\n\n" {
		t.Errorf("stream: %q %v", buf, err)
	}
}

func FuzzParseRelay(f *testing.F) {
	for _, s := range []string{"/relay/k/10.213.0.3:30000/alive", "/relay/k/10.213.0.3:30000", "/relay/k/[::1]:80/x%2Fy", "/relay/", "/relay/k/a:b/c", "/x", "/relay/10.213.0.3:30000/alive"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse(p)
		if err != nil {
			return
		}
		r, ok := parseRelay(u)
		if !ok {
			return
		}
		if r.key == "" || strings.Contains(r.key, "/") || !r.target.IsValid() || r.target.Port() == 0 || r.target.Addr().Zone() != "" || !strings.HasPrefix(r.path, "/") {
			t.Fatalf("parseRelay(%q) = %+v", p, r)
		}
		if r.rawPath != "" && !strings.HasPrefix(r.rawPath, "/") {
			t.Fatalf("parseRelay(%q) raw path %q", p, r.rawPath)
		}
	})
}

// A sandbox that answers before it has read the whole request (sandboxd's
// streamed run flushes its start event at once) still gets the rest of
// the body through the relay, and the client gets the whole answer: Go's
// server would otherwise stop the request body once the relay flushed the
// answer's headers, and the relay cut both (sbx saw "unexpected EOF").
func TestRelayFullDuplex(t *testing.T) {
	p := newLoopbackProxy(t)
	port := freeTCP(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.77.3:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		fmt.Fprint(w, "started\n")
		_ = rc.Flush()
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "read %d %v\n", n, err)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	if err := p.s.Register(netip.MustParseAddr("127.0.77.3"), "sb", netpolicy.MustParse("none")); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		// The first part at once, the rest after the answer has begun.
		pw.Write([]byte(strings.Repeat("a", 1000)))
		time.Sleep(300 * time.Millisecond)
		pw.Write([]byte(strings.Repeat("b", 1000)))
		pw.Close()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d%s/run", p.ports.Control, RelayPath("tok", netip.MustParseAddr("127.0.77.3"), port))
	req, _ := http.NewRequest("POST", url, pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "started\nread 2000 <nil>\n" {
		t.Fatalf("through the relay: %q, %v", b, err)
	}
}
