package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// Services of path mode: <url> itself, and <url>/vscode, /work-1, /work-2
// (spec §7).
const (
	svcMain    = ""
	svcVSCode  = "vscode"
	svcWorker1 = "work-1"
	svcWorker2 = "work-2"
)

// route is where a runtime's services are, and its state, held in memory
// so that a proxied request reads no database.
type route struct {
	id      string
	state   store.State
	targets map[string]*url.URL
}

type routeTable struct {
	mu sync.RWMutex
	m  map[string]*route
}

func newRouteTable() *routeTable { return &routeTable{m: map[string]*route{}} }

func (t *routeTable) get(id string) (route, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.m[id]
	if !ok {
		return route{}, false
	}
	return *r, true
}

func (t *routeTable) set(r route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[r.id] = &r
}

func (t *routeTable) setState(id string, st store.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.m[id]; ok {
		r.state = st
	}
}

func (t *routeTable) delete(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// routeOf maps a runtime's services to the host ports its sandbox
// publishes: the agent-server's four ports for V1; sandboxd's server and
// app ports for V0.
func routeOf(rec store.Runtime, ws workloadSpec, sb driver.Sandbox) (route, error) {
	rt := route{id: rec.ID, state: rec.State, targets: map[string]*url.URL{}}
	// The sandbox's own address where the driver has one: one hop less
	// than the engine's port proxy (the service runs on the engine's host).
	pick := func(direct, published string) string {
		if direct != "" {
			return direct
		}
		return published
	}
	byPort := map[int]string{}
	for _, p := range sb.AppPorts {
		byPort[p.Sandbox] = pick(p.Direct, p.URL)
	}
	want := map[string]string{}
	if ws.Kind == kindV0 {
		want[svcMain] = pick(sb.Endpoint.Direct, sb.Endpoint.URL)
		want[svcWorker1], want[svcWorker2] = byPort[appPort1], byPort[appPort2]
	} else {
		want[svcMain], want[svcVSCode] = byPort[portAgentServer], byPort[portVSCode]
		want[svcWorker1], want[svcWorker2] = byPort[portWorker1], byPort[portWorker2]
	}
	for svc, raw := range want {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return rt, fmt.Errorf("the sandbox's %q address %q: %w", svc, raw, err)
		}
		rt.targets[svc] = u
	}
	if rt.targets[svcMain] == nil {
		return rt, errdefs.New(errdefs.ErrUnavailable, "the sandbox publishes no server port")
	}
	return rt, nil
}

// splitProxyPath reads /<runtime_id>[/<service>]/rest.
func splitProxyPath(p string) (id, svc, rest string) {
	p = strings.TrimPrefix(p, "/")
	id, rest, _ = strings.Cut(p, "/")
	rest = "/" + rest
	for _, s := range []string{svcVSCode, svcWorker1, svcWorker2} {
		if rest == "/"+s || strings.HasPrefix(rest, "/"+s+"/") {
			return id, s, "/" + strings.TrimPrefix(strings.TrimPrefix(rest, "/"+s), "/")
		}
	}
	return id, svcMain, rest
}

// proxy forwards /<runtime_id>/… to the runtime, streaming both ways
// (WebSocket upgrades, Server-Sent Events and chunked bodies pass through
// as they come). Answers of its own, as V0 reads them (spec §9): 404 for
// a runtime that does not exist or was stopped, 503 for a paused one
// (V0 then resumes it; with AutoResume the proxy does), 502 while the
// sandbox is not listening.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request) {
	id, svc, rest := splitProxyPath(r.URL.EscapedPath())
	s.proxyTo(w, r, id, svc, rest)
}

