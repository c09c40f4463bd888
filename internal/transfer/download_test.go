package transfer

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// readZip returns name -> content and name -> header of an archive.
func readZip(t testing.TB, data []byte) (map[string]string, map[string]*zip.FileHeader) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a valid zip: %v", err)
	}
	contents, headers := map[string]string{}, map[string]*zip.FileHeader{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		rc.Close()
		if _, dup := contents[f.Name]; dup {
			t.Fatalf("duplicate entry %s", f.Name)
		}
		contents[f.Name] = string(b)
		headers[f.Name] = &f.FileHeader
	}
	return contents, headers
}

func download(t testing.TB, p string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Download(t.Context(), &buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDownloadErrorsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path  string
		class error
		text  string
	}{
		{"relative/path", errdefs.ErrInvalidArgument, "Path must be an absolute path"},
		{"", errdefs.ErrInvalidArgument, "Path must be an absolute path"},
		{filepath.Join(dir, "missing"), errdefs.ErrNotFound, "File not found"},
	} {
		var buf bytes.Buffer
		err := Download(t.Context(), &buf, tc.path)
		wantClass(t, err, tc.class, tc.text)
		if buf.Len() != 0 {
			t.Errorf("%q: wrote %d bytes before failing", tc.path, buf.Len())
		}
	}
	// A file path with a trailing slash does not exist (ENOTDIR), as in Python.
	writeFile(t, filepath.Join(dir, "f"), "x", 0o644)
	err := Download(t.Context(), io.Discard, filepath.Join(dir, "f")+"/")
	wantClass(t, err, errdefs.ErrNotFound, "File not found")
}

func TestDownloadFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sub", "notes.txt"), "some notes", 0o640)
	contents, headers := readZip(t, download(t, filepath.Join(dir, "sub", "notes.txt")))
	if want := map[string]string{"notes.txt": "some notes"}; !maps.Equal(contents, want) {
		t.Fatalf("got %v, want %v", contents, want)
	}
	if m := headers["notes.txt"].Mode(); m != 0o640 {
		t.Errorf("mode %v, want 0640", m)
	}
}

func TestDownloadEmptyDirectory(t *testing.T) {
	contents, _ := readZip(t, download(t, t.TempDir()))
	if len(contents) != 0 {
		t.Fatalf("got %v, want an empty archive", contents)
	}
}

func TestDownloadNonRegularFileGivesEmptyZip(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Must neither hang on the FIFO nor fail.
	contents, _ := readZip(t, download(t, fifo))
	if len(contents) != 0 {
		t.Fatalf("got %v", contents)
	}
}

func makeTree(t testing.TB, root string) {
	t.Helper()
	writeFile(t, filepath.Join(root, "README.md"), "# readme\n", 0o644)
	writeFile(t, filepath.Join(root, ".hidden"), "hidden", 0o600)
	writeFile(t, filepath.Join(root, "src", "main.go"), strings.Repeat("package main\n", 1000), 0o644)
	writeFile(t, filepath.Join(root, "src", "deep", "er", "x.sh"), "#!/bin/sh\n", 0o755)
	random := make([]byte, 200<<10)
	rand.Read(random)
	writeFile(t, filepath.Join(root, "data", "blob.bin"), string(random), 0o644)
	writeFile(t, filepath.Join(root, "data", "empty.txt"), "", 0o644)
	for _, d := range []string{"emptydir", "src/empty/nested"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDownloadDirectoryRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "project")
	makeTree(t, src)
	data := download(t, src)
	contents, headers := readZip(t, data)

	want := []string{".hidden", "README.md", "data/blob.bin", "data/empty.txt", "src/deep/er/x.sh", "src/main.go"}
	if got := slices.Sorted(maps.Keys(contents)); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v (files only, no directory entries)", got, want)
	}
	for name, content := range contents {
		if orig := readFile(t, filepath.Join(src, name)); orig != content {
			t.Errorf("%s: content differs", name)
		}
	}
	if m := headers["src/deep/er/x.sh"].Mode(); m != 0o755 {
		t.Errorf("x.sh mode %v, want 0755", m)
	}
	for name, h := range headers {
		if h.Method != zip.Store {
			t.Errorf("%s: method %d, want Store (as OpenHands)", name, h.Method)
		}
	}

	// Back through Upload: the files and modes come back identical.
	dest := t.TempDir()
	if err := Upload(t.Context(), dest, "project.zip", true, bytes.NewReader(data), Options{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		p := filepath.FromSlash(name)
		if readFile(t, filepath.Join(dest, p)) != readFile(t, filepath.Join(src, p)) {
			t.Errorf("%s: differs after the round trip", name)
		}
		if a, b := perm(t, filepath.Join(dest, p)), perm(t, filepath.Join(src, p)); a != b {
			t.Errorf("%s: mode %v after the round trip, was %v", name, a, b)
		}
	}
}

