// Package staging keeps a journal of the hidden files that atomic writes
// and uploads stage beside their targets, so that a sandboxd killed
// mid-write (SIGKILL, OOM, a host crash) does not leave them behind.
//
// A staging file must live beside its target (a rename is atomic only
// within one file system), so it cannot go to a private directory that a
// restart could simply empty. Instead its path is recorded in the journal
// before the file is created and the record is dropped once the file is
// renamed or removed; at start-up Sweep removes what the records of the
// previous run still name. A record is only a name: Sweep removes a file
// only if it still carries a staging name (prefix and random suffix) and
// is a regular file or directory, never anything else of the user's.
package staging

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
)

// idBytes is the randomness of a staging name: 32 hex digits, so that a
// name in the journal cannot be a user's file by accident.
const idBytes = 16

// lockFile is held (flock) by the sandboxd that owns the journal, so that
// a second server given the same directory cannot sweep the first one's
// files while they are being written.
const lockFile = "lock"

// Journal records staging paths in a directory. A nil *Journal records
// nothing, for callers (tests, the host side of a copy) that have none.
type Journal struct {
	dir  string
	lock *os.File
	log  *slog.Logger
}

// Open takes the journal in dir (created 0700), refusing one another
// process holds.
func Open(dir string, log *slog.Logger) (*Journal, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("staging journal %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("staging journal %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errdefs.Wrap(errdefs.ErrUnavailable,
				fmt.Sprintf("staging journal %s is in use by another sandboxd", dir), err)
		}
		return nil, fmt.Errorf("staging journal %s: lock: %w", dir, err)
	}
	return &Journal{dir: dir, lock: f, log: log}, nil
}

// Close releases the journal; the records stay for the next Sweep.
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	return j.lock.Close()
}

// Name returns a fresh staging name (not a path) with prefix, which must
// start with "." so that the file stays hidden.
func Name(prefix string) string { return prefix + ids.New(idBytes) }

// IsName reports whether base is a name Name could have returned.
func IsName(base string) bool {
	if !strings.HasPrefix(base, ".sbx-") {
		return false
	}
	i := strings.LastIndexByte(base, '-')
	id := base[i+1:]
	if len(id) != 2*idBytes {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Record writes down the absolute staging path before the caller creates
// it; the returned function drops the record and must be called once the
// path is gone (renamed over its target or removed). A failure to record
// is an error: a write that went ahead could leak its file.
func (j *Journal) Record(path string) (done func(), err error) {
	if j == nil {
		return func() {}, nil
	}
	if !filepath.IsAbs(path) || !IsName(filepath.Base(path)) {
		return nil, errdefs.New(errdefs.ErrInternal, fmt.Sprintf("staging journal: %q is not a staging path", path))
	}
	entry := filepath.Join(j.dir, ids.New(8)+".rec")
	f, err := os.OpenFile(entry, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString(path + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(entry)
		return nil, fmt.Errorf("staging journal: record %s: %w", path, err)
	}
	return func() {
		if err := os.Remove(entry); err != nil && !errors.Is(err, fs.ErrNotExist) {
			j.log.Warn("staging journal: cannot drop a record", "record", entry, "err", err)
		}
	}, nil
}

// Sweep removes the staging files the records name and drops the
// records. It runs before the server serves, so no record is live.
func (j *Journal) Sweep() (removed int) {
	if j == nil {
		return 0
	}
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		j.log.Warn("staging journal: cannot read", "dir", j.dir, "err", err)
		return 0
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".rec") {
			continue
		}
		entry := filepath.Join(j.dir, e.Name())
		b, err := os.ReadFile(entry)
		if err != nil {
			j.log.Warn("staging journal: cannot read a record", "record", entry, "err", err)
			continue
		}
		// A record cut short by the kill names nothing: the file it was
		// to name was not created yet.
		if p, ok := strings.CutSuffix(string(b), "\n"); ok && j.remove(p) {
			removed++
		}
		if err := os.Remove(entry); err != nil {
			j.log.Warn("staging journal: cannot drop a record", "record", entry, "err", err)
		}
	}
	return removed
}

// remove deletes p if it still is a staging file or directory.
func (j *Journal) remove(p string) bool {
	if !filepath.IsAbs(p) || !IsName(filepath.Base(p)) {
		j.log.Warn("staging journal: a record names no staging path; left alone", "path", p)
		return false
	}
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false
	case err != nil:
		j.log.Warn("staging journal: cannot check a leftover", "path", p, "err", err)
		return false
	case fi.Mode().IsRegular():
		err = os.Remove(p)
	case fi.IsDir():
		// An archive upload's staging directory holds only what the
		// upload extracted.
		err = os.RemoveAll(p)
	default:
		j.log.Warn("staging journal: a leftover is neither a file nor a directory; left alone", "path", p, "mode", fi.Mode().String())
		return false
	}
	if err != nil {
		j.log.Warn("staging journal: cannot remove a leftover", "path", p, "err", err)
		return false
	}
	j.log.Info("removed a staging file left by an interrupted write", "path", p)
	return true
}
