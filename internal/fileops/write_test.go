package fileops

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestWriteSplice(t *testing.T) {
	old := "l0\nl1\nl2\n"
	tests := []struct {
		old, content string
		start, end   int
		want         string
	}{
		{old, "X", 0, -1, "X\n"},
		{old, "X", 1, -1, "l0\nX\n"},
		{old, "X", 0, 1, "X\nl1\nl2\n"},
		{old, "X", 1, 2, "l0\nX\nl2\n"},
		{old, "X", 2, 1, "l0\nl1\nX\nl1\nl2\n"}, // overlapping slices repeat lines
		{old, "X", -1, -1, "l0\nl1\nX\n"},       // negative bounds count from the end
		{old, "X", 0, -2, "X\nl1\nl2\n"},
		{old, "X", 5, -1, old + "X\n"},
		{old, "X", 0, 9, "X\n"},
		{old, "a\nb", 3, 3, old + "a\nb\n"},
		{old, "", 1, 2, "l0\n\nl2\n"},
		{"a\r\nb\r\n", "X", 1, -1, "a\nX\n"}, // old lines come back with LF
		{"no newline", "X", 1, -1, "no newlineX\n"},
		{old, "X\r\nY", 0, -1, "X\r\nY\n"}, // new text is written as given
	}
	f, root := newTestFiles(t)
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%q[%d:%d]", tc.content, tc.start, tc.end), func(t *testing.T) {
			name := fmt.Sprintf("s%d.txt", i)
			mustDo(t, os.WriteFile(filepath.Join(root, name), []byte(tc.old), 0o640))
			res := f.Write(context.Background(), WriteRequest{Path: name, Content: tc.content, Start: tc.start, End: tc.end, Cwd: root})
			if res.Err != nil || res.ErrorText != "" {
				t.Fatalf("Write: %v %q", res.Err, res.ErrorText)
			}
			if res.Path != root+"/"+name {
				t.Errorf("path %q", res.Path)
			}
			if got := readFile(t, filepath.Join(root, name)); got != tc.want {
				t.Errorf("file %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteNewFile(t *testing.T) {
	f, root := newTestFiles(t)
	for content, want := range map[string]string{"a\nb": "a\nb\n", "": "\n", "x\n": "x\n\n"} {
		p := root + "/new/dirs/" + fmt.Sprintf("%x", content) + ".txt"
		res := f.Write(context.Background(), WriteRequest{Path: p, Content: content, Start: 3, End: 1})
		if res.Err != nil || res.ErrorText != "" {
			t.Fatalf("Write: %+v", res)
		}
		if got := readFile(t, p); got != want {
			t.Errorf("%q: file %q, want %q", content, got, want)
		}
		st, err := os.Stat(p)
		mustDo(t, err)
		if st.Mode().Perm() != 0o664 {
			t.Errorf("new file mode %v, want 0664", st.Mode())
		}
	}
}

func TestWriteOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	f, root := newTestFiles(t, func(o *Options) { o.UID, o.GID = 1234, 1234 })
	p := root + "/a/b/new.txt"
	res := f.Write(context.Background(), WriteRequest{Path: p, Content: "x", End: -1})
	if res.Err != nil || res.ErrorText != "" {
		t.Fatalf("Write: %+v", res)
	}
	for _, q := range []string{p, root + "/a", root + "/a/b"} {
		st, err := os.Stat(q)
		mustDo(t, err)
		if uid, gid := ownerOf(st); uid != 1234 || gid != 1234 {
			t.Errorf("%s owned by %d:%d", q, uid, gid)
		}
	}
	// An existing file keeps its mode (setuid included) and owner.
	e := root + "/e.sh"
	mustDo(t, os.WriteFile(e, []byte("a\n"), 0o644))
	mustDo(t, os.Chown(e, 7, 8))
	mustDo(t, os.Chmod(e, 0o750|os.ModeSetuid))
	res = f.Write(context.Background(), WriteRequest{Path: e, Content: "b", Start: 1, End: -1})
	if res.Err != nil || res.ErrorText != "" {
		t.Fatalf("Write: %+v", res)
	}
	st, err := os.Stat(e)
	mustDo(t, err)
	if uid, gid := ownerOf(st); uid != 7 || gid != 8 || st.Mode().Perm() != 0o750 || st.Mode()&os.ModeSetuid == 0 {
		t.Errorf("existing file now %v %d:%d", st.Mode(), uid, gid)
	}
}

func TestWriteOwnershipFailure(t *testing.T) {
	f, root := newTestFiles(t, func(o *Options) { o.UID, o.GID = 4321, 4321 })
	f.chown = func(*os.File, int, int) error { return &os.PathError{Op: "fchown", Path: "tmp", Err: syscall.EPERM} }
	p := root + "/n.txt"
	res := f.Write(context.Background(), WriteRequest{Path: p, Content: "x", End: -1})
	want := "File " + p + " written, but failed to change ownership and permissions: [Errno 1] Operation not permitted: '" + p + "'"
	if res.ErrorText != want {
		t.Errorf("got %+v\nwant %q", res, want)
	}
	if got := readFile(t, p); got != "x\n" {
		t.Errorf("content %q", got)
	}
}

func TestWriteErrors(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"d/": "", "latin.txt": "caf\xe9\n"})
	tests := []struct {
		path, want string
	}{
		{"{root}/d", "Path is a directory: {root}/d. You can only write to files"},
		{"{root}/latin.txt", "File could not be decoded as utf-8: {root}/latin.txt"},
	}
	for _, tc := range tests {
		res := f.Write(context.Background(), WriteRequest{Path: expand(tc.path, root), Content: "x", End: -1})
		if want := expand(tc.want, root); res.ErrorText != want || res.Err != nil {
			t.Errorf("%s: got %+v, want %q", tc.path, res, want)
		}
	}
	if got := readFile(t, root+"/latin.txt"); got != "caf\xe9\n" {
		t.Errorf("undecodable file changed: %q", got)
	}
	if got := len(listTree(t, root)); got != 3 {
		t.Errorf("leftover files: %v", listTree(t, root))
	}
	// A parent that is a file is not something OpenHands handles: HTTP 500.
	res := f.Write(context.Background(), WriteRequest{Path: root + "/latin.txt/x", Content: "x", End: -1})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "Not a directory") {
		t.Errorf("write under a file: %+v", res)
	}
}

