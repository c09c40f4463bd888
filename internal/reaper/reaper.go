// Package reaper owns the waiting for child processes in sandboxd.
//
// sandboxd is often PID 1 of its container, and always a child subreaper,
// so orphans of the agent's shell (background jobs whose parent exited)
// are re-parented to it and must be reaped or they pile up as zombies. A
// process can be waited for only once, so a blanket wait4(-1) loop and
// exec.Cmd.Wait cannot coexist: every child sandboxd starts goes through
// Reaper.Start, which registers the pid under the same lock the reap loop
// holds, so an exit can never be collected before someone is listening.
package reaper

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Status is how a child ended.
type Status struct {
	Pid      int
	ExitCode int // the exit code, or 128+signal when killed by a signal
	Signaled bool
}

// Reaper collects every child's exit status. There must be at most one per
// process: two wait4(-1) loops would steal each other's children.
type Reaper struct {
	log     *slog.Logger
	mu      sync.Mutex
	waiters map[int]chan Status
	sigs    chan os.Signal
	done    chan struct{}
	wg      sync.WaitGroup
	reaped  int // orphans reaped; for tests and logs
}

// New starts reaping. It makes the calling process a child subreaper so
// that orphans of its children come back to it rather than to the host's
// init.
func New(log *slog.Logger) *Reaper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reaper{
		log:     log,
		waiters: make(map[int]chan Status),
		sigs:    make(chan os.Signal, 1),
		done:    make(chan struct{}),
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("cannot become child subreaper", "err", err)
	}
	signal.Notify(r.sigs, unix.SIGCHLD)
	r.wg.Add(1)
	go r.loop()
	return r
}

// Close stops reaping. Children still registered never get a status.
func (r *Reaper) Close() {
	signal.Stop(r.sigs)
	close(r.done)
	r.wg.Wait()
}

// Orphans reports how many processes nobody waited for were reaped.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

func (r *Reaper) loop() {
	defer r.wg.Done()
	// A safety tick: SIGCHLD is coalesced by the kernel and a lost wake-up
	// would otherwise leave a zombie until the next child exits.
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-r.sigs:
		case <-tick.C:
		}
		r.reap()
	}
}

func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		st := Status{Pid: pid}
		switch {
		case ws.Exited():
			st.ExitCode = ws.ExitStatus()
		case ws.Signaled():
			st.Signaled = true
			st.ExitCode = 128 + int(ws.Signal())
		default:
			continue // stopped or continued: not an exit
		}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- st
			close(ch)
		} else {
			r.reaped++
		}
	}
}

// Start starts cmd and returns a channel that receives its exit status
// once. cmd must not be waited for with cmd.Wait, and its standard streams
// must be *os.File values (or nil) so that no copying goroutine needs Wait.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan Status, error) {
	ch := make(chan Status, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// Output runs cmd to completion and returns its combined stdout and
// stderr, like exec.Cmd.CombinedOutput but through the reaper.
func (r *Reaper) Output(cmd *exec.Cmd, timeout time.Duration) ([]byte, Status, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, Status{}, err
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &unix.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	ch, err := r.Start(cmd)
	pw.Close()
	if err != nil {
		return nil, Status{}, err
	}
	outc := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(pr, 1<<20))
		outc <- b
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case st := <-ch:
		pr.SetReadDeadline(time.Now().Add(time.Second))
		return <-outc, st, nil
	case <-timer.C:
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		st := <-ch
		pr.SetReadDeadline(time.Now().Add(time.Second))
		<-outc
		return nil, st, fmt.Errorf("%s: timed out after %s", cmd.Path, timeout)
	}
}
