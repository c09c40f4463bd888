// Package server is sandbox-api's HTTP side: the runtime API that
// OpenHands' three clients call (spec/runtime-api.md: V1's SDK and app
// server, V0's RemoteRuntime), authenticated per tenant, and the
// streaming reverse proxy that gives every runtime its one URL on the
// service itself (path mode, <base>/<runtime_id>/…). Runtimes run on a
// driver of the backend seam; the service never names one.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// Store is what the service keeps its state in (store.Store).
type Store interface {
	Authenticate(ctx context.Context, secret string) (store.Key, error)
	CreateRuntime(ctx context.Context, r store.Runtime) (store.Runtime, error)
	Runtime(ctx context.Context, tenant, id string) (store.Runtime, error)
	BySession(ctx context.Context, tenant, sessionID string) (store.Runtime, error)
	List(ctx context.Context, f store.Filter) ([]store.Runtime, error)
	Update(ctx context.Context, id string, change func(*store.Runtime) error) (store.Runtime, error)
	Ping(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	Store Store
	// Driver runs the runtimes; Caps is what it can do (Pause is needed
	// for /pause, Workloads for V1 images).
	Driver driver.Driver
	Caps   driver.Capabilities
	// Backend names the driver in records ("docker").
	Backend string
	// PublicURL is the service's base URL as clients reach it; a
	// runtime's url is PublicURL/<runtime_id> (path mode).
	PublicURL string
	// Domain, when set, is subdomain mode: a runtime's url is
	// <scheme>://<runtime_id>.<Domain>[:<PublicURL's port>], its services
	// <service>-<runtime_id>.<Domain>; *.Domain must resolve to the
	// service. The API stays at PublicURL.
	Domain string
	// AutoResume makes the first proxied request to a paused runtime
	// resume it instead of answering 503.
	AutoResume bool
	// StartTimeout bounds a runtime's start, from /start (or /resume) to
	// its health route answering; default 5 minutes.
	StartTimeout time.Duration
	// MaxStarting bounds the starts in flight; default 16.
	MaxStarting int
	// SweepInterval is how often sandboxes without a live runtime are
	// removed (after Reconcile); default 15 s.
	SweepInterval time.Duration
	// Labels go on every sandbox (the service's own, for reconciling).
	Labels map[string]string
	Logger *slog.Logger
	// HTTPClient checks workloads' health routes; nil is a default.
	HTTPClient *http.Client
}

// Server is the runtime API and the proxy, one http.Handler.
type Server struct {
	cfg   Config
	log   *slog.Logger
	hc    *http.Client
	slots chan struct{}

	// ctx is cancelled by Close: background starts and health watches end.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	routes *routeTable
	mux    *http.ServeMux
	urls   urls

	tr        http.RoundTripper // nil (tests' bare servers): http.DefaultTransport
	sweepOnce sync.Once
	bufs      sync.Pool // the proxy's copy buffers, *[]byte of proxyBufSize
	objects   objectCache
	auths     authCache
	bld       builds
}

// maxBody bounds every request body the API reads (the proxy streams).
const maxBody = 1 << 20

// New makes a server. Call Close to stop its background work.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Driver == nil {
		return nil, errors.New("server: Config.Store and Config.Driver are required")
	}
	if cfg.PublicURL == "" {
		return nil, errors.New("server: Config.PublicURL is required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	us, err := newURLs(cfg.PublicURL, cfg.Domain)
	if err != nil {
		return nil, err
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 5 * time.Minute
	}
	if cfg.MaxStarting <= 0 {
		cfg.MaxStarting = 16
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	cfg.Store = newCachedStore(cfg.Store)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, urls: us, log: cfg.Logger, hc: hc, slots: make(chan struct{}, cfg.MaxStarting),
		ctx: ctx, cancel: cancel, routes: newRouteTable(), tr: newTransport(), bld: builds{running: make(chan struct{}, maxBuildsRunning)}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("POST /start", s.auth(s.start))
	mux.HandleFunc("GET /sessions/batch", s.auth(s.batch))
	mux.HandleFunc("GET /sessions/{session_id}", s.auth(s.session))
	mux.HandleFunc("GET /runtime/{runtime_id}", s.auth(s.runtime))
	mux.HandleFunc("GET /list", s.auth(s.list))
	mux.HandleFunc("POST /pause", s.auth(s.pause))
	mux.HandleFunc("POST /resume", s.auth(s.resume))
	mux.HandleFunc("POST /stop", s.auth(s.stop))
	mux.HandleFunc("GET /sbx/v1/runtimes/{runtime_id}/logs", s.auth(s.logs))
	mux.HandleFunc("GET /registry_prefix", s.auth(s.registryPrefixRoute))
	mux.HandleFunc("GET /image_exists", s.auth(s.imageExists))
	mux.HandleFunc("POST /build", s.auth(s.build))
	mux.HandleFunc("GET /build_status", s.auth(s.buildStatus))
	mux.HandleFunc("/", s.notFound)
	s.mux = mux
	return s, nil
}

// Close ends background starts and health watches and waits for them.
// Runtimes keep running; a later server reconciles them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// ServeHTTP sends a runtime's host name (subdomain mode) and
// /<runtime_id>/… to the proxy and everything else to the API. Runtime
// ids carry a prefix no API route has.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, svc, err := s.urls.route(r.Host); err == nil {
		if id != "" {
			s.proxyTo(w, r, id, svc, r.URL.EscapedPath())
			return
		}
		// <service>-<public host>/<runtime_id>/…: path mode, with the
		// service named by the host.
		pid, psvc, rest := splitProxyPath(r.URL.EscapedPath())
		if psvc == svcMain {
			psvc = svc
		}
		s.proxyTo(w, r, pid, psvc, rest)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/"+runtimeIDPrefix) {
		s.proxy(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

type tenantKey struct{}

func tenantOf(r *http.Request) string { return r.Context().Value(tenantKey{}).(string) }

// auth admits a request carrying a tenant's X-API-Key. X-Session-API-Key,
// which the SDK and V0 also send here once they know a runtime, is
// ignored (spec §3).
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if key == "" {
			writeError(w, errdefs.New(errdefs.ErrUnauthorized, "X-API-Key header is missing"))
			return
		}
		k, err := s.auths.authenticate(r.Context(), s.cfg.Store, key)
		if err != nil {
			if !errors.Is(err, errdefs.ErrUnauthorized) {
				s.log.Error("authenticating", "err", err)
			}
			writeError(w, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, k.ID)))
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
}

// readJSON decodes a bounded JSON body into v.
func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "reading the body: "+err.Error())
	}
	if len(b) > maxBody {
		return errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "invalid JSON body: "+err.Error())
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers err FastAPI-style, {"detail": "…"}, which V0's
// send_request puts into its message; the status comes from the errdefs
// table, the one map from classes to HTTP.
func writeError(w http.ResponseWriter, err error) {
	status := errdefs.HTTPStatus(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal error"
	}
	writeJSON(w, status, map[string]string{"detail": msg})
}

// equalKey compares secrets in constant time.
func equalKey(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
