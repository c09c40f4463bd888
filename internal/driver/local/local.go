// Package local is the driver for RUNTIME=local: sandboxd runs as a plain
// process on the host, as the current user, in a host directory, the way
// OpenHands' LocalRuntime runs its action execution server. Nothing is
// isolated; it exists for hosts without Docker and for fast development
// loops.
//
// There is no daemon. Each sandbox is a directory <StateDir>/<id> with a
// state.json, a lock and sandboxd's log, so that the `sbx` invocation that
// stops or removes a sandbox need not be the one that created it.
// Processes are named by pid and start time, never by pid alone.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
)

// Name is the driver's name, RUNTIME=local.
const Name = "local"

// Options configure a Driver. Zero values are the defaults.
type Options struct {
	// Sandboxd finds the sandboxd binary; nil is &sandboxdbin.Locator{}.
	Sandboxd *sandboxdbin.Locator
	// StateDir holds one directory per sandbox; "" is
	// $XDG_STATE_HOME/sbx/local, or ~/.local/state/sbx/local.
	StateDir string
	// StartTimeout bounds how long Create, Start and Resume wait for
	// sandboxd to answer, on top of the caller's context; 0 is a minute.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Driver runs sandboxes as host processes. It is safe for concurrent use,
// and any number of Drivers, in any number of processes, may share a
// StateDir.
type Driver struct {
	sandboxd     *sandboxdbin.Locator
	dir          string
	startTimeout time.Duration
	log          *slog.Logger
	// hc probes /alive. It ignores proxy settings, which the host
	// environment may carry and which have no business on loopback.
	hc *http.Client

	mu sync.Mutex
	// children are the sandboxd processes this Driver started and still
	// waits for: only the parent can reap them (or learn their exit
	// status), and an unreaped zombie would look alive in /proc.
	children map[string]*child
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Pauser = (*Driver)(nil)
)

// New returns a local driver. The state directory is created on first use.
func New(opts Options) (*Driver, error) {
	if runtime.GOOS != "linux" {
		// sandboxd is a Linux binary and the driver reads /proc.
		return nil, errdefs.New(errdefs.ErrNotImplemented, "the local runtime needs Linux; use the docker runtime on "+runtime.GOOS)
	}
	d := &Driver{
		sandboxd:     opts.Sandboxd,
		dir:          opts.StateDir,
		startTimeout: opts.StartTimeout,
		log:          opts.Logger,
		hc:           &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		children:     map[string]*child{},
	}
	if d.sandboxd == nil {
		d.sandboxd = &sandboxdbin.Locator{}
	}
	if d.startTimeout <= 0 {
		d.startTimeout = time.Minute
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.dir == "" {
		dir, err := defaultStateDir()
		if err != nil {
			return nil, err
		}
		d.dir = dir
	}
	abs, err := filepath.Abs(d.dir)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("local state dir %q: %v", d.dir, err), err)
	}
	d.dir = abs
	return d, nil
}

func defaultStateDir() (string, error) {
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "sbx", "local"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errdefs.Wrap(errdefs.ErrInvalidArgument, "local runtime: no state directory: set XDG_STATE_HOME or HOME", err)
	}
	return filepath.Join(home, ".local", "state", "sbx", "local"), nil
}

// Traits implements driver.TraitsReporter: a local sandbox is the host.
// ServesSWEReX implements driver.SWEReXServer: sandboxd's SWE-ReX
// listener on a free loopback port, its token in the state file.
func (d *Driver) ServesSWEReX() {}

func (d *Driver) Traits() driver.Traits { return driver.Traits{HostFilesystem: true} }

// StateDir is where the driver keeps its sandboxes' records.
func (d *Driver) StateDir() string { return d.dir }

func checkID(id string) error { return driver.CheckID(id) }

