package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/launch"
)

// child is a sandboxd this Driver started and reaps.
type child struct {
	proc procID
	done chan struct{}
	err  error // Wait's result, once done is closed
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// child returns the process this Driver started for id, if p is it.
func (d *Driver) child(id string, p procID) *child {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.children[id]; c != nil && c.proc == p {
		return c
	}
	return nil
}

func (d *Driver) forget(id string) {
	d.mu.Lock()
	delete(d.children, id)
	d.mu.Unlock()
}

// listenFD is where sandboxd finds the socket: the first of ExtraFiles.
const listenFD = 3

// launch starts sandboxd for st, records it, and waits until it answers.
// On failure the process is dead and st records that; the caller holds
// the lock.
//
// The driver binds the port and hands the socket over (SBX_LISTEN_FD), so
// no other process can take the port between its choice and sandboxd's
// bind, and the port is known without reading sandboxd's output.
func (d *Driver) launch(ctx context.Context, st *state) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("local sandbox %s: no loopback port: %v", st.ID, err), err)
	}
	sock, err := ln.(*net.TCPListener).File()
	ln.Close() // sock is a duplicate and keeps the socket listening
	if err != nil {
		return fmt.Errorf("local sandbox %s: %w", st.ID, err)
	}
	st.Port = ln.Addr().(*net.TCPAddr).Port
	st.SWEReXPort = 0
	if st.Spec.SWEReX != nil {
		// sandboxd binds this one itself (the SWE-ReX listener takes an
		// address, not a socket): a port free now, on loopback only. The
		// window until it binds is small; a loss shows as a start-up exit
		// with "address already in use".
		p, err := freePort()
		if err != nil {
			sock.Close()
			return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("local sandbox %s: no loopback port for SWE-ReX: %v", st.ID, err), err)
		}
		st.SWEReXPort = p
	}

	logPath := filepath.Join(d.sandboxDir(st.ID), logFile)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("local sandbox %s: log: %w", st.ID, err)
	}
	defer logf.Close()
	// Start-up errors quote only what this run wrote.
	var logStart int64
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}

	cmd := exec.Command(st.Binary, d.sandboxdLaunch(*st).Argv()...)
	cmd.Dir = st.WorkDir
	cmd.Env = d.env(*st)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{sock} // fd 3 = listenFD
	// A session of its own: the sandbox outlives the sbx command that
	// made it and a C-c in that command's terminal, and its process group
	// is what Stop signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	// Only sandboxd may hold the socket: with a copy open here, a
	// sandboxd that died would leave probes waiting in the listen queue
	// instead of refused at once.
	sock.Close()
	if err != nil {
		return fmt.Errorf("local sandbox %s: start %s: %w", st.ID, st.Binary, err)
	}
	// Read before anyone reaps the child, so even a process that exited at
	// once still has its /proc entry (as a zombie) to read.
	info, err := readStat(cmd.Process.Pid)
	c := &child{proc: info.procID, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err != nil {
		_ = cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("local sandbox %s: read the new process: %w", st.ID, err)
	}
	d.mu.Lock()
	d.children[st.ID] = c
	d.mu.Unlock()
	st.Proc = c.proc

	fail := func(err error) error {
		if kerr := d.kill(*st); kerr != nil {
			d.log.Warn("local sandbox: kill after a failed start", "id", st.ID, "err", kerr)
		}
		return err
	}
	if err := d.writeState(*st); err != nil {
		return fail(err)
	}
	d.log.Debug("local sandbox started", "id", st.ID, "pid", st.Proc.PID, "port", st.Port, "workdir", st.WorkDir)
	gone := func(context.Context) error {
		if !c.exited() {
			return nil
		}
		status := "exit status 0"
		if c.err != nil {
			status = c.err.Error()
		}
		return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("local sandbox %s: sandboxd exited during start-up (%s): %s",
			st.ID, status, logExcerpt(logPath, logStart)))
	}
	if err := d.waitReady(ctx, *st, gone); err != nil {
		return fail(err)
	}
	return nil
}

