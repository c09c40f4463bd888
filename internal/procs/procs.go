// Package procs runs background processes for sandboxd: commands started
// detached from any shell, each in its own process group, with its output
// (stdout and stderr, tagged) in a bounded log on disk that any number of
// readers can read from an offset or follow, stdin on request, signals to
// the whole group, and the exit status kept for a while after the end so
// that a client that comes back late still learns it.
//
// It knows nothing about HTTP; internal/sandboxd serves it.
package procs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/reaper"
)

// Starter starts a child and reports its exit; in sandboxd it is the
// reaper, the only waiter for children (sandboxd is PID 1 in containers),
// so processes here are never waited for with exec.Cmd.Wait.
type Starter interface {
	Start(cmd *exec.Cmd) (<-chan reaper.Status, error)
}

// Options configure a Manager.
type Options struct {
	Dir     string // state directory for the output logs; created 0700
	Starter Starter
	Env     []string // base environment of every process
	// EnvFunc, if set, is called at each start and its result replaces
	// Env, so that an environment set after New (a warm-pool claim)
	// reaches later processes.
	EnvFunc    func() []string
	WorkDir    string // working directory when a Spec has none, and base of a relative one
	Credential *syscall.Credential
	Logger     *slog.Logger
	// MaxLogBytes bounds each process's log on disk (default 64 MiB): the
	// current and the previous segment, each at most half of it.
	MaxLogBytes int64
	// KeepExited is how long an exited process stays known (default 10
	// minutes); MaxExited how many exited ones are kept at most (default
	// 256), the oldest going first.
	KeepExited time.Duration
	MaxExited  int
	// KillGrace is how long Close waits after SIGTERM before SIGKILL
	// (default 2s).
	KillGrace time.Duration

	// onExpire, for tests, is called when a record expires.
	onExpire func(id int)
}

// Spec is a process to start: Argv, or Command run by /bin/bash -c.
type Spec struct {
	Argv    []string
	Command string
	Cwd     string   // relative to Options.WorkDir; default Options.WorkDir
	Env     []string // KEY=VALUE, added to (and overriding) Options.Env
	Stdin   bool     // keep a pipe to its stdin open; otherwise /dev/null
	Tag     string   // free text for the client
}

// State is a process's state.
type State string

// The states.
const (
	Running State = "running"
	Exited  State = "exited"
)

// Info describes a process.
type Info struct {
	ID        int        `json:"id"`
	PID       int        `json:"pid"`
	Argv      []string   `json:"argv"`
	Cwd       string     `json:"cwd"`
	Tag       string     `json:"tag,omitempty"`
	Stdin     bool       `json:"stdin"`
	StartedAt time.Time  `json:"started_at"`
	State     State      `json:"state"`
	ExitCode  *int       `json:"exit_code,omitempty"` // 128+n when killed by signal n
	Signal    string     `json:"signal,omitempty"`    // "SIGKILL" when killed by a signal
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// Output is what a read found.
type Output struct {
	Chunks []Chunk
	Next   int64 // offset to read from next
	Lost   int64 // bytes rotated away before the offset asked for
	// Done: the process has exited and the output up to its exit has
	// been read; Info is then its final state.
	Done bool
	Info Info
}

// Defaults.
const (
	defaultMaxLog     = 64 << 20
	minMaxLog         = 4 << 10
	defaultKeep       = 10 * time.Minute
	defaultMaxExited  = 256
	defaultKillGrace  = 2 * time.Second
	pipeBuf           = 32 << 10
	followMax         = 64 << 10
	exitOutputGrace   = time.Second
	groupGoneDeadline = 5 * time.Second
)

// Manager owns the background processes.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	procs   map[int]*proc
	nextID  int
	closed  bool
	closing chan struct{}

	once    sync.Once
	wg      sync.WaitGroup // starts in flight, pipe readers, exit waiters
	readers sync.WaitGroup // followers
}

type proc struct {
	id   int
	pgid int
	log  *outLog

	// Guarded by Manager.mu.
	info      Info
	outputEOF bool // both pipes reached EOF: nobody holds them any more
	expire    *time.Timer
	removed   bool

	pipes     [2]*os.File
	pipesDone chan struct{} // both pipe readers returned
	done      chan struct{} // info says exited

	stdinMu sync.Mutex
	stdin   *os.File // nil: none, or closed
}

