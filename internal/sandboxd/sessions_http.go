package sandboxd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/shell"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// interruptGrace is how long a run whose client went away with
// cancel-on-disconnect waits for the interrupted command to end before it
// lets go of the shell anyway (a program that ignores SIGINT).
const interruptGrace = 2 * time.Second

func (s *Server) sessionRoutes() {
	s.caps = append(s.caps, "sessions", "streaming", "interrupt", "cancel-on-disconnect")
	s.mux.HandleFunc("GET "+ExtPrefix+"sessions", s.handle(s.listSessions))
	s.mux.HandleFunc("POST "+ExtPrefix+"sessions", s.handle(s.createSession))
	s.mux.HandleFunc("GET "+ExtPrefix+"sessions/{name}", s.handle(s.getSession))
	s.mux.HandleFunc("DELETE "+ExtPrefix+"sessions/{name}", s.handle(s.closeSession))
	s.mux.HandleFunc("POST "+ExtPrefix+"sessions/{name}/run", s.handle(s.sessionRun))
	s.mux.HandleFunc("GET "+ExtPrefix+"sessions/{name}/runs/{id}", s.handle(s.sessionRunStream))
	s.mux.HandleFunc("POST "+ExtPrefix+"sessions/{name}/interrupt", s.handle(s.sessionInterrupt))
}

func (s *Server) sessionInfo(ss *session) sandboxapi.SessionInfo {
	info := sandboxapi.SessionInfo{Name: ss.name, Created: ss.created.UTC(), Busy: ss.sh.Busy(), Cwd: ss.sh.Cwd()}
	if t := ss.sh.Terminal(); t != nil {
		info.PID = t.Pid()
	}
	return info
}

// ready waits for start-up: a request that comes early waits for the
// shell instead of failing.
func (s *Server) waitReady(ctx context.Context) error {
	select {
	case <-s.readyCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	all := s.reg.list()
	out := make([]sandboxapi.SessionInfo, 0, len(all))
	for _, ss := range all {
		out = append(out, s.sessionInfo(ss))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	ss, err := s.reg.get(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.sessionInfo(ss))
	return nil
}

// decodeOptionalBody is decodeBody for a route whose body may be left
// out (every field optional).
func decodeOptionalBody(r *http.Request, limit int64, v any) error {
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return decodeBody(r, limit, v)
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	var req sandboxapi.CreateSessionRequest
	if err := decodeOptionalBody(r, 1<<20, &req); err != nil {
		return err
	}
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	if err := s.reg.reserve(req.Name); err != nil {
		return err
	}
	dir := req.Cwd
	if dir == "" {
		dir = s.opts.WorkDir
	}
	env := make([]string, 0, len(req.Env))
	for k, v := range req.Env {
		if k == "" {
			return errdefs.New(errdefs.ErrInvalidArgument, "an environment variable needs a name")
		}
		env = append(env, k+"="+v)
	}
	sh, err := s.factory(r.Context(), ShellOptions{Dir: dir, Env: env})
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, "start the session's shell: "+err.Error(), err)
	}
	ss, err := s.reg.add(req.Name, sh, s.opts.Now())
	if err != nil {
		sh.Close()
		return err
	}
	writeJSON(w, http.StatusCreated, s.sessionInfo(ss))
	return nil
}

func (s *Server) closeSession(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	if err := s.reg.remove(r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) sessionInterrupt(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	ss, err := s.reg.get(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sandboxapi.InterruptResult{Interrupted: ss.sh.Interrupt()})
	return nil
}

// sessionRun is a run action in a named session, with the body of a run
// action's args plus "timeout". With stream=true it answers an event
// stream of the output ending with the observation; without, the
// observation alone, as /execute_action would.
func (s *Server) sessionRun(w http.ResponseWriter, r *http.Request) error {
	var req sandboxapi.SessionRunRequest
	if err := decodeOptionalBody(r, 1<<20, &req); err != nil {
		return err
	}
	if req.Timeout != nil && *req.Timeout < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("timeout %v: it must not be negative (0 or none: no hard timeout)", *req.Timeout))
	}
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	ss, err := s.reg.get(r.PathValue("name"))
	if err != nil {
		return err
	}
	a := sandboxapi.CmdRunArgs{Command: req.Command, IsInput: req.IsInput, Blocking: req.Blocking, Hidden: req.Hidden}
	var timeout float64
	if req.Timeout != nil {
		timeout = *req.Timeout
	}
	if !req.Stream {
		obs := s.runInSession(r, ss, a, timeout, nil)
		writeJSON(w, http.StatusOK, obs)
		return nil
	}
	rec := ss.newRun()
	go func() {
		// The run outlives the request: a client that disconnects comes
		// back for the rest with the run's id.
		obs := s.runInSession(r, ss, a, timeout, rec)
		_ = obs
	}()
	es := startStream(w, r)
	if err := es.Send("start", sandboxapi.RunStart{Session: ss.name, RunID: rec.id}); err != nil {
		return nil
	}
	s.followRun(r.Context(), es, rec, -1)
	return nil
}

