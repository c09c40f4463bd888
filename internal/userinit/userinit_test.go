package userinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range map[string]string{
		"etc/passwd":       "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n",
		"etc/group":        "root:x:0:\nsudo:x:27:\n",
		"etc/shadow":       "root:*:20000:0:99999:7:::\n",
		"etc/skel/.bashrc": "# skel\n",
	} {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestEnsureWithoutUseradd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving the new home to the user needs root")
	}
	root := fakeRoot(t)
	o := Options{Root: root}
	u, err := Ensure(t.Context(), o, "openhands", 4242)
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 4242 || u.GID != 0 || u.Home != "/home/openhands" || len(u.Groups) != 1 || u.Groups[0] != 27 {
		t.Fatalf("user %+v", u)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !strings.Contains(string(b), "sudo:x:27:openhands") {
		t.Fatalf("group file:\n%s", b)
	}
	st, err := os.Stat(filepath.Join(root, "home/openhands/.bashrc"))
	if err != nil {
		t.Fatal(err)
	}
	_ = st
	// An existing user keeps its uid even when another was asked for.
	u, err = Ensure(t.Context(), o, "ubuntu", 5000)
	if err != nil || u.UID != 1000 {
		t.Fatalf("existing user: %+v %v", u, err)
	}
	if _, err := Ensure(t.Context(), o, "bad:name", 1); err == nil {
		t.Fatal("a name with ':' was accepted")
	}
}

func TestPrepareWorkDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "ws")
	if err := PrepareWorkDir(dir, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		t.Fatalf("%v %v", st, err)
	}
	if os.Geteuid() == 0 && st.Mode().Perm()&0o060 != 0o060 {
		t.Fatalf("mode %v lacks group rw", st.Mode())
	}
}

// TestPrepareWorkDirLeavesExistingAlone is defect 3: a mounted host
// directory used as the workspace must keep its mode and owner (755 used
// to become 775, and 700 760), whoever owns it.
func TestPrepareWorkDirLeavesExistingAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the set-up changes modes and owners only as root")
	}
	base := t.TempDir()
	for _, tc := range []struct {
		name     string
		mode     os.FileMode
		uid, gid int
	}{
		{"0755", 0o755, 0, 0},
		{"0700", 0o700, 0, 0},
		{"foreign", 0o750, 4321, 4322},
		{"sticky", 0o777 | os.ModeSticky, 0, 0},
	} {
		dir := filepath.Join(base, tc.name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, tc.uid, tc.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, tc.mode); err != nil {
			t.Fatal(err)
		}
		before := statOwner(t, dir)
		// As sandboxd does for a sandbox user 1000 in group root.
		if err := PrepareWorkDir(dir, 1000, 0); err != nil {
			t.Fatal(err)
		}
		if after := statOwner(t, dir); after != before {
			t.Errorf("%s: %s before, %s after", tc.name, before, after)
		}
	}

	// A directory sandboxd creates still goes to the sandbox user, with
	// group read/write (README).
	made := filepath.Join(base, "new", "ws")
	if err := PrepareWorkDir(made, 1000, 0); err != nil {
		t.Fatal(err)
	}
	if got := statOwner(t, made); !strings.HasPrefix(got, "uid 1000 gid 0 ") || !strings.Contains(got, "rwxrwx") {
		t.Errorf("created working dir: %s", got)
	}
}

func statOwner(t *testing.T, dir string) string {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("uid %d gid %d mode %v", st.Uid, st.Gid, fi.Mode())
}
