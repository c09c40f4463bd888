package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/reaper"
)

// Terminal geometry, as OpenHands' tmux window: wide enough that ls and
// friends lay out on one line, and a scrollback of 10 000 lines plus the
// visible rows (spec §5.10).
const (
	termCols     = 1000
	termRows     = 1000
	editableRows = 200
	historyRows  = 10000 + termRows - editableRows
)

// proc is one incarnation of the agent's bash on a PTY. It knows how to
// send text and when a command finished; Shell layers OpenHands' reply
// rules on top and replaces a proc that died.
type proc struct {
	log    *slog.Logger
	marker []byte // start of the prompt marker: ESC ] 697 ; sbx-<nonce> ;

	ptmx   *os.File
	cmd    *exec.Cmd
	pgid   int
	writes chan []byte

	mu       sync.Mutex
	scr      *screen
	pending  []byte
	running  bool        // a command was typed and its prompt has not come back
	done     *completion // a prompt came back and nobody has reported it
	carry    string      // output of a reported-late command, prepended to the next one
	lastMeta promptMeta
	prompts  int   // markers seen; the first one ends initialisation
	outSeq   int64 // bumps on every byte read, for the no-change timeout
	// writesClosed is set, under mu, when writes is closed; send is only
	// called with mu held.
	writesClosed bool
	queued       atomic.Int64 // bytes in writes not yet written
	exited       bool
	exitStatus   reaper.Status
	notify       chan struct{}
	readerDone   chan struct{}
	closeOnce    sync.Once
}

type completion struct {
	meta      promptMeta
	output    string
	truncated bool
}

type promptMeta struct {
	exitCode int
	pid      int
	username string
	hostname string
	cwd      string
	path     string
}

// Starter starts a child process and reports its exit; it is the reaper in
// sandboxd. A consumer-side interface so tests can bring their own.
type Starter interface {
	Start(cmd *exec.Cmd) (<-chan reaper.Status, error)
}

func newNonce() string { return ids.New(8) }

// ps1 builds the prompt: an OSC sequence, invisible on any terminal, that
// carries the metadata OpenHands reads from its PS1 JSON block. Everything
// in it expands inside bash without forking (no $(pwd), no $(which
// python)); the interpreter path is looked up here from $PATH instead.
//
// $PATH is sent only when it changed since the previous prompt: bash's
// prompt expansion costs about half a microsecond per character, and PATH
// is often the longest thing in the prompt while rarely changing.
//
// The working directory and PATH travel %-escaped (%, BEL and US only), so
// that a directory named with those bytes cannot end the marker early.
func ps1(nonce string) string {
	return `\e]697;sbx-` + nonce + `;$?;$!;\u;\h\037$__sbx_wd\037$__sbx_pp\a`
}

// promptFunc runs before each prompt, in the shell itself (no fork). It is
// a function so that bash parses it once, not at every prompt; it also
// puts PS1 back in case a command (a venv's activate) changed it.
const promptFunc = `__sbx_prompt() { ` +
	`if [[ "$PWD" != "$__sbx_lw" ]]; then __sbx_lw=$PWD; __sbx_wd=${PWD//%/%25}; __sbx_wd=${__sbx_wd//$'\a'/%07}; __sbx_wd=${__sbx_wd//$'\037'/%1F}; fi; ` +
	`if [[ "$PATH" == "$__sbx_lp" ]]; then __sbx_pp=; else __sbx_lp=$PATH; __sbx_pp=${PATH//%/%25}; __sbx_pp=${__sbx_pp//$'\a'/%07}; __sbx_pp=${__sbx_pp//$'\037'/%1F}; fi; ` +
	`PS1=$__sbx_ps1; }`

