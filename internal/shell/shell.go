// Package shell owns the agent's persistent bash: one long-lived shell on a
// PTY and its process session, driven with OpenHands' reply rules (spec §5).
//
// There is no tmux and no polling. sandboxd owns the PTY master; bash runs
// with echo off and a prompt that is an invisible escape sequence carrying
// the exit code, $!, user, host, cwd and PATH. A command is complete the
// instant its prompt arrives. Output is rendered the way a terminal would
// show it (carriage returns overwrite, escape sequences vanish, lines are
// right-stripped) into a bounded scrollback, so a command printing a
// gigabyte costs a few megabytes.
//
// The package knows nothing about HTTP or JSON.
package shell

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/sbx-dev/sbx/internal/term"
)

// Config says how to start the shell.
type Config struct {
	Dir             string              // initial working directory
	Shell           string              // default /bin/bash
	Env             []string            // the shell's whole environment
	Credential      *syscall.Credential // nil: run as the server's user
	Login           bool                // a login shell, as `su user -` gives
	NoChangeTimeout time.Duration       // default 10 s; reported in whole seconds
	StartTimeout    time.Duration       // default 30 s
	// StreamBytes is how much recent output a streaming client can catch
	// up on (default 1 MiB); a slower one is told what it missed.
	StreamBytes int
	Starter     Starter // required: starts and reaps children
	Logger      *slog.Logger
}

// Request is one `run` action as the shell sees it.
type Request struct {
	Command  string
	IsInput  bool
	Blocking bool
	Timeout  float64 // hard timeout in seconds; 0 means none
	Hidden   bool
	// Sent, if set, is called once the command has been typed (or, for a
	// request that types nothing, once the wait begins), with the
	// terminal's output ring, the offset this request's output starts at,
	// and a function telling how far the ring is known to hold this
	// request's output (never the prompt's bytes), so a client can stream
	// it while Run waits. It must not block.
	Sent func(out *term.Ring, start int64, limit func() int64)
}

// Metadata mirrors OpenHands' CmdOutputMetadata.
type Metadata struct {
	ExitCode          int
	PID               int
	Username          *string
	Hostname          *string
	WorkingDir        *string
	PyInterpreterPath *string
	Prefix            string
	Suffix            string
}

// DefaultMetadata is what OpenHands reports when no prompt was parsed.
func DefaultMetadata() Metadata { return Metadata{ExitCode: -1, PID: -1} }

// Result is the shell's answer to a Request: either an error text (an
// ErrorObservation on the wire) or a command output observation.
type Result struct {
	Error    string
	Content  string
	Command  string
	Metadata Metadata
	Hidden   bool
	// OutputEnd is the terminal offset where this request's output ends
	// (the ring given to Request.Sent); -1 if the shell died.
	OutputEnd int64
}

type status int

const (
	statusNone status = iota
	statusCompleted
	statusNoChange
	statusHard
)

// Shell is the agent's persistent shell. Run calls are serialised; a shell
// that died is replaced by a fresh one on the next call.
type Shell struct {
	cfg Config

	mu             sync.Mutex // serialises Run and guards the fields below
	prevStatus     status
	prevOutput     string
	partialReplied bool
	cwd            string
	notice         string // told to the agent on its next reply
	lastExit       int    // exit code of the last completed command

	// pmu guards p and closed apart from mu, so that Close can kill the
	// shell while a Run is waiting on it: the Run then returns at once.
	pmu    sync.Mutex
	p      *proc
	closed bool
}

// New starts the shell and waits until it shows its first prompt.
func New(ctx context.Context, cfg Config) (*Shell, error) {
	if cfg.Shell == "" {
		cfg.Shell = "/bin/bash"
	}
	if cfg.NoChangeTimeout <= 0 {
		cfg.NoChangeTimeout = 10 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Starter == nil {
		return nil, errors.New("shell: Config.Starter is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("shell: working dir: %w", err)
	}
	cfg.Dir = dir
	p, err := startProc(ctx, &cfg, dir)
	if err != nil {
		return nil, err
	}
	return &Shell{cfg: cfg, p: p, cwd: dir}, nil
}

// Cwd is the shell's working directory as of its last prompt. It is
// called by the server while no Run is in progress (actions are
// serialised), so it takes the same lock.
func (s *Shell) Cwd() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cwd
}

// Pid is the pid of the current bash, which is also its session id.
func (s *Shell) Pid() int {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if s.p == nil {
		return 0
	}
	return s.p.pgid
}

// Close ends the shell and every process of its session. A Run in
// progress returns promptly with the shell's exit.
func (s *Shell) Close() error {
	s.pmu.Lock()
	p := s.p
	s.closed = true
	s.pmu.Unlock()
	if p != nil {
		p.close()
	}
	return nil
}

func (s *Shell) current() (*proc, bool) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.p, s.closed
}

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("shell is closed")