// New creates the state directory and returns an empty Manager.
func New(opts Options) (*Manager, error) {
	if opts.Starter == nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "procs: no Starter")
	}
	if opts.Dir == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "procs: no state directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxLogBytes <= 0 {
		opts.MaxLogBytes = defaultMaxLog
	}
	opts.MaxLogBytes = max(opts.MaxLogBytes, minMaxLog)
	if opts.KeepExited <= 0 {
		opts.KeepExited = defaultKeep
	}
	if opts.MaxExited <= 0 {
		opts.MaxExited = defaultMaxExited
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = defaultKillGrace
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("procs state dir: %w", err)
	}
	// The directory may be under a shared /tmp: one that somebody else
	// made (or a symlink) could let them replace or read the logs, which
	// may hold secrets a command printed.
	var st unix.Stat_t
	if err := unix.Lstat(opts.Dir, &st); err != nil {
		return nil, fmt.Errorf("procs state dir: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() {
		return nil, errdefs.New(errdefs.ErrPermission, fmt.Sprintf("procs state dir %s: not a directory owned by uid %d", opts.Dir, os.Geteuid()))
	}
	// MkdirAll keeps the mode of a directory that exists.
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("procs state dir: %w", err)
	}
	return &Manager{opts: opts, log: opts.Logger, procs: map[int]*proc{}, nextID: 1, closing: make(chan struct{})}, nil
}

// Start starts a process. ctx bounds the start only, not the process.
func (m *Manager) Start(ctx context.Context, spec Spec) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	argv := spec.Argv
	switch {
	case len(argv) > 0 && spec.Command != "":
		return Info{}, errdefs.New(errdefs.ErrInvalidArgument, "give argv or command, not both")
	case spec.Command != "":
		argv = []string{"/bin/bash", "-c", spec.Command}
	case len(argv) == 0 || argv[0] == "":
		return Info{}, errdefs.New(errdefs.ErrInvalidArgument, "no command: give argv or command")
	}
	base := m.opts.Env
	if m.opts.EnvFunc != nil {
		base = m.opts.EnvFunc()
	}
	env, err := mergeEnv(base, spec.Env)
	if err != nil {
		return Info{}, err
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = m.opts.WorkDir
	} else if !filepath.IsAbs(cwd) && m.opts.WorkDir != "" {
		cwd = filepath.Join(m.opts.WorkDir, cwd)
	}
	if cwd != "" {
		if st, err := os.Stat(cwd); err != nil {
			return Info{}, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("working directory %s: %v", cwd, errors.Unwrap(err)), err)
		} else if !st.IsDir() {
			return Info{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("working directory %s is not a directory", cwd))
		}
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return Info{}, err
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Info{}, errdefs.New(errdefs.ErrUnavailable, "sandboxd is shutting down")
	}
	id := m.nextID
	m.nextID++
	// Holds Close's wait open until this start has registered its
	// process (or failed), so Close cannot miss it.
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()

	return m.spawn(id, path, argv, cwd, env, spec)
}

func (m *Manager) spawn(id int, path string, argv []string, cwd string, env []string, spec Spec) (Info, error) {
	lg, err := newOutLog(m.opts.Dir, fmt.Sprint(id), m.opts.MaxLogBytes)
	if err != nil {
		return Info{}, errdefs.Wrap(errdefs.ErrInternal, err.Error(), err)
	}
	var parent, child []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	fail := func(err error) (Info, error) {
		closeAll(parent)
		closeAll(child)
		lg.remove()
		return Info{}, err
	}
	var pipes [2]*os.File
	var writeEnds [2]*os.File
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(errdefs.Wrap(errdefs.ErrInternal, "pipe: "+err.Error(), err))
		}
		pipes[i], writeEnds[i] = r, w
		parent, child = append(parent, r), append(child, w)
	}
	cmd := &exec.Cmd{
		Path: path, Args: argv, Env: env, Dir: cwd,
		Stdout: writeEnds[0], Stderr: writeEnds[1],
		// Its own group, so that a signal reaches what it starts; no new
		// session, so it has no controlling terminal to lose.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: m.opts.Credential},
	}
	var stdin *os.File
	if spec.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(errdefs.Wrap(errdefs.ErrInternal, "pipe: "+err.Error(), err))
		}
		cmd.Stdin, stdin = r, w
		parent, child = append(parent, w), append(child, r)
	}
	exited, err := m.opts.Starter.Start(cmd)
	closeAll(child)
	child = nil
	if err != nil {
		class := errdefs.ErrInternal
		if errors.Is(err, os.ErrNotExist) {
			class = errdefs.ErrNotFound
		} else if errors.Is(err, os.ErrPermission) {
			class = errdefs.ErrPermission
		}
		return fail(errdefs.Wrap(class, fmt.Sprintf("start %s: %v", argv[0], err), err))
	}
	pid := cmd.Process.Pid
	p := &proc{
		id: id, pgid: pid, log: lg, pipes: pipes, stdin: stdin,
		pipesDone: make(chan struct{}), done: make(chan struct{}),
		info: Info{ID: id, PID: pid, Argv: slices.Clone(argv), Cwd: cwd, Tag: spec.Tag, Stdin: spec.Stdin, StartedAt: time.Now(), State: Running},
	}
	m.mu.Lock()
	m.procs[id] = p
	closed := m.closed
	info := p.info
	m.wg.Add(2)
	m.mu.Unlock()
	if closed {
		// Close has already sent its signals: this one came too late.
		_ = unix.Kill(-pid, unix.SIGKILL)
	}
	var pipeWG sync.WaitGroup
	pipeWG.Add(2)
	go func() {
		defer m.wg.Done()
		pipeWG.Wait()
		m.mu.Lock()
		p.outputEOF = true
		m.mu.Unlock()
		close(p.pipesDone)
	}()
	for i, st := range []Stream{Stdout, Stderr} {
		go m.drain(p, pipes[i], st, &pipeWG)
	}
	go m.waitExit(p, exited)
	m.log.Debug("process started", "id", id, "pid", pid, "argv", argv)
	return info, nil
}