func startProc(ctx context.Context, cfg *Config, dir string) (*proc, error) {
	nonce := newNonce()
	p := &proc{
		log:        cfg.Logger,
		marker:     []byte("\x1b]697;sbx-" + nonce + ";"),
		scr:        newScreen(termCols, editableRows, historyRows),
		notify:     make(chan struct{}, 1),
		readerDone: make(chan struct{}),
		writes:     make(chan []byte, 256),
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: termRows, Cols: termCols}); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, fmt.Errorf("size pty: %w", err)
	}
	// No echo: the agent must see what commands print, not what it typed.
	// Readline honours the flag and displays nothing while reading a line,
	// yet still reads lines of any length (the tty's canonical mode would
	// cut them at 4095 bytes).
	if err := setNoEcho(tty); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, err
	}
	// Interactive, not a login shell: OpenHands runs `su <user> -`, where
	// the "-" after the user name is an argument for the shell, not su's
	// login flag, so bash reads ~/.bashrc and keeps the environment.
	cmd := exec.Command(cfg.Shell, "-i")
	cmd.Dir = dir
	cmd.Env = cfg.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Credential: cfg.Credential}
	exitc, err := cfg.Starter.Start(cmd)
	tty.Close()
	if err != nil {
		ptmx.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Shell, err)
	}
	ptmx, err = pollable(ptmx)
	if err != nil {
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		return nil, err
	}
	p.ptmx, p.cmd, p.pgid = ptmx, cmd, cmd.Process.Pid
	go p.readLoop()
	go p.writeLoop()
	go p.waitExit(exitc)

	init := strings.Join([]string{
		`bind 'set disable-completion on' 2>/dev/null`,
		`bind 'set enable-bracketed-paste off' 2>/dev/null`,
		`bind 'set convert-meta off' 2>/dev/null`,
		`bind 'set input-meta on' 2>/dev/null`,
		`bind 'set output-meta on' 2>/dev/null`,
		`bind 'set bell-style none' 2>/dev/null`,
		`export __sbx_ps1='` + ps1(nonce) + `'`,
		promptFunc,
		`export -f __sbx_prompt`,
		`export PROMPT_COMMAND=__sbx_prompt`,
		`export PS2=''`,
		`alias git="git --no-pager"`,
	}, "; ")
	p.mu.Lock()
	p.send([]byte(init + "\r"))
	p.mu.Unlock()

	// Wait for the first prompt of ours; what the login scripts printed
	// before it is not the agent's business.
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		ok, exited := p.prompts > 0, p.exited
		if ok {
			p.scr.reset()
			p.done = nil
			p.running = false
		}
		p.mu.Unlock()
		if ok {
			return p, nil
		}
		if exited {
			p.close()
			return nil, fmt.Errorf("%s exited during start-up with status %d", cfg.Shell, p.exitStatus.ExitCode)
		}
		select {
		case <-p.notify:
		case <-timer.C:
			p.close()
			return nil, fmt.Errorf("%s did not show its prompt within %s", cfg.Shell, cfg.StartTimeout)
		case <-ctx.Done():
			p.close()
			return nil, ctx.Err()
		}
	}
}

// pollable returns the PTY master as a non-blocking file served by Go's
// network poller. pty.Open's file is in blocking mode (its Fd was used for
// ioctls), and a goroutine blocked in read(2) holds on to its scheduler
// slot: the goroutine it has just woken then waits for the runtime to take
// the slot back, which costs a reply tens to hundreds of microseconds.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("dup pty: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}

// termios runs fn on the PTY master's settings without Fd, which would
// put the file back into blocking mode.
func (p *proc) termios(fn func(fd int)) {
	rc, err := p.ptmx.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { fn(int(fd)) })
}

func setNoEcho(tty *os.File) error {
	t, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Lflag &^= unix.ECHO | unix.ECHONL
	if err := unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}

// reassertNoEcho turns echo off again in case a command (stty echo)
// turned it on; on Linux the master side reaches the slave's settings.
func (p *proc) reassertNoEcho() {
	p.termios(func(fd int) {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil || t.Lflag&unix.ECHO == 0 {
			return
		}
		t.Lflag &^= unix.ECHO | unix.ECHONL
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	})
}

// cookedTTY reports whether the foreground program reads the terminal in
// canonical mode with signals on, where the tty itself would echo ^C.
func (p *proc) cookedTTY() bool {
	cooked := false
	p.termios(func(fd int) {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		cooked = err == nil && t.Lflag&unix.ISIG != 0 && t.Lflag&unix.ICANON != 0
	})
	return cooked
}

