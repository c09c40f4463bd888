package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
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
// sandbox; hop-by-hop headers are dropped by httputil.ReverseProxy
// (which keeps an Upgrade it then tunnels).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, target *url.URL, rest string) {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = unescapedAndRaw(rest)
			pr.Out.Host = target.Host
			pr.Out.Header.Del("X-API-Key")
			pr.SetXForwarded()
		},
		Transport: s.tr,
		// 0: ReverseProxy flushes event streams and bodies of unknown
		// length as they come on its own, and batches the rest.
		FlushInterval: 0,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			s.log.Debug("proxy: sandbox not reachable", "target", target.Host, "err", err)
			writeJSON(w, http.StatusBadGateway, map[string]string{"detail": "runtime not reachable"})
		},
	}
	p.ServeHTTP(w, r)
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