// drain copies one pipe into the log. It never waits for a reader; if the
// log cannot be written it keeps reading, so that the process is never
// blocked on a full pipe by sandboxd's trouble.
func (m *Manager) drain(p *proc, r *os.File, st Stream, wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	buf := make([]byte, pipeBuf)
	held := 0 // bytes of an unfinished UTF-8 sequence kept at buf's start
	failed := false
	for {
		n, err := r.Read(buf[held:])
		total := held + n
		cut := total
		if err == nil {
			// A rune split between two reads would otherwise be split
			// between two chunks, which JSON strings cannot carry.
			cut = completePrefix(buf[:total])
			if cut == 0 && total == len(buf) {
				cut = total
			}
		}
		if cut > 0 && !failed {
			if werr := p.log.append(st, buf[:cut]); werr != nil {
				failed = true
				if !errors.Is(werr, errdefs.ErrNotFound) {
					m.log.Warn("process output not kept", "id", p.id, "stream", st.String(), "err", werr)
				}
			}
		}
		held = copy(buf, buf[cut:total])
		if err != nil {
			return
		}
	}
}

func (m *Manager) waitExit(p *proc, exited <-chan reaper.Status) {
	defer m.wg.Done()
	st, ok := <-exited
	if !ok {
		st = reaper.Status{Pid: p.info.PID, ExitCode: -1}
	}
	// The last output is usually still in the pipes when the exit is
	// reaped; an exit event before it would hide it from a follower. A
	// background child that keeps the pipes open must not hold the exit
	// back for ever, hence the grace.
	t := time.NewTimer(exitOutputGrace)
	select {
	case <-p.pipesDone:
	case <-t.C:
	}
	t.Stop()
	p.stdinMu.Lock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	p.stdinMu.Unlock()

	now := time.Now()
	m.mu.Lock()
	code := st.ExitCode
	p.info.State, p.info.ExitCode, p.info.EndedAt = Exited, &code, &now
	if st.Signaled {
		p.info.Signal = unix.SignalName(syscall.Signal(st.ExitCode - 128))
	}
	close(p.done)
	if !p.removed && !m.closed {
		p.expire = time.AfterFunc(m.opts.KeepExited, func() { m.expire(p) })
	}
	drop := m.overflowLocked()
	m.mu.Unlock()
	for _, q := range drop {
		q.forget()
	}
	m.log.Debug("process exited", "id", p.id, "exit_code", code, "signal", p.info.Signal)
}

// overflowLocked takes the oldest exited records beyond MaxExited out of
// the table and returns them for forget.
func (m *Manager) overflowLocked() []*proc {
	var ex []*proc
	for _, q := range m.procs {
		if q.info.State == Exited {
			ex = append(ex, q)
		}
	}
	if len(ex) <= m.opts.MaxExited {
		return nil
	}
	slices.SortFunc(ex, func(a, b *proc) int { return a.info.EndedAt.Compare(*b.info.EndedAt) })
	drop := ex[:len(ex)-m.opts.MaxExited]
	for _, q := range drop {
		m.takeLocked(q)
	}
	return drop
}

func (m *Manager) expire(p *proc) {
	m.mu.Lock()
	if m.procs[p.id] != p {
		m.mu.Unlock()
		return
	}
	m.takeLocked(p)
	m.mu.Unlock()
	p.forget()
	if m.opts.onExpire != nil {
		m.opts.onExpire(p.id)
	}
}