// env is the environment of sandboxd and so of the agent's shell: the
// host's, as OpenHands' LocalRuntime passes it on, then the spec's, then
// what the driver must control.
func (d *Driver) env(st state) []string {
	// The SWE-ReX listener is the spec's to ask for, not the caller's
	// environment's.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == launch.EnvSWEReXAddr || k == launch.EnvSWEReXToken
	})
	env = append(env, "LOCAL_RUNTIME_MODE=1")
	if st.Spec.Debug {
		env = append(env, "DEBUG=true")
	}
	for k, v := range st.Spec.Env {
		env = append(env, k+"="+v)
	}
	if st.Spec.SWEReX != nil && st.SWEReXPort != 0 {
		env = append(env, launch.EnvSWEReXAddr+"=127.0.0.1:"+strconv.Itoa(st.SWEReXPort), launch.EnvSWEReXToken+"="+st.Spec.SWEReX.Token)
	}
	// exec.Cmd keeps the last of duplicate keys.
	return append(env, d.sandboxdLaunch(st).LaunchEnv()...)
}

// freePort is a loopback port no one listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sandboxdLaunch is sandboxd's command line and own variables for st:
// loopback only, on the socket the driver bound. USER must name the
// account for sandboxd to recognise the local case (it may be unset,
// e.g. under cron or in a container). sandboxd's own files go to the
// sandbox's directory, which is private to its user and removed with the
// sandbox: the defaults are in /tmp, right in a container but on the host
// shared by every sandbox (one /tmp/oh-server-url for all of them).
func (d *Driver) sandboxdLaunch(st state) launch.Launch {
	l := launch.Default()
	l.Port, l.WorkDir, l.Host, l.Plugins = st.Port, st.WorkDir, "127.0.0.1", st.Spec.Plugins
	l.Username, l.UserID, l.User = st.User, st.UID, st.User
	l.SessionAPIKey, l.ListenFD = st.Token, listenFD
	dir := d.sandboxDir(st.ID)
	l.StateDir, l.URLFile = dir, filepath.Join(dir, urlFile)
	return l
}

func (d *Driver) waitReady(ctx context.Context, st state, gone func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d.startTimeout)
	defer cancel()
	if err := driver.WaitAlive(ctx, d.hc, endpointURL(st.Port), gone); err != nil {
		if errors.Is(err, errdefs.ErrUnavailable) {
			return err // from gone, and already says why
		}
		return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("local sandbox %s: %v; log: %s", st.ID, err,
			logExcerpt(filepath.Join(d.sandboxDir(st.ID), logFile), -1)), err)
	}
	return nil
}

// goneFunc reports a sandboxd, perhaps started by another process, that is
// no longer there.
func (d *Driver) goneFunc(st state) func(context.Context) error {
	return func(context.Context) error {
		if d.status(st) != driver.StateStopped {
			return nil
		}
		return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("local sandbox %s: sandboxd (pid %d) is gone: %s",
			st.ID, st.Proc.PID, logExcerpt(filepath.Join(d.sandboxDir(st.ID), logFile), -1)))
	}
}

// logExcerpt is the end of sandboxd's log from offset from (-1: only the
// end), enough to say why it failed and short enough for an error.
func logExcerpt(path string, from int64) string {
	const maxLines, maxBytes = 15, 4 << 10
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "(no log)"
	}
	off, err := tailOffset(f, fi.Size(), maxLines)
	if err != nil {
		return "(no log)"
	}
	off = max(off, from, fi.Size()-maxBytes)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	// An argument error is followed by the usage text, which would push
	// the one line that matters out of view.
	if i := bytes.Index(b, []byte("\n\nusage: ")); i >= 0 {
		b = b[:i]
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if s == "" {
		return "(no output)"
	}
	return s
}

// kill ends sandboxd and everything below it at once, and waits until
// sandboxd is gone.
func (d *Driver) kill(st state) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.terminate(ctx, st, 0)
}

