// Package term is sandboxd's terminal layer: a program on a PTY, the one
// goroutine that reads it, and the fan-out of what it prints to any number
// of clients. The OpenHands shell (package shell) is one client, reading
// every byte in order through Config.Tap; streaming runs and terminal
// attach are others, each reading the Ring at its own pace. Nothing a
// client does can stall the reader, so no client can stall the program.
//
// The package knows nothing about HTTP or about any protocol's replies.
package term

import (
	"bytes"
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

	"github.com/sbx-dev/sbx/internal/reaper"
)

// Starter starts a child process and reports its exit; it is the reaper in
// sandboxd (PID 1 in a container waits for every child itself).
type Starter interface {
	Start(cmd *exec.Cmd) (<-chan reaper.Status, error)
}

// Config says what to run on the terminal.
type Config struct {
	Path       string   // the program
	Args       []string // its arguments, without argv[0]
	Dir        string
	Env        []string
	Credential *syscall.Credential // nil: as the server's user
	Rows, Cols uint16
	// NoEcho turns the terminal's echo off before the program starts: the
	// OpenHands shell must see what commands print, not what was typed.
	NoEcho  bool
	Starter Starter
	Logger  *slog.Logger
	// Tap, if set, is given every chunk the reader reads, in order, with
	// the offset of its first byte, before the ring has it. It runs on the
	// reader goroutine and must not block.
	Tap func(b []byte, off int64)
	// RingBytes is how much recent output clients can catch up on
	// (default 1 MiB).
	RingBytes int
}

// Term is one program on a PTY, in its own session.
type Term struct {
	log  *slog.Logger
	ptmx *os.File
	pgid int
	tap  func([]byte, int64)
	ring *Ring

	// wmu guards writes and writesClosed: input is queued, never written
	// while a caller waits, so a program that stops reading cannot wedge
	// the server.
	wmu          sync.Mutex
	writes       chan []byte
	writesClosed bool
	queued       atomic.Int64

	exited     chan struct{}
	exitStatus reaper.Status // set before exited is closed
	readerDone chan struct{}
	closeOnce  sync.Once
}

// Start runs the program on a new PTY.
func Start(cfg Config) (*Term, error) {
	if cfg.Starter == nil {
		return nil, errors.New("term: Config.Starter is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rows == 0 || cfg.Cols == 0 {
		cfg.Rows, cfg.Cols = 24, 80
	}
	t := &Term{
		log:        cfg.Logger,
		tap:        cfg.Tap,
		ring:       NewRing(cfg.RingBytes),
		writes:     make(chan []byte, 256),
		exited:     make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: cfg.Rows, Cols: cfg.Cols}); err != nil {
		ptmx.Close()
		tty.Close()
		return nil, fmt.Errorf("size pty: %w", err)
	}
	if cfg.NoEcho {
		// Readline honours the flag and displays nothing while reading a
		// line, yet still reads lines of any length (the tty's canonical
		// mode would cut them at 4095 bytes).
		if err := setNoEcho(tty); err != nil {
			ptmx.Close()
			tty.Close()
			return nil, err
		}
	}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Dir = cfg.Dir
	cmd.Env = cfg.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Credential: cfg.Credential}
	exitc, err := cfg.Starter.Start(cmd)
	tty.Close()
	if err != nil {
		ptmx.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Path, err)
	}
	ptmx, err = pollable(ptmx)
	if err != nil {
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		return nil, err
	}
	t.ptmx, t.pgid = ptmx, cmd.Process.Pid
	go t.readLoop()
	go t.writeLoop()
	go t.waitExit(exitc)
	return t, nil
}

// Pid is the program's pid, which is also its session and group id.
func (t *Term) Pid() int { return t.pgid }

// Ring is the terminal's recent output, for clients to read at their pace.
func (t *Term) Ring() *Ring { return t.ring }

// Exited is closed when the program has exited; ExitStatus is then valid.
func (t *Term) Exited() <-chan struct{} { return t.exited }

// ExitStatus is the program's exit, once Exited is closed.
func (t *Term) ExitStatus() reaper.Status {
	<-t.exited
	return t.exitStatus
}

