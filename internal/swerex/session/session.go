// Package session is a bash session with SWE-ReX's reply rules, a client
// of the terminal layer beside OpenHands' shell and attach: one
// interactive bash on a PTY with echo off, commands typed into it, and
// replies cut at a prompt marker, like SWE-ReX's pexpect-based
// BashSession (spec: swerex-remote.md §5).
//
// What differs from upstream is how, never what: the exit code travels in
// the prompt itself (no extra round trip, no process), multi-line input
// is typed as one { …; } group so bash prints one prompt, and the syntax
// pre-check asks bash only when a parser rejects the text.
package session

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/pyrepr"
	"github.com/sbx-dev/sbx/internal/term"
)

// PromptPattern is what SWE-ReX reports as expect_string when the prompt,
// not one of the caller's patterns, ended a wait.
const PromptPattern = "SHELLPS1PREFIX"

// maxBuffered bounds what a session keeps of output nobody has asked for
// yet (pexpect keeps all of it); beyond it the oldest bytes are dropped.
const maxBuffered = 64 << 20

// Config says how to start a session.
type Config struct {
	// Bash is bash's path; empty looks "bash" up on the PATH of Env, as
	// upstream's /usr/bin/env bash does.
	Bash           string
	Env            []string // the server's environment
	Dir            string
	Credential     *syscall.Credential // nil: as the server's user
	Starter        term.Starter
	Logger         *slog.Logger
	StartupSource  []string
	StartupTimeout time.Duration
}

// Action is a BashAction (§2.3) in Go terms. A nil Timeout waits forever.
type Action struct {
	Command         string
	Timeout         *float64
	Interactive     bool
	InteractiveQuit bool
	Check           string // "raise", "silent" or "ignore"
	ErrorMsg        string
	Expect          []string
}

// Interrupt is a BashInterruptAction.
type Interrupt struct {
	Timeout float64
	NRetry  int
	Expect  []string
}

// Observation is a BashObservation.
type Observation struct {
	Output       string
	ExitCode     *int
	ExpectString string
}

// Session is one bash. Requests are served one at a time, in order.
type Session struct {
	log    *slog.Logger
	t      *term.Term
	bash   string
	env    []string
	start  term.Starter
	marker []byte // ESC ] 698 ; <nonce> ;   then the exit code and BEL

	lock chan struct{} // held by the request being served

	mu       sync.Mutex
	buf      []byte // output no wait has consumed yet: pexpect's buffer
	scanFrom int    // where the next prompt search in buf may start
	notify   chan struct{}
	closed   bool

	// pending: start-up timed out and its prompt has not been seen yet.
	// Only the request holding lock touches it.
	pending bool
}

// Start spawns bash, sources cfg.StartupSource and sets the prompt. The
// output is what bash printed before its first prompt. On error the
// session is still returned when bash runs, so the caller can keep it
// registered as upstream does and close it later.
func Start(ctx context.Context, cfg Config) (*Session, string, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	bash := cfg.Bash
	if bash == "" {
		p, err := lookPath("bash", cfg.Env)
		if err != nil {
			return nil, "", &Error{Kind: KindInternal, Msg: "bash not found: " + err.Error(), Err: err}
		}
		bash = p
	}
	nonce := ids.New(8)
	s := &Session{
		log:    cfg.Logger,
		bash:   bash,
		env:    cfg.Env,
		start:  cfg.Starter,
		marker: []byte("\x1b]698;" + nonce + ";"),
		lock:   make(chan struct{}, 1),
		notify: make(chan struct{}, 1),
	}
	env := withoutVars(cfg.Env, "PS1", "PS2", "PS0")
	// Until the start-up line runs, bash (and ~/.bashrc) sees a prompt
	// of the same shape without an exit code, which never ends a wait.
	env = append(env, `PS1=\e]698;`+nonce+`;i\a`, "PS2=", "PS0=")
	t, err := term.Start(term.Config{
		Path: bash, Dir: cfg.Dir, Env: env, Credential: cfg.Credential,
		Rows: 24, Cols: 80, NoEcho: true,
		Starter: cfg.Starter, Logger: cfg.Logger, Tap: s.tap, RingBytes: 64 << 10,
	})
	if err != nil {
		return nil, "", &Error{Kind: KindInternal, Msg: "starting bash: " + err.Error(), Err: err}
	}
	s.t = t
	go func() {
		<-t.ReaderDone()
		s.wake()
	}()

	var line []string
	for _, f := range cfg.StartupSource {
		line = append(line, "source "+f)
	}
	line = append(line,
		// Harmless where TERM is unset (readline is dumb then); with an
		// inherited xterm TERM it keeps \e[?2004h and a stray \r out of
		// replies.
		`bind 'set enable-bracketed-paste off' 2>/dev/null`,
		`export PS1='\e]698;`+nonce+`;$?\a'`, `export PS2=''`, `export PS0=''`)
	s.lock <- struct{}{}
	defer func() { <-s.lock }()
	if err := t.Send([]byte(strings.Join(line, " ; ") + "\n")); err != nil {
		return s, "", &Error{Kind: KindInternal, Msg: err.Error(), Err: err}
	}
	timeout := cfg.StartupTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	m, err := s.expect(ctx, nil, true, timeout)
	if err != nil {
		// The session stays registered (upstream's too): its first
		// request must not take the late start-up prompt for its own.
		s.pending = true
		return s, "", err
	}
	return s, s.clean(m.before), nil
}

