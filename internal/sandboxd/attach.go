package sandboxd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/term"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// TerminalOptions say how /sbx/v1/attach starts a new terminal: as the
// shells are started, with their environment and user.
type TerminalOptions struct {
	// Shell is the login shell (default /bin/bash).
	Shell      string
	Env        []string
	Credential *syscall.Credential
	// Starter is the reaper; without one, new terminals are refused
	// (ErrNotImplemented) and only sessions can be attached to.
	Starter term.Starter
}

const (
	// maxTerminals bounds the new terminals open at once: each is a
	// process tree and a 1 MiB ring, and a client that opens them in a
	// loop must not exhaust the sandbox.
	maxTerminals = 64
	// exitQuiet is how long output is still forwarded after the program
	// exits: the PTY reader may be a chunk behind, and a background job
	// that keeps the PTY open must not keep the socket open forever.
	exitQuiet = 250 * time.Millisecond
	// pingEvery finds clients that vanished without a close (a laptop
	// lid), so that their terminal ends and its writes stop waiting.
	pingEvery   = 30 * time.Second
	pingTimeout = 15 * time.Second
)

// termSet is the new terminals, so that Close ends them with the shells.
type termSet struct {
	mu     sync.Mutex
	m      map[*term.Term]bool
	closed bool
}

func (ts *termSet) add(t *term.Term) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch {
	case ts.closed:
		return errdefs.New(errdefs.ErrUnavailable, "sandboxd is shutting down")
	case len(ts.m) >= maxTerminals:
		return errTerminalsFull
	}
	if ts.m == nil {
		ts.m = map[*term.Term]bool{}
	}
	ts.m[t] = true
	return nil
}

var errTerminalsFull = errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("sandboxd already has %d attached terminals, its limit; close one first", maxTerminals))

func (ts *termSet) full() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.m) >= maxTerminals
}

func (ts *termSet) remove(t *term.Term) {
	ts.mu.Lock()
	delete(ts.m, t)
	ts.mu.Unlock()
}

func (ts *termSet) closeAll() {
	ts.mu.Lock()
	ts.closed = true
	all := make([]func(), 0, len(ts.m))
	for t := range ts.m {
		all = append(all, t.Close)
	}
	ts.mu.Unlock()
	closeEach(all)
}

func (s *Server) attachRoutes() {
	s.caps = append(s.caps, "attach")
	s.mux.HandleFunc("GET "+sandboxapi.PathAttach, s.handle(s.attachNew))
	s.mux.HandleFunc("GET "+ExtPrefix+"sessions/{name}"+sandboxapi.AttachSuffix, s.handle(s.attachSession))
}

// attachMode is what a client may do to the terminal it is attached to.
type attachMode struct {
	owned  bool // a new terminal: the connection's end is the program's
	input  bool
	resize bool
	why    string // why input or resize is refused
}

// termValue is what TERM may be set to from a query parameter.
var termValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// windowSize parses ?rows=&cols=; absent is 0 (the default size).
func windowSize(r *http.Request) (rows, cols uint16, err error) {
	parse := func(name string) (uint16, error) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return 0, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%s=%q: want a whole number from 1 to 65535", name, v))
		}
		return uint16(n), nil
	}
	if rows, err = parse("rows"); err != nil {
		return 0, 0, err
	}
	if cols, err = parse("cols"); err != nil {
		return 0, 0, err
	}
	return rows, cols, nil
}

