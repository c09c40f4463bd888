package userinit

import (
	"os"
	"path/filepath"
	"strings"
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