func (s *Session) tap(b []byte, _ int64) {
	s.mu.Lock()
	s.buf = append(s.buf, b...)
	if over := len(s.buf) - maxBuffered; over > 0 {
		s.buf = append(s.buf[:0], s.buf[over:]...)
		s.scanFrom = max(0, s.scanFrom-over)
	}
	s.mu.Unlock()
	s.wake()
}

func (s *Session) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// acquire takes the session for one request.
func (s *Session) acquire(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		<-s.lock
		return errorf(KindNotInitialized, "shell not initialized")
	}
	if s.pending {
		// A slow ~/.bashrc: wait for the start-up prompt first, a while.
		if _, err := s.expect(ctx, nil, true, 30*time.Second); err == nil {
			s.pending = false
		}
	}
	return nil
}

func (s *Session) release() { <-s.lock }

// Run runs a BashAction.
func (s *Session) Run(ctx context.Context, a Action) (Observation, error) {
	if err := s.acquire(ctx); err != nil {
		return Observation{}, err
	}
	defer s.release()
	pats, err := compile(a.Expect)
	if err != nil {
		return Observation{}, err
	}
	if a.Interactive || a.InteractiveQuit {
		return s.runInteractive(ctx, a, pats)
	}
	obs, err := s.runNormal(ctx, a, pats)
	if err != nil {
		return obs, err
	}
	if a.Check == "raise" && (obs.ExitCode == nil || *obs.ExitCode != 0) {
		code := "None"
		if obs.ExitCode != nil {
			code = strconv.Itoa(*obs.ExitCode)
		}
		msg := "Command " + pyrepr.Str(a.Command) + " failed with exit code " + code +
			". Here is the output:\n" + pyrepr.Str(obs.Output)
		if a.ErrorMsg != "" {
			msg = a.ErrorMsg + ": " + msg
		}
		return Observation{}, &Error{Kind: KindNonZeroExit, Msg: msg}
	}
	return obs, nil
}

func (s *Session) runNormal(ctx context.Context, a Action, pats []*regexp.Regexp) (Observation, error) {
	if err := checkSyntax(ctx, s.start, s.bash, s.env, a.Command); err != nil {
		return Observation{}, err
	}
	typed := prepare(a.Command)
	if err := s.send(typed + "\n"); err != nil {
		return Observation{}, err
	}
	m, err := s.expect(ctx, pats, true, timeoutOf(a.Timeout))
	if err != nil {
		return Observation{}, s.commandTimeout(err, a.Timeout, pyStrip(a.Command))
	}
	obs := Observation{Output: s.clean(m.before), ExpectString: m.pattern}
	if a.Check == "ignore" {
		return obs, nil
	}
	code := m.code
	if code < 0 {
		// One of the caller's patterns ended the wait: the exit code is in
		// the prompt, if it comes (upstream waits a second for its echo).
		m2, err := s.expect(ctx, nil, true, time.Second)
		if err != nil {
			if a.Check == "raise" {
				var e *Error
				if asError(err, &e) && e.Kind == KindExpectTimeout {
					return obs, errorf(KindNoExitCode, "timeout while getting exit code")
				}
				return obs, err
			}
			return obs, nil
		}
		obs.Output += s.clean(m2.before)
		code = m2.code
	}
	obs.ExitCode = &code
	return obs, nil
}

