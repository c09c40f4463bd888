// Package egress is the egress proxy that enforces a sandbox's network
// policy from outside it (cmd/sbx-egress runs it in its own container,
// on the sandboxes' --internal network and on one with a route). It
// forwards HTTP by Host and TLS by SNI, after CONNECT or transparently on
// 80 and 443, never terminating TLS; it resolves every name itself, so
// neither a forged SNI nor a DNS answer from inside a sandbox chooses the
// address it dials; it answers the sandboxes' DNS with its own address for
// allowed names and nothing else; and it logs every denial. Sandboxes are
// told apart by source address, registered through the control endpoint,
// which listens only off the sandbox network.
package egress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// Config configures a Server.
type Config struct {
	// Default decides for a source no one registered (a sandbox in the
	// moment between its start and its registration gets the policy the
	// proxy was made for).
	Default netpolicy.Policy
	// Pool holds every sandbox network (one per sandbox, carved from it
	// by the driver): the proxy's addresses in it are sandbox sides, its
	// others the control side, and no address in it is ever a
	// destination, so no sandbox reaches another through the proxy.
	Pool netip.Prefix
	// Addrs lists the proxy's interface addresses; nil is
	// InterfaceAddrs. Serve follows them as sandbox networks come and go.
	Addrs func() ([]netip.Addr, error)
	// Host are the addresses of the engine's host (its bridge gateways
	// and its own interfaces): under any policy but open never a
	// destination, so no allow-list entry (a CIDR holding one) lets a
	// sandbox reach what the host serves.
	Host []netip.Addr
	// Self are more of the proxy's own addresses, never a destination;
	// Serve adds its control side's, so a sandbox cannot reach the
	// control endpoint through the proxy.
	Self []netip.Addr
	// Resolver resolves destination names; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// Log receives one record per denial (and the proxy's own events).
	Log *slog.Logger
	// Token is what the control endpoint wants as a bearer token.
	Token string
	// StateFile keeps the registrations across a restart of the proxy;
	// "" keeps them in memory only.
	StateFile string
	// DialTimeout bounds one upstream connect; 0 is 10 s.
	DialTimeout time.Duration
}

// Server is one egress proxy.
type Server struct {
	cfg      Config
	log      *slog.Logger
	resolver *net.Resolver
	dialer   net.Dialer
	def      *netpolicy.Matcher
	tr       *http.Transport

	mu      sync.RWMutex
	clients map[netip.Addr]*client
	self    []netip.Addr

	// kick asks Serve to look at the interfaces now: a registration
	// follows the connection of a sandbox's network.
	kick chan struct{}
	// relay forwards the host's requests to sandboxes (relay.go).
	relay http.Handler
	// limits bounds each source's connections and denial log lines.
	limits *limits

	// names caches resolutions briefly: a name is looked up once per
	// burst of connections, not once for each (a lookup costs about as
	// much as the rest of the proxy's work on a connection).
	namesMu sync.Mutex
	names   map[string]resolved
}

type resolved struct {
	addrs   []netip.Addr
	expires time.Time
}

// nameTTL bounds how stale a cached resolution may be; maxNames bounds
// the cache (it is emptied when full: simple, and a flood of names from
// one sandbox costs it only its own lookups).
const (
	nameTTL  = 10 * time.Second
	maxNames = 4096
)

func (s *Server) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	now := time.Now()
	s.namesMu.Lock()
	r, ok := s.names[host]
	s.namesMu.Unlock()
	if ok && now.Before(r.expires) {
		return r.addrs, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Rooted, so the proxy's resolver never tries its search domains: the
	// name decided is the name resolved, not x.allowed.test.corp.example.
	addrs, err := s.resolver.LookupNetIP(rctx, "ip", host+".")
	if err != nil {
		return nil, err
	}
	s.namesMu.Lock()
	if len(s.names) >= maxNames {
		clear(s.names)
	}
	s.names[host] = resolved{addrs: addrs, expires: now.Add(nameTTL)}
	s.namesMu.Unlock()
	return addrs, nil
}

