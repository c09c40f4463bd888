package sandboxd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/procs"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// Procs is what the server needs of the background processes
// (internal/procs.Manager); nil answers their routes 501.
type Procs interface {
	Start(ctx context.Context, spec procs.Spec) (procs.Info, error)
	List() []procs.Info
	Get(id int) (procs.Info, error)
	Read(id int, offset int64, max int) (procs.Output, error)
	Follow(ctx context.Context, id int, offset int64, fn func(procs.Output) error) error
	Write(ctx context.Context, id int, data []byte) error
	CloseStdin(id int) error
	Signal(id int, sig syscall.Signal) error
	Wait(ctx context.Context, id int) (procs.Info, error)
	Remove(id int) error
}

// The bounds of one non-following output read.
const (
	defaultOutputMax = 1 << 20
	maxOutputMax     = 16 << 20
	maxProcBody      = 1 << 20
	maxInputBody     = 16 << 20
	// killWait bounds DELETE ?kill=1's wait for the SIGKILLed process.
	killWait = 30 * time.Second
)

// procRoutes registers /sbx/v1/processes; see docs/sandboxd-extensions.md.
func (s *Server) procRoutes() {
	if s.opts.Procs != nil {
		s.caps = append(s.caps, "processes")
	}
	p := ExtPrefix + "processes"
	for _, r := range []struct {
		pattern string
		h       handlerFunc
	}{
		{"POST " + p, s.procStart},
		{"GET " + p, s.procList},
		{"GET " + p + "/{id}", s.procGet},
		{"DELETE " + p + "/{id}", s.procDelete},
		{"GET " + p + "/{id}/output", s.procOutput},
		{"POST " + p + "/{id}/input", s.procInput},
		{"POST " + p + "/{id}/stdin/close", s.procCloseStdin},
		{"POST " + p + "/{id}/signal", s.procSignal},
		{"POST " + p + "/{id}/wait", s.procWait},
	} {
		s.mux.HandleFunc(r.pattern, s.handle(s.withProcs(r.h)))
	}
}

func (s *Server) withProcs(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.opts.Procs == nil {
			return errdefs.New(errdefs.ErrNotImplemented, "background processes are not enabled in this sandboxd")
		}
		return h(w, r)
	}
}

// decodeBody reads a JSON object into v; unknown fields are refused, so
// that a misspelt option is not silently ignored.
func decodeBody(r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errdefs.New(errdefs.ErrInvalidArgument, "empty body: want a JSON object")
		}
		return errdefs.Wrap(errdefs.ErrInvalidArgument, "invalid JSON body: "+err.Error(), err)
	}
	if dec.InputOffset() > limit {
		return errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("body over %d bytes", limit))
	}
	return nil
}

func procID(r *http.Request) (int, error) {
	v := r.PathValue("id")
	id, err := strconv.Atoi(v)
	if err != nil || id <= 0 {
		return 0, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no process %q", v))
	}
	return id, nil
}

func (s *Server) procStart(w http.ResponseWriter, r *http.Request) error {
	var req sandboxapi.ProcessSpec
	if err := decodeBody(r, maxProcBody, &req); err != nil {
		return err
	}
	spec := procs.Spec{Argv: req.Argv, Command: req.Command, Cwd: req.Cwd, Stdin: req.Stdin, Tag: req.Tag}
	keys := make([]string, 0, len(req.Env))
	for k := range req.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		spec.Env = append(spec.Env, k+"="+req.Env[k])
	}
	info, err := s.opts.Procs.Start(r.Context(), spec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("%sprocesses/%d", ExtPrefix, info.ID))
	writeJSON(w, http.StatusCreated, info)
	return nil
}

func (s *Server) procList(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"processes": s.opts.Procs.List()})
	return nil
}

func (s *Server) procGet(w http.ResponseWriter, r *http.Request) error {
	id, err := procID(r)
	if err != nil {
		return err
	}
	info, err := s.opts.Procs.Get(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func wireChunks(cs []procs.Chunk) []sandboxapi.ProcessChunk {
	out := make([]sandboxapi.ProcessChunk, len(cs))
	for i, c := range cs {
		out[i] = sandboxapi.ProcessChunk{Stream: c.Stream.String(), Offset: c.Offset, Data: string(c.Data)}
	}
	return out
}

func queryInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%s=%q: want a non-negative integer", name, v))
	}
	return n, nil
}

func queryBool(r *http.Request, name string) bool { return isSet(r.URL.Query().Get(name)) }

