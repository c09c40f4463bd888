// Command agentserver is a STAND-IN for OpenHands' V1 agent-server image
// (ghcr.io/openhands/agent-server), which cannot be pulled here. It exists
// only so sandbox-api's tests have a workload that behaves, on the wire,
// like what ../shared/spec/runtime-api.md §8.1 says the runtime-API
// clients touch. It is not the agent-server and implements no agent.
//
// What it copies from §8.1:
//   - `--port N` (default 8000) and `--host`; without `--host` it binds
//     127.0.0.1 unless a session key is configured (env SESSION_API_KEY or
//     OH_SESSION_API_KEYS_0, …), then 0.0.0.0.
//   - /alive, /health ({"status":"ok"}), /ready and /server_info answer
//     without auth.
//   - every /api/… route requires X-Session-API-Key to equal one of the
//     configured keys (401 otherwise); with no key configured, none is
//     checked (the real server's behaviour when it has no keys).
//
// What it adds for tests (shapes are ours, paths follow the real server's
// where one exists): /api/conversations (create, get, events/search),
// /api/stream (Server-Sent Events every 100 ms), /sockets/events/{id}
// (WebSocket echo), /api/file/upload|download/{path}, and under
// /api/sbx-standin/ a counter the program itself runs (the probe that a
// process survives pause and resume) and whoami (its uid, gid and working
// directory). The image is FROM scratch, so there is no shell:
// /api/bash/execute_bash_command answers 501 rather than 404, so a client
// that still sends commands learns why. Logs are JSON (slog) on stderr.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

const (
	defaultPort = 8000
	// maxBody bounds every request body; tests send small ones.
	maxBody = 32 << 20
	tick    = 100 * time.Millisecond
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run is the whole program; ready, when set, receives the bound address
// (tests listen on port 0).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready chan<- string) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	fs := flag.NewFlagSet("openhands-agent-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", defaultPort, "port to listen on")
	host := fs.String("host", "", "address to bind (default 127.0.0.1, or 0.0.0.0 when a session key is configured)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		return 2
	}
	keys := sessionKeys(getenv)
	bind := bindHost(*host, keys)
	addr := net.JoinHostPort(bind, strconv.Itoa(*port))
	// An IPv4 address binds IPv4 only, as uvicorn does with 0.0.0.0 (Go's
	// "tcp" would take it for the dual-stack wildcard).
	network := "tcp"
	if ip := net.ParseIP(bind); ip != nil && ip.To4() != nil {
		network = "tcp4"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		log.Error("listen", "addr", addr, "err", err)
		return 1
	}
	s := newServer(ctx, keys, log)
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	log.Info("listening", "addr", ln.Addr().String(), "auth", len(keys) > 0, "standin", true)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	log.Info("stopped")
	return 0
}

// sessionKeys reads the keys the way the agent-server's config does
// (runtime-api.md §8.1): OH_SESSION_API_KEYS_0, _1, … and the legacy
// SESSION_API_KEY.
func sessionKeys(getenv func(string) string) []string {
	var keys []string
	for i := 0; ; i++ {
		k := getenv("OH_SESSION_API_KEYS_" + strconv.Itoa(i))
		if k == "" {
			break
		}
		keys = append(keys, k)
	}
	if k := getenv("SESSION_API_KEY"); k != "" {
		keys = append(keys, k)
	}
	return keys
}

// bindHost is §8.1's rule: loopback unless a key is configured, so an
// agent-server without auth is never reachable from outside its host.
func bindHost(flagHost string, keys []string) string {
	switch {
	case flagHost != "":
		return flagHost
	case len(keys) > 0:
		return "0.0.0.0"
	default:
		return "127.0.0.1"
	}
}