// Run executes one `run` action with OpenHands' semantics (spec §5.4).
func (s *Shell) Run(ctx context.Context, req Request) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, closed := s.current(); closed {
		return Result{}, ErrClosed
	}
	if err := s.ensureAlive(ctx); err != nil {
		return Result{}, err
	}
	res, err := s.run(ctx, req)
	if err == nil && s.notice != "" && res.Error == "" {
		res.Metadata.Prefix = s.notice + res.Metadata.Prefix
		s.notice = ""
	}
	if err == nil && !req.Hidden {
		res.Content = truncateMiddle(res.Content)
	}
	return res, err
}

// ensureAlive replaces a dead shell with a fresh one in the last known
// working directory, and remembers to tell the agent.
func (s *Shell) ensureAlive(ctx context.Context) error {
	p, _ := s.current()
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if !exited {
		return nil
	}
	p.close()
	dir := s.cwd
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = s.cfg.Dir
	}
	np, err := startProc(ctx, &s.cfg, dir)
	if err != nil {
		return fmt.Errorf("restart shell: %w", err)
	}
	s.pmu.Lock()
	if s.closed {
		s.pmu.Unlock()
		np.close()
		return ErrClosed
	}
	s.p = np
	s.pmu.Unlock()
	s.cwd = dir
	s.prevStatus, s.prevOutput, s.partialReplied = statusNone, "", false
	s.notice = fmt.Sprintf("[The previous shell exited. This is a new shell in %s: variables, aliases, functions and background jobs of the old shell are gone.]\n", dir)
	return nil
}

func isSpecialKey(cmd string) bool {
	return strings.HasPrefix(cmd, "C-") && len(cmd) == 3
}

// controlByte is what tmux sends for the key C-<k>.
func controlByte(k byte) byte {
	switch {
	case k >= 'a' && k <= 'z':
		return k - 'a' + 1
	case k >= '@' && k <= '_':
		return k - '@'
	case k == '?':
		return 0x7f
	case k == ' ' || k == '2':
		return 0
	}
	return k & 0x1f
}

// echoesAsCaret reports whether a tty in canonical mode with ECHOCTL shows
// C-<k> as "^K": signal and other control keys do; EOF, line editing and
// whitespace keys do not.
func echoesAsCaret(k byte) bool {
	switch k | 0x20 {
	case 'd', 'h', 'i', 'j', 'm', 'u', 'w', 'q', 's', 'r', 'v':
		return false
	}
	return (k >= 'a' && k <= 'z') || (k >= 'A' && k <= 'Z') || k == '\\'
}

func (s *Shell) run(ctx context.Context, req Request) (Result, error) {
	p, _ := s.current()
	command := pyStrip(req.Command)
	running := s.prevStatus == statusNoChange || s.prevStatus == statusHard
	p.mu.Lock()
	preempted := isSpecialKey(command) && req.IsInput && p.preempted == command
	p.preempted = ""
	if preempted && !p.running && p.done == nil && !running {
		// The key was delivered while another request held the shell, and
		// that request has already reported the command's end.
		md := DefaultMetadata()
		md.ExitCode = s.lastExit
		md.Suffix = completedKeySuffix(s.lastExit, command[len(command)-1])
		end := p.readOff
		p.mu.Unlock()
		return Result{Command: command, Metadata: md, Hidden: req.Hidden, OutputEnd: end}, nil
	}
	p.mu.Unlock()
	if !running {
		if command == "" {
			return Result{Content: errNoPreviousLogs, Command: "", Metadata: DefaultMetadata()}, nil
		}
		if req.IsInput {
			return Result{Content: errNoPreviousInput, Command: "", Metadata: DefaultMetadata()}, nil
		}
	}
	cmds, group := splitForBash(command)
	if len(cmds) > 1 {
		return Result{Error: multipleCommandsError(cmds)}, nil
	}
	typed := command
	if group && !req.IsInput {
		typed = "{ " + command + "\n}"
	}

	wantPrompts := 0
	p.mu.Lock()
	start := p.readOff
	stillRunning := p.running
	if running && stillRunning && !req.IsInput && command != "" {
		raw := p.rawOutput()
		p.mu.Unlock()
		md := DefaultMetadata()
		md.Prefix = s.partialPrefix()
		md.Suffix = notExecutedSuffix(command)
		return Result{Content: s.partialOutput(raw), Command: command, Metadata: md, Hidden: req.Hidden, OutputEnd: start}, nil
	}

	if command != "" {
		var data []byte
		switch {
		case isSpecialKey(command):
			k := command[2]
			data = []byte{controlByte(k)}
			if echoesAsCaret(k) && p.running && p.t.Cooked() {
				// A terminal with echo on shows the key as ^X; OpenHands'
				// agents see that in the reply, so show it too.
				p.scr.Write([]byte{'^', byte(unicode.ToUpper(rune(k)))})
			}
		default:
			data = append([]byte(typed), '\r')
		}
		if !p.running && !req.IsInput {
			// A new command at the prompt. If the previous one finished
			// after its last reply, its remaining output leads this one's.
			if p.done != nil {
				p.carry = p.done.output
				p.done = nil
			}
			p.running = true
			p.t.ReassertNoEcho()
		}
		if req.IsInput && !p.running && p.done != nil && !preempted {
			// The command finished after its last reply and bash is at its
			// prompt: what is typed now is bash's to run. Report what it
			// makes of it (C-c gives 130, a word runs as a command).
			wantPrompts = p.prompts + 1
		}
		if preempted || (isSpecialKey(command) && p.t.SignalKey(command[2])) {
			data = nil
		}
		if data != nil {
			if err := p.send(data); err != nil {
				p.mu.Unlock()
				return Result{}, err
			}
		}
	}
	p.mu.Unlock()
	if req.Sent != nil {
		req.Sent(p.t.Ring(), start, p.outputLimit(start))
	}
	return s.wait(ctx, req, command, wantPrompts)
}