// Create starts sandboxd for spec and returns once it answers /alive.
//
// Fields that need isolation the host cannot give (Image, Mounts,
// Resources, extra networks) are ignored with a warning rather than
// refused, as OpenHands' LocalRuntime ignores them, so one configuration
// works with either runtime. The user is always the current one.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) (driver.Sandbox, error) {
	if spec.ID == "" {
		spec.ID = ids.New(8)
	}
	id := spec.ID
	if err := checkID(id); err != nil {
		return driver.Sandbox{}, err
	}
	if err := driver.CheckPolicy("local", "its sandboxes share the host's network", spec); err != nil {
		return driver.Sandbox{}, err
	}
	if spec.Workload != nil {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrNotImplemented, "RUNTIME=local runs sandboxd only: it cannot run another program as a sandbox (a Spec.Workload)")
	}
	for _, m := range spec.Mounts {
		if m.Guard {
			// The sandbox is the host folder itself: there is no view to
			// put a change layer under.
			return driver.Sandbox{}, errdefs.New(errdefs.ErrNotImplemented, "the local driver cannot guard a folder: its sandbox works in the host folder itself")
		}
	}
	if spec.SWEReX != nil {
		// A copy: the token picked here is the sandbox's, kept in its
		// state file (0600), not the caller's.
		x := *spec.SWEReX
		if x.Token == "" {
			x.Token = ids.UUID()
		}
		spec.SWEReX = &x
	}
	name, uid, err := currentUser()
	if err != nil {
		return driver.Sandbox{}, err
	}
	bin, err := d.sandboxd.Locate(ctx)
	if err != nil {
		return driver.Sandbox{}, fmt.Errorf("local sandbox %s: %w", id, err)
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return driver.Sandbox{}, fmt.Errorf("local state dir: %w", err)
	}
	lk, err := d.claim(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	defer lk.Close()

	st := state{
		ID:      id,
		Token:   ids.Token(),
		Created: time.Now().UTC(),
		Labels:  map[string]string{},
		User:    name,
		UID:     uid,
		Binary:  bin.Path,
		Spec:    spec,
	}
	maps.Copy(st.Labels, spec.Labels)
	st.Labels[driver.LabelManaged] = "true"
	st.Labels[driver.LabelSession] = id
	fail := func(err error) (driver.Sandbox, error) {
		if rerr := d.discard(st); rerr != nil {
			d.log.Warn("local sandbox: clean-up after a failed create", "id", id, "err", rerr)
		}
		return driver.Sandbox{}, err
	}
	if spec.WorkDir != "" {
		wd, err := filepath.Abs(spec.WorkDir)
		if err == nil {
			err = os.MkdirAll(wd, 0o755)
		}
		if err != nil {
			return fail(errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("local sandbox %s: working dir %s: %v", id, spec.WorkDir, err), err))
		}
		st.WorkDir = wd
	} else {
		wd, err := os.MkdirTemp("", "sbx-workspace-"+id+"-")
		if err != nil {
			return fail(fmt.Errorf("local sandbox %s: temporary workspace: %w", id, err))
		}
		st.WorkDir, st.OwnWorkDir = wd, true
	}
	// Recorded before sandboxd starts, so that a crash from here on
	// leaves an entry `sbx rm` can clean (workspace included) rather than
	// an invisible temporary directory.
	if err := d.writeState(st); err != nil {
		return fail(err)
	}
	d.warnIgnored(spec)
	d.log.Warn("the local runtime has no isolation: the agent's commands run as you, on this machine",
		"id", id, "user", name, "workdir", st.WorkDir)
	if err := d.launch(ctx, &st); err != nil {
		return fail(err)
	}
	return d.sandbox(st, driver.StateRunning), nil
}

func (d *Driver) warnIgnored(spec driver.Spec) {
	var ignored []string
	if len(spec.Mounts) > 0 {
		ignored = append(ignored, "mounts")
	}
	if spec.Resources.CPUs != 0 || spec.Resources.MemoryBytes != 0 || spec.Resources.PidsLimit != 0 ||
		spec.Resources.ShmBytes != 0 || spec.Resources.GPU || len(spec.Resources.GPUDevices) > 0 {
		ignored = append(ignored, "resource limits")
	}
	if len(spec.Network.Additional) > 0 {
		ignored = append(ignored, "additional networks")
	}
	if b := spec.Network.BindAddress; b != "" && b != "127.0.0.1" && b != "localhost" {
		ignored = append(ignored, "bind address (sandboxd listens on 127.0.0.1 only)")
	}
	if spec.Image != "" {
		ignored = append(ignored, "image")
	}
	if len(ignored) > 0 {
		d.log.Warn("the local runtime ignores these settings", "id", spec.ID, "ignored", strings.Join(ignored, ", "))
	}
}

