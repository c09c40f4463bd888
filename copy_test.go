package sbx

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/transfer"
)

// extract is CopyFrom's extraction of an archive the sandbox sent.
func extract(t *testing.T, zr []byte, dst string, rb *transfer.Rebase) error {
	t.Helper()
	return transfer.Extract(context.Background(), bytes.NewReader(zr), int64(len(zr)), dst, transfer.Options{Rebase: rb})
}

// TestCopyRefusesHostileArchives: names from the sandbox are untrusted;
// an archive with any bad entry writes nothing.
func TestCopyRefusesHostileArchives(t *testing.T) {
	link := func(zw *zip.Writer) {
		h := &zip.FileHeader{Name: "link"}
		h.SetMode(os.ModeSymlink | 0o777)
		w, _ := zw.CreateHeader(h)
		w.Write([]byte("/etc/passwd"))
	}
	cases := map[string]func(*zip.Writer){"symbolic link": link}
	for _, name := range []string{"../evil", "/abs", "a/../../evil", `a\..\evil`, "", "./../evil"} {
		cases[name] = func(zw *zip.Writer) {
			w, _ := zw.Create(name)
			w.Write([]byte("bad"))
		}
	}
	for what, bad := range cases {
		for _, rb := range []*transfer.Rebase{nil, {To: "new"}, {From: "ok.txt", To: "renamed"}} {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			os.Mkdir(dst, 0o755)
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, _ := zw.Create("ok.txt")
			w.Write([]byte("fine"))
			bad(zw)
			zw.Close()
			if err := extract(t, buf.Bytes(), dst, rb); err == nil {
				t.Errorf("%s (rebase %+v): accepted", what, rb)
			}
			if got := treeOf(t, parent); got != "dst/" {
				t.Errorf("%s (rebase %+v): something was written: %s", what, rb, got)
			}
		}
	}
}

// TestCopyDoesNotFollowLinks: a link already in the destination must not
// carry a write outside it.
func TestCopyDoesNotFollowLinks(t *testing.T) {
	outside := t.TempDir()
	dst := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := extract(t, zipOf(t, map[string]string{"sub/x": "x"}), dst, nil); err == nil {
		t.Error("extracted through a link leading outside")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Error("a file was written outside the destination")
	}
	// A link at a file's own name is replaced, not written through.
	target := filepath.Join(outside, "victim")
	os.WriteFile(target, []byte("keep"), 0o644)
	if err := os.Symlink(target, filepath.Join(dst, "f")); err != nil {
		t.Fatal(err)
	}
	if err := extract(t, zipOf(t, map[string]string{"f": "new"}), dst, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link's target was overwritten: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "new" {
		t.Errorf("f = %q", b)
	}
}

func TestZipRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"a": "1", "d/b": "2", "d/e/c": "3"})
	os.Chmod(filepath.Join(src, "d/b"), 0o751)
	fi, _ := os.Stat(src)
	var buf bytes.Buffer
	if err := writeZip(&buf, src, fi, "top", func(string, string) {}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := extract(t, buf.Bytes(), dst, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"top/a": "1", "top/d/b": "2", "top/d/e/c": "3"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dst, "top/d/b")); fi.Mode().Perm() != 0o751 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// TestCopyRenaming: docker cp's renaming rules, as CopyFrom applies them
// to what the sandbox sends (a file as its base name, a directory as its
// contents).
func TestCopyRenaming(t *testing.T) {
	file := zipOf(t, map[string]string{"notes.txt": "n"})
	tree := zipOf(t, map[string]string{"a": "1", "sub/b": "2"})
	for _, tc := range []struct {
		name    string
		archive []byte
		rb      *transfer.Rebase
		before  map[string]string // in the destination
		want    string            // the destination's tree after
	}{
		{"file into a directory", file, &transfer.Rebase{From: "notes.txt", To: "notes.txt"}, nil, "notes.txt=n"},
		{"file to a new name", file, &transfer.Rebase{From: "notes.txt", To: "renamed"}, nil, "renamed=n"},
		{"file over a file", file, &transfer.Rebase{From: "notes.txt", To: "old"}, map[string]string{"old": "o"}, "old=n"},
		{"directory to a new name", tree, &transfer.Rebase{To: "copy"}, nil, "copy/ copy/a=1 copy/sub/ copy/sub/b=2"},
		{"directory merged into one", tree, &transfer.Rebase{To: "d"}, map[string]string{"d/keep": "k", "d/a": "old"}, "d/ d/a=1 d/keep=k d/sub/ d/sub/b=2"},
		{"directory's contents", tree, nil, map[string]string{"x": "x"}, "a=1 sub/ sub/b=2 x=x"},
	} {
		dst := t.TempDir()
		writeFiles(t, dst, tc.before)
		if err := extract(t, tc.archive, dst, tc.rb); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := treeOf(t, dst); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// A file entry where the new name is a directory is a conflict, and an
	// entry outside the one being renamed is refused.
	dst := t.TempDir()
	os.Mkdir(filepath.Join(dst, "taken"), 0o755)
	if err := extract(t, file, dst, &transfer.Rebase{From: "notes.txt", To: "taken"}); err == nil {
		t.Error("file over a directory: no error")
	}
	if err := extract(t, zipOf(t, map[string]string{"notes.txt": "n", "other": "o"}), dst, &transfer.Rebase{From: "notes.txt", To: "r"}); err == nil {
		t.Error("entry outside From: no error")
	}
	if got := treeOf(t, dst); got != "taken/" {
		t.Errorf("refused archives wrote %s", got)
	}
}

func TestContentsOnly(t *testing.T) {
	for p, want := range map[string]bool{".": true, "a/.": true, "/x/.": true, "a": false, "a/": false, "a/..": false} {
		if contentsOnly(p) != want {
			t.Errorf("contentsOnly(%q) = %v", p, !want)
		}
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeOf lists root: "dir/" for directories, "file=content" for files.
func treeOf(t *testing.T, root string) string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			out = append(out, filepath.ToSlash(rel)+"/")
			return nil
		}
		b, _ := os.ReadFile(p)
		out = append(out, filepath.ToSlash(rel)+"="+string(b))
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, " ")
}