func (p *proc) signal() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *proc) readLoop() {
	defer close(p.readerDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := p.ptmx.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.feed(buf[:n])
			p.outSeq++
			p.mu.Unlock()
			p.signal()
		}
		if err != nil {
			// EIO is how a PTY master says the last slave fd closed.
			p.signal()
			return
		}
	}
}

func (p *proc) writeLoop() {
	for b := range p.writes {
		if _, err := p.ptmx.Write(b); err != nil {
			p.log.Debug("pty write failed", "err", err)
		}
		p.queued.Add(-int64(len(b)))
	}
}

// tryWrite writes as much of b as the terminal accepts without blocking.
func (p *proc) tryWrite(b []byte) int {
	rc, err := p.ptmx.SyscallConn()
	if err != nil {
		return 0
	}
	written := 0
	_ = rc.Write(func(fd uintptr) bool {
		for written < len(b) {
			n, err := unix.Write(int(fd), b[written:])
			if n > 0 {
				written += n
			}
			if err != nil {
				break
			}
		}
		return true // never wait for writability here
	})
	return written
}

// maxQueued bounds the input waiting for a program that does not read it.
const maxQueued = 16 << 20

// signalKey delivers C-c, C-z or C-\ the way the terminal would — signal
// the foreground process group and drop the unread input — without going
// through the input queue, where it could wait forever behind input that
// a program is not reading. It reports false when the terminal would not
// turn the key into a signal (ISIG off: raw-mode programs read the byte).
// Called with p.mu held.
func (p *proc) signalKey(k byte) bool {
	var sig unix.Signal
	switch k {
	case 'c', 'C':
		sig = unix.SIGINT
	case 'z', 'Z':
		sig = unix.SIGTSTP
	case '\\':
		sig = unix.SIGQUIT
	default:
		return false
	}
	done := false
	p.termios(func(fd int) {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil || t.Lflag&unix.ISIG == 0 {
			return
		}
		pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		if err != nil || pgrp <= 0 {
			return
		}
		if t.Lflag&unix.NOFLSH == 0 {
			_ = unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
			for drained := false; !drained; {
				select {
				case b := <-p.writes:
					p.queued.Add(-int64(len(b)))
				default:
					drained = true
				}
			}
		}
		done = unix.Kill(-pgrp, sig) == nil
	})
	return done
}

// send queues bytes for the terminal without ever blocking the caller: a
// program that stopped reading its input must not wedge the server.
func (p *proc) send(b []byte) error {
	if p.writesClosed {
		return errors.New("the shell is closed")
	}
	if p.queued.Load()+int64(len(b)) > maxQueued {
		return errors.New("the terminal's input buffer is full: the running program is not reading its input")
	}
	if p.queued.Load() == 0 {
		// Nothing is waiting: write what the terminal takes right away,
		// without a hop through the writer goroutine, and queue only the
		// rest (order is kept because the queue is empty).
		n := p.tryWrite(b)
		if n == len(b) {
			return nil
		}
		b = b[n:]
	}
	select {
	case p.writes <- b:
		p.queued.Add(int64(len(b)))
		return nil
	default:
		return errors.New("the terminal's input buffer is full: the running program is not reading its input")
	}
}

func (p *proc) waitExit(exitc <-chan reaper.Status) {
	st, ok := <-exitc
	p.mu.Lock()
	p.exited = true
	if ok {
		p.exitStatus = st
	}
	p.mu.Unlock()
	p.signal()
}

// feed splits terminal output into text for the screen and our prompt
// markers. Called with p.mu held.
func (p *proc) feed(b []byte) {
	data := b
	if len(p.pending) > 0 {
		data = append(p.pending, b...)
		p.pending = nil
	}
	for len(data) > 0 {
		i := bytes.Index(data, p.marker)
		if i < 0 {
			k := partialPrefix(data, p.marker)
			p.scr.write(data[:len(data)-k])
			if k > 0 {
				p.pending = append([]byte(nil), data[len(data)-k:]...)
			}
			return
		}
		p.scr.write(data[:i])
		rest := data[i+len(p.marker):]
		j := bytes.IndexByte(rest, 0x07)
		if j < 0 {
			if len(rest) > 64<<10 {
				// Not a prompt of ours after all.
				p.scr.write(data[i:])
				return
			}
			p.pending = append([]byte(nil), data[i:]...)
			return
		}
		p.onPrompt(parsePrompt(rest[:j]))
		data = rest[j+1:]
	}
}

