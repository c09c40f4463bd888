package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Ports are where Serve listens; the zero value is the fixed ports a
// sandbox is configured with (ProxyPort, HTTPPort, TLSPort, DNSPort,
// ControlPort). Tests that run the proxy unprivileged pick others.
type Ports struct {
	Proxy, HTTP, TLS, DNS, Control int
}

func (p Ports) orDefault() Ports {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.Proxy, ProxyPort)
	def(&p.HTTP, HTTPPort)
	def(&p.TLS, TLSPort)
	def(&p.DNS, DNSPort)
	def(&p.Control, ControlPort)
	return p
}

// idleTimeout closes a kept-alive client connection that sends no next
// request (zero would keep it for ever: a sandbox could park connections).
const idleTimeout = 2 * time.Minute

// rescanEvery is how often Serve looks for sandbox networks connected or
// disconnected behind its back; a registration looks at once.
const rescanEvery = time.Second

// Serve listens until ctx ends. Every address of the proxy inside
// Config.Pool is the sandbox side of one sandbox's own network: the
// proxy, transparent HTTP and TLS, and DNS answering with that address.
// Sandbox networks come and go while the proxy runs (the driver connects
// one per sandbox), so those listeners follow the interfaces. Every other
// address (loopback and link-local aside) is the control side: the control
// endpoint and the relay to sandboxes, never bound inside the pool and
// refusing connections from it, so a sandbox reaches neither; the data
// ports are never bound off the pool, so the proxy is no relay for
// anything but its sandboxes.
func (s *Server) Serve(ctx context.Context, ports Ports) error {
	if !s.cfg.Pool.IsValid() {
		return errors.New("no sandbox address pool")
	}
	ports = ports.orDefault()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The engine attaches the network with the route at the start; give
	// an interface a moment to appear all the same.
	var control []netip.Addr
	for deadline := time.Now().Add(10 * time.Second); ; {
		addrs, err := s.addrs()
		if err != nil {
			return err
		}
		control = control[:0]
		for _, a := range addrs {
			if !s.cfg.Pool.Contains(a) {
				control = append(control, a)
			}
		}
		if len(control) > 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(control) == 0 {
		return errors.New("no address off the sandbox networks for the control endpoint")
	}
	s.setSelf(control)

	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	var lc net.ListenConfig
	var closers []func()
	for _, a := range control {
		l, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(a, uint16(ports.Control)).String())
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		srv := &http.Server{Handler: s.ControlSideHandler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: idleTimeout}
		closers = append(closers, func() { srv.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(limitListener{notFromPool{l, s.cfg.Pool, s}, s, "control"}); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
				errOnce.Do(func() { first = err })
				cancel()
			}
		}()
	}
	s.log.Info("serving", "pool", s.cfg.Pool.String(), "control", fmt.Sprint(control), "proxy_port", strconv.Itoa(ports.Proxy))

	type side struct {
		ctx  context.Context
		stop context.CancelFunc
	}
	inside := map[netip.Addr]side{}
	rescan := func() {
		addrs, err := s.addrs()
		if err != nil {
			s.log.Warn("listing interfaces", "err", err)
			return
		}
		present := map[netip.Addr]bool{}
		for _, a := range addrs {
			if !s.cfg.Pool.Contains(a) {
				continue
			}
			present[a] = true
			if e, ok := inside[a]; ok && e.ctx.Err() == nil {
				continue
			}
			actx, acancel := context.WithCancel(ctx)
			if err := s.serveInside(actx, acancel, &wg, a, ports); err != nil {
				acancel()
				s.log.Warn("serving a sandbox network", "addr", a.String(), "err", err)
				continue
			}
			inside[a] = side{actx, acancel}
			s.log.Info("sandbox network", "addr", a.String(), "state", "up")
		}
		for a, e := range inside {
			if !present[a] {
				e.stop()
				delete(inside, a)
				s.log.Info("sandbox network", "addr", a.String(), "state", "gone")
			}
		}
	}
	rescan()
	t := time.NewTicker(rescanEvery)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			rescan()
		case <-s.kick:
			rescan()
		}
	}
	for _, e := range inside {
		e.stop()
	}
	for _, c := range closers {
		c()
	}
	wg.Wait()
	return first
}

// serveInside starts the sandbox-side listeners on one address; they end
// with ctx, and a failure of one ends them all (the next rescan tries
// again while the address is there).
func (s *Server) serveInside(ctx context.Context, cancel context.CancelFunc, wg *sync.WaitGroup, a netip.Addr, ports Ports) error {
	var lc net.ListenConfig
	var ls []net.Listener
	var pcs []net.PacketConn
	fail := func(err error) error {
		for _, l := range ls {
			l.Close()
		}
		for _, pc := range pcs {
			pc.Close()
		}
		return fmt.Errorf("listen: %w", err)
	}
	listen := func(port int) (net.Listener, error) {
		l, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			ls = append(ls, l)
		}
		return l, err
	}
	lp, err := listen(ports.Proxy)
	if err != nil {
		return fail(err)
	}
	lh, err := listen(ports.HTTP)
	if err != nil {
		return fail(err)
	}
	lt, err := listen(ports.TLS)
	if err != nil {
		return fail(err)
	}
	ld, err := listen(ports.DNS)
	if err != nil {
		return fail(err)
	}
	pc, err := lc.ListenPacket(ctx, "udp", netip.AddrPortFrom(a, uint16(ports.DNS)).String())
	if err != nil {
		return fail(err)
	}
	pcs = append(pcs, pc)

	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				s.log.Warn("sandbox network listener", "addr", a.String(), "err", err)
				cancel()
			}
		}()
	}
	servers := []*http.Server{
		{Handler: s.ProxyHandler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: idleTimeout},
		{Handler: s.TransparentHTTPHandler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: idleTimeout},
	}
	lp, lh, lt, ld = limitListener{lp, s, "proxy"}, limitListener{lh, s, "http"}, limitListener{lt, s, "tls"}, limitListener{ld, s, "dns"}
	for i, l := range []net.Listener{lp, lh} {
		srv := servers[i]
		run(func() error {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	run(func() error { return s.ServeTLS(ctx, lt) })
	run(func() error { return s.ServeDNSTCP(ctx, ld, a) })
	run(func() error { return s.ServeDNS(ctx, pc, a) })
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		for _, srv := range servers {
			srv.Close()
		}
		lt.Close()
		ld.Close()
		pc.Close()
	}()
	return nil
}

// notFromPool refuses control-side connections from a sandbox network.
// The control side is bound off the pool, but a sandbox able to route (a
// user who gave it NET_ADMIN) could send to those addresses through the
// proxy's interface on its own network, and Linux accepts a packet for
// any of its addresses on any interface.
type notFromPool struct {
	net.Listener
	pool netip.Prefix
	s    *Server
}

func (l notFromPool) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr == nil && !l.pool.Contains(ap.Addr().Unmap()) {
			return c, nil
		}
		l.s.log.Warn("refused a control connection from a sandbox network", "src", c.RemoteAddr().String())
		c.Close()
	}
}

// addrs are this host's interface addresses, loopback and link-local
// left out.
func (s *Server) addrs() ([]netip.Addr, error) {
	if s.cfg.Addrs != nil {
		return s.cfg.Addrs()
	}
	return InterfaceAddrs()
}

// InterfaceAddrs lists this host's unicast interface addresses, loopback
// and link-local left out.
func InterfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}