// currentUser is whom sandboxd runs as and is told to be: with --username
// equal to $USER and not root or openhands, sandboxd skips all user set-up
// (spec §2.2, LocalRuntime); as root it finds root in passwd. Either way
// it never creates an account on the host.
func currentUser() (string, int, error) {
	u, err := user.Current()
	if err != nil {
		return "", 0, fmt.Errorf("local runtime: who am I: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return "", 0, fmt.Errorf("local runtime: uid %q: %w", u.Uid, err)
	}
	return u.Username, uid, nil
}

// discard undoes a Create: kills what it started and deletes its records
// and its temporary workspace. The caller holds the lock.
func (d *Driver) discard(st state) error {
	var errs []error
	if st.Proc.PID != 0 {
		errs = append(errs, d.kill(st))
	}
	d.forget(st.ID)
	errs = append(errs, d.removeWorkDir(st), d.removeDir(st.ID))
	return errors.Join(errs...)
}

// removeWorkDir deletes the temporary workspace, after checking that the
// path is still one the driver made: state.json is user-writable, and a
// recursive delete must not follow an edited path.
func (d *Driver) removeWorkDir(st state) error {
	if !st.OwnWorkDir || st.WorkDir == "" {
		return nil
	}
	base := filepath.Base(st.WorkDir)
	if !strings.HasPrefix(base, "sbx-workspace-"+st.ID+"-") || filepath.Dir(st.WorkDir) == "/" {
		return fmt.Errorf("not removing %s: not a workspace of sandbox %s", st.WorkDir, st.ID)
	}
	if err := os.RemoveAll(st.WorkDir); err == nil {
		return nil
	}
	// The agent may have left directories without write permission,
	// which stop the removal of what is in them when we are not root.
	_ = filepath.WalkDir(st.WorkDir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(st.WorkDir); err != nil {
		return fmt.Errorf("remove workspace of %s: %w", st.ID, err)
	}
	return nil
}

// status is the life state of the sandbox st describes.
func (d *Driver) status(st state) driver.State {
	if st.Proc.PID == 0 {
		return driver.StateCreated
	}
	if c := d.child(st.ID, st.Proc); c != nil && c.exited() {
		return driver.StateStopped
	}
	p, err := lookup(st.Proc)
	switch {
	case errors.Is(err, errNoProc):
		return driver.StateStopped
	case err != nil:
		return driver.StateUnknown
	case p.frozen():
		return driver.StatePaused
	}
	return driver.StateRunning
}

func (d *Driver) sandbox(st state, s driver.State) driver.Sandbox {
	sb := driver.Sandbox{
		ID:      st.ID,
		Name:    "sbx-" + st.ID,
		Driver:  Name,
		Image:   st.Spec.Image,
		State:   s,
		Created: st.Created,
		Labels:  maps.Clone(st.Labels),
	}
	if s == driver.StateRunning || s == driver.StatePaused {
		sb.Endpoint = driver.Endpoint{URL: endpointURL(st.Port), Token: st.Token}
		if st.Spec.SWEReX != nil && st.SWEReXPort != 0 {
			sb.SWEReX = driver.Endpoint{URL: endpointURL(st.SWEReXPort), Token: st.Spec.SWEReX.Token}
		}
	}
	return sb
}

// endpointURL is where sandboxd listens: loopback only, whatever
// Network.BindAddress says, since nothing but this host may reach a
// sandbox without isolation.
func endpointURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// Inspect reports one sandbox.
func (d *Driver) Inspect(ctx context.Context, id string) (driver.Sandbox, error) {
	if err := checkID(id); err != nil {
		return driver.Sandbox{}, err
	}
	st, err := d.readState(id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	s := d.status(st)
	if d.autoRemoved(ctx, st, s) {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("local sandbox %s: not found (removed when it stopped)", id))
	}
	return d.sandbox(st, s), nil
}

// autoRemoved gives AutoRemove its meaning without a daemon to watch for
// the exit: a stopped sandbox that asked for it is deleted the next time
// anyone looks, and reported as gone either way.
func (d *Driver) autoRemoved(ctx context.Context, st state, s driver.State) bool {
	if !st.Spec.AutoRemove || s != driver.StateStopped {
		return false
	}
	lk, err := lock(ctx, d.sandboxDir(st.ID), false)
	if err != nil {
		return true // someone else is at it, or it is gone already
	}
	defer lk.Close()
	if cur, err := d.readState(st.ID); err == nil && d.status(cur) == driver.StateStopped {
		if err := d.discard(cur); err != nil {
			d.log.Warn("local sandbox: auto-remove", "id", st.ID, "err", err)
		}
	}
	return true
}

// List returns the sandboxes whose labels include all of match.
func (d *Driver) List(ctx context.Context, match map[string]string) ([]driver.Sandbox, error) {
	ents, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list local sandboxes: %w", err)
	}
	var out []driver.Sandbox
	for _, e := range ents {
		if !e.IsDir() || checkID(e.Name()) != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st, err := d.readState(e.Name())
		if err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) { // not found: being created or removed
				d.log.Warn("local sandbox: unreadable state", "id", e.Name(), "err", err)
			}
			continue
		}
		if !labelsMatch(st.Labels, match) {
			continue
		}
		s := d.status(st)
		if d.autoRemoved(ctx, st, s) {
			continue
		}
		out = append(out, d.sandbox(st, s))
	}
	slices.SortFunc(out, func(a, b driver.Sandbox) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// Start runs a stopped sandbox's sandboxd again, on a new port, with the
// same key, working directory and spec.
func (d *Driver) Start(ctx context.Context, id string) (driver.Sandbox, error) {
	lk, st, err := d.locked(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	defer lk.Close()
	switch s := d.status(st); s {
	case driver.StateRunning:
		return d.sandbox(st, s), nil
	case driver.StatePaused:
		return driver.Sandbox{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("local sandbox %s is paused: resume it instead", id))
	case driver.StateUnknown:
		return driver.Sandbox{}, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("local sandbox %s: cannot tell whether pid %d runs", id, st.Proc.PID))
	}
	if err := os.MkdirAll(st.WorkDir, 0o755); err != nil {
		return driver.Sandbox{}, fmt.Errorf("local sandbox %s: working dir: %w", id, err)
	}
	if bin, err := d.sandboxd.Locate(ctx); err == nil {
		st.Binary = bin.Path
	} else if _, serr := os.Stat(st.Binary); serr != nil {
		return driver.Sandbox{}, fmt.Errorf("local sandbox %s: %w", id, err)
	}
	st.Paused = nil
	if err := d.launch(ctx, &st); err != nil {
		return driver.Sandbox{}, err
	}
	return d.sandbox(st, driver.StateRunning), nil
}

// Stop sends SIGTERM to sandboxd, which ends the agent's shells, and
// SIGKILL after grace; whatever of the agent's processes outlived it is
// killed too, as a container's would be.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	lk, st, err := d.locked(ctx, id)
	if err != nil {
		return err
	}
	defer lk.Close()
	err = d.terminate(ctx, st, grace)
	if st.Spec.AutoRemove {
		return errors.Join(err, d.discard(st))
	}
	if len(st.Paused) > 0 {
		st.Paused = nil
		err = errors.Join(err, d.writeState(st))
	}
	return err
}