// partialPrefix returns the length of the longest tail of data that is a
// proper prefix of marker, so that a marker split across reads is found.
func partialPrefix(data, marker []byte) int {
	start := len(data) - len(marker) + 1
	if start < 0 {
		start = 0
	}
	for i := start; i < len(data); i++ {
		if data[i] == marker[0] && bytes.HasPrefix(marker, data[i:]) {
			return len(data) - i
		}
	}
	return 0
}

func (p *proc) onPrompt(m promptMeta) {
	if m.path == "" {
		m.path = p.lastMeta.path // unchanged since the previous prompt
	}
	p.prompts++
	p.lastMeta = m
	if !p.running && p.done == nil {
		return // a prompt while idle (start-up, or a key pressed at the prompt)
	}
	text := p.scr.text()
	truncated := p.scr.dropped > 0
	p.scr.reset()
	if p.carry != "" {
		text = joinSegments(p.carry, text)
		p.carry = ""
	}
	if p.done != nil {
		// Another prompt before anyone collected the first: bash ran more
		// input. Keep it all, with the newest metadata.
		p.done.output = joinSegments(p.done.output, text)
		p.done.meta = m
		p.done.truncated = p.done.truncated || truncated
		return
	}
	p.running = false
	p.done = &completion{meta: m, output: text, truncated: truncated}
}

// joinSegments joins the output of two commands separated by a prompt the
// way OpenHands' pane capture does: its PS1 starts with a newline and the
// segments are joined with another, which leaves two blank lines between.
func joinSegments(a, b string) string {
	return a + "\n\n" + b
}

func parsePrompt(b []byte) promptMeta {
	m := promptMeta{exitCode: -1, pid: -1}
	s := string(b)
	head, tail, _ := strings.Cut(s, "\x1f")
	f := strings.SplitN(head, ";", 4)
	if len(f) == 4 {
		m.exitCode = pyInt(f[0])
		m.pid = pyInt(f[1])
		m.username = f[2]
		m.hostname = f[3]
	}
	cwd, path, _ := strings.Cut(tail, "\x1f")
	m.cwd, m.path = unescapeField(cwd), unescapeField(path)
	return m
}

// unescapeField undoes the prompt's %-escaping of %, BEL and US.
func unescapeField(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	return strings.NewReplacer("%25", "%", "%07", "\a", "%1F", "\x1f").Replace(s)
}

// pyInt parses as int(float(str(x))) does, falling back to -1.
func pyInt(s string) int {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) {
		return -1
	}
	return int(f)
}

// close ends the shell and everything in its session: SIGHUP first, as a
// closing terminal would, then SIGKILL for what is left.
func (p *proc) close() {
	p.closeOnce.Do(func() {
		sid := p.pgid
		_ = unix.Kill(-sid, unix.SIGHUP)
		killSession(sid, unix.SIGHUP)
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			p.mu.Lock()
			exited := p.exited
			p.mu.Unlock()
			if exited && len(sessionPids(sid)) == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		killSession(sid, unix.SIGKILL)
		_ = unix.Kill(-sid, unix.SIGKILL)
		p.mu.Lock()
		p.writesClosed = true
		close(p.writes)
		p.mu.Unlock()
		p.ptmx.Close()
		<-p.readerDone
	})
}

func killSession(sid int, sig unix.Signal) {
	for _, pid := range sessionPids(sid) {
		_ = unix.Kill(pid, sig)
	}
}

// sessionPids lists the processes whose session id is sid: the shell and
// every job it started, whatever process group job control put them in.
func sessionPids(sid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which may contain spaces and ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// f[0]=state f[1]=ppid f[2]=pgrp f[3]=session
		if len(f) > 3 && f[0] != "Z" && f[3] == strconv.Itoa(sid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