// wait waits for the command's prompt, a timeout or the shell's death.
// With wantPrompts > 0 a completion counts only once that many prompts
// have been seen in all.
func (s *Shell) wait(ctx context.Context, req Request, command string, wantPrompts int) (Result, error) {
	p, _ := s.current()
	var noChange <-chan time.Time
	var ncTimer *time.Timer
	if !req.Blocking {
		ncTimer = time.NewTimer(s.cfg.NoChangeTimeout)
		defer ncTimer.Stop()
		noChange = ncTimer.C
	}
	var hard <-chan time.Time
	// A timeout too large for a time.Duration is as good as none.
	if req.Timeout != 0 && req.Timeout < float64(math.MaxInt64/int64(time.Second)) {
		d := time.Duration(req.Timeout * float64(time.Second))
		if d < 0 {
			d = 0
		}
		t := time.NewTimer(d)
		defer t.Stop()
		hard = t.C
	}
	p.mu.Lock()
	seen := p.outSeq
	p.mu.Unlock()
	for {
		p.mu.Lock()
		if p.done != nil && p.prompts >= wantPrompts {
			c := p.done
			p.done = nil
			p.mu.Unlock()
			return s.completed(c, command, req), nil
		}
		if p.exited {
			p.mu.Unlock()
			return s.died(command, req), nil
		}
		if p.outSeq != seen && ncTimer != nil {
			seen = p.outSeq
			ncTimer.Reset(s.cfg.NoChangeTimeout)
		}
		p.mu.Unlock()

		select {
		case <-p.notify:
		case <-noChange:
			return s.timedOut(statusNoChange, noChangeSuffix(int(s.cfg.NoChangeTimeout/time.Second)), command, req), nil
		case <-hard:
			return s.timedOut(statusHard, hardTimeoutSuffix(req.Timeout), command, req), nil
		case <-ctx.Done():
			// The caller gave up; the command goes on and the next call
			// picks its output up like after a timeout.
			s.prevStatus = statusHard
			return Result{}, ctx.Err()
		}
	}
}

// rawOutput is everything shown since the current command started, as one
// string. Called with p.mu held.
func (p *proc) rawOutput() string {
	text := p.scr.Text()
	if p.carry != "" {
		text = joinSegments(p.carry, text)
	}
	if p.done != nil {
		text = p.done.output
	}
	return text
}

func (s *Shell) partialPrefix() string {
	if s.partialReplied {
		return continuePrefix
	}
	return ""
}

// partialOutput applies OpenHands' rule for partial replies: drop what was
// already returned, strip, and remember the whole for next time.
func (s *Shell) partialOutput(raw string) string {
	out := raw
	if s.prevOutput != "" {
		out = strings.TrimPrefix(raw, s.prevOutput)
	}
	s.prevOutput = raw
	s.partialReplied = true
	return pyRstrip(pyLstrip(out))
}