func (s *Session) runInteractive(ctx context.Context, a Action, pats []*regexp.Regexp) (Observation, error) {
	if err := s.send(a.Command + "\n"); err != nil {
		return Observation{}, err
	}
	m, err := s.expect(ctx, pats, true, timeoutOf(a.Timeout))
	if err != nil {
		return Observation{}, s.commandTimeout(err, a.Timeout, a.Command)
	}
	out := s.clean(m.before)
	if a.InteractiveQuit {
		// The program may have turned echo back on: turn it off, then
		// skip whatever prompts the quit left (an extra newline gives
		// one) up to a word of ours and the prompt after it, as
		// upstream's stty -echo; echo does.
		s.t.ReassertNoEcho()
		word := "SBXQUIT" + string(s.marker[len("\x1b]698;"):len(s.marker)-1])
		if err := s.send("echo '" + word + "'\n"); err != nil {
			return Observation{}, err
		}
		if _, err := s.expect(ctx, []*regexp.Regexp{regexp.MustCompile("(?s)" + word)}, false, time.Second); err != nil {
			return Observation{}, err
		}
		if _, err := s.expect(ctx, nil, true, time.Second); err != nil {
			return Observation{}, err
		}
	} else {
		out = pyStrip(strings.TrimPrefix(pyLstrip(out), a.Command))
	}
	zero := 0
	return Observation{Output: out, ExitCode: &zero, ExpectString: m.pattern}, nil
}

// Interrupt sends C-c until the prompt or a pattern shows, then C-z and
// kill -9 %1, as SWE-ReX does.
func (s *Session) Interrupt(ctx context.Context, in Interrupt) (Observation, error) {
	if err := s.acquire(ctx); err != nil {
		return Observation{}, err
	}
	defer s.release()
	pats, err := compile(in.Expect)
	if err != nil {
		return Observation{}, err
	}
	wait := time.Duration(in.Timeout * float64(time.Second))
	zero := 0
	for range in.NRetry {
		if err := s.t.Send([]byte{0x03}); err != nil {
			return Observation{}, &Error{Kind: KindEOF, Msg: err.Error(), Err: err}
		}
		m, err := s.expect(ctx, pats, true, wait)
		if err != nil {
			if ctx.Err() != nil {
				return Observation{}, ctx.Err()
			}
			if !sleep(ctx, 200*time.Millisecond) {
				return Observation{}, ctx.Err()
			}
			continue
		}
		out := s.clean(m.before) + s.eatFollowing(ctx)
		return Observation{Output: pyStrip(out), ExitCode: &zero, ExpectString: m.pattern}, nil
	}
	failed := errorf(KindExpectTimeout, "Failed to interrupt session")
	if err := s.t.Send([]byte{0x1a}); err != nil {
		return Observation{}, failed
	}
	m, err := s.expect(ctx, pats, true, wait)
	if err != nil {
		return Observation{}, failed
	}
	out := decode(s.stripMarkers(m.before))
	if err := s.send("kill -9 %1\n"); err != nil {
		return Observation{}, failed
	}
	m, err = s.expect(ctx, pats, true, wait)
	if err != nil {
		return Observation{}, failed
	}
	out += decode(s.stripMarkers(m.before)) + s.eatFollowing(ctx)
	return Observation{Output: pyStrip(out), ExitCode: &zero, ExpectString: m.pattern}, nil
}

// eatFollowing waits half a second and takes what arrived meanwhile.
func (s *Session) eatFollowing(ctx context.Context) string {
	sleep(ctx, 500*time.Millisecond)
	s.mu.Lock()
	b := s.buf
	s.buf, s.scanFrom = nil, 0
	s.mu.Unlock()
	return s.clean(b)
}

// Close ends bash and everything on its terminal.
func (s *Session) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.t.Close()
	}
}

// Pid is bash's process id.
func (s *Session) Pid() int { return s.t.Pid() }

func (s *Session) send(text string) error {
	if err := s.t.Send([]byte(text)); err != nil {
		return &Error{Kind: KindEOF, Msg: "End Of File (EOF). " + err.Error(), Err: err}
	}
	return nil
}

func (s *Session) commandTimeout(err error, timeout *float64, command string) error {
	var e *Error
	if asError(err, &e) && e.Kind == KindExpectTimeout && timeout != nil {
		return errorf(KindTimeout, "timeout after %s seconds while running command %s", pyrepr.Float(*timeout), pyrepr.Str(command))
	}
	return err
}

// match is the end of one wait.
type match struct {
	before  []byte
	pattern string // the pattern as sent, or PromptPattern
	code    int    // the exit code in the prompt; -1 when a pattern matched
}