// proxyTo forwards a request for one service of a runtime, rest being
// the workload's (escaped) path.
func (s *Server) proxyTo(w http.ResponseWriter, r *http.Request, id, svc, rest string) {
	rt, ok := s.routes.get(id)
	if !ok {
		rec, err := s.cfg.Store.Runtime(r.Context(), "", id)
		switch {
		case errors.Is(err, errdefs.ErrNotFound) || err == nil && rec.State == store.Stopped:
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "runtime not found"})
		case err != nil:
			s.log.Error("proxy: reading the runtime", "runtime", id, "err", err)
			writeJSON(w, http.StatusBadGateway, map[string]string{"detail": "runtime unavailable"})
		default:
			writeJSON(w, http.StatusBadGateway, map[string]string{"detail": "runtime " + string(rec.State) + ": not reachable yet"})
		}
		return
	}
	switch rt.state {
	case store.Paused:
		if !s.cfg.AutoResume {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "runtime paused"})
			return
		}
		if err := s.autoResume(r.Context(), id); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "runtime paused; resuming it failed: " + err.Error()})
			return
		}
		rt, _ = s.routes.get(id)
	case store.Error, store.Stopped:
		writeJSON(w, http.StatusBadGateway, map[string]string{"detail": "runtime " + string(rt.state)})
		return
	}
	target := rt.targets[svc]
	if target == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "runtime " + id + " has no " + svc + " service"})
		return
	}
	s.forward(w, r, target, rest)
}

// autoResume resumes a paused runtime for a proxied request and waits
// until its health route answers.
func (s *Server) autoResume(ctx context.Context, id string) error {
	rec, err := s.cfg.Store.Runtime(ctx, "", id)
	if err != nil {
		return err
	}
	if _, err := s.resumeRuntime(ctx, rec); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	for {
		if rt, ok := s.routes.get(id); ok && rt.state == store.Running {
			return nil
		} else if ok && (rt.state == store.Error || rt.state == store.Stopped) {
			return fmt.Errorf("it is %s", rt.state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// forward proxies one request. The tenant's X-API-Key never reaches the
// sandbox; hop-by-hop headers are dropped. A protocol upgrade (WebSocket)
// goes through httputil.ReverseProxy, which tunnels it; every other
// request through forwardPlain, which does what ReverseProxy does for it
// (with the same rewrite) at less cost per request: the proxy's overhead
// is on every action a client sends.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, target *url.URL, rest string) {
	if isUpgrade(r.Header) {
		s.forwardUpgrade(w, r, target, rest)
		return
	}
	s.forwardPlain(w, r, target, rest)
}

func (s *Server) transport() http.RoundTripper {
	if s.tr == nil {
		return http.DefaultTransport
	}
	return s.tr
}

// forwardUpgrade proxies a request asking for a protocol upgrade.
func (s *Server) forwardUpgrade(w http.ResponseWriter, r *http.Request, target *url.URL, rest string) {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = unescapedAndRaw(rest)
			pr.Out.Host = target.Host
			pr.Out.Header.Del("X-API-Key")
			pr.SetXForwarded()
		},
		Transport: s.transport(),
		// 0: ReverseProxy flushes event streams and bodies of unknown
		// length as they come on its own, and batches the rest.
		FlushInterval: 0,
		BufferPool:    (*bufferPool)(&s.bufs),
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.unreachable(w, target, err)
		},
	}
	p.ServeHTTP(w, r)
}

func (s *Server) unreachable(w http.ResponseWriter, target *url.URL, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Debug("proxy: sandbox not reachable", "target", target.Host, "err", err)
	writeJSON(w, http.StatusBadGateway, map[string]string{"detail": "runtime not reachable"})
}