func (s *Server) procOutput(w http.ResponseWriter, r *http.Request) error {
	id, err := procID(r)
	if err != nil {
		return err
	}
	offset, err := queryInt(r, "offset", 0)
	if err != nil {
		return err
	}
	if queryBool(r, "follow") {
		return s.procFollow(w, r, id, offset)
	}
	max, err := queryInt(r, "max", defaultOutputMax)
	if err != nil {
		return err
	}
	if max == 0 || max > maxOutputMax {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("max=%d: want 1 to %d", max, maxOutputMax))
	}
	out, err := s.opts.Procs.Read(id, offset, int(max))
	if err != nil {
		return err
	}
	resp := sandboxapi.ProcessOutput{Chunks: wireChunks(out.Chunks), Next: out.Next, Lost: out.Lost, EOF: out.Done}
	info := out.Info
	if !out.Done {
		if info, err = s.opts.Procs.Get(id); err != nil {
			return err
		}
	}
	if info.State == procs.Exited {
		resp.Exited, resp.ExitCode, resp.Signal = true, info.ExitCode, info.Signal
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// procFollow streams output events until the process has exited and its
// output is sent (an exit event), or the client goes away, which the
// process never notices: a client reconnects with offset=next.
func (s *Server) procFollow(w http.ResponseWriter, r *http.Request, id int, offset int64) error {
	// Errors that come before the stream starts keep their status.
	if _, err := s.opts.Procs.Get(id); err != nil {
		return err
	}
	if _, err := s.opts.Procs.Read(id, offset, 1); err != nil {
		return err
	}
	es := startStream(w, r)
	// A failed Send means the client is gone: nobody to tell.
	var sendErr error
	send := func(typ string, v any) error {
		if err := es.Send(typ, v); err != nil {
			sendErr = err
			return err
		}
		return nil
	}
	err := s.opts.Procs.Follow(r.Context(), id, offset, func(out procs.Output) error {
		if out.Lost > 0 {
			if err := send("lost", map[string]any{"skipped": out.Lost, "offset": out.Next - chunksLen(out.Chunks)}); err != nil {
				return err
			}
		}
		for _, c := range wireChunks(out.Chunks) {
			if err := send("output", c); err != nil {
				return err
			}
		}
		if out.Done {
			return send("exit", sandboxapi.ProcessExit{ExitCode: out.Info.ExitCode, Signal: out.Info.Signal, Next: out.Next})
		}
		return nil
	})
	if err != nil && sendErr == nil && r.Context().Err() == nil {
		_ = es.sendError(err)
	}
	return nil
}

func chunksLen(cs []procs.Chunk) int64 {
	var n int64
	for _, c := range cs {
		n += int64(len(c.Data))
	}
	return n
}

func (s *Server) procInput(w http.ResponseWriter, r *http.Request) error {
	id, err := procID(r)
	if err != nil {
		return err
	}
	var req struct {
		Data *string `json:"data"`
	}
	if err := decodeBody(r, maxInputBody, &req); err != nil {
		return err
	}
	if req.Data == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, `no "data"`)
	}
	if err := s.opts.Procs.Write(r.Context(), id, []byte(*req.Data)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"written": len(*req.Data)})
	return nil
}

func (s *Server) procCloseStdin(w http.ResponseWriter, r *http.Request) error {
	id, err := procID(r)
	if err != nil {
		return err
	}
	if err := s.opts.Procs.CloseStdin(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseSignal accepts "SIGTERM", "TERM", "term", 15 and "15".
func parseSignal(raw json.RawMessage) (syscall.Signal, error) {
	bad := errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("signal %s: want a name (SIGTERM, TERM) or a number", raw))
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		var name string
		if json.Unmarshal(raw, &name) != nil {
			return 0, bad
		}
		if n, err = strconv.Atoi(name); err != nil {
			name = strings.ToUpper(strings.TrimSpace(name))
			if !strings.HasPrefix(name, "SIG") {
				name = "SIG" + name
			}
			sig := unix.SignalNum(name)
			if sig == 0 {
				return 0, bad
			}
			return sig, nil
		}
	}
	// Realtime signals have no names; 64 is Linux's last.
	if n < 1 || n > 64 {
		return 0, bad
	}
	return syscall.Signal(n), nil
}

func (s *Server) procSignal(w http.ResponseWriter, r *http.Request) error {
	id, err := procID(r)
	if err != nil {
		return err
	}
	var req struct {
		Signal json.RawMessage `json:"signal"`
	}
	if err := decodeBody(r, maxProcBody, &req); err != nil {
		return err
	}
	if len(req.Signal) == 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, `no "signal"`)
	}
	sig, err := parseSignal(req.Signal)
	if err != nil {
		return err
	}
	if err := s.opts.Procs.Signal(id, sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// procWait answers the final Info once the process has exited. With
// ?timeout=SECONDS a process still running then is an ErrConflict (412):
// the process is in a state (running) the answer needs it out of; the
// client asks again.
func (s *Server) procWait(w http.ResponseWriter, r *http.Request) error {
	id, err := procID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var timeout float64
	if v := r.URL.Query().Get("timeout"); v != "" {
		timeout, err = strconv.ParseFloat(v, 64)
		if err != nil || timeout < 0 || timeout > 86400 {
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("timeout=%q: want seconds, 0 to 86400", v))
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout*float64(time.Second)))
		defer cancel()
	}
	info, err := s.opts.Procs.Wait(ctx, id)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			return errdefs.Wrap(errdefs.ErrConflict, fmt.Sprintf("process %d is still running after %gs", id, timeout), err)
		}
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// procDelete forgets an exited process and its log; a running one only
// with ?kill=1, which SIGKILLs its group and waits for the exit first.
func (s *Server) procDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := procID(r)
	if err != nil {
		return err
	}
	info, err := s.opts.Procs.Get(id)
	if err != nil {
		return err
	}
	if info.State == procs.Running {
		if !queryBool(r, "kill") {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("process %d is running: signal it first, or DELETE with ?kill=1", id))
		}
		if err := s.opts.Procs.Signal(id, syscall.SIGKILL); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), killWait)
		defer cancel()
		if _, err := s.opts.Procs.Wait(ctx, id); err != nil {
			return fmt.Errorf("wait for process %d after SIGKILL: %w", id, err)
		}
	}
	if err := s.opts.Procs.Remove(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