func (s *Shell) timedOut(st status, suffix, command string, req Request) Result {
	p, _ := s.current()
	p.mu.Lock()
	if p.done != nil {
		// The prompt arrived just as the timer fired: completion wins.
		c := p.done
		p.done = nil
		p.mu.Unlock()
		return s.completed(c, command, req)
	}
	raw := p.rawOutput()
	end := p.readOff
	p.mu.Unlock()
	md := DefaultMetadata()
	md.Prefix = s.partialPrefix()
	md.Suffix = suffix
	s.prevStatus = st
	return Result{Content: s.partialOutput(raw), Command: command, Metadata: md, Hidden: req.Hidden, OutputEnd: end}
}

func (s *Shell) completed(c *completion, command string, req Request) Result {
	md := Metadata{ExitCode: c.meta.exitCode, PID: c.meta.pid}
	user, host, wd := c.meta.username, c.meta.hostname, c.meta.cwd
	py := lookPython(c.meta.path, c.meta.cwd)
	md.Username, md.Hostname, md.WorkingDir, md.PyInterpreterPath = &user, &host, &wd, &py
	raw := c.output
	if c.truncated {
		md.Prefix = historyTruncatedPrefix(pySplitlinesCount(raw))
	}
	if s.prevOutput != "" {
		raw = strings.TrimPrefix(raw, s.prevOutput)
	}
	if s.partialReplied {
		md.Prefix = ""
	}
	if isSpecialKey(command) {
		md.Suffix = completedKeySuffix(md.ExitCode, command[len(command)-1])
	} else {
		md.Suffix = completedSuffix(md.ExitCode)
	}
	if wd != "" {
		s.cwd = wd
	}
	s.prevStatus, s.prevOutput, s.partialReplied = statusCompleted, "", false
	s.lastExit = md.ExitCode
	return Result{Content: pyRstrip(pyLstrip(raw)), Command: command, Metadata: md, Hidden: req.Hidden, OutputEnd: c.end}
}

// died answers the command during which the shell exited (`exit`,
// `kill -9 $$`). The next Run starts a new shell.
func (s *Shell) died(command string, req Request) Result {
	p, _ := s.current()
	// Give the reader a moment to drain what the shell printed last.
	select {
	case <-p.t.ReaderDone():
	case <-time.After(100 * time.Millisecond):
	}
	p.mu.Lock()
	raw := p.rawOutput()
	code := p.exitCode
	p.mu.Unlock()
	if s.prevOutput != "" {
		raw = strings.TrimPrefix(raw, s.prevOutput)
	}
	md := DefaultMetadata()
	md.ExitCode = code
	md.Suffix = fmt.Sprintf("\n[The shell exited with exit code %d. A new shell will be started for the next command.]", code)
	s.prevStatus, s.prevOutput, s.partialReplied = statusCompleted, "", false
	return Result{Content: pyRstrip(pyLstrip(raw)), Command: command, Metadata: md, Hidden: req.Hidden, OutputEnd: -1}
}

// lookPython finds python in PATH as `which python` does, without a fork.
func lookPython(path, cwd string) string {
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		cand := dir + "/python"
		abs := cand
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(cwd, abs)
		}
		st, err := os.Stat(abs)
		if err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return cand
		}
	}
	return ""
}

// Preempt delivers a signal key (C-c, C-z, C-\) at once if a command is
// running, without waiting for the request that holds the shell: an
// interrupt must never queue behind the command it is meant to stop. The
// key's own request, when it gets its turn, types nothing more and
// reports what the key did. It reports whether the key was delivered.
func (s *Shell) Preempt(command string) bool {
	command = pyStrip(command)
	if !isSpecialKey(command) {
		return false
	}
	p, closed := s.current()
	if closed || p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running || !p.t.SignalKey(command[2]) {
		return false
	}
	p.preempted = command
	return true
}

// Interrupt sends SIGINT to the foreground process group of the shell's
// terminal, as C-c on a terminal does, whoever holds the shell. The
// running command's request then reports its end. It reports whether a
// command was running and got the signal.
func (s *Shell) Interrupt() bool {
	p, closed := s.current()
	if closed || p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running && p.t.SignalKey('c')
}

// Busy reports whether a command is running: typed, and its prompt not
// back.
func (s *Shell) Busy() bool {
	p, closed := s.current()
	if closed || p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// Terminal is the shell's current terminal, for a client that attaches to
// it (its ring to read, Send to type, Resize). A shell that died and was
// replaced has a new terminal: attach again.
func (s *Shell) Terminal() *term.Term {
	p, _ := s.current()
	if p == nil {
		return nil
	}
	return p.t
}