func TestWriteThroughSymlink(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"target.txt": "old\n", "link.txt": "->target.txt", "dangling.txt": "->created.txt"})
	for _, name := range []string{"link.txt", "dangling.txt"} {
		res := f.Write(context.Background(), WriteRequest{Path: root + "/" + name, Content: "new", End: -1})
		if res.Err != nil || res.ErrorText != "" {
			t.Fatalf("%s: %+v", name, res)
		}
		st, err := os.Lstat(root + "/" + name)
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a link", name)
		}
	}
	if got := readFile(t, root+"/target.txt"); got != "new\n" {
		t.Errorf("target %q", got)
	}
	if got := readFile(t, root+"/created.txt"); got != "new\n" {
		t.Errorf("dangling link target %q", got)
	}
}

// TestWriteIsAtomic reads the file continuously while it is rewritten:
// every read must see one complete version, never a mix or a prefix.
func TestWriteIsAtomic(t *testing.T) {
	f, root := newTestFiles(t)
	p := root + "/big.txt"
	versions := []string{strings.Repeat("A", 1<<20), strings.Repeat("B", 1<<20)}
	if res := f.Write(context.Background(), WriteRequest{Path: p, Content: versions[0], End: -1}); res.Err != nil {
		t.Fatal(res.Err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			data, err := os.ReadFile(p)
			if err != nil {
				mu.Lock()
				bad = append(bad, err.Error())
				mu.Unlock()
				continue
			}
			body := bytes.TrimSuffix(data, []byte("\n"))
			if string(body) != versions[0] && string(body) != versions[1] {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("torn read of %d bytes", len(data)))
				mu.Unlock()
			}
		}
	}()
	for i := range 20 {
		if res := f.Write(context.Background(), WriteRequest{Path: p, Content: versions[i%2], End: -1}); res.Err != nil || res.ErrorText != "" {
			t.Fatalf("Write: %+v", res)
		}
	}
	close(done)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d bad reads, first: %s", len(bad), bad[0])
	}
	if got := listTree(t, root); len(got) != 2 {
		t.Errorf("temporary files left: %v", got)
	}
}

func TestWriteCancelledLeavesFileUntouched(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"a.txt": "old\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := f.Write(ctx, WriteRequest{Path: root + "/a.txt", Content: "new", End: -1}); res.Err == nil {
		t.Error("cancelled write succeeded")
	}
	if got := readFile(t, root+"/a.txt"); got != "old\n" {
		t.Errorf("file %q", got)
	}
	if got := listTree(t, root); len(got) != 2 {
		t.Errorf("leftovers: %v", got)
	}
}

func TestPyDirname(t *testing.T) {
	for in, want := range map[string]string{"/a/b": "/a", "/a": "/", "a": "", "//a": "//", "/a//b": "/a", "a/b": "a"} {
		if got := pyDirname(in); got != want {
			t.Errorf("pyDirname(%q) = %q, want %q", in, got, want)
		}
	}
}
