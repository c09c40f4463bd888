package egress

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// One source holding MaxConnsPerSource connections gets no more; another
// source is served all the while, and a closed connection frees a place.
func TestConnsPerSource(t *testing.T) {
	p := newLoopbackProxy(t)
	p.set("127.0.0.1", "127.0.77.2")
	waitDial(t, "127.0.77.2", p.ports.Proxy, true)
	target := fmt.Sprintf("127.0.77.2:%d", p.ports.Proxy)
	from := func(src string) net.Dialer {
		return net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	}
	// answers says whether a CONNECT on a new connection from src gets
	// an HTTP answer (a refusal by policy none is one).
	answers := func(src string) bool {
		d := from(src)
		c, err := d.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprint(c, "CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusForbidden
	}
	held := make([]net.Conn, 0, MaxConnsPerSource)
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	d := from("127.0.77.3")
	for range MaxConnsPerSource {
		c, err := d.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The accept loop counts them as it takes them.
	deadline := time.Now().Add(5 * time.Second)
	for answers("127.0.77.3") {
		if time.Now().After(deadline) {
			t.Fatalf("a source holding %d connections still got another answered", MaxConnsPerSource)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !answers("127.0.77.4") {
		t.Fatal("another source is not served while one holds its maximum")
	}
	held[0].Close()
	held = held[1:]
	deadline = time.Now().Add(5 * time.Second)
	for !answers("127.0.77.3") {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not free a place")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Denials are logged in a burst, then at the rate, and the next line
// says how many were left out.
func TestDenialLogRate(t *testing.T) {
	l := newLimits()
	src, other := netip.MustParseAddr("10.213.0.3"), netip.MustParseAddr("10.213.0.11")
	now := time.Unix(1000, 0)
	logged := 0
	for range 1000 {
		if ok, _ := l.logOK(src, now); ok {
			logged++
		}
	}
	if logged != denyBurst {
		t.Fatalf("a burst of 1000 logged %d, want %d", logged, denyBurst)
	}
	if ok, _ := l.logOK(other, now); !ok {
		t.Fatal("one source's flood silenced another's denials")
	}
	ok, left := l.logOK(src, now.Add(time.Second))
	if !ok || left != 1000-denyBurst {
		t.Fatalf("a second later: logged %v, %d left out; want true, %d", ok, left, 1000-denyBurst)
	}
	n := 0
	for range 100 {
		if ok, _ := l.logOK(src, now.Add(time.Second)); ok {
			n++
		}
	}
	if n != denyRate-1 {
		t.Errorf("after a second, %d more logged, want %d", n, denyRate-1)
	}
}

// The proxy's own log keeps a flood down to the rate, and says so.
func TestDenialFloodLogged(t *testing.T) {
	var buf bytes.Buffer
	s, err := New(Config{Default: netpolicy.MustParse("none"), Pool: netip.MustParsePrefix("127.0.77.0/24"), Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		_ = s.deny("sb", netip.MustParseAddr("127.0.77.3"), fmt.Sprintf("n%d.test:443", i), "dns", "not on the allow-list")
	}
	if n := strings.Count(buf.String(), `"msg":"denied"`); n != denyBurst {
		t.Errorf("a flood of 500 denials wrote %d lines, want %d", n, denyBurst)
	}
}

// Forwarded HTTP reuses pooled upstream connections without deciding
// again, so no two sandboxes, and no two policies of one, share a pool.
func TestTransportPerRegistration(t *testing.T) {
	s, err := New(Config{Default: netpolicy.MustParse("none"), Pool: netip.MustParsePrefix("127.0.77.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	a, b := &net.TCPAddr{IP: net.ParseIP("127.0.77.3"), Port: 1}, &net.TCPAddr{IP: net.ParseIP("127.0.77.11"), Port: 1}
	_ = s.Register(netip.MustParseAddr("127.0.77.3"), "a", netpolicy.MustParse("open"))
	_ = s.Register(netip.MustParseAddr("127.0.77.11"), "b", netpolicy.MustParse("allowed.test"))
	_, _, _, ta := s.whoTr(a)
	_, _, _, tb := s.whoTr(b)
	_, _, _, tn := s.whoTr(&net.TCPAddr{IP: net.ParseIP("127.0.77.19"), Port: 1})
	if ta == tb || ta == tn || tb == tn {
		t.Fatal("two sandboxes (or one and an unregistered source) share a connection pool")
	}
	_ = s.Register(netip.MustParseAddr("127.0.77.3"), "a", netpolicy.MustParse("allowed.test"))
	if _, _, _, ta2 := s.whoTr(a); ta2 == ta {
		t.Fatal("a changed policy keeps the connection pool of the old one")
	}
}

// Cloud metadata services outside link-local space are no destination
// either, under any policy.
func TestForbiddenMetadata(t *testing.T) {
	s, err := New(Config{Default: netpolicy.MustParse("open"), Pool: netip.MustParsePrefix("10.213.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "127.0.0.1", "10.213.4.3"} {
		if s.forbidden(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s is a destination", a)
		}
	}
	if why := s.forbidden(netip.MustParseAddr("100.100.100.201")); why != "" {
		t.Errorf("100.100.100.201 refused: %s", why)
	}
}
