package egress

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// hello is the first flight of a real crypto/tls client for name.
func hello(t testing.TB, name string) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: name, InsecureSkipVerify: name == ""})
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_ = c.Handshake()
		a.Close()
	}()
	_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReaderSize(b, maxHello+5)
	hdr, err := br.Peek(5)
	if err != nil {
		t.Fatal(err)
	}
	n := int(hdr[3])<<8 | int(hdr[4])
	rec, err := br.Peek(5 + n)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(rec)
	b.Close()
	return out
}

func TestPeekSNI(t *testing.T) {
	for _, name := range []string{"allowed.test", "a.b.wild.test"} {
		got, err := peekSNI(bufio.NewReaderSize(bytes.NewReader(hello(t, name)), maxHello+5))
		if err != nil || got != name {
			t.Errorf("SNI of a hello for %q = %q, %v", name, got, err)
		}
	}
	// An IP address is never sent as a server name (RFC 6066).
	if got, err := peekSNI(bufio.NewReaderSize(bytes.NewReader(hello(t, "")), maxHello+5)); err != nil || got != "" {
		t.Errorf("hello without a name: %q, %v", got, err)
	}
	if _, err := peekSNI(bufio.NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n")))); err != errNotTLS {
		t.Errorf("plain HTTP read as TLS: %v", err)
	}
	h := hello(t, "allowed.test")
	for i := 5; i < len(h); i += 7 {
		// Truncated records never panic, and never yield a name that is
		// not the one sent.
		if got, _ := parseClientHello(h[5:i]); got != "" && got != "allowed.test" {
			t.Fatalf("truncated at %d: %q", i, got)
		}
	}
}

func FuzzClientHello(f *testing.F) {
	f.Add(hello(f, "allowed.test")[5:])
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := parseClientHello(b)
		if err == nil && len(name) > len(b) {
			t.Fatalf("name %q longer than its input", name)
		}
	})
}

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}}}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAnswerDNS(t *testing.T) {
	s, err := New(Config{Default: netpolicy.MustParse("allowed.test,*.wild.test")})
	if err != nil {
		t.Fatal(err)
	}
	me := netip.MustParseAddr("172.30.0.2")
	from := &net.UDPAddr{IP: net.ParseIP("172.30.0.9"), Port: 5353}
	for _, c := range []struct {
		name    string
		typ     dnsmessage.Type
		rcode   dnsmessage.RCode
		answers int
	}{
		{"allowed.test.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"ALLOWED.test.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, 0},
		{"x.wild.test.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, 1},
		{"allowed.test.", dnsmessage.TypeTXT, dnsmessage.RCodeSuccess, 0},
		{"denied.test.", dnsmessage.TypeA, dnsmessage.RCodeNameError, 0},
		{"secret-data.denied.test.", dnsmessage.TypeTXT, dnsmessage.RCodeNameError, 0},
	} {
		b, ok := s.answerDNS(query(t, c.name, c.typ), from, me)
		if !ok {
			t.Fatalf("%s: no answer", c.name)
		}
		var m dnsmessage.Message
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if m.ID != 7 || m.RCode != c.rcode || len(m.Answers) != c.answers {
			t.Errorf("%s %v: id %d rcode %v answers %d", c.name, c.typ, m.ID, m.RCode, len(m.Answers))
		}
		if c.answers == 1 && m.Answers[0].Body.(*dnsmessage.AResource).A != me.As4() {
			t.Errorf("%s answered %v, not the proxy's address", c.name, m.Answers[0].Body)
		}
	}
	// A registration changes the answers for its source only.
	if err := s.Register(netip.MustParseAddr("172.30.0.9"), "sb1", netpolicy.MustParse("denied.test")); err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	b, _ := s.answerDNS(query(t, "denied.test.", dnsmessage.TypeA), from, me)
	if err := m.Unpack(b); err != nil || m.RCode != dnsmessage.RCodeSuccess {
		t.Errorf("after registration: %v %v", m.RCode, err)
	}
	other := &net.UDPAddr{IP: net.ParseIP("172.30.0.10"), Port: 5353}
	b, _ = s.answerDNS(query(t, "denied.test.", dnsmessage.TypeA), other, me)
	if err := m.Unpack(b); err != nil || m.RCode != dnsmessage.RCodeNameError {
		t.Errorf("another source: %v %v", m.RCode, err)
	}
	if _, ok := s.answerDNS([]byte{1, 2, 3}, from, me); ok {
		t.Error("answered garbage")
	}
}

func FuzzAnswerDNS(f *testing.F) {
	f.Add([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'a', 'l', 'l', 'o', 'w', 'e', 'd', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1})
	s, _ := New(Config{Default: netpolicy.MustParse("allowed.test")})
	from := &net.UDPAddr{IP: net.ParseIP("172.30.0.9"), Port: 1}
	me := netip.MustParseAddr("172.30.0.2")
	f.Fuzz(func(t *testing.T, b []byte) {
		out, ok := s.answerDNS(b, from, me)
		if ok {
			var m dnsmessage.Message
			if err := m.Unpack(out); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
		}
	})
}
