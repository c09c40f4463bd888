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

// Serve listens on the sandbox side (every address of inside: proxy,
// transparent HTTP and TLS, DNS answering with that address) and on the
// control side (every address of control), until ctx ends. The control
// endpoint is never bound on an inside address, so a sandbox cannot even
// connect to it; the data ports are never bound off it, so the proxy is no
// relay for anything but its sandboxes.
func (s *Server) Serve(ctx context.Context, inside, control []netip.Addr, ports Ports) error {
	if len(inside) == 0 {
		return errors.New("no address on the sandbox network")
	}
	ports = ports.orDefault()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		closers []func()
	)
	fail := func(err error) {
		errOnce.Do(func() { first = err })
		cancel()
	}
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				fail(err)
			}
		}()
	}
	var lc net.ListenConfig
	listen := func(a netip.Addr, port int) (net.Listener, error) {
		l, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		closers = append(closers, func() { l.Close() })
		return l, nil
	}
	serveHTTP := func(l net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
		closers = append(closers, func() { srv.Close() })
		run(func() error {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	for _, a := range inside {
		a := a
		// One variable per listener: each goroutine keeps its own.
		lp, err := listen(a, ports.Proxy)
		if err != nil {
			return err
		}
		serveHTTP(lp, s.ProxyHandler())
		lh, err := listen(a, ports.HTTP)
		if err != nil {
			return err
		}
		serveHTTP(lh, s.TransparentHTTPHandler())
		lt, err := listen(a, ports.TLS)
		if err != nil {
			return err
		}
		run(func() error { return s.ServeTLS(ctx, lt) })
		ld, err := listen(a, ports.DNS)
		if err != nil {
			return err
		}
		run(func() error { return s.ServeDNSTCP(ctx, ld, a) })
		pc, err := lc.ListenPacket(ctx, "udp", netip.AddrPortFrom(a, uint16(ports.DNS)).String())
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		closers = append(closers, func() { pc.Close() })
		run(func() error { return s.ServeDNS(ctx, pc, a) })
	}
	for _, a := range control {
		l, err := listen(a, ports.Control)
		if err != nil {
			return err
		}
		serveHTTP(l, s.ControlHandler())
	}
	s.log.Info("serving", "inside", fmt.Sprint(inside), "control", fmt.Sprint(control), "proxy_port", strconv.Itoa(ports.Proxy))
	<-ctx.Done()
	for _, c := range closers {
		c()
	}
	wg.Wait()
	return first
}

// SplitAddrs sorts this host's interface addresses into those on the
// sandbox network and the others (loopback left out of both).
func SplitAddrs(inside netip.Prefix) (in, out []netip.Addr, err error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, nil, err
	}
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
		switch {
		case ip.IsLoopback() || ip.IsLinkLocalUnicast():
		case inside.Contains(ip):
			in = append(in, ip)
		default:
			out = append(out, ip)
		}
	}
	return in, out, nil
}
