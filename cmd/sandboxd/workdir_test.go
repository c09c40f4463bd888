package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sbx-dev/sbx/internal/launch"
)

// TestMountedWorkDirKeepsModeAndOwner is defect 3 through sandboxd's own
// set-up: a host directory mounted as the workspace kept neither its
// mode (755 became 775, 700 760) nor, for its group bits, what its owner
// chose. Both the container path (root, a user that exists) and the local
// path (USER equal to --username) are run; neither creates an account.
func TestMountedWorkDirKeepsModeAndOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandboxd changes modes and owners only as root")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, who := range []struct{ name, username, envUser string }{
		{"container", "root", ""},
		{"local", "sbx-local-user", "sbx-local-user"},
	} {
		for _, tc := range []struct {
			name     string
			mode     os.FileMode
			uid, gid int
		}{
			{"0755", 0o755, 0, 0},
			{"0700", 0o700, 0, 0},
			{"foreign", 0o750, 4321, 4322},
		} {
			dir := filepath.Join(t.TempDir(), tc.name)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, tc.uid, tc.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			before := modeOwner(t, dir)
			cfg := launch.Default()
			cfg.Port, cfg.WorkDir, cfg.Username, cfg.UserID, cfg.User = 8000, dir, who.username, 0, who.envUser
			if _, err := prepareUser(t.Context(), cfg, nil, log); err != nil {
				t.Fatal(err)
			}
			if after := modeOwner(t, dir); after != before {
				t.Errorf("%s, %s: %s before, %s after", who.name, tc.name, before, after)
			}
		}
	}
}

func modeOwner(t *testing.T, dir string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("mode %#o uid %d gid %d", st.Mode, st.Uid, st.Gid)
}