// Remove kills the sandbox if it runs and deletes its records and its
// temporary workspace. A working directory given in the spec is kept.
func (d *Driver) Remove(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	lk, err := d.lockExisting(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer lk.Close()
	st, err := d.readState(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		// A Create that crashed before its first record: only the
		// directory is left.
		return d.removeDir(id)
	}
	if err != nil {
		// Unreadable state: keep the directory, whose state names
		// processes and a workspace someone may still need to find.
		return err
	}
	return d.discard(st)
}

// Logs copies sandboxd's output, all of it or its last tail lines.
func (d *Driver) Logs(ctx context.Context, id string, w io.Writer, tail int) error {
	if err := checkID(id); err != nil {
		return err
	}
	if _, err := d.readState(id); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(d.sandboxDir(id), logFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never started
	}
	if err != nil {
		return fmt.Errorf("logs of %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var off int64
	if tail > 0 {
		if off, err = tailOffset(f, fi.Size(), tail); err != nil {
			return fmt.Errorf("logs of %s: %w", id, err)
		}
	}
	_, err = io.Copy(w, &ctxReader{ctx: ctx, r: io.NewSectionReader(f, off, fi.Size()-off)})
	return err
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tailOffset returns where the last n lines of the first size bytes of r
// begin. A final newline ends the last line rather than starting another.
func tailOffset(r io.ReaderAt, size int64, n int) (int64, error) {
	buf := make([]byte, 32<<10)
	end := size
	if end > 0 {
		var last [1]byte
		if _, err := r.ReadAt(last[:], end-1); err != nil {
			return 0, err
		}
		if last[0] == '\n' {
			end--
		}
	}
	for pos := end; pos > 0; {
		chunk := min(int64(len(buf)), pos)
		pos -= chunk
		b := buf[:chunk]
		if _, err := r.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] == '\n' {
				if n--; n == 0 {
					return pos + int64(i) + 1, nil
				}
			}
		}
	}
	return 0, nil
}