// terminate stops sandboxd: SIGTERM to its process group (sandboxd ends
// the agent's shells on it), SIGKILL after grace or when ctx ends, and
// SIGKILL as well for every process that was below it and is still there
// (started in a session of its own, say, out of the shells' reach), as
// stopping a container would. Without grace it kills at once.
//
// Each round of killing starts by freezing the tree: a process that is
// stopped cannot fork, so the list is complete, where a list read from a
// running tree misses what is forked while it is read. What escapes is a
// process double-forked during the grace period after sandboxd itself
// exited: nothing links it to the sandbox any more.
func (d *Driver) terminate(ctx context.Context, st state, grace time.Duration) error {
	if st.Proc.PID == 0 {
		return nil
	}
	// Freezing and killing must finish even when the caller gives up.
	bounded := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	}
	roots := []procID{st.Proc}
	var ctxErr error
	if grace > 0 {
		freezeCtx, cancel := bounded()
		_, seen, err := freeze(freezeCtx, roots)
		cancel()
		if errors.Is(err, errNoProc) {
			d.reap(st)
			return nil
		}
		_ = killGroup(st.Proc, syscall.SIGTERM)
		// Continue everything, the paused and the just frozen, so that
		// SIGTERM and the shells' SIGHUP are acted on.
		thaw(seen)
		roots = append(roots, seen...)
		ctxErr = d.waitExit(ctx, st, grace)
	}
	killCtx, cancel := bounded()
	defer cancel()
	_, all, err := freeze(killCtx, roots)
	if err != nil && !errors.Is(err, errNoProc) {
		d.log.Warn("local sandbox: freezing before the kill", "id", st.ID, "err", err)
	}
	_ = killGroup(st.Proc, syscall.SIGKILL)
	for _, p := range all {
		_ = signalProc(p, syscall.SIGKILL)
	}
	// SIGKILL cannot be ignored; what remains is the kernel tearing the
	// process down, and the reaping.
	if err := d.waitExit(killCtx, st, 10*time.Second); err != nil {
		return fmt.Errorf("local sandbox %s: pid %d survived SIGKILL: %w", st.ID, st.Proc.PID, err)
	}
	d.reap(st)
	d.log.Debug("local sandbox stopped", "id", st.ID, "pid", st.Proc.PID, "processes", len(all))
	if ctxErr != nil {
		return fmt.Errorf("local sandbox %s: killed before the end of its grace period: %w", st.ID, ctxErr)
	}
	return nil
}

// killGroup signals sandboxd's process group, which Setsid made the one
// whose id is its pid, if sandboxd is still the process with that pid.
func killGroup(p procID, sig syscall.Signal) error {
	if _, err := lookup(p); err != nil {
		return err
	}
	return syscall.Kill(-p.PID, sig)
}