// forwardPlain proxies a request that asks for no upgrade, as
// httputil.ReverseProxy with forwardUpgrade's Rewrite would: the same
// headers out (hop-by-hop ones and those Connection names dropped, Te:
// trailers kept, X-Forwarded-For/-Host/-Proto set afresh, no Go
// User-Agent added), the same query cleaning, 1xx answers passed on,
// event streams and bodies of unknown length flushed as they come,
// trailers passed on, and a broken body copy aborting the answer. What it
// saves: ReverseProxy's clone of the request and its headers' values, a
// 32 KiB copy buffer per request (pooled here), and its re-parsing.
func (s *Server) forwardPlain(w http.ResponseWriter, r *http.Request, target *url.URL, rest string) {
	h := make(http.Header, len(r.Header)+3)
	dropped := connectionTokens(r.Header["Connection"])
	for k, vv := range r.Header {
		if dropHeader(k) || dropped != nil && dropped[k] {
			continue
		}
		h[k] = vv // values are only read on the way out: shared, not copied
	}
	if headerHasToken(r.Header["Te"], "trailers") {
		h["Te"] = []string{"trailers"}
	}
	fwd := make([]string, 3) // one allocation for the three values
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		fwd[0] = ip
		h["X-Forwarded-For"] = fwd[0:1:1]
	}
	fwd[1] = r.Host
	h["X-Forwarded-Host"] = fwd[1:2:2]
	fwd[2] = "http"
	if r.TLS != nil {
		fwd[2] = "https"
	}
	h["X-Forwarded-Proto"] = fwd[2:3:3]
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // send none rather than Go's
	}

	// 1xx answers (103 Early Hints) go to the client as they come, until
	// the final answer.
	x := &oneXX{w: w}
	x.trace.Got1xxResponse = x.got
	ctx := httptrace.WithClientTrace(r.Context(), &x.trace)

	path, raw := unescapedAndRaw(rest)
	out := (&http.Request{
		Method:     r.Method,
		URL:        &url.URL{Scheme: target.Scheme, Host: target.Host, Path: path, RawPath: raw, RawQuery: cleanQuery(r.URL.RawQuery)},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       target.Host,
		Trailer:    r.Trailer,
	}).WithContext(ctx)
	switch {
	case r.ContentLength > 0 && r.ContentLength <= maxPreread && len(r.Header["Expect"]) == 0:
		// A small body of known length (an action) is read first and
		// sent with the headers in one write: the transport writes the
		// headers of a body it cannot see into on their own, a second
		// write and wake-up of the sandbox's server per request. Read
		// whole, it can also be sent again on a kept-alive connection
		// the sandbox had closed. (A client that expects 100-continue
		// waits for the sandbox's word first: streamed as it comes.)
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			s.log.Debug("proxy: reading the request body", "err", err)
			s.unreachable(w, target, err)
			return
		}
		out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(b)), r.ContentLength
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	case r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody:
		// The transport closes the body it is given when it fails; the
		// client's body must stay open (a 100-continue client has not
		// sent it yet), and must not be read after this handler returns.
		body := &noopCloseReader{rc: r.Body}
		defer body.Close()
		out.Body, out.ContentLength = body, r.ContentLength
		// The workload may answer before it has read all of it (a
		// stream that starts at once): without full duplex Go's server
		// stops the body when the answer's headers are flushed, and
		// the transport drops the connection to the workload.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}

	res, err := s.transport().RoundTrip(out)
	x.finish()
	if err != nil {
		s.unreachable(w, target, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Not asked for (isUpgrade said no): nothing to tunnel.
		res.Body.Close()
		s.unreachable(w, target, errors.New("101 Switching Protocols to a request without an upgrade"))
		return
	}
	removeHopByHop(res.Header)
	wh := w.Header()
	for k, vv := range res.Header {
		if len(wh[k]) == 0 {
			wh[k] = vv // res is ours alone: its values need no copy
		} else {
			wh[k] = append(wh[k], vv...)
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		wh.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := s.copyBody(w, res); err != nil {
		res.Body.Close()
		s.log.Debug("proxy: copying the answer", "target", target.Host, "err", err)
		if r.Context().Value(http.ServerContextKey) == nil {
			return // not under net/http's server, which recovers the panic
		}
		// The status is out: all that is left is to cut the answer
		// short, which the server does for this panic.
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, to fill res.Trailer
	if len(res.Trailer) > 0 {
		// Chunked, so that net/http adds no Content-Length to a short
		// body and the trailers can follow it.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			wh[k] = append(wh[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			wh.Add(http.TrailerPrefix+k, v)
		}
	}
}

// copyBody copies an answer's body to the client: event streams and
// bodies of unknown length flushed after every read (and their headers
// at once), others as the server's buffer fills.
func (s *Server) copyBody(w http.ResponseWriter, res *http.Response) error {
	flush := res.ContentLength == -1 || isEventStream(res.Header.Get("Content-Type"))
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
		_ = rc.Flush()
	}
	bp := s.getBuf()
	defer s.bufs.Put(bp)
	buf := *bp
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// maxPreread bounds a request body forwardPlain reads before sending
// it (the rest stream).
const maxPreread = 64 << 10

// proxyBufSize is the copy buffer's size, ReverseProxy's own.
const proxyBufSize = 32 << 10

func (s *Server) getBuf() *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, proxyBufSize)
	return &b
}