// client is one registered sandbox. It is replaced, never changed, so a
// connection keeps the matcher it was decided with. Its forwarded plain
// HTTP has a connection pool of its own: a pooled upstream connection is
// reused without a new decision, so a pool shared with another sandbox
// (or kept across a change of policy) would carry requests to an address
// their own policy refuses.
type client struct {
	Sandbox string `json:"sandbox"`
	Policy  string `json:"policy"`
	m       *netpolicy.Matcher
	tr      *http.Transport
}

func (s *Server) newClient(sandbox string, p netpolicy.Policy) *client {
	return &client{Sandbox: sandbox, Policy: p.String(), m: netpolicy.Compile(p), tr: s.transport()}
}

// New makes a Server, reading StateFile when it exists.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Log, resolver: cfg.Resolver, def: netpolicy.Compile(cfg.Default), clients: map[netip.Addr]*client{}, names: map[string]resolved{}, kick: make(chan struct{}, 1), limits: newLimits()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	s.dialer.Timeout = cfg.DialTimeout
	if s.dialer.Timeout == 0 {
		s.dialer.Timeout = 10 * time.Second
	}
	s.tr = s.transport()
	s.self = append([]netip.Addr(nil), cfg.Self...)
	s.relay = s.newRelay()
	if cfg.StateFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// who is the client a source address belongs to.
func (s *Server) who(remote net.Addr) (string, netip.Addr, *netpolicy.Matcher) {
	sandbox, ip, m, _ := s.whoTr(remote)
	return sandbox, ip, m
}

// whoTr is who with the client's transport for forwarded HTTP.
func (s *Server) whoTr(remote net.Addr) (string, netip.Addr, *netpolicy.Matcher, *http.Transport) {
	ap, _ := netip.ParseAddrPort(remote.String())
	ip := ap.Addr().Unmap()
	s.mu.RLock()
	c := s.clients[ip]
	s.mu.RUnlock()
	if c == nil {
		return "", ip, s.def, s.tr
	}
	return c.Sandbox, ip, c.m, c.tr
}

// denial is returned for a refused destination, already logged.
type denial struct{ reason string }

func (d *denial) Error() string { return "egress denied: " + d.reason }

func (s *Server) deny(sandbox string, src netip.Addr, dest, via, reason string) error {
	if ok, left := s.limits.logOK(src, time.Now()); ok {
		if left > 0 {
			s.log.Info("denied", "sandbox", sandbox, "src", src.String(), "dest", dest, "via", via, "reason", reason, "not_logged_before", left)
		} else {
			s.log.Info("denied", "sandbox", sandbox, "src", src.String(), "dest", dest, "via", via, "reason", reason)
		}
	}
	return &denial{reason: reason}
}

// dial decides and opens a connection to host:port for a client, with
// the name resolved here: the client's idea of the address never counts.
func (s *Server) dial(ctx context.Context, sandbox string, src netip.Addr, m *netpolicy.Matcher, host string, port int, via string) (net.Conn, error) {
	addrs, err := s.plan(ctx, sandbox, src, m, host, port, via)
	if err != nil {
		return nil, err
	}
	return s.connectAny(ctx, sandbox, src, host, port, via, addrs)
}

// plan decides a destination and returns the addresses it may be reached
// at, or the (logged) denial.
func (s *Server) plan(ctx context.Context, sandbox string, src netip.Addr, m *netpolicy.Matcher, host string, port int, via string) ([]netip.AddrPort, error) {
	dest := net.JoinHostPort(host, strconv.Itoa(port))
	if port <= 0 || port > 65535 {
		return nil, s.deny(sandbox, src, dest, via, "bad port")
	}
	if ok, why := m.Dest(host); !ok {
		return nil, s.deny(sandbox, src, dest, via, why)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(trimBrackets(host)); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		res, err := s.lookup(ctx, strings.ToLower(strings.TrimSuffix(host, ".")))
		if err != nil || len(res) == 0 {
			return nil, s.deny(sandbox, src, dest, via, "does not resolve")
		}
		addrs = res
	}
	why := ""
	var out []netip.AddrPort
	for _, a := range addrs {
		a = a.Unmap()
		if r := s.forbidden(a); r != "" {
			why = r
			continue
		}
		if m.Policy().Mode != netpolicy.Open && slices.Contains(s.cfg.Host, a) {
			why = "the sandbox host's address " + a.String()
			continue
		}
		if ok, r := m.Resolved(a); !ok {
			why = r + " (" + a.String() + ")"
			continue
		}
		out = append(out, netip.AddrPortFrom(a, uint16(port)))
	}
	if len(out) == 0 {
		if why == "" {
			why = "no address"
		}
		return nil, s.deny(sandbox, src, dest, via, why)
	}
	return out, nil
}