// attachNew starts a new terminal — a login shell, ?cmd= run by one, or
// the argv of repeated ?arg= exec'd by one (so the profile's PATH
// applies) — and connects the WebSocket to it. The program starts before
// the upgrade so that a bad request is told by status, and the output is
// sent from offset 0, so nothing it printed first is missed.
func (s *Server) attachNew(w http.ResponseWriter, r *http.Request) error {
	topts := s.opts.Terminal
	if topts.Starter == nil {
		return errdefs.New(errdefs.ErrNotImplemented, "this sandboxd cannot start terminals (no process starter configured); attach to a session instead")
	}
	q := r.URL.Query()
	rows, cols, err := windowSize(r)
	if err != nil {
		return err
	}
	shellPath := topts.Shell
	if shellPath == "" {
		shellPath = "/bin/bash"
	}
	args := []string{"-l"}
	cmd, argv := q.Get("cmd"), q["arg"]
	switch {
	case q.Has("cmd") && len(argv) > 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "give either cmd (a shell command line) or arg (an argv), not both")
	case q.Has("cmd"):
		if cmd == "" {
			return errdefs.New(errdefs.ErrInvalidArgument, "cmd is empty; leave it out for a login shell")
		}
		args = append(args, "-c", cmd)
	case len(argv) > 0:
		args = append(args, "-c", `exec "$@"`, filepath.Base(shellPath))
		args = append(args, argv...)
	}
	dir := q.Get("cwd")
	if dir == "" {
		dir = s.opts.WorkDir
	}
	if !filepath.IsAbs(dir) {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("cwd %q: want an absolute path", dir))
	}
	if fi, err := os.Stat(dir); err != nil {
		return errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("cwd %q: %v", dir, err), err)
	} else if !fi.IsDir() {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("cwd %q is not a directory", dir))
	}
	termName := q.Get("term")
	if termName == "" {
		termName = "xterm-256color"
	}
	if !termValue.MatchString(termName) {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("term %q: want a terminal type name such as xterm-256color", termName))
	}
	if s.terms.full() {
		// Checked again by add; this spares starting a program for nothing.
		return errTerminalsFull
	}
	env := append(s.env.Apply(topts.Env), "TERM="+termName)
	t, err := term.Start(term.Config{
		Path: shellPath, Args: args, Dir: dir, Env: env, Credential: topts.Credential,
		Rows: rows, Cols: cols, Starter: topts.Starter, Logger: s.log.With("component", "attach"),
	})
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, "start the terminal: "+err.Error(), err)
	}
	if err := s.terms.add(t); err != nil {
		t.Close()
		return err
	}
	defer func() {
		s.terms.remove(t)
		t.Close()
	}()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		// Accept has answered the client already.
		s.log.Debug("attach: websocket upgrade failed", "err", err)
		return nil
	}
	s.pump(r.Context(), c, t, 0, attachMode{owned: true, input: true, resize: true})
	return nil
}

// attachSession connects the WebSocket to a session's terminal, from the
// output's end at attach time (?offset=N: from N, or the oldest byte
// still held). Detaching leaves the session running. The size is never
// changed: it is the size the session's commands run at (1000x1000 for
// the OpenHands shells, so their output is not wrapped). The default
// session also takes no input: it is the agent's, and keys typed into
// it would reach the agent's next command.
func (s *Server) attachSession(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitReady(r.Context()); err != nil {
		return err
	}
	ss, err := s.reg.get(r.PathValue("name"))
	if err != nil {
		return err
	}
	t := ss.sh.Terminal()
	if t == nil {
		return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("session %q has no terminal at the moment (its shell is restarting)", ss.name))
	}
	off := t.Ring().End()
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("offset %q: want a byte offset, a whole number ≥ 0", v))
		}
		off = n
	}
	m := attachMode{input: true, why: "a session's window size is the one its commands run at; attach does not change it"}
	if ss.name == DefaultSession {
		m.input = false
		m.why = "the default session is the OpenHands shell: attaching to it is for watching; input and resize would change what the agent's commands see"
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("attach: websocket upgrade failed", "err", err)
		return nil
	}
	s.pump(r.Context(), c, t, off, m)
	return nil
}

// pump copies the terminal's output to the client from off and the
// client's input and control messages to the terminal, until the program
// ends (an exit message, then a normal close) or the client goes.
func (s *Server) pump(ctx context.Context, c *websocket.Conn, t *term.Term, off int64, m attachMode) {
	// A hijacked connection's request context is not ended by the client
	// going away: a failed read is what says so, and it cancels this.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.SetReadLimit(1 << 20)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer cancel()
		s.attachInput(ctx, c, t, m)
	}()
	go func() {
		defer wg.Done()
		defer cancel()
		keepAlive(ctx, c)
	}()
	code, ended := s.attachOutput(ctx, c, t, off)
	if ended {
		msg, _ := json.Marshal(sandboxapi.Control{Type: sandboxapi.ControlExit, ExitCode: &code})
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := c.Write(wctx, websocket.MessageText, msg); err == nil {
			// Close waits for the client's close frame (at most 5 s),
			// which the input goroutine reads.
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
		wcancel()
	}
	_ = c.CloseNow()
	cancel()
	wg.Wait()
}

