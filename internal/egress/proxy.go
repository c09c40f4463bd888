package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// Ports the proxy serves on the sandbox network.
const (
	ProxyPort   = 3128
	HTTPPort    = 80
	TLSPort     = 443
	DNSPort     = 53
	ControlPort = 9000
)

// helloTimeout bounds how long a transparent TLS client may take to send
// its ClientHello, so idle connections do not pile up.
const helloTimeout = 30 * time.Second

// ProxyHandler serves HTTP_PROXY/HTTPS_PROXY clients: CONNECT tunnels and
// absolute-URI HTTP requests.
func (s *Server) ProxyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			s.connect(w, r)
			return
		}
		if r.URL.Host == "" {
			http.Error(w, "sbx egress proxy: send absolute URLs (HTTP_PROXY) or CONNECT", http.StatusBadRequest)
			return
		}
		s.forward(w, r, "proxy")
	})
}

// TransparentHTTPHandler serves plain HTTP that a sandbox sent to the
// proxy's address because the sandbox resolver answered with it: the
// destination is the Host header.
func (s *Server) TransparentHTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			http.Error(w, "CONNECT goes to port "+strconv.Itoa(ProxyPort), http.StatusMethodNotAllowed)
			return
		}
		r.URL.Scheme, r.URL.Host = "http", r.Host
		s.forward(w, r, "http")
	})
}

func splitHostPort(hostport string, def int) (string, int, bool) {
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port.
		if strings.Count(hostport, ":") > 1 && !strings.HasPrefix(hostport, "[") {
			return "", 0, false
		}
		return trimBrackets(hostport), def, hostport != ""
	}
	p, err := strconv.Atoi(ps)
	if err != nil {
		return "", 0, false
	}
	return host, p, host != ""
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	sandbox, src, m := s.who(mustAddr(r.RemoteAddr))
	host, port, ok := splitHostPort(r.Host, 443)
	if !ok {
		_ = s.deny(sandbox, src, r.Host, "connect", "bad CONNECT target")
		http.Error(w, "bad CONNECT target", http.StatusBadRequest)
		return
	}
	// Decided (and resolved) before the answer, so a refusal is a 403
	// the client can show; the connect itself overlaps with the client's
	// first flight.
	addrs, err := s.plan(r.Context(), sandbox, src, m, host, port, "connect")
	if err != nil {
		refuse(w, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	// The tunnel outlives the request: its context ends with the server.
	ctx := context.WithoutCancel(r.Context())
	type dialed struct {
		c   net.Conn
		err error
	}
	upc := make(chan dialed, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		up, err := s.connectAny(ctx, sandbox, src, host, port, "connect", addrs)
		upc <- dialed{up, err}
		if err != nil {
			return
		}
		// The server may speak first (ssh, smtp): its bytes flow at
		// once, whatever the client does.
		pipe(conn, up)
	}()
	pre, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pre)), conn), maxHello+5)
	sni, perr := peekSNI(br)
	d := <-upc
	if d.err != nil {
		<-done
		return
	}
	up := d.c
	defer up.Close()
	if perr == nil && sni != "" && !strings.EqualFold(strings.TrimSuffix(sni, "."), strings.TrimSuffix(host, ".")) {
		if _, err := netip.ParseAddr(trimBrackets(host)); err != nil {
			// A name checked in CONNECT and another in the TLS hello:
			// the tunnel goes to the checked one's address anyway, so
			// this is a client trying something; refuse it so it is
			// seen.
			_ = s.deny(sandbox, src, net.JoinHostPort(host, strconv.Itoa(port)), "connect", "TLS server name "+sni+" does not match the CONNECT target")
			up.Close()
			conn.Close()
			<-done
			return
		}
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := up.Write(b); err != nil {
			up.Close()
			<-done
			return
		}
	}
	pipe(up, conn)
	<-done
}

func mustAddr(s string) net.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

// pipe copies src to dst (splice(2) between two TCP connections) and then
// half-closes dst, so each direction ends on its own.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		dst.Close()
	}
	if cr, ok := src.(interface{ CloseRead() error }); ok {
		_ = cr.CloseRead()
	}
}

func refuse(w http.ResponseWriter, err error) {
	var d *denial
	if errors.As(err, &d) {
		w.Header().Set("X-Sbx-Egress-Denied", d.reason)
		http.Error(w, "sbx egress policy: "+d.reason, http.StatusForbidden)
		return
	}
	http.Error(w, "sbx egress proxy: "+err.Error(), http.StatusBadGateway)
}

// hopHeaders are the connection's, not the request's (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

type ctxKey struct{}

type dialWho struct {
	sandbox string
	src     netip.Addr
	m       *netpolicy.Matcher
	via     string
}

func (s *Server) transport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			w, _ := ctx.Value(ctxKey{}).(*dialWho)
			if w == nil {
				return nil, errors.New("no client")
			}
			host, port, ok := splitHostPort(addr, 80)
			if !ok {
				return nil, errors.New("bad address")
			}
			return s.dial(ctx, w.sandbox, w.src, w.m, host, port, w.via)
		},
		// Connections are pooled by host only, one pool per client and
		// policy (client), and every request is decided before it may
		// use one; none is kept long.
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
}

func (s *Server) forward(w http.ResponseWriter, r *http.Request, via string) {
	sandbox, src, m, tr := s.whoTr(mustAddr(r.RemoteAddr))
	if r.URL.Scheme != "http" {
		_ = s.deny(sandbox, src, r.URL.Host, via, "scheme "+r.URL.Scheme+" (use CONNECT for https)")
		http.Error(w, "only http:// is forwarded; https goes through CONNECT", http.StatusBadRequest)
		return
	}
	host, port, ok := splitHostPort(r.URL.Host, 80)
	if !ok {
		_ = s.deny(sandbox, src, r.URL.Host, via, "bad host")
		http.Error(w, "bad host", http.StatusBadRequest)
		return
	}
	if ok, why := m.Dest(host); !ok {
		refuse(w, s.deny(sandbox, src, net.JoinHostPort(host, strconv.Itoa(port)), via, why))
		return
	}
	// The body may still be on its way when the answer's headers go
	// out (an upload answered early): keep reading it.
	_ = http.NewResponseController(w).EnableFullDuplex()
	out := r.Clone(context.WithValue(r.Context(), ctxKey{}, &dialWho{sandbox, src, m, via}))
	out.RequestURI = ""
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := tr.RoundTrip(out)
	if err != nil {
		refuse(w, err)
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// ServeTLS serves transparent TLS on l: the ClientHello's server name is
// the destination, and the bytes go on unchanged.
func (s *Server) ServeTLS(ctx context.Context, l net.Listener) error {
	for {
		c, err := l.Accept()
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
		go s.transparentTLS(ctx, c)
	}
}

func (s *Server) transparentTLS(ctx context.Context, c net.Conn) {
	defer c.Close()
	sandbox, src, m := s.who(c.RemoteAddr())
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	br := bufio.NewReaderSize(c, maxHello+5)
	sni, err := peekSNI(br)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil || sni == "" {
		reason := "no TLS server name"
		if err != nil && !errors.Is(err, errNotTLS) {
			reason = "no TLS client hello: " + err.Error()
		}
		_ = s.deny(sandbox, src, "(unknown):443", "tls", reason)
		return
	}
	up, err := s.dial(ctx, sandbox, src, m, sni, TLSPort, "tls")
	if err != nil {
		return
	}
	defer up.Close()
	b, _ := br.Peek(br.Buffered())
	if _, err := up.Write(b); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		pipe(c, up)
		close(done)
	}()
	pipe(up, c)
	<-done
}
