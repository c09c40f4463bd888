package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsTTL is short so that a policy change is seen by resolvers that
// cache; it hardly matters, since every connection is decided again.
const dnsTTL = 5

// answerDNS answers one query from a sandbox: an allowed name's A record
// is the proxy's own address (answer), so the sandbox's connections come
// to the proxy whatever the program does about proxy variables; AAAA and
// other types of an allowed name are empty; a name the policy refuses is
// NXDOMAIN, and logged. No query is ever forwarded, so DNS carries
// nothing out.
func (s *Server) answerDNS(req []byte, from net.Addr, answer netip.Addr) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	resp := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}}
	if err != nil || h.OpCode != 0 {
		resp.RCode = dnsmessage.RCodeFormatError
		if h.OpCode != 0 {
			resp.RCode = dnsmessage.RCodeNotImplemented
		}
		b, err := resp.Pack()
		return b, err == nil
	}
	resp.Questions = []dnsmessage.Question{q}
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	sandbox, src, m := s.who(from)
	if ok, why := m.Dest(name); !ok || q.Class != dnsmessage.ClassINET {
		if why == "" {
			why = "not class IN"
		}
		_ = s.deny(sandbox, src, name, "dns", why)
		resp.RCode = dnsmessage.RCodeNameError
	} else {
		resp.Authoritative = true
		if q.Type == dnsmessage.TypeA && answer.Is4() {
			resp.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: dnsTTL},
				Body:   &dnsmessage.AResource{A: answer.As4()},
			}}
		}
	}
	b, err := resp.Pack()
	return b, err == nil
}

// ServeDNS answers UDP queries on pc with answer as every allowed name's
// address.
func (s *Server) ServeDNS(ctx context.Context, pc net.PacketConn, answer netip.Addr) error {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if b, ok := s.answerDNS(buf[:n], from, answer); ok {
			_, _ = pc.WriteTo(b, from)
		}
	}
}

// ServeDNSTCP answers DNS over TCP (length-prefixed messages) on l.
func (s *Server) ServeDNSTCP(ctx context.Context, l net.Listener, answer netip.Addr) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			for {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				req := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				b, ok := s.answerDNS(req, c.RemoteAddr(), answer)
				if !ok {
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
				if _, err := c.Write(append(out, b...)); err != nil {
					return
				}
			}
		}()
	}
}
