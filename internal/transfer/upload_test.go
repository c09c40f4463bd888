package transfer

import (
	"archive/zip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestUploadValidatesArguments(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	cases := []struct {
		name      string
		dest      string
		filename  string
		recursive bool
		class     error
		text      string
	}{
		{"relative dest", "dest", "a.txt", false, errdefs.ErrInvalidArgument, "Destination must be an absolute path"},
		{"empty dest", "", "a.txt", false, errdefs.ErrInvalidArgument, "Destination must be an absolute path"},
		{"recursive not zip", dest, "a.tar", true, errdefs.ErrInvalidArgument, "Recursive uploads must be zip files"},
		{"recursive upper-case ZIP", dest, "a.ZIP", true, errdefs.ErrInvalidArgument, "Recursive uploads must be zip files"},
		{"slash", dest, "a/b.txt", false, errdefs.ErrInvalidArgument, ""},
		{"parent", dest, "..", false, errdefs.ErrInvalidArgument, ""},
		{"dot", dest, ".", false, errdefs.ErrInvalidArgument, ""},
		{"escape", dest, "../x.txt", false, errdefs.ErrInvalidArgument, ""},
		{"escape zip", dest, "../x.zip", false, errdefs.ErrInvalidArgument, ""},
		{"empty", dest, "", false, errdefs.ErrInvalidArgument, ""},
		{"nul", dest, "a\x00b", false, errdefs.ErrInvalidArgument, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Upload(t.Context(), tc.dest, tc.filename, tc.recursive, strings.NewReader("data"), Options{})
			wantClass(t, err, tc.class, tc.text)
			// sandboxd tells OpenHands' two HTTPException(400) refusals
			// from the rest by these sentinels, not by the text.
			if got, want := errors.Is(err, ErrDestinationNotAbsolute), tc.text == ErrDestinationNotAbsolute.Error(); got != want {
				t.Errorf("errors.Is(%q, ErrDestinationNotAbsolute) = %v", err, got)
			}
			if got, want := errors.Is(err, ErrRecursiveNotZip), tc.text == ErrRecursiveNotZip.Error(); got != want {
				t.Errorf("errors.Is(%q, ErrRecursiveNotZip) = %v", err, got)
			}
			// Refused before anything is created.
			if got := names(t, dir); len(got) != 0 {
				t.Fatalf("created %v", got)
			}
		})
	}
}

func TestUploadFileCreatesDestination(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "a", "b", "c")
	if err := Upload(t.Context(), dest, "hello.txt", false, strings.NewReader("hello"), Options{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "hello.txt")); got != "hello" {
		t.Fatalf("content %q", got)
	}
	if m := perm(t, filepath.Join(dest, "hello.txt")); m != 0o644 {
		t.Fatalf("mode %v, want 0644", m)
	}
	if got := names(t, dest); !slices.Equal(got, []string{"hello.txt"}) {
		t.Fatalf("dest holds %v", got)
	}
}

func TestUploadFileIntoNonDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "x", 0o644)
	err := Upload(t.Context(), filepath.Join(dir, "f"), "a.txt", false, strings.NewReader("x"), Options{})
	wantClass(t, err, errdefs.ErrConflict, "")
	err = Upload(t.Context(), filepath.Join(dir, "f", "sub"), "a.txt", false, strings.NewReader("x"), Options{})
	if err == nil {
		t.Fatal("upload below a file succeeded")
	}
}

func TestUploadFileReplacesKeepingModeAndOwner(t *testing.T) {
	dest := t.TempDir()
	target := filepath.Join(dest, "run.sh")
	writeFile(t, target, "old", 0o750)
	if os.Geteuid() == 0 {
		if err := os.Chown(target, 4321, 4322); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{Owner: &Owner{UID: 1234, GID: 1235}}
	if os.Geteuid() != 0 {
		opts.Owner = nil
	}
	if err := Upload(t.Context(), dest, "run.sh", false, strings.NewReader("new"), opts); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, target); got != "new" {
		t.Fatalf("content %q", got)
	}
	if m := perm(t, target); m != 0o750 {
		t.Fatalf("mode %v, want 0750 kept", m)
	}
	if os.Geteuid() == 0 {
		st := statT(t, target)
		if st.Uid != 4321 || st.Gid != 4322 {
			t.Fatalf("owner %d:%d, want 4321:4322 kept", st.Uid, st.Gid)
		}
	}
}

func TestUploadChownsWhatItCreates(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "new", "dest")
	opts := Options{Owner: &Owner{UID: 1234, GID: 1235}}
	if err := Upload(t.Context(), dest, "f.txt", false, strings.NewReader("x"), opts); err != nil {
		t.Fatal(err)
	}
	zipData := makeZip(t, zent{name: "d/", mode: os.ModeDir | 0o755}, zent{name: "d/g.txt", body: "g", mode: 0o644},
		zent{name: "implied/h.txt", body: "h", mode: 0o644})
	if err := Upload(t.Context(), dest, "x.zip", false, strings.NewReader(string(zipData)), opts); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"new", "new/dest", "new/dest/f.txt", "new/dest/d", "new/dest/d/g.txt", "new/dest/implied", "new/dest/implied/h.txt"} {
		st := statT(t, filepath.Join(dir, p))
		if st.Uid != 1234 || st.Gid != 1235 {
			t.Errorf("%s owned by %d:%d, want 1234:1235", p, st.Uid, st.Gid)
		}
	}
	// -1 leaves an id alone.
	opts.Owner = &Owner{UID: -1, GID: 1236}
	if err := Upload(t.Context(), dest, "g.txt", false, strings.NewReader("x"), opts); err != nil {
		t.Fatal(err)
	}
	if st := statT(t, filepath.Join(dest, "g.txt")); st.Uid != 0 || st.Gid != 1236 {
		t.Errorf("owned by %d:%d, want 0:1236", st.Uid, st.Gid)
	}
}