// connectAny connects to the first of addrs that answers.
func (s *Server) connectAny(ctx context.Context, sandbox string, src netip.Addr, host string, port int, via string, addrs []netip.AddrPort) (net.Conn, error) {
	var last error
	for _, a := range addrs {
		c, err := s.dialer.DialContext(ctx, "tcp", a.String())
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, s.deny(sandbox, src, net.JoinHostPort(host, strconv.Itoa(port)), via, "unreachable: "+last.Error())
}

// isMetadata says whether a is a cloud metadata service outside
// link-local space (AWS's IPv6 endpoint, Alibaba Cloud's): credentials of
// the host's cloud account, never a sandbox's destination.
func isMetadata(a netip.Addr) bool {
	switch a.String() {
	case "fd00:ec2::254", "100.100.100.200":
		return true
	}
	return false
}

// forbidden names addresses no policy may reach through the proxy: the
// proxy itself (its control endpoint), loopback, link-local (cloud
// metadata services), and what is no unicast destination at all.
func (s *Server) forbidden(a netip.Addr) string {
	switch {
	case a.IsLoopback(), a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "reserved address " + a.String()
	case isMetadata(a):
		return "a cloud metadata address " + a.String()
	}
	if s.cfg.Pool.IsValid() && s.cfg.Pool.Contains(a) {
		return "a sandbox network's address " + a.String()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, x := range s.self {
		if x == a {
			return "the proxy's own address"
		}
	}
	return ""
}

func (s *Server) setSelf(addrs []netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.self = append(append([]netip.Addr(nil), s.cfg.Self...), addrs...)
}

// nudge asks Serve to rescan the interfaces, without waiting.
func (s *Server) nudge() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// registered says whether a sandbox is registered at ip.
func (s *Server) registered(ip netip.Addr) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clients[ip.Unmap()] != nil
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// Register sets the sandbox and policy of a source address.
func (s *Server) Register(ip netip.Addr, sandbox string, p netpolicy.Policy) error {
	if !ip.IsValid() {
		return errors.New("no address")
	}
	c := s.newClient(sandbox, p)
	s.mu.Lock()
	old := s.clients[ip.Unmap()]
	s.clients[ip.Unmap()] = c
	err := s.saveLocked()
	s.mu.Unlock()
	if old != nil {
		// Requests in flight finish on it; nothing new reuses its
		// connections.
		old.tr.CloseIdleConnections()
	}
	s.log.Info("registered", "sandbox", sandbox, "src", ip.String(), "policy", c.Policy)
	s.nudge()
	return err
}

// Unregister forgets a source address.
func (s *Server) Unregister(ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.clients[ip.Unmap()]; old != nil {
		old.tr.CloseIdleConnections()
	}
	delete(s.clients, ip.Unmap())
	s.nudge()
	return s.saveLocked()
}

// Client is one registration as the control endpoint lists it.
type Client struct {
	Addr    string `json:"addr"`
	Sandbox string `json:"sandbox"`
	Policy  string `json:"policy"`
}

// Clients lists the registrations.
func (s *Server) Clients() []Client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Client, 0, len(s.clients))
	for ip, c := range s.clients {
		out = append(out, Client{Addr: ip.String(), Sandbox: c.Sandbox, Policy: c.Policy})
	}
	return out
}

func (s *Server) saveLocked() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	l := make([]Client, 0, len(s.clients))
	for ip, c := range s.clients {
		l = append(l, Client{Addr: ip.String(), Sandbox: c.Sandbox, Policy: c.Policy})
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	tmp := s.cfg.StateFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.cfg.StateFile)
}

func (s *Server) load() error {
	b, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var l []Client
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("state file %s: %w", s.cfg.StateFile, err)
	}
	for _, c := range l {
		ip, err1 := netip.ParseAddr(c.Addr)
		p, err2 := netpolicy.Parse(c.Policy)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("state file %s: bad entry %+v", s.cfg.StateFile, c)
		}
		s.clients[ip] = s.newClient(c.Sandbox, p)
	}
	return nil
}