// takeLocked removes p from the table.
func (m *Manager) takeLocked(p *proc) {
	delete(m.procs, p.id)
	p.removed = true
	if p.expire != nil {
		p.expire.Stop()
	}
}

// forget drops an exited process's log and, should a child of it still
// hold them, its pipes.
func (p *proc) forget() {
	for _, f := range p.pipes {
		f.Close()
	}
	p.log.remove()
}

func (m *Manager) get(id int) (*proc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.procs[id]
	if !ok {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no process %d", id))
	}
	return p, nil
}

// Get returns a process's state.
func (m *Manager) Get(id int) (Info, error) {
	p, err := m.get(id)
	if err != nil {
		return Info{}, err
	}
	return m.infoOf(p), nil
}

func (m *Manager) infoOf(p *proc) Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	return p.info
}

// List returns every known process, by id.
func (m *Manager) List() []Info {
	m.mu.Lock()
	out := make([]Info, 0, len(m.procs))
	for _, p := range m.procs {
		out = append(out, p.info)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return a.ID - b.ID })
	return out
}

// Read returns up to max bytes of output from offset, without waiting.
func (m *Manager) Read(id int, offset int64, max int) (Output, error) {
	p, err := m.get(id)
	if err != nil {
		return Output{}, err
	}
	out, _, err := m.read(p, offset, max)
	return out, err
}

func (m *Manager) read(p *proc, offset int64, max int) (Output, <-chan struct{}, error) {
	if max <= 0 {
		return Output{}, nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("max %d: must be positive", max))
	}
	// The state first: if the process had exited before the read, the
	// read sees all the output up to the exit (waitExit lets the pipes
	// drain first).
	var exited bool
	select {
	case <-p.done:
		exited = true
	default:
	}
	r, err := p.log.read(offset, max)
	if err != nil {
		return Output{}, nil, err
	}
	out := Output{Chunks: r.chunks, Next: r.next, Lost: r.lost}
	if exited && r.next >= r.end {
		out.Done = true
		out.Info = m.infoOf(p)
	}
	return out, r.changed, nil
}

// Follow reads output from offset and gives it to fn as it comes, until
// the process has exited and its output is read (the last Output has
// Done set), ctx ends, fn fails, or the Manager closes. The process does
// not notice a follower, nor its going away.
func (m *Manager) Follow(ctx context.Context, id int, offset int64, fn func(Output) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errdefs.New(errdefs.ErrUnavailable, "sandboxd is shutting down")
	}
	m.readers.Add(1)
	m.mu.Unlock()
	defer m.readers.Done()
	p, err := m.get(id)
	if err != nil {
		return err
	}
	for {
		// Checked here too: with output always waiting, the select below
		// would never be reached.
		if err := ctx.Err(); err != nil {
			return err
		}
		out, changed, err := m.read(p, offset, followMax)
		if err != nil {
			return err
		}
		if len(out.Chunks) > 0 || out.Lost > 0 || out.Done {
			if err := fn(out); err != nil {
				return err
			}
			if out.Done {
				return nil
			}
			offset = out.Next
			continue
		}
		select {
		case <-changed:
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.closing:
			return errdefs.New(errdefs.ErrUnavailable, "sandboxd is shutting down")
		}
	}
}

// Write sends data to the process's stdin.
func (m *Manager) Write(ctx context.Context, id int, data []byte) error {
	p, err := m.get(id)
	if err != nil {
		return err
	}
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin == nil {
		return m.noStdin(p)
	}
	// A process that does not read fills the pipe; the caller's context
	// bounds the wait, through the pipe's deadline.
	_ = p.stdin.SetWriteDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = p.stdin.SetWriteDeadline(time.Now()) })
	_, err = p.stdin.Write(data)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stdin of process %d: %w", id, ctx.Err())
		}
		if errors.Is(err, syscall.EPIPE) {
			return errdefs.Wrap(errdefs.ErrConflict, fmt.Sprintf("process %d no longer reads its stdin", id), err)
		}
		return errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("stdin of process %d: %v", id, err), err)
	}
	return nil
}

func (m *Manager) noStdin(p *proc) error {
	info := m.infoOf(p)
	switch {
	case !info.Stdin:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("process %d was started without stdin", p.id))
	case info.State == Exited:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("process %d has exited", p.id))
	}
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("stdin of process %d is closed", p.id))
}