type conversation struct {
	ID        string          `json:"id"`
	Status    string          `json:"execution_status"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Request   json.RawMessage `json:"request,omitempty"`
}

type server struct {
	// ctx is the program's lifetime: the counter goroutine ends with it.
	ctx     context.Context
	keys    []string
	log     *slog.Logger
	started time.Time

	mu            sync.Mutex
	lastRequest   time.Time
	conversations map[string]*conversation
	// counting is set once the counter goroutine runs; count is its value.
	counting bool
	count    int
}

func newServer(ctx context.Context, keys []string, log *slog.Logger) *server {
	now := time.Now()
	return &server{ctx: ctx, keys: keys, log: log, started: now, lastRequest: now, conversations: map[string]*conversation{}}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	mux.HandleFunc("GET /alive", ok)
	mux.HandleFunc("GET /health", ok)
	// The real /ready answers 503 until initialised; the stand-in is
	// initialised before it listens.
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /server_info", s.serverInfo)

	mux.Handle("POST /api/conversations", s.auth(s.createConversation))
	mux.Handle("GET /api/conversations/{id}", s.auth(s.getConversation))
	mux.Handle("GET /api/conversations/{id}/events/search", s.auth(s.searchEvents))
	mux.Handle("POST /api/bash/execute_bash_command", s.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeDetail(w, http.StatusNotImplemented, "no shell in the stand-in: its image is FROM scratch; use /api/sbx-standin/counter to probe a running process")
	}))
	mux.Handle("POST /api/sbx-standin/counter", s.auth(s.startCounter))
	mux.Handle("GET /api/sbx-standin/counter", s.auth(s.readCounter))
	mux.Handle("GET /api/sbx-standin/whoami", s.auth(s.whoami))
	mux.Handle("GET /api/stream", s.auth(s.stream))
	mux.Handle("POST /api/file/upload/{path...}", s.auth(s.upload))
	mux.Handle("GET /api/file/download/{path...}", s.auth(s.download))
	mux.Handle("/api/", s.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeDetail(w, http.StatusNotFound, "Not Found")
	}))
	// Browsers cannot set headers on a WebSocket, so the real server also
	// takes the key as the session_api_key query parameter.
	mux.Handle("GET /sockets/events/{id}", s.auth(s.echo))
	return s.logged(mux)
}

func (s *server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.lastRequest = time.Now()
		s.mu.Unlock()
		s.log.Info("request", "method", r.Method, "path", r.URL.Path)
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

func (s *server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.keys) > 0 {
			got := r.Header.Get("X-Session-API-Key")
			if got == "" {
				got = r.URL.Query().Get("session_api_key")
			}
			if !s.validKey(got) {
				writeDetail(w, http.StatusUnauthorized, "Unauthorized")
				return
			}
		}
		h(w, r)
	})
}

func (s *server) validKey(got string) bool {
	match := 0
	for _, k := range s.keys {
		match |= subtle.ConstantTimeCompare([]byte(got), []byte(k))
	}
	return match == 1
}

func (s *server) serverInfo(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	idle := time.Since(s.lastRequest)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"uptime":    time.Since(s.started).Seconds(),
		"idle_time": idle.Seconds(),
		"title":     "OpenHands Agent Server (sbx test stand-in)",
		"version":   "standin",
	})
}

func (s *server) createConversation(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeDetail(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	var req struct {
		ConversationID string `json:"conversation_id"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeDetail(w, http.StatusUnprocessableEntity, "invalid JSON body: "+err.Error())
			return
		}
	} else {
		body = nil
	}
	id := normID(req.ConversationID)
	if id == "" {
		id = newID()
	}
	now := time.Now().UTC()
	c := &conversation{ID: id, Status: "idle", CreatedAt: now, UpdatedAt: now, Request: body}
	s.mu.Lock()
	s.conversations[id] = c
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, c)
}

func (s *server) lookup(w http.ResponseWriter, r *http.Request) (*conversation, bool) {
	s.mu.Lock()
	c, ok := s.conversations[normID(r.PathValue("id"))]
	s.mu.Unlock()
	if !ok {
		writeDetail(w, http.StatusNotFound, "Conversation not found")
	}
	return c, ok
}

func (s *server) getConversation(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.lookup(w, r); ok {
		writeJSON(w, http.StatusOK, c)
	}
}