func statT(t testing.TB, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func TestUploadFileReplacesSymlinkInsteadOfWritingThrough(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "dest")
	outside := filepath.Join(dir, "outside.txt")
	writeFile(t, outside, "precious", 0o644)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dest, "link")); err != nil {
		t.Fatal(err)
	}
	if err := Upload(t.Context(), dest, "link", false, strings.NewReader("evil"), Options{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, outside); got != "precious" {
		t.Fatalf("wrote through the link: %q", got)
	}
	if m := perm(t, filepath.Join(dest, "link")); !m.IsRegular() {
		t.Fatalf("link not replaced by a file: %v", m)
	}
}

func TestUploadFileOverDirectory(t *testing.T) {
	dest := t.TempDir()
	if err := os.Mkdir(filepath.Join(dest, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Upload(t.Context(), dest, "d", false, strings.NewReader("x"), Options{})
	wantClass(t, err, errdefs.ErrConflict, "")
	if got := names(t, dest); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("dest holds %v", got)
	}
}

func TestUploadAbortedLeavesNothing(t *testing.T) {
	boom := errors.New("connection reset")
	for _, tc := range []struct {
		name      string
		filename  string
		recursive bool
	}{
		{"file", "big.bin", false},
		{"zip", "big.zip", false},
		{"recursive zip", "big.zip", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			writeFile(t, filepath.Join(dest, "big.bin"), "old content", 0o644)
			before := snapshot(t, dest, "")
			body := &failingReader{n: 3 << 20, err: boom}
			err := Upload(t.Context(), dest, tc.filename, tc.recursive, body, Options{})
			if !errors.Is(err, boom) {
				t.Fatalf("error %v does not wrap the body's error", err)
			}
			wantClass(t, err, errdefs.ErrInvalidArgument, "")
			sameSnapshot(t, before, snapshot(t, dest, ""))
		})
	}
}

// cancelAfter cancels ctx once n bytes were read or the body ended: a
// request that is abandoned mid-way.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n -= n
	if c.n <= 0 || err == io.EOF {
		c.cancel()
	}
	return n, err
}

func TestUploadCancelledLeavesNothing(t *testing.T) {
	zipData := makeZip(t, zent{name: "a.txt", body: strings.Repeat("a", 1<<20), method: zip.Store},
		zent{name: "b.txt", body: "b"})
	for _, tc := range []struct {
		name     string
		filename string
		body     func() io.Reader
		after    int
	}{
		{"file mid-body", "f.bin", func() io.Reader { return newPattern(64 << 20) }, 1 << 20},
		{"zip mid-body", "f.zip", func() io.Reader { return strings.NewReader(string(zipData)) }, 1},
		// Cancelled on the body's EOF: the spool completes and the
		// check between entries stops the extraction.
		{"zip after body", "f.zip", func() io.Reader { return strings.NewReader(string(zipData)) }, len(zipData) + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			body := &cancelAfter{r: tc.body(), n: tc.after, cancel: cancel}
			err := Upload(ctx, dest, tc.filename, false, body, Options{})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			if got := names(t, dest); len(got) != 0 {
				t.Fatalf("left behind %v", got)
			}
		})
	}
}

// TestUploadMemoryIsConstant streams 256 MiB through both kinds of upload
// and checks that the bytes allocated stay a small constant: holding the
// body, or the archive, in memory would allocate at least its size.
func TestUploadMemoryIsConstant(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 512 MiB")
	}
	const size = 256 << 20
	dest := t.TempDir()
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	fileAlloc := allocated(func() {
		if err := Upload(t.Context(), dest, "big.bin", false, newPattern(size), Options{}); err != nil {
			t.Error(err)
		}
	})
	// The archive is produced on the fly, as a client would stream it.
	pr, pw := io.Pipe()
	go func() {
		zw := zip.NewWriter(pw)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "inner/big.bin", Method: zip.Store})
		if err == nil {
			_, err = io.Copy(w, newPattern(size))
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	zipAlloc := allocated(func() {
		if err := Upload(t.Context(), dest, "big.zip", false, pr, Options{}); err != nil {
			t.Error(err)
		}
	})
	t.Logf("allocated: file upload %d KiB, zip upload %d KiB (incl. the producer)", fileAlloc>>10, zipAlloc>>10)
	const limit = 8 << 20
	if fileAlloc > limit || zipAlloc > limit {
		t.Fatalf("allocated %d / %d bytes for %d-byte uploads, want < %d", fileAlloc, zipAlloc, size, limit)
	}
	if fi, err := os.Stat(filepath.Join(dest, "inner", "big.bin")); err != nil || fi.Size() != size {
		t.Fatalf("extracted file: %v %v", fi, err)
	}
}

func TestCopyChunksLimit(t *testing.T) {
	var sb strings.Builder
	n, rerr, werr := copyChunks(t.Context(), &sb, strings.NewReader("0123456789"), make([]byte, 4), 6)
	if !errors.Is(rerr, errLimit) || werr != nil {
		t.Fatalf("got %v %v, want errLimit", rerr, werr)
	}
	if n > 6 || sb.Len() > 6 {
		t.Fatalf("wrote %d bytes past the limit of 6", n)
	}
	sb.Reset()
	n, rerr, werr = copyChunks(t.Context(), &sb, strings.NewReader("0123456789"), make([]byte, 4), 10)
	if rerr != nil || werr != nil || n != 10 || sb.String() != "0123456789" {
		t.Fatalf("exact limit: %d %v %v %q", n, rerr, werr, sb.String())
	}
}