// CloseStdin closes the process's stdin, so that it reads end of file.
func (m *Manager) CloseStdin(id int) error {
	p, err := m.get(id)
	if err != nil {
		return err
	}
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin == nil {
		return m.noStdin(p)
	}
	err = p.stdin.Close()
	p.stdin = nil
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("close stdin of process %d: %v", id, err), err)
	}
	return nil
}

// Signal sends sig to the process's group. After the process has exited
// the group is signalled only while something still holds its output
// pipes (a background child): once nothing does, the group id may belong
// to someone else.
func (m *Manager) Signal(id int, sig syscall.Signal) error {
	p, err := m.get(id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	gone := p.info.State == Exited && p.outputEOF
	m.mu.Unlock()
	if gone {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("process %d has exited", id))
	}
	if err := unix.Kill(-p.pgid, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("process %d has exited", id))
		}
		return errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("signal process %d: %v", id, err), err)
	}
	return nil
}

// Wait waits for the process to exit and returns its final state.
func (m *Manager) Wait(ctx context.Context, id int) (Info, error) {
	p, err := m.get(id)
	if err != nil {
		return Info{}, err
	}
	select {
	case <-p.done:
		return m.infoOf(p), nil
	case <-ctx.Done():
		return Info{}, ctx.Err()
	}
}

// Remove forgets an exited process and deletes its log.
func (m *Manager) Remove(id int) error {
	m.mu.Lock()
	p, ok := m.procs[id]
	if !ok {
		m.mu.Unlock()
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no process %d", id))
	}
	if p.info.State != Exited {
		m.mu.Unlock()
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("process %d is running", id))
	}
	m.takeLocked(p)
	m.mu.Unlock()
	p.forget()
	return nil
}

// Close ends every process (SIGTERM to its group, SIGKILL after
// KillGrace), waits for them and for the followers, and deletes the logs.
func (m *Manager) Close() error {
	m.once.Do(m.close)
	return nil
}

func (m *Manager) close() {
	m.mu.Lock()
	m.closed = true
	close(m.closing)
	all := make([]*proc, 0, len(m.procs))
	for _, p := range m.procs {
		all = append(all, p)
		if p.expire != nil {
			p.expire.Stop()
		}
	}
	m.mu.Unlock()
	// Groups that may still have members: the process runs, or something
	// it started holds its pipes.
	live := func() []*proc {
		var out []*proc
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range all {
			if p.info.State == Running || !p.outputEOF {
				out = append(out, p)
			}
		}
		return out
	}
	for _, p := range live() {
		_ = unix.Kill(-p.pgid, unix.SIGTERM)
	}
	graceOver := make(chan struct{})
	grace := time.AfterFunc(m.opts.KillGrace, func() { close(graceOver) })
	for _, p := range all {
		select {
		case <-p.pipesDone:
		case <-graceOver:
		}
	}
	grace.Stop()
	for _, p := range live() {
		_ = unix.Kill(-p.pgid, unix.SIGKILL)
	}
	deadline := time.Now().Add(groupGoneDeadline)
	for _, p := range all {
		// A process that escaped the group (setsid) may hold the pipes
		// for ever: close them so that the readers return.
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-p.pipesDone:
		case <-t.C:
			for _, f := range p.pipes {
				f.Close()
			}
		}
		t.Stop()
		m.waitGroupGone(p.pgid, deadline)
	}
	m.readers.Wait()
	m.wg.Wait()
	// Again from the table: a Start that raced with Close registered its
	// process (and killed it) after the first look.
	m.mu.Lock()
	all = all[:0]
	for _, p := range m.procs {
		all = append(all, p)
		m.takeLocked(p)
	}
	m.mu.Unlock()
	for _, p := range all {
		p.forget()
	}
}

// waitGroupGone waits until no process is left in group pgid, zombies
// included, so that after Close nothing of ours is in /proc. The kernel
// offers no notification for an empty group, hence the short backoff; it
// runs only at shutdown.
func (m *Manager) waitGroupGone(pgid int, deadline time.Time) {
	d := time.Millisecond
	for {
		if err := unix.Kill(-pgid, 0); errors.Is(err, unix.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			m.log.Warn("process group outlived shutdown", "pgid", pgid)
			return
		}
		time.Sleep(d)
		d = min(2*d, 50*time.Millisecond)
	}
}

// mergeEnv is base with add's variables set (replacing base's).
func mergeEnv(base, add []string) ([]string, error) {
	out := slices.Clone(base)
	for _, kv := range add {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("environment entry %q is not KEY=VALUE", kv))
		}
		out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		out = append(out, kv)
	}
	return out, nil
}

// lookPath finds name in env's PATH, the one the process will have, not
// sandboxd's.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("executable %q not found in PATH", name))
}
