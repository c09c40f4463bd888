// Package sandboxd is the HTTP layer of the in-sandbox server: it turns
// OpenHands' action execution protocol (spec §1–§4) into calls on the
// shell, the file operations and the transfer code, and errors into the
// documented statuses and bodies. It is the only package of sandboxd's
// build that serves HTTP; the packages it drives never see a request.
package sandboxd

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
	"sync/atomic"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ipython"
	"github.com/sbx-dev/sbx/internal/transfer"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// IPython is what the server needs to run IPython cells.
type IPython interface {
	Run(ctx context.Context, code, cwd string, timeout float64) (ipython.Result, error)
}

// Options configure a Server.
type Options struct {
	WorkDir       string
	SessionAPIKey string // empty: no authentication (spec §2.3)
	Plugins       []string
	Files         FileOps
	// IPython runs run_ipython cells; nil (or no "jupyter" plugin) answers
	// them as OpenHands does without Jupyter.
	IPython IPython
	// Upload configures /upload_file: the owner of created files and the
	// archive limits.
	Upload transfer.Options
	Logger *slog.Logger
	// MaxActionBytes bounds a /execute_action body.
	MaxActionBytes int64
	// Version is sandboxd's, for /server_info.
	Version string
	// MaxSessions bounds the named shell sessions (default 128).
	MaxSessions int
	// MaxInFlightBytes bounds the /execute_action bodies that all
	// requests together hold in memory (DefaultMaxInFlightBytes when
	// zero). A request that does not fit waits up to BusyWait
	// (DefaultBusyWait when zero) and is then answered 503 with
	// Retry-After.
	MaxInFlightBytes int64
	BusyWait         time.Duration
	// Procs runs the background processes of /sbx/v1/processes; nil
	// answers those routes 501.
	Procs Procs
	// Terminal says how /sbx/v1/attach starts new terminals.
	Terminal TerminalOptions
	// PoolSecret enables POST /sbx/v1/claim ("": the route is unknown).
	PoolSecret string
	// Env is what a claim adds to the environment of children started
	// later; nil: New makes one. The caller's shell factory, process
	// manager and terminals read it.
	Env *Environ
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Server serves the sandbox API. Create it with New, make it ready with
// SetReady once the shell is up, then serve Handler().
type Server struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	ready    atomic.Bool
	readyCh  chan struct{} // closed by SetReady
	start    time.Time
	lastExec atomic.Int64 // unix nanos of the last /execute_action start
	cpu      cpuSampler
	budget   *budget

	// actionMu serialises actions, as OpenHands' single asyncio.Lock does.
	// sbx's own routes never take it.
	actionMu sync.Mutex
	shell    Shell // the default session's, set by SetReady
	factory  ShellFactory
	reg      *registry
	caps     []string // extension features served, for /server_info
	terms    termSet  // the terminals /sbx/v1/attach started

	// key is the session key, replaced once by a claim.
	key     atomic.Pointer[string]
	env     *Environ
	claimMu sync.Mutex
	claimed bool
}

