package local

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/launch"
)

// TestSandboxdLaunchIsPrivate: a local sandbox is a process on the host,
// so sandboxd must listen on loopback only, and keep its own files (the
// staging journal, the file viewer's URL) in the sandbox's directory
// rather than in the host's shared /tmp.
func TestSandboxdLaunchIsPrivate(t *testing.T) {
	d, err := New(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	st := state{ID: "s1", Port: 41234, Token: "k", WorkDir: "/w", User: "me", UID: 1001}
	env := map[string]string{}
	for _, kv := range d.env(st) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	l, err := launch.Parse(d.sandboxdLaunch(st).Argv(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if l.Host != "127.0.0.1" {
		t.Errorf("host %q, want 127.0.0.1", l.Host)
	}
	dir := d.sandboxDir(st.ID)
	if l.StateDir != dir {
		t.Errorf("state dir %q, want the sandbox's %q", l.StateDir, dir)
	}
	if want := filepath.Join(dir, "oh-server-url"); l.URLFile != want {
		t.Errorf("URL file %q, want %q", l.URLFile, want)
	}
}
