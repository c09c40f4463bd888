// Package swerex is SWE-ReX's remote runtime protocol (the HTTP server
// SWE-agent talks to, `swerex-remote`) served by sandboxd: the routes,
// models, authentication, request-id replay and exception transport of
// spec swerex-remote.md, over bash sessions from package session.
package swerex

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/internal/swerex/session"
	"github.com/sbx-dev/sbx/internal/term"
)

// Version is the SWE-ReX release whose protocol this is; swerex-remote
// --version prints it, as the Python server prints its own.
const Version = "1.4.0"

// maxJSONBody bounds a JSON request (write_file carries whole files).
const maxJSONBody = 512 << 20

// Config configures a Server.
type Config struct {
	// Token is the X-API-Key every request must carry; empty turns
	// authentication off, as upstream's --auth-token "".
	Token   string
	Logger  *slog.Logger
	Starter term.Starter
	// Env is the environment sessions and commands inherit. EnvFunc, if
	// set, is asked instead each time one starts (a warm-pool claim adds
	// variables after start-up).
	Env     []string
	EnvFunc func() []string
	// Dir is the server's working directory: sessions start in it and
	// relative paths resolve against it.
	Dir string
	// Credential is who sessions and commands run as; nil: the server's
	// user.
	Credential *syscall.Credential
}

// Server is the SWE-ReX runtime: its sessions and the last request's
// reply for X-Request-ID replay.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*entry

	replayMu sync.Mutex
	lastID   string
	lastResp *recorded
}

// entry is a registered session. Upstream registers a session before it
// starts and keeps its name after /close, so s can be nil.
type entry struct {
	ready chan struct{} // closed once start-up ended, well or not
	s     *session.Session
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger, sessions: make(map[string]*entry)}
}

type route struct {
	method string
	h      func(ctx context.Context, r *http.Request, body []byte) (any, error)
}

func (s *Server) routes() map[string]route {
	return map[string]route{
		"/": {http.MethodGet, func(context.Context, *http.Request, []byte) (any, error) {
			return map[string]string{"message": "hello world"}, nil
		}},
		"/is_alive":       {http.MethodGet, func(context.Context, *http.Request, []byte) (any, error) { return isAliveResponse{IsAlive: true}, nil }},
		"/create_session": {http.MethodPost, s.createSession},
		"/run_in_session": {http.MethodPost, s.runInSession},
		"/close_session":  {http.MethodPost, s.closeSession},
		"/execute":        {http.MethodPost, s.execute},
		"/read_file":      {http.MethodPost, s.readFile},
		"/write_file":     {http.MethodPost, s.writeFile},
		"/upload":         {http.MethodPost, s.upload},
		"/close":          {http.MethodPost, s.closeAll},
	}
}

func (s *Server) env() []string {
	if s.cfg.EnvFunc != nil {
		return s.cfg.EnvFunc()
	}
	return s.cfg.Env
}

// Handler serves the protocol.
func (s *Server) Handler() http.Handler {
	routes := s.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Authentication comes before routing, for every path, as
		// upstream's middleware; a missing key is 403 as in the FastAPI
		// release SWE-ReX's tests were written for.
		if s.cfg.Token != "" {
			key := r.Header.Get("X-API-Key")
			if key == "" {
				writeJSON(w, http.StatusForbidden, detail("Not authenticated"))
				return
			}
			if subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.Token)) != 1 {
				writeJSON(w, http.StatusUnauthorized, detail("Invalid API Key"))
				return
			}
		}
		id := r.Header.Get("X-Request-ID")
		if id != "" {
			if rec := s.replay(id); rec != nil {
				rec.writeTo(w)
				return
			}
		}
		rec := s.serve(routes, r)
		if id != "" && rec.status != 511 {
			s.remember(id, rec)
		}
		rec.writeTo(w)
	})
}

// recorded is a whole reply, kept for replay.
type recorded struct {
	status int
	header http.Header
	body   []byte
}

func (rec *recorded) writeTo(w http.ResponseWriter) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rec.body)))
	w.WriteHeader(rec.status)
	w.Write(rec.body)
}

func (s *Server) replay(id string) *recorded {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	if id == s.lastID {
		return s.lastResp
	}
	return nil
}

func (s *Server) remember(id string, rec *recorded) {
	s.replayMu.Lock()
	s.lastID, s.lastResp = id, rec
	s.replayMu.Unlock()
}

func (s *Server) serve(routes map[string]route, r *http.Request) *recorded {
	rt, ok := routes[r.URL.Path]
	if !ok {
		return jsonReply(http.StatusNotFound, detail("Not Found"))
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		rec := jsonReply(http.StatusMethodNotAllowed, detail("Method Not Allowed"))
		rec.header.Set("Allow", rt.method)
		return rec
	}
	var body []byte
	if r.URL.Path != "/upload" && r.Body != nil {
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxJSONBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return jsonReply(http.StatusRequestEntityTooLarge, detail("request body larger than "+strconv.Itoa(maxJSONBody)+" bytes"))
			}
			return jsonReply(http.StatusBadRequest, detail("reading request body: "+err.Error()))
		}
		body = b
		if rt.method == http.MethodPost && r.URL.Path != "/close" && !jsonBody(r.Header.Get("Content-Type")) {
			// FastAPI hands a body of another type to the model as text.
			return jsonReply(http.StatusUnprocessableEntity, map[string]any{"detail": []fieldError{{Type: "model_attributes_type",
				Loc: []any{"body"}, Msg: "Input should be a valid dictionary or object to extract fields from", Input: decodeBytes(b)}}})
		}
	}
	start := time.Now()
	v, err := rt.h(r.Context(), r, body)
	if err != nil {
		var ve *validationError
		if errors.As(err, &ve) {
			return jsonReply(http.StatusUnprocessableEntity, map[string]any{"detail": ve.Detail})
		}
		e := asException(err)
		s.log.Info("swerex exception", "path", r.URL.Path, "class", e.ClassPath, "err", e.Message, "took", time.Since(start))
		extra := e.Extra
		if extra == nil {
			extra = map[string]any{}
		}
		return jsonReply(511, map[string]any{"swerexception": exceptionTransfer{
			Message: e.Message, ClassPath: e.ClassPath, Traceback: "", ExtraInfo: extra,
		}})
	}
	s.log.Debug("swerex request", "path", r.URL.Path, "took", time.Since(start))
	return jsonReply(http.StatusOK, v)
}

// exceptionTransfer is _ExceptionTransfer. The traceback stays empty: the
// client logs it only when it is not, and a Go stack would tell an agent
// nothing.
type exceptionTransfer struct {
	Message   string         `json:"message"`
	ClassPath string         `json:"class_path"`
	Traceback string         `json:"traceback"`
	ExtraInfo map[string]any `json:"extra_info"`
}

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

func jsonReply(status int, v any) *recorded {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"detail":"encoding the reply failed"}`)
		status = http.StatusInternalServerError
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return &recorded{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: b}
}

func writeJSON(w http.ResponseWriter, status int, v any) { jsonReply(status, v).writeTo(w) }

// Close ends every session; the server itself goes on (upstream's /close).
func (s *Server) Close() {
	s.mu.Lock()
	var all []*entry
	for _, e := range s.sessions {
		all = append(all, e)
	}
	s.mu.Unlock()
	for _, e := range all {
		<-e.ready
		if e.s != nil {
			e.s.Close()
		}
	}
}