// ReaderDone is closed when the reader has read the last byte.
func (t *Term) ReaderDone() <-chan struct{} { return t.readerDone }

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
func (t *Term) termios(fn func(fd int)) {
	rc, err := t.ptmx.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// Unread is how many bytes of output the kernel holds that the reader has
// not taken yet: a reader that lags (a loaded machine) is not a program
// that went quiet.
func (t *Term) Unread() int {
	n := 0
	t.termios(func(fd int) {
		if v, err := unix.IoctlGetInt(fd, unix.TIOCINQ); err == nil {
			n = v
		}
	})
	return n
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

// ReassertNoEcho turns echo off again in case a command (stty echo)
// turned it on; on Linux the master side reaches the slave's settings.
func (t *Term) ReassertNoEcho() {
	t.termios(func(fd int) {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil || tio.Lflag&unix.ECHO == 0 {
			return
		}
		tio.Lflag &^= unix.ECHO | unix.ECHONL
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	})
}

// Cooked reports whether the foreground program reads the terminal in
// canonical mode with signals on, where the tty itself would echo ^C.
func (t *Term) Cooked() bool {
	cooked := false
	t.termios(func(fd int) {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		cooked = err == nil && tio.Lflag&unix.ISIG != 0 && tio.Lflag&unix.ICANON != 0
	})
	return cooked
}

// Resize sets the window size; the foreground program gets SIGWINCH.
func (t *Term) Resize(rows, cols uint16) error {
	if rows == 0 || cols == 0 {
		return fmt.Errorf("window size %dx%d: rows and columns must be positive", cols, rows)
	}
	var err error
	t.termios(func(fd int) {
		err = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	return err
}

// Size is the window size.
func (t *Term) Size() (rows, cols uint16) {
	t.termios(func(fd int) {
		if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			rows, cols = ws.Row, ws.Col
		}
	})
	return rows, cols
}

func (t *Term) readLoop() {
	defer close(t.readerDone)
	defer t.ring.Close()
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := t.ptmx.Read(buf)
		if n > 0 {
			if t.tap != nil {
				t.tap(buf[:n], off)
			}
			t.ring.Write(buf[:n])
			off += int64(n)
		}
		if err != nil {
			// EIO is how a PTY master says the last slave fd closed.
			return
		}
	}
}

func (t *Term) writeLoop() {
	for b := range t.writes {
		if _, err := t.ptmx.Write(b); err != nil {
			t.log.Debug("pty write failed", "err", err)
		}
		t.queued.Add(-int64(len(b)))
	}
}

// tryWrite writes as much of b as the terminal accepts without blocking.
func (t *Term) tryWrite(b []byte) int {
	rc, err := t.ptmx.SyscallConn()
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

// ErrInputFull is Send's answer when the program has not read what it was
// sent before.
var ErrInputFull = errors.New("the terminal's input buffer is full: the running program is not reading its input")

// ErrClosed is Send's answer after Close.
var ErrClosed = errors.New("the terminal is closed")

// Send queues bytes for the terminal without ever blocking the caller.
func (t *Term) Send(b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.writesClosed {
		return ErrClosed
	}
	if t.queued.Load()+int64(len(b)) > maxQueued {
		return ErrInputFull
	}
	if t.queued.Load() == 0 {
		// Nothing is waiting: write what the terminal takes right away,
		// without a hop through the writer goroutine, and queue only the
		// rest (order is kept because the queue is empty).
		n := t.tryWrite(b)
		if n == len(b) {
			return nil
		}
		b = b[n:]
	}
	select {
	case t.writes <- b:
		t.queued.Add(int64(len(b)))
		return nil
	default:
		return ErrInputFull
	}
}

// KeySignal is the signal the terminal turns C-<k> into, or 0.
func KeySignal(k byte) unix.Signal {
	switch k {
	case 'c', 'C':
		return unix.SIGINT
	case 'z', 'Z':
		return unix.SIGTSTP
	case '\\':
		return unix.SIGQUIT
	}
	return 0
}

// SignalKey delivers C-c, C-z or C-\ the way the terminal would — signal
// the foreground process group and drop the unread input — without going
// through the input queue, where it could wait forever behind input that
// a program is not reading. It reports false when the terminal would not
// turn the key into a signal (ISIG off: raw-mode programs read the byte).
func (t *Term) SignalKey(k byte) bool {
	sig := KeySignal(k)
	if sig == 0 {
		return false
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	done := false
	t.termios(func(fd int) {
		tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil || tio.Lflag&unix.ISIG == 0 {
			return
		}
		pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		if err != nil || pgrp <= 0 {
			return
		}
		if tio.Lflag&unix.NOFLSH == 0 {
			_ = unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
			for drained := false; !drained; {
				select {
				case b := <-t.writes:
					t.queued.Add(-int64(len(b)))
				default:
					drained = true
				}
			}
		}
		done = unix.Kill(-pgrp, sig) == nil
	})
	return done
}

// Foreground is the terminal's foreground process group, 0 if unknown.
func (t *Term) Foreground() int {
	pgrp := 0
	t.termios(func(fd int) {
		if g, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil {
			pgrp = g
		}
	})
	return pgrp
}

func (t *Term) waitExit(exitc <-chan reaper.Status) {
	st, ok := <-exitc
	if ok {
		t.exitStatus = st
	}
	close(t.exited)
}

// Close ends the program and everything in its session: SIGHUP first, as
// a closing terminal would, then SIGKILL for what is left.
func (t *Term) Close() {
	t.closeOnce.Do(func() {
		sid := t.pgid
		_ = unix.Kill(-sid, unix.SIGHUP)
		killSession(sid, unix.SIGHUP)
		deadline := time.NewTimer(500 * time.Millisecond)
		defer deadline.Stop()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			select {
			case <-deadline.C:
				break wait
			case <-tick.C:
				select {
				case <-t.exited:
					if len(SessionPids(sid)) == 0 {
						break wait
					}
				default:
				}
			}
		}
		killSession(sid, unix.SIGKILL)
		_ = unix.Kill(-sid, unix.SIGKILL)
		t.wmu.Lock()
		t.writesClosed = true
		close(t.writes)
		t.wmu.Unlock()
		t.ptmx.Close()
		<-t.readerDone
	})
}

func killSession(sid int, sig unix.Signal) {
	for _, pid := range SessionPids(sid) {
		_ = unix.Kill(pid, sig)
	}
}

// SessionPids lists the live processes whose session id is sid: the
// program and every job it started, whatever process group job control
// put them in.
func SessionPids(sid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	want := strconv.Itoa(sid)
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
		if len(f) > 3 && f[0] != "Z" && f[3] == want {
			pids = append(pids, pid)
		}
	}
	return pids
}