func (s *server) searchEvents(w http.ResponseWriter, r *http.Request) {
	c, ok := s.lookup(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"items": []map[string]any{{
			"id": c.ID + "-0", "timestamp": c.CreatedAt, "source": "environment",
			"kind": "ConversationStateUpdateEvent", "key": "execution_status", "value": c.Status,
		}},
		"next_page_id": nil,
	})
}

// counterReply is the counter's state; Started says this request started it.
type counterReply struct {
	Value   int  `json:"value"`
	Started bool `json:"started"`
}

// startCounter starts, once per process, a goroutine adding one every
// 100 ms. It lives in the server's own process, so a frozen cgroup
// (docker pause) stops it and a thaw lets it go on from where it was,
// while a restarted container starts with no counter at all: reading it
// before and after a pause tells "survived" from "restarted".
func (s *server) startCounter(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	started := !s.counting
	s.counting = true
	v := s.count
	s.mu.Unlock()
	if started {
		go s.runCounter()
		s.log.Info("counter started")
	}
	writeJSON(w, http.StatusOK, counterReply{Value: v, Started: started})
}

func (s *server) runCounter() {
	// A Ticker drops the ticks it could not deliver, so a freeze adds
	// nothing: the value counts the time the process actually ran.
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.count++
			s.mu.Unlock()
		}
	}
}

func (s *server) readCounter(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	counting, v := s.counting, s.count
	s.mu.Unlock()
	if !counting {
		writeDetail(w, http.StatusNotFound, "counter not started")
		return
	}
	writeJSON(w, http.StatusOK, counterReply{Value: v})
}

// whoami reports who the server runs as, where `id -u; pwd; test -w`
// would have without a shell.
func (s *server) whoami(w http.ResponseWriter, _ *http.Request) {
	cwd, err := os.Getwd()
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, err.Error())
		return
	}
	writable := map[string]bool{}
	for _, d := range []string{"/workspace", "/tmp"} {
		writable[d] = syscall.Access(d, 2 /* W_OK */) == nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "cwd": cwd, "writable": writable})
}

// stream sends a Server-Sent Event every 100 ms, flushed one by one, so a
// proxy that buffers is caught; ?count=N ends it after N events.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	count := -1
	if v := r.URL.Query().Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeDetail(w, http.StatusUnprocessableEntity, "count must be a non-negative integer")
			return
		}
		count = n
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	t := time.NewTicker(tick)
	defer t.Stop()
	for n := 1; count < 0 || n <= count; n++ {
		fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"n\":%d,\"unix_ms\":%d}\n\n", n, n, time.Now().UnixMilli())
		if err := rc.Flush(); err != nil {
			return
		}
		if count >= 0 && n == count {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// echo sends every WebSocket message back, prefixed by nothing, until the
// peer closes.
func (s *server) echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				c.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

func (s *server) upload(w http.ResponseWriter, r *http.Request) {
	dst := "/" + r.PathValue("path")
	f, _, err := r.FormFile("file")
	if err != nil {
		writeDetail(w, http.StatusUnprocessableEntity, "multipart part \"file\" is required: "+err.Error())
		return
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		writeDetail(w, http.StatusInternalServerError, err.Error())
		return
	}
	out, err := os.Create(dst)
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, err.Error())
		return
	}
	n, err := io.Copy(out, f)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "path": dst, "size": n})
}

func (s *server) download(w http.ResponseWriter, r *http.Request) {
	p := "/" + r.PathValue("path")
	f, err := os.Open(p)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, os.ErrNotExist) {
			status = http.StatusNotFound
		}
		writeDetail(w, status, err.Error())
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, f)
}

// normID makes a UUID with and without dashes one key: the app server
// asks for conversations by their hex form.
func normID(id string) string { return strings.ToLower(strings.ReplaceAll(id, "-", "")) }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeDetail is FastAPI's error body, which the real server returns.
func writeDetail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"detail": msg})
}