// bufferPool is Server.bufs as ReverseProxy's BufferPool.
type bufferPool sync.Pool

func (p *bufferPool) Get() []byte {
	if bp, ok := (*sync.Pool)(p).Get().(*[]byte); ok {
		return *bp
	}
	return make([]byte, proxyBufSize)
}

func (p *bufferPool) Put(b []byte) {
	if cap(b) == proxyBufSize {
		b = b[:proxyBufSize]
		(*sync.Pool)(p).Put(&b)
	}
}

// oneXX passes the sandbox's 1xx answers on while the round trip lasts.
type oneXX struct {
	mu    sync.Mutex
	done  bool
	w     http.ResponseWriter
	trace httptrace.ClientTrace
}

func (x *oneXX) got(code int, header textproto.MIMEHeader) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done {
		return nil // the final answer is being written: hands off its headers
	}
	h := x.w.Header()
	for k, vv := range header {
		h[k] = append(h[k], vv...)
	}
	x.w.WriteHeader(code)
	clear(h) // WriteHeader keeps a 1xx's headers; the final answer has its own
	return nil
}

func (x *oneXX) finish() {
	x.mu.Lock()
	x.done = true
	x.mu.Unlock()
}

// noopCloseReader is the client's body as the transport sees it: Close
// only stops further reads.
type noopCloseReader struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

func (b *noopCloseReader) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("proxy: read of the request body after its handler returned")
	}
	return b.rc.Read(p)
}

func (b *noopCloseReader) Close() error {
	b.closed.Store(true)
	return nil
}

// isHopHeader: a hop-by-hop header, dropped both ways (RFC 9110 §7.6.1,
// and the older ones ReverseProxy drops too), in its canonical form.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// dropHeader: a request header that does not go to the sandbox, in its
// canonical form: hop-by-hop ones, the tenant's key, and forwarding
// headers the client sent (forwardPlain sets its own).
func dropHeader(k string) bool {
	switch k {
	case "X-Api-Key", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return isHopHeader(k)
}

// connectionTokens are the headers a Connection header names (nil for
// none, the common case).
func connectionTokens(vv []string) map[string]bool {
	var m map[string]bool
	for _, v := range vv {
		for t := range strings.SplitSeq(v, ",") {
			if t = textproto.TrimString(t); t != "" {
				if m == nil {
					m = map[string]bool{}
				}
				m[textproto.CanonicalMIMEHeaderKey(t)] = true
			}
		}
	}
	return m
}

func removeHopByHop(h http.Header) {
	for k := range connectionTokens(h["Connection"]) {
		delete(h, k)
	}
	for k := range h {
		if isHopHeader(k) {
			delete(h, k)
		}
	}
}

// headerHasToken: one of the comma-separated values is token (any case).
func headerHasToken(vv []string, token string) bool {
	for _, v := range vv {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// isUpgrade is ReverseProxy's test for a request it tunnels; a request
// with an Upgrade header that Connection does not name goes there too,
// which drops it as ReverseProxy would.
func isUpgrade(h http.Header) bool {
	return len(h["Upgrade"]) > 0 || headerHasToken(h["Connection"], "upgrade")
}

func isEventStream(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// cleanQuery is ReverseProxy's cleaning of the query: one it would
// not parse (a semicolon, a broken escape, too many parameters) is sent
// re-encoded, without what it could not parse.
func cleanQuery(q string) string {
	reencode := func() string {
		v, _ := url.ParseQuery(q)
		return v.Encode()
	}
	if strings.Count(q, "&") >= 10000 {
		return reencode()
	}
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return reencode()
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return reencode()
			}
			i += 3
		default:
			i++
		}
	}
	return q
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unescapedAndRaw(escaped string) (string, string) {
	u, err := url.PathUnescape(escaped)
	if err != nil {
		return escaped, ""
	}
	if u == escaped {
		return u, ""
	}
	return u, escaped
}

// newTransport is shared by every proxied request: kept-alive connections
// to each sandbox, so the proxy adds no handshake per action.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // actions can run for hours
		ExpectContinueTimeout: time.Second,
	}
}