// sessionRunStream is a reconnect to a streamed run: its output from
// ?offset= (default: its start), then its observation.
func (s *Server) sessionRunStream(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	ss, err := s.reg.get(r.PathValue("name"))
	if err != nil {
		return err
	}
	rec := ss.run(r.PathValue("id"))
	if rec == nil {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("session %q has no run %q (only the last %d are kept)", ss.name, r.PathValue("id"), keptRuns))
	}
	off := int64(-1)
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("offset %q: want a byte offset, a whole number ≥ 0", v))
		}
		off = n
	}
	es := startStream(w, r)
	s.followRun(r.Context(), es, rec, off)
	return nil
}

// runInSession runs one command in a session and returns its observation.
// rec, if not nil, records where the output is and the observation.
//
// Who waits for the command: by default the request's context, so a
// client that goes away releases the shell at once (the command goes on,
// as after a timeout, and the next request sees it running); with
// cancel-on-disconnect, the command is interrupted first.
func (s *Server) runInSession(r *http.Request, ss *session, a sandboxapi.CmdRunArgs, timeout float64, rec *runRecord) sandboxapi.Observation {
	ctx, release := s.runContext(r, ss, rec != nil)
	defer release()
	req := shell.Request{Command: a.Command, IsInput: a.IsInput, Hidden: a.Hidden, Blocking: a.Blocking, Timeout: timeout}
	if rec != nil {
		req.Sent = rec.setStarted
	}
	res, err := ss.sh.Run(ctx, req)
	obs := runObservation(res, err, a)
	if rec != nil {
		end := res.OutputEnd
		if err != nil {
			end = -1
		}
		rec.finish(obs, end)
	}
	return obs
}

// runContext is the context a run waits under; see runInSession. A
// streamed run is not the request's: its client may come back.
func (s *Server) runContext(r *http.Request, ss *session, streamed bool) (context.Context, func()) {
	if isSet(r.Header.Get(sandboxapi.HeaderCancelOnDisconnect)) || isSet(r.URL.Query().Get("cancel_on_disconnect")) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		stop := context.AfterFunc(r.Context(), func() {
			ss.sh.Interrupt()
			t := time.AfterFunc(interruptGrace, cancel)
			context.AfterFunc(ctx, func() { t.Stop() })
		})
		return ctx, func() { stop(); cancel() }
	}
	if streamed {
		return context.WithoutCancel(r.Context()), func() {}
	}
	return r.Context(), func() {}
}

// followRun streams a run's output from off (-1: its start) and then its
// observation. A client that falls behind the ring is told how many bytes
// it lost.
func (s *Server) followRun(ctx context.Context, es *eventStream, rec *runRecord, off int64) {
	select {
	case <-rec.started:
	case <-ctx.Done():
		return
	}
	rec.mu.Lock()
	ring, start, limit := rec.ring, rec.start, rec.limit
	rec.mu.Unlock()
	if off < 0 || off < start {
		off = start
	}
	buf := make([]byte, 32<<10)
	var held []byte // an incomplete UTF-8 sequence at the end of a chunk
	for ring != nil {
		stop := limit()
		finished := rec.finished()
		if finished {
			rec.mu.Lock()
			if rec.end >= 0 {
				stop = rec.end
			} else {
				stop = -1
			}
			rec.mu.Unlock()
		}
		n, from, wake, closed := ring.TryRead(off, stop, buf)
		if from > off {
			if err := es.Send("lost", sandboxapi.StreamLost{Offset: off, Skipped: from - off}); err != nil {
				return
			}
			held = nil
		}
		if n > 0 {
			dataStart := from - int64(len(held))
			data := append(held, buf[:n]...)
			cut := len(data)
			if !finished || from+int64(n) < stop {
				cut = utf8Complete(data)
			}
			held = append([]byte(nil), data[cut:]...)
			off = from + int64(n)
			if cut > 0 {
				if err := es.Send("output", sandboxapi.StreamOutput{Offset: dataStart, Data: string(data[:cut])}); err != nil {
					return
				}
			}
			continue
		}
		off = from
		if finished || (closed && stop < 0) {
			break
		}
		select {
		case <-wake:
		case <-rec.done:
		case <-ctx.Done():
			return
		}
	}
	if len(held) > 0 {
		_ = es.Send("output", sandboxapi.StreamOutput{Offset: off - int64(len(held)), Data: string(held)})
	}
	select {
	case <-rec.done:
	case <-ctx.Done():
		return
	}
	rec.mu.Lock()
	obs := rec.obs
	rec.mu.Unlock()
	_ = es.Send("observation", sandboxapi.StreamObservation{RunID: rec.id, Next: off, Observation: obs})
}

// utf8Complete is the length of b's longest prefix that does not end in
// the middle of a UTF-8 sequence.
func utf8Complete(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}