func keepAlive(ctx context.Context, c *websocket.Conn) {
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// tell sends the client a control message.
func tell(ctx context.Context, c *websocket.Conn, ctl sandboxapi.Control) error {
	b, err := json.Marshal(ctl)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", ctl.Type, err)
	}
	return c.Write(ctx, websocket.MessageText, b)
}

// attachInput forwards the client's keys and resizes until it goes.
func (s *Server) attachInput(ctx context.Context, c *websocket.Conn, t *term.Term, m attachMode) {
	refuse := func(detail string) error {
		return tell(ctx, c, sandboxapi.Control{Type: sandboxapi.ControlError, Detail: detail})
	}
	toldInput := false
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			if !m.input {
				// Once: a watcher's every key would repeat it.
				if !toldInput {
					toldInput = true
					if refuse("input ignored: "+m.why) != nil {
						return
					}
				}
				continue
			}
			if err := t.Send(b); err != nil && !errors.Is(err, term.ErrClosed) {
				if refuse("input dropped: "+err.Error()) != nil {
					return
				}
			}
			continue
		}
		var ctl sandboxapi.Control
		if err := json.Unmarshal(b, &ctl); err != nil {
			if refuse("a text message is a JSON control message: "+err.Error()) != nil {
				return
			}
			continue
		}
		var detail string
		switch ctl.Type {
		case sandboxapi.ControlResize:
			switch {
			case !m.resize:
				detail = "resize refused: " + m.why
			case ctl.Rows == 0 || ctl.Cols == 0:
				detail = "resize: rows and cols must be positive"
			default:
				if err := t.Resize(ctl.Rows, ctl.Cols); err != nil {
					detail = "resize: " + err.Error()
				}
			}
		default:
			detail = fmt.Sprintf("unknown control message type %q (want %q)", ctl.Type, sandboxapi.ControlResize)
		}
		if detail != "" && refuse(detail) != nil {
			return
		}
	}
}

// attachOutput sends the terminal's output from off until the program
// has exited and its output is drained, and returns its exit code; ended
// is false when the client went away first.
func (s *Server) attachOutput(ctx context.Context, c *websocket.Conn, t *term.Term, off int64) (code int, ended bool) {
	ring := t.Ring()
	buf := make([]byte, 32<<10)
	exited := t.Exited()
	var quiet *time.Timer
	var quietC <-chan time.Time
	defer func() {
		if quiet != nil {
			quiet.Stop()
		}
	}()
	for {
		n, from, wake, closed := ring.TryRead(off, -1, buf)
		if from > off {
			if tell(ctx, c, sandboxapi.Control{Type: sandboxapi.ControlLost, Skipped: from - off}) != nil {
				return 0, false
			}
		}
		off = from
		if n > 0 {
			if c.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
				return 0, false
			}
			off += int64(n)
			continue
		}
		if closed {
			break
		}
		select {
		case <-wake:
			if quiet != nil {
				quiet.Reset(exitQuiet)
			}
		case <-exited:
			exited = nil
			quiet = time.NewTimer(exitQuiet)
			quietC = quiet.C
		case <-quietC:
			if t.Unread() > 0 {
				// The program wrote more than the reader has taken: wait
				// for it rather than cut the output short.
				quiet.Reset(exitQuiet)
				continue
			}
			return t.ExitStatus().ExitCode, true
		case <-ctx.Done():
			return 0, false
		}
	}
	select {
	case <-t.Exited():
		return t.ExitStatus().ExitCode, true
	case <-ctx.Done():
		return 0, false
	}
}