func TestDownloadSymlinks(t *testing.T) {
	parent := t.TempDir()
	writeFile(t, filepath.Join(parent, "secret.txt"), "outside", 0o644)
	tree := filepath.Join(parent, "tree")
	writeFile(t, filepath.Join(tree, "real", "file.txt"), "inside", 0o644)
	links := map[string]string{
		"to-file":         "real/file.txt",                         // in-tree file: followed
		"to-file-abs":     filepath.Join(tree, "real", "file.txt"), // absolute, still in-tree: followed
		"to-dir":          "real",                                  // directory: not descended
		"to-outside":      "../secret.txt",                         // leaves the tree: skipped
		"to-outside-abs":  filepath.Join(parent, "secret.txt"),     // leaves the tree: skipped
		"to-outside-dir":  parent,                                  // directory outside: skipped
		"dangling":        "nowhere",                               // skipped
		"real/up-and-in":  "../real/file.txt",                      // in-tree via "..": followed
		"real/loop":       "loop",                                  // ELOOP: skipped
		"real/to-outside": filepath.Join("..", "..", "secret.txt"), // skipped
		"chain":           "to-file",                               // link to link to file: followed
		"chain-out":       "to-outside",                            // skipped
		"to-self-dir":     ".",                                     // the tree itself: skipped
		"real/dev-zero":   "/dev/zero",                             // device, outside: skipped
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(tree, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(tree, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	contents, _ := readZip(t, download(t, tree))
	want := map[string]string{
		"real/file.txt": "inside", "to-file": "inside", "to-file-abs": "inside",
		"real/up-and-in": "inside", "chain": "inside",
	}
	if !maps.Equal(contents, want) {
		t.Fatalf("got %v, want %v", contents, want)
	}

	// A path that is itself a link to a directory is walked (os.walk does).
	alias := filepath.Join(parent, "alias")
	if err := os.Symlink(tree, alias); err != nil {
		t.Fatal(err)
	}
	aliased, _ := readZip(t, download(t, alias))
	if !maps.Equal(aliased, want) {
		t.Fatalf("through a link to the tree: got %v, want %v", aliased, want)
	}
}

func TestDownloadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "ok.txt"), "ok", 0o644)
	writeFile(t, filepath.Join(tree, "locked", "x"), "x", 0o644)
	os.Chmod(filepath.Join(tree, "locked"), 0)
	defer os.Chmod(filepath.Join(tree, "locked"), 0o755)
	contents, _ := readZip(t, download(t, tree))
	if !maps.Equal(contents, map[string]string{"ok.txt": "ok"}) {
		t.Fatalf("got %v", contents)
	}
	writeFile(t, filepath.Join(tree, "secret"), "s", 0)
	if err := Download(t.Context(), io.Discard, tree); !errors.Is(err, errdefs.ErrPermission) {
		t.Fatalf("unreadable file: %v, want ErrPermission", err)
	}
}

// cancellingWriter cancels the download's context on its first write.
type cancellingWriter struct{ cancel context.CancelFunc }

func (w cancellingWriter) Write(p []byte) (int, error) {
	w.cancel()
	return len(p), nil
}

func TestDownloadCancelled(t *testing.T) {
	tree := t.TempDir()
	random := make([]byte, 4<<20) // stored, so the output reaches the writer early
	rand.Read(random)
	writeFile(t, filepath.Join(tree, "big"), string(random), 0o644)
	writeFile(t, filepath.Join(tree, "later"), "later", 0o644)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := Download(ctx, cancellingWriter{cancel}, tree)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestDownloadWriterError(t *testing.T) {
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "big"), strings.Repeat("x", 4<<20), 0o644)
	err := Download(t.Context(), failingWriter{}, tree)
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("got %v, want the writer's EPIPE", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

func TestArchiveName(t *testing.T) {
	for p, want := range map[string]string{
		"/workspace/project": "project.zip", "/workspace/project/": ".zip", "/": ".zip", "/a.txt": "a.txt.zip",
	} {
		if got := ArchiveName(p); got != want {
			t.Errorf("ArchiveName(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestNonUTF8Names(t *testing.T) {
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "bad\xff", "n\xfe.txt"), "latin-1 name", 0o644)
	contents, _ := readZip(t, download(t, tree))
	if want := map[string]string{"bad\xff/n\xfe.txt": "latin-1 name"}; !maps.Equal(contents, want) {
		t.Fatalf("download: got %q, want %q", contents, want)
	}
	dest := t.TempDir()
	data := makeZip(t, zent{name: "d\xff/f\xfe", body: "x"})
	if err := Upload(t.Context(), dest, "a.zip", true, bytes.NewReader(data), Options{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "d\xff", "f\xfe")); got != "x" {
		t.Fatalf("upload: got %q", got)
	}
}
