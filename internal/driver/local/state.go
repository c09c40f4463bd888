package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Files in a sandbox's state directory, <StateDir>/<id>/.
const (
	stateFile = "state.json"
	lockFile  = "lock"
	logFile   = "sandboxd.log"
	// urlFile is the file viewer's URL, which sandboxd in a container
	// writes to /tmp/oh-server-url; sandboxd also keeps its staging
	// journal in a "staging" subdirectory.
	urlFile = "oh-server-url"
)

// stateVersion changes when state.json changes incompatibly.
const stateVersion = 1

// state is everything another sbx process needs to find, reach, stop and
// restart a sandbox: the local driver has no daemon, so this file is the
// only record.
type state struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Proc is sandboxd; PID 0 means it was never started (a Create that
	// did not get that far), which Inspect reports as created.
	Proc procID `json:"proc"`
	Port int    `json:"port"`
	// SWEReXPort is where sandboxd's SWE-ReX listener binds (Spec.SWEReX,
	// whose Token is its key); 0 without one.
	SWEReXPort int `json:"swerex_port,omitempty"`
	// Token is sandboxd's SESSION_API_KEY, which is why the file is 0600.
	Token   string `json:"token"`
	WorkDir string `json:"workdir"`
	// OwnWorkDir is set when WorkDir is a temporary directory the driver
	// made, to be deleted with the sandbox.
	OwnWorkDir bool              `json:"own_workdir"`
	Created    time.Time         `json:"created"`
	Labels     map[string]string `json:"labels"`
	User       string            `json:"user"`
	UID        int               `json:"uid"`
	Binary     string            `json:"binary"`
	Spec       driver.Spec       `json:"spec"`
	// Paused lists the processes Pause stopped, parents first, so that
	// Resume continues exactly those and not a job the agent stopped
	// itself with C-z.
	Paused []procID `json:"paused,omitempty"`
}

func (d *Driver) sandboxDir(id string) string { return filepath.Join(d.dir, id) }

func (d *Driver) readState(id string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(d.sandboxDir(id), stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("local sandbox %s: not found", id))
	}
	if err != nil {
		return st, fmt.Errorf("local sandbox %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("local sandbox %s: corrupt %s: %v", id, stateFile, err), err)
	}
	if st.Version != stateVersion {
		return st, errdefs.New(errdefs.ErrInternal, fmt.Sprintf("local sandbox %s: %s has version %d, this sbx reads %d", id, stateFile, st.Version, stateVersion))
	}
	return st, nil
}

// writeState replaces state.json in one rename, so a concurrent reader
// sees the old or the new record, never half of one. There is no fsync:
// after a host crash the processes it names are gone anyway.
func (d *Driver) writeState(st state) error {
	st.Version = stateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := d.sandboxDir(st.ID)
	tmp, err := os.CreateTemp(dir, stateFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state of %s: %w", st.ID, err)
	}
	return nil
}

// errBusy means another operation (in this or another process) holds a
// sandbox's lock.
var errBusy = errors.New("busy")

// lock takes the lock that serialises lifecycle operations on one sandbox
// across sbx processes (`sbx stop` and `sbx rm` racing). The lock file
// lives in the sandbox's directory, so a lock taken after the directory
// was removed would guard nothing: that case is fs.ErrNotExist. With wait
// unset a held lock is errBusy at once.
func lock(ctx context.Context, dir string, wait bool) (*os.File, error) {
	p := filepath.Join(dir, lockFile)
	delay := time.Millisecond
	for {
		// O_CLOEXEC (Go's default) keeps the lock out of sandboxd, which
		// would otherwise hold it for its whole life.
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if same, serr := sameFile(f, p); same {
				return f, nil
			} else if serr != nil && !errors.Is(serr, fs.ErrNotExist) {
				f.Close()
				return nil, serr
			}
			// Removed (and perhaps made again) while we waited.
			f.Close()
			if _, err := os.Stat(dir); err != nil {
				return nil, err
			}
			continue
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		if !wait {
			return nil, errBusy
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for another operation on %s: %w", filepath.Base(dir), ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func sameFile(f *os.File, p string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// lockExisting locks the sandbox id for an operation that needs it to
// exist.
// locked takes an existing sandbox's lock and reads its state: the start of
// every operation on one sandbox. The caller closes the lock.
func (d *Driver) locked(ctx context.Context, id string) (*os.File, state, error) {
	if err := checkID(id); err != nil {
		return nil, state{}, err
	}
	lk, err := d.lockExisting(ctx, id)
	if err != nil {
		return nil, state{}, err
	}
	st, err := d.readState(id)
	if err != nil {
		lk.Close()
		return nil, state{}, err
	}
	return lk, st, nil
}

func (d *Driver) lockExisting(ctx context.Context, id string) (*os.File, error) {
	f, err := lock(ctx, d.sandboxDir(id), true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("local sandbox %s: not found", id))
	}
	return f, err
}

// claim makes the directory of a new sandbox and locks it. A directory
// whose lock is free but holds no state is the remains of a Create that
// crashed before writing any, and is taken over; Mkdir and the lock
// together let exactly one of two racing Creates win.
func (d *Driver) claim(ctx context.Context, id string) (*os.File, error) {
	dir := d.sandboxDir(id)
	taken := errdefs.New(errdefs.ErrAlreadyExists, fmt.Sprintf("local sandbox %s already exists", id))
	for range 3 {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		f, err := lock(ctx, dir, false)
		switch {
		case errors.Is(err, errBusy):
			return nil, taken
		case errors.Is(err, fs.ErrNotExist):
			continue // removed between Mkdir and lock: claim afresh
		case err != nil:
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
			f.Close()
			return nil, taken
		}
		return f, nil
	}
	return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("local sandbox %s is being created and removed concurrently", id))
}

// removeDir deletes a locked sandbox directory. It is renamed away first
// so that nobody can open (and so lock) a new lock file in it while
// RemoveAll works, and so List never sees a half-deleted sandbox.
func (d *Driver) removeDir(id string) error {
	dir := d.sandboxDir(id)
	trash, err := os.MkdirTemp(d.dir, ".rm-"+id+"-")
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	target := filepath.Join(trash, id)
	if err := os.Rename(dir, target); err != nil {
		os.Remove(trash)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}