// expect waits, like pexpect's expect, for the earliest match in the
// buffered output of any of pats or (with prompt) the prompt marker;
// timeout < 0 waits until ctx ends. The match and what precedes it are
// consumed; what follows stays for the next wait.
func (s *Session) expect(ctx context.Context, pats []*regexp.Regexp, prompt bool, timeout time.Duration) (match, error) {
	var timer <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	done := s.t.ReaderDone()
	for {
		s.mu.Lock()
		m, ok := s.search(pats, prompt)
		s.mu.Unlock()
		if ok {
			return m, nil
		}
		select {
		case <-done:
			s.mu.Lock()
			m, ok := s.search(pats, prompt)
			s.mu.Unlock()
			if ok {
				return m, nil
			}
			return match{}, errorf(KindEOF, "End Of File (EOF). Exception style platform.")
		default:
		}
		select {
		case <-s.notify:
		case <-done:
		case <-timer:
			return match{}, errorf(KindExpectTimeout, "Timeout exceeded.")
		case <-ctx.Done():
			return match{}, ctx.Err()
		}
	}
}

// search finds the earliest match, ties going to the caller's patterns in
// their order and then to the prompt (upstream's expect + [PS1]). Called
// with s.mu held.
func (s *Session) search(pats []*regexp.Regexp, prompt bool) (match, bool) {
	best, bestEnd, code, which := -1, 0, -1, -1
	for i, re := range pats {
		if loc := re.FindIndex(s.buf); loc != nil && (best < 0 || loc[0] < best) {
			best, bestEnd, which = loc[0], loc[1], i
		}
	}
	if prompt {
		if st, end, c, ok := s.findPrompt(); ok && (best < 0 || st < best) {
			best, bestEnd, code, which = st, end, c, len(pats)
		}
	}
	if best < 0 {
		return match{}, false
	}
	m := match{before: bytes.Clone(s.buf[:best]), code: code, pattern: PromptPattern}
	if which < len(pats) {
		m.pattern = pats[which].String()[len("(?s)"):]
	}
	s.buf = append(s.buf[:0], s.buf[bestEnd:]...)
	s.scanFrom = 0
	return m, true
}

// findPrompt finds the first complete prompt marker with an exit code.
func (s *Session) findPrompt() (start, end, code int, ok bool) {
	from := s.scanFrom
	for {
		i := bytes.Index(s.buf[from:], s.marker)
		if i < 0 {
			// A marker may be cut at the end: look again from there.
			s.scanFrom = max(from, len(s.buf)-len(s.marker)-12)
			return 0, 0, 0, false
		}
		i += from
		j := i + len(s.marker)
		k := j
		for k < len(s.buf) && s.buf[k] >= '0' && s.buf[k] <= '9' {
			k++
		}
		if k == len(s.buf) {
			s.scanFrom = i
			return 0, 0, 0, false
		}
		if s.buf[k] == '\a' && k > j {
			c, _ := strconv.Atoi(string(s.buf[j:k]))
			return i, k + 1, c, true
		}
		from = j
	}
}

// stripMarkers removes this session's complete prompt markers.
func (s *Session) stripMarkers(b []byte) []byte {
	for {
		i := bytes.Index(b, s.marker)
		if i < 0 {
			return b
		}
		j := bytes.IndexByte(b[i:], '\a')
		if j < 0 {
			return b
		}
		b = append(b[:i:i], b[i+j+1:]...)
	}
}

var ansiRE = regexp.MustCompile(`\x1b[@-_][0-?]*[ -/]*[@-~]`)

// clean is upstream's _strip_control_chars on the decoded text: prompt
// markers out, ANSI escapes out, CRLF to LF, invalid UTF-8 as \xNN.
func (s *Session) clean(b []byte) string {
	b = s.stripMarkers(b)
	b = ansiRE.ReplaceAll(b, nil)
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return decode(b)
}

func compile(pats []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(pats))
	for _, p := range pats {
		// pexpect compiles each pattern with re.DOTALL.
		re, err := regexp.Compile("(?s)" + p)
		if err != nil {
			return nil, &Error{Kind: KindBadPattern, Msg: err.Error(), Err: err}
		}
		out = append(out, re)
	}
	return out, nil
}

func timeoutOf(t *float64) time.Duration {
	if t == nil {
		return -1
	}
	if *t <= 0 {
		return 0
	}
	if *t > float64(1<<62)/float64(time.Second) {
		return -1
	}
	return time.Duration(*t * float64(time.Second))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func withoutVars(env []string, names ...string) []string {
	out := make([]string, 0, len(env)+len(names))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			if k == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func lookPath(name string, env []string) (string, error) {
	for i := len(env) - 1; i >= 0; i-- {
		if p, ok := strings.CutPrefix(env[i], "PATH="); ok {
			for _, dir := range strings.Split(p, ":") {
				if dir == "" {
					dir = "."
				}
				if c := dir + "/" + name; isExecutable(c) {
					return c, nil
				}
			}
			break
		}
	}
	return exec.LookPath(name)
}
