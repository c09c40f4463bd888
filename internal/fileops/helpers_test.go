package fileops

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// newTestFiles returns a Files rooted at a fresh workspace that does not
// chown (tests that check ownership set UID/GID themselves).
func newTestFiles(t testing.TB, edit ...func(*Options)) (*Files, string) {
	t.Helper()
	root := t.TempDir()
	opts := Options{
		WorkspaceRoot: root,
		UID:           -1,
		GID:           -1,
		TempDir:       t.TempDir(),
		Logger:        slog.New(slog.DiscardHandler),
	}
	for _, e := range edit {
		e(&opts)
	}
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f, root
}

// setupTree creates files under root: a value ending the key with "/" makes
// a directory, a value starting with "->" a symbolic link.
func setupTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		switch {
		case strings.HasSuffix(rel, "/"):
			mustDo(t, os.MkdirAll(p, 0o755))
		case strings.HasPrefix(content, "->"):
			mustDo(t, os.MkdirAll(filepath.Dir(p), 0o755))
			mustDo(t, os.Symlink(content[2:], p))
		default:
			mustDo(t, os.MkdirAll(filepath.Dir(p), 0o755))
			mustDo(t, os.WriteFile(p, []byte(content), 0o644))
		}
	}
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func ptr(s string) *string { return &s }

// doEdit runs an edit that must not fail as a request.
func doEdit(t testing.TB, f *Files, r EditRequest) EditResult {
	t.Helper()
	res := f.Edit(context.Background(), r)
	if res.Err != nil {
		t.Fatalf("Edit(%s %s): %v", r.Command, r.Path, res.Err)
	}
	if res.Diff == nil {
		t.Fatalf("Edit(%s %s): nil Diff", r.Command, r.Path)
	}
	return res
}

// expand replaces {root} in s.
func expand(s, root string) string { return strings.ReplaceAll(s, "{root}", root) }

// numbered renders lines the way the editor numbers them, for building
// expected outputs of long files.
func numbered(start int, lines ...string) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strings.Repeat(" ", 6-len(itoa(start+i))) + itoa(start+i) + "\t" + l)
	}
	return b.String()
}

func itoa(i int) string {
	s := ""
	neg := i < 0
	if neg {
		i = -i
	}
	for {
		s = string(rune('0'+i%10)) + s
		i /= 10
		if i == 0 {
			break
		}
	}
	if neg {
		s = "-" + s
	}
	return s
}

// listTree returns every path under root, for checking that failed
// operations leave nothing behind.
func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	mustDo(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	}))
	sort.Strings(out)
	return out
}

func ownerOf(st os.FileInfo) (uid, gid int) {
	sys := st.Sys().(*syscall.Stat_t)
	return int(sys.Uid), int(sys.Gid)
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