// New builds a server. It answers /alive with "not initialized" until
// SetReady is called.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxActionBytes <= 0 {
		opts.MaxActionBytes = 64 << 20
	}
	if opts.MaxInFlightBytes <= 0 {
		opts.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if opts.BusyWait <= 0 {
		opts.BusyWait = DefaultBusyWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, log: opts.Logger, start: opts.Now(), readyCh: make(chan struct{}), reg: newRegistry(opts.MaxSessions), budget: newBudget(opts.MaxInFlightBytes)}
	s.lastExec.Store(s.start.UnixNano())
	key := opts.SessionAPIKey
	s.key.Store(&key)
	s.env = opts.Env
	if s.env == nil {
		s.env = NewEnviron()
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

// SetReady attaches the OpenHands shell as the default session, and the
// factory that starts the others, and flips /alive to "ok". It is called
// once.
func (s *Server) SetReady(sh Shell, factory ShellFactory) error {
	if _, err := s.reg.add(DefaultSession, sh, s.opts.Now()); err != nil {
		return err
	}
	s.actionMu.Lock()
	s.shell, s.factory = sh, factory
	s.actionMu.Unlock()
	if !s.ready.Swap(true) {
		close(s.readyCh)
	}
	return nil
}

// Close ends every shell the server started and the default one; requests
// that start a shell fail from then on.
func (s *Server) Close() {
	s.reg.closeAll()
	s.terms.closeAll()
}

// Handler is the server's root handler: authentication, then routing.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET "+sandboxapi.PathAlive, s.handle(s.alive))
	if s.opts.PoolSecret != "" {
		s.caps = append(s.caps, "claim")
		s.mux.HandleFunc("POST "+PathClaim, s.handle(s.claim))
	}
	s.mux.HandleFunc("GET "+sandboxapi.PathServerInfo, s.handle(s.serverInfo))
	s.mux.HandleFunc("POST "+sandboxapi.PathExecuteAction, s.handle(s.executeAction))
	s.mux.HandleFunc("POST "+sandboxapi.PathUploadFile, s.handle(s.uploadFile))
	s.mux.HandleFunc("GET "+sandboxapi.PathDownloadFiles, s.handle(s.downloadFiles))
	s.mux.HandleFunc("POST "+sandboxapi.PathListFiles, s.handle(s.listFiles))
	s.mux.HandleFunc("GET "+sandboxapi.PathVSCodeToken, s.handle(s.vscodeToken))
	s.mux.HandleFunc("POST "+sandboxapi.PathUpdateMCPServer, s.handle(s.updateMCPServer))
	s.caps = append(s.caps, "watch")
	s.mux.HandleFunc("GET "+ExtPrefix+"watch", s.handle(s.watchDir))
	s.mux.HandleFunc("/mcp/", s.handle(s.mcpUnsupported))
	s.sessionRoutes()
	s.procRoutes()
	s.attachRoutes()
	s.mux.HandleFunc("/", s.handle(s.notFound))
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// Authentication comes before routing, as OpenHands' middleware does:
	// without the key even an unknown path answers 403.
	// The claim authenticates with the pool secret instead.
	if r.URL.Path == PathClaim && s.opts.PoolSecret != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	if key := *s.key.Load(); key != "" && r.URL.Path != sandboxapi.PathAlive && r.URL.Path != sandboxapi.PathServerInfo {
		got := r.Header.Get(sandboxapi.HeaderSessionAPIKey)
		if subtle.ConstantTimeCompare([]byte(got), []byte(key)) != 1 {
			writeJSON(w, http.StatusForbidden, sandboxapi.ErrorBody{Detail: "Invalid API Key"})
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// handlerFunc is a handler that returns its error instead of writing it;
// writeError is the one place errors become statuses.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p) // let net/http cut the connection
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", p)
				writeJSON(w, http.StatusInternalServerError, sandboxapi.ErrorBody{Detail: "An unexpected error occurred. Please try again later."})
			}
		}()
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// writeError maps an error to the status and body of spec §2.4/§2.5.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		if re.status >= 500 {
			s.log.Warn("request failed", "path", r.URL.Path, "status", re.status, "detail", re.detail)
		}
		writeJSON(w, re.status, sandboxapi.ErrorBody{Detail: re.detail, Errors: re.errors})
	case strings.HasPrefix(r.URL.Path, ExtPrefix):
		// sbx's own routes tell the class by status, from the one table.
		st := errdefs.HTTPStatus(err)
		if st >= 500 {
			s.log.Warn("request failed", "path", r.URL.Path, "status", st, "err", err)
		}
		if st == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, st, sandboxapi.ErrorBody{Detail: err.Error()})
	case errors.Is(err, errdefs.ErrUnavailable):
		// Only the memory budget fails this way on OpenHands' routes (a
		// file operation's error arrives as a requestError): busy, not
		// broken, so the client is told when to come back.
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, sandboxapi.ErrorBody{Detail: err.Error()})
	case errors.Is(err, errdefs.ErrInsufficientStorage):
		// sbx's one departure from OpenHands' 500: a full disk is told
		// apart on every route, so that a client frees space or retries.
		writeJSON(w, errdefs.HTTPStatus(errdefs.ErrInsufficientStorage), sandboxapi.ErrorBody{Detail: err.Error()})
	case errors.Is(err, errdefs.ErrTooLarge):
		// The host-side table agrees with OpenHands here (413); for every
		// other class OpenHands answers 500, so the table is not consulted.
		writeJSON(w, errdefs.HTTPStatus(errdefs.ErrTooLarge), sandboxapi.ErrorBody{Detail: err.Error()})
	default:
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, sandboxapi.ErrorBody{Detail: "An unexpected error occurred. Please try again later."})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalNoEscape(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"detail":"An unexpected error occurred. Please try again later."}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) alive(w http.ResponseWriter, r *http.Request) error {
	// sbx's drivers ask to wait for readiness (an extension; OpenHands'
	// client never sends the header), which saves the polling interval
	// from every sandbox start.
	if v := r.Header.Get(sandboxapi.HeaderWaitReady); v != "" && !s.ready.Load() {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			t := time.NewTimer(min(d, 30*time.Second))
			select {
			case <-s.readyCh:
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
	}
	st := "ok"
	if !s.ready.Load() {
		st = "not initialized"
	}
	writeJSON(w, http.StatusOK, sandboxapi.Alive{Status: st})
	return nil
}

// routeMethod is the method of a known route, so that the catch-all can
// answer 405, as FastAPI does, for a known path asked with the wrong method.
func routeMethod(path string) (string, bool) {
	switch path {
	case sandboxapi.PathAlive, sandboxapi.PathServerInfo, sandboxapi.PathDownloadFiles, sandboxapi.PathVSCodeToken:
		return http.MethodGet, true
	case sandboxapi.PathExecuteAction, sandboxapi.PathUploadFile, sandboxapi.PathListFiles, sandboxapi.PathUpdateMCPServer:
		return http.MethodPost, true
	}
	return "", false
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	if m, ok := routeMethod(r.URL.Path); ok {
		w.Header().Set("Allow", m)
		return &requestError{status: http.StatusMethodNotAllowed, detail: "Method Not Allowed"}
	}
	return &requestError{status: http.StatusNotFound, detail: "Not Found"}
}

func (s *Server) vscodeToken(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"token": nil})
	return nil
}

func (s *Server) updateMCPServer(w http.ResponseWriter, r *http.Request) error {
	var v any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&v); err != nil {
		return &requestError{status: 500, detail: "An unexpected error occurred. Please try again later."}
	}
	if _, ok := v.([]any); !ok {
		return &requestError{status: 500, detail: "400: Request must be a list of MCP tools to sync"}
	}
	return &requestError{status: 500, detail: "MCP Proxy Manager is not initialized"}
}

func (s *Server) mcpUnsupported(w http.ResponseWriter, r *http.Request) error {
	return &requestError{status: http.StatusNotImplemented, detail: "MCP is not supported by this sandbox server (sbx sandboxd)"}
}
