package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/staging"
)

// openJournal prepares sandboxd's state directory and its staging journal,
// and removes what a killed predecessor left staged. It runs after the
// port is bound, so that a second server started on the same port (and
// so the same default directory) fails before it sweeps anything.
//
// A failure leaves sandboxd without a journal (nil), which only means
// that staging files of a later kill would be left behind; it is logged,
// not fatal.
func openJournal(cfg launch.Launch, log *slog.Logger) *staging.Journal {
	dir := cfg.StateDirOrDefault()
	if err := ensurePrivateDir(dir); err != nil {
		log.Warn("no state directory: staging files of an interrupted write will not be cleaned up", "dir", dir, "err", err)
		return nil
	}
	j, err := staging.Open(filepath.Join(dir, "staging"), log)
	if err != nil {
		log.Warn("no staging journal: staging files of an interrupted write will not be cleaned up", "dir", dir, "err", err)
		return nil
	}
	if n := j.Sweep(); n > 0 {
		log.Info("removed staging files of an interrupted run", "count", n, "state_dir", dir)
	}
	return j
}

// ensurePrivateDir creates dir 0700 or checks that an existing one is a
// directory of ours: the default lives in a shared /tmp, where another
// user could have made it first, and the journal names files sandboxd
// removes.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return errdefs.New(errdefs.ErrPermission, fmt.Sprintf("state directory %s is not a directory owned by uid %d", dir, os.Geteuid()))
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	return nil
}