// waitExit waits up to limit for sandboxd to exit. It returns ctx's error
// if ctx ends first, nil on exit or when limit passes.
func (d *Driver) waitExit(ctx context.Context, st state, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	var done <-chan struct{}
	if c := d.child(st.ID, st.Proc); c != nil {
		done = c.done
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if d.status(st) == driver.StateStopped {
			return nil
		}
		select {
		case <-done:
			return nil
		case <-tick.C:
		case <-deadline.C:
			if d.status(st) == driver.StateStopped {
				return nil
			}
			return fmt.Errorf("still running after %v", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// reap waits for this Driver's own child to be collected, so that it does
// not linger as a zombie, and forgets it.
func (d *Driver) reap(st state) {
	if c := d.child(st.ID, st.Proc); c != nil {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
		d.forget(st.ID)
	}
}

// Pause freezes sandboxd and every process below it with SIGSTOP, parents
// before children so that no parent sees a child stop, and returns once
// all of them are stopped. Processes the agent had already stopped itself
// are left alone.
func (d *Driver) Pause(ctx context.Context, id string) error {
	lk, st, err := d.locked(ctx, id)
	if err != nil {
		return err
	}
	defer lk.Close()
	switch d.status(st) {
	case driver.StatePaused:
		return nil
	case driver.StateRunning:
	default:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("local sandbox %s is not running", id))
	}
	stopped, _, err := freeze(ctx, []procID{st.Proc})
	st.Paused = stopped
	if err != nil {
		// Half a pause is worse than none: the agent's tools would hang
		// on a stopped server with no record of why.
		thaw(stopped)
		st.Paused = nil
		return errors.Join(fmt.Errorf("local sandbox %s: pause: %w", id, err), d.writeState(st))
	}
	if err := d.writeState(st); err != nil {
		thaw(stopped)
		return err
	}
	d.log.Debug("local sandbox paused", "id", id, "processes", len(stopped))
	return nil
}

// freeze stops the trees below roots with SIGSTOP, parents first, and
// returns the processes it stopped and all it saw (including those that
// were stopped already), parents before children. A process running when
// the tree was read can fork before its SIGSTOP lands, so the tree is read
// again until a pass finds nothing new; stopped processes cannot fork, so
// this ends.
func freeze(ctx context.Context, roots []procID) (frozen, seen []procID, err error) {
	known := map[procID]bool{}
	for pass := 0; ; pass++ {
		if pass == 100 {
			return frozen, seen, errors.New("the process tree keeps changing")
		}
		procs, err := tree(roots...)
		if err != nil {
			return frozen, seen, err
		}
		fresh := false
		for _, p := range procs {
			if known[p.procID] {
				continue
			}
			known[p.procID] = true
			seen = append(seen, p.procID)
			fresh = true
			if p.stopped() {
				continue
			}
			if err := signalProc(p.procID, syscall.SIGSTOP); err != nil {
				if errors.Is(err, errNoProc) {
					continue
				}
				return frozen, seen, err
			}
			frozen = append(frozen, p.procID)
		}
		if !fresh {
			break
		}
	}
	// SIGSTOP is delivered asynchronously; the tree is only frozen when
	// every process has stopped or will before it runs again.
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range frozen {
		for {
			info, err := lookup(p)
			if err != nil || info.frozen() {
				break
			}
			if time.Now().After(deadline) {
				return frozen, seen, fmt.Errorf("pid %d did not stop (state %c)", p.PID, info.State)
			}
			select {
			case <-ctx.Done():
				return frozen, seen, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return frozen, seen, nil
}

// thaw continues procs, children before parents, so that a parent never
// runs while its child still looks stopped.
func thaw(procs []procID) {
	for _, p := range slices.Backward(procs) {
		_ = signalProc(p, syscall.SIGCONT)
	}
}

// Resume continues what Pause stopped and waits until sandboxd answers.
func (d *Driver) Resume(ctx context.Context, id string) (driver.Sandbox, error) {
	lk, st, err := d.locked(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	defer lk.Close()
	s := d.status(st)
	if s != driver.StateRunning && s != driver.StatePaused {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("local sandbox %s is not running", id))
	}
	procs := st.Paused
	if len(procs) == 0 && s == driver.StatePaused {
		// Stopped by someone else (kill -STOP): continue the whole tree.
		tr, err := tree(st.Proc)
		if err != nil && !errors.Is(err, errNoProc) {
			return driver.Sandbox{}, fmt.Errorf("local sandbox %s: %w", id, err)
		}
		for _, p := range tr {
			procs = append(procs, p.procID)
		}
	}
	thaw(procs)
	if st.Paused != nil {
		st.Paused = nil
		if err := d.writeState(st); err != nil {
			return driver.Sandbox{}, err
		}
	}
	if err := d.waitReady(ctx, st, d.goneFunc(st)); err != nil {
		return driver.Sandbox{}, err
	}
	d.log.Debug("local sandbox resumed", "id", id)
	return d.sandbox(st, driver.StateRunning), nil
}
