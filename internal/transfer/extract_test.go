package transfer

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func upload(t testing.TB, dest, filename string, recursive bool, data []byte, opts Options) error {
	t.Helper()
	return Upload(t.Context(), dest, filename, recursive, bytes.NewReader(data), opts)
}

func TestUploadZipExtracts(t *testing.T) {
	data := makeZip(t,
		zent{name: "top.txt", body: "top", mode: 0o644},
		zent{name: "bin/", mode: os.ModeDir | 0o750},
		zent{name: "bin/run", body: "#!/bin/sh\n", mode: 0o755, method: zip.Deflate},
		zent{name: "bin/secret", body: "s", mode: 0o600},
		zent{name: "bin/suid", body: "x", mode: os.ModeSetuid | os.ModeSetgid | 0o755},
		zent{name: "a/b/c/deep.txt", body: "deep", mode: 0o644},
		zent{name: "./dot/x.txt", body: "dotted", mode: 0o644},
		zent{name: "ro/", mode: os.ModeDir | 0o555},
		zent{name: "ro/f", body: "f", mode: 0o444},
		zent{name: "empty/", mode: os.ModeDir | 0o755},
		zent{name: `back\slash`, body: "literal", mode: 0o644},
	)
	for _, tc := range []struct {
		name      string
		filename  string
		recursive bool
	}{
		{"recursive", "upload.zip", true},
		// OpenHands extracts any .zip, recursive or not.
		{"non-recursive .zip", "upload.zip", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "dest")
			// Let TempDir's cleanup delete below the read-only directory.
			t.Cleanup(func() { os.Chmod(filepath.Join(dest, "ro"), 0o755) })
			if err := upload(t, dest, tc.filename, tc.recursive, data, Options{}); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]string{
				"top.txt": "top", "bin/run": "#!/bin/sh\n", "bin/secret": "s", "bin/suid": "x",
				"a/b/c/deep.txt": "deep", "dot/x.txt": "dotted", "ro/f": "f", `back\slash`: "literal",
			} {
				if got := readFile(t, filepath.Join(dest, p)); got != want {
					t.Errorf("%s: %q, want %q", p, got, want)
				}
			}
			for p, want := range map[string]fs.FileMode{
				"top.txt": 0o644, "bin": fs.ModeDir | 0o750, "bin/run": 0o755, "bin/secret": 0o600,
				"bin/suid": 0o755, // setuid and setgid dropped
				"a":        fs.ModeDir | 0o755, "a/b/c": fs.ModeDir | 0o755,
				"ro": fs.ModeDir | 0o555, "ro/f": 0o444, "empty": fs.ModeDir | 0o755,
			} {
				if got := perm(t, filepath.Join(dest, p)); got != want {
					t.Errorf("%s: mode %v, want %v", p, got, want)
				}
			}
			want := []string{"a", "back\\slash", "bin", "dot", "empty", "ro", "top.txt"}
			if got := names(t, dest); !slices.Equal(got, want) {
				t.Fatalf("dest holds %v, want %v (no zip, no staging)", got, want)
			}
		})
	}
}

func TestUploadZipWithoutUnixModes(t *testing.T) {
	dest := t.TempDir()
	data := makeZip(t, zent{name: "d/f.txt", body: "x"}, zent{name: "e/"})
	if err := upload(t, dest, "a.zip", true, data, Options{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{"d": fs.ModeDir | 0o755, "d/f.txt": 0o644, "e": fs.ModeDir | 0o755} {
		if got := perm(t, filepath.Join(dest, p)); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
}

func TestUploadZipMergesIntoExistingTree(t *testing.T) {
	dest := t.TempDir()
	writeFile(t, filepath.Join(dest, "src", "keep.go"), "keep", 0o644)
	writeFile(t, filepath.Join(dest, "src", "old.go"), "old", 0o644)
	if err := os.Chmod(filepath.Join(dest, "src"), 0o711); err != nil {
		t.Fatal(err)
	}
	data := makeZip(t,
		zent{name: "src/", mode: os.ModeDir | 0o700},
		zent{name: "src/old.go", body: "new", mode: 0o600},
		zent{name: "src/pkg/new.go", body: "added", mode: 0o644},
	)
	if err := upload(t, dest, "a.zip", true, data, Options{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"src/keep.go": "keep", "src/old.go": "new", "src/pkg/new.go": "added"} {
		if got := readFile(t, filepath.Join(dest, p)); got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	// An existing directory keeps its mode; a replaced file takes the archive's.
	if got := perm(t, filepath.Join(dest, "src")); got != fs.ModeDir|0o711 {
		t.Errorf("existing dir mode %v, want 0711 kept", got)
	}
	if got := perm(t, filepath.Join(dest, "src", "old.go")); got != 0o600 {
		t.Errorf("replaced file mode %v, want 0600", got)
	}
}

func TestUploadZipDuplicateEntryLastWins(t *testing.T) {
	dest := t.TempDir()
	data := makeZip(t, zent{name: "f", body: "first"}, zent{name: "f", body: "second"})
	if err := upload(t, dest, "a.zip", true, data, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "f")); got != "second" {
		t.Fatalf("got %q", got)
	}
}

// TestUploadZipRefusedLeavesNoTrace covers zip-slip and every other reason
// to refuse an archive: each must leave dest and its parent exactly as they
// were, even when valid entries come before the bad one.
func TestUploadZipRefusedLeavesNoTrace(t *testing.T) {
	good := zent{name: "good/first.txt", body: "written before the bad entry?", mode: 0o644}
	cases := []struct {
		name     string
		data     func(t *testing.T) []byte
		opts     Options
		class    error
		contains string
		setup    func(t *testing.T, dest, parent string)
	}{
		{name: "dot-dot", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "../x", body: "evil"})
		}},
		{name: "absolute", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "/tmp/sbx-transfer-abs", body: "evil"})
		}},
		{name: "nested dot-dot", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "a/../../x", body: "evil"})
		}},
		{name: "inner dot-dot", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "a/../b", body: "refused although it stays inside"})
		}},
		{name: "symlink entry", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "link", body: "/etc", mode: os.ModeSymlink | 0o777})
		}},
		{name: "entry under symlink entry", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "link", body: "..", mode: os.ModeSymlink | 0o777},
				zent{name: "link/outside.txt", body: "evil"})
		}},
		{name: "entry under existing symlink in dest", class: errdefs.ErrConflict, contains: "symbolic link",
			setup: func(t *testing.T, dest, parent string) {
				if err := os.Symlink(parent, filepath.Join(dest, "link")); err != nil {
					t.Fatal(err)
				}
			},
			data: func(t *testing.T) []byte {
				return makeZip(t, good, zent{name: "link/outside.txt", body: "evil"})
			}},
		{name: "relative symlink in dest", class: errdefs.ErrConflict, contains: "symbolic link",
			setup: func(t *testing.T, dest, parent string) {
				if err := os.Mkdir(filepath.Join(dest, "real"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("real", filepath.Join(dest, "inner")); err != nil {
					t.Fatal(err)
				}
			},
			data: func(t *testing.T) []byte {
				return makeZip(t, good, zent{name: "inner/x.txt", body: "even inside dest"})
			}},
		{name: "directory over file", class: errdefs.ErrConflict,
			setup: func(t *testing.T, dest, parent string) { writeFile(t, filepath.Join(dest, "f"), "file", 0o644) },
			data: func(t *testing.T) []byte {
				return makeZip(t, good, zent{name: "f/x.txt", body: "x"})
			}},
		{name: "file over directory", class: errdefs.ErrConflict,
			setup: func(t *testing.T, dest, parent string) { writeFile(t, filepath.Join(dest, "d", "x"), "x", 0o644) },
			data: func(t *testing.T) []byte {
				return makeZip(t, good, zent{name: "d", body: "file"})
			}},
		{name: "file then directory", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "x", body: "file"}, zent{name: "x/y", body: "y"})
		}},
		{name: "fifo entry", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "p", mode: os.ModeNamedPipe | 0o644})
		}},
		{name: "empty name", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return makeZip(t, good, zent{name: "", body: "x"})
		}},
		{name: "not a zip", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			return []byte("this is not a zip archive")
		}},
		{name: "truncated", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			d := makeZip(t, good, zent{name: "x", body: strings.Repeat("x", 4096)})
			return d[:len(d)/2]
		}},
		{name: "corrupt data", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			d := makeZip(t, good, zent{name: "x", body: "payload-payload", method: zip.Store})
			i := bytes.LastIndex(d, []byte("payload-payload"))
			d[i] ^= 0xff // CRC mismatch
			return d
		}},
		{name: "encrypted", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, _ := zw.CreateRaw(&zip.FileHeader{Name: "e", Flags: 0x1, CompressedSize64: 3, UncompressedSize64: 3})
			w.Write([]byte("abc"))
			zw.Close()
			return buf.Bytes()
		}},
		{name: "unsupported method", class: errdefs.ErrInvalidArgument, data: func(t *testing.T) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, _ := zw.CreateRaw(&zip.FileHeader{Name: "b", Method: 12, CompressedSize64: 3, UncompressedSize64: 3})
			w.Write([]byte("abc"))
			zw.Close()
			return buf.Bytes()
		}},
		{name: "declared size over limit", class: errdefs.ErrTooLarge, opts: Options{MaxBytes: 1 << 20},
			data: func(t *testing.T) []byte { return makeRawZip(t, "bomb", 1<<40, 1<<10) }},
		{name: "deflate bomb", class: errdefs.ErrTooLarge, opts: Options{MaxBytes: 1 << 20},
			data: func(t *testing.T) []byte { return makeRawZip(t, "bomb", 64<<20, 64<<20) }},
		{name: "sum of sizes over limit", class: errdefs.ErrTooLarge, opts: Options{MaxBytes: 1000},
			data: func(t *testing.T) []byte {
				return makeZip(t, zent{name: "a", body: strings.Repeat("a", 600)}, zent{name: "b", body: strings.Repeat("b", 600)})
			}},
		{name: "header understates size", class: errdefs.ErrInvalidArgument,
			data: func(t *testing.T) []byte { return makeRawZip(t, "liar", 10, 64<<20) }},
		{name: "too many entries", class: errdefs.ErrTooLarge, opts: Options{MaxEntries: 10},
			data: func(t *testing.T) []byte {
				var ents []zent
				for i := range 11 {
					ents = append(ents, zent{name: fmt.Sprintf("f%d", i), body: "x"})
				}
				return makeZip(t, ents...)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			writeFile(t, filepath.Join(dest, "existing.txt"), "unchanged", 0o644)
			writeFile(t, filepath.Join(parent, "outside.txt"), "unchanged", 0o644)
			if tc.setup != nil {
				tc.setup(t, dest, parent)
			}
			before := snapshot(t, parent, "")
			err := upload(t, dest, "a.zip", true, tc.data(t), tc.opts)
			wantClass(t, err, tc.class, "")
			if !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("error %q does not mention %q", err, tc.contains)
			}
			t.Logf("refused: %v", err)
			sameSnapshot(t, before, snapshot(t, parent, ""))
			if _, err := os.Lstat("/tmp/sbx-transfer-abs"); err == nil {
				t.Fatal("absolute entry was written")
			}
		})
	}
}

// TestExtractCountsBytesWritten checks the second line of defence: even if
// the declared sizes passed (here they are not checked at all), the bytes
// actually written are counted against the limit.
func TestExtractCountsBytesWritten(t *testing.T) {
	data := makeZip(t, zent{name: "a", body: strings.Repeat("a", 3000)}, zent{name: "b", body: strings.Repeat("b", 3000)})
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	x := &extractor{root: root, buf: make([]byte, 1024), kinds: map[string]bool{}, dirModes: map[string]fs.FileMode{}}
	if err := x.writeFile(t.Context(), entry{f: zr.File[0], rel: "a", mode: 0o644}, 5000); err != nil {
		t.Fatal(err)
	}
	err = x.writeFile(t.Context(), entry{f: zr.File[1], rel: "b", mode: 0o644}, 5000)
	wantClass(t, err, errdefs.ErrTooLarge, "archive expands to more than 5000 bytes")
	if x.written > 5000 {
		t.Fatalf("wrote %d bytes, limit 5000", x.written)
	}
}

// TestUploadZipHugeCentralDirectory checks that the entry limit holds while
// the central directory is parsed, not only afterwards: archive/zip would
// otherwise allocate a File for each of the 200 000 records first.
func TestUploadZipHugeCentralDirectory(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 200_000 {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%06d", i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	data := buf.Bytes()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	dest := t.TempDir()
	err := upload(t, dest, "a.zip", true, data, Options{MaxEntries: 1000})
	runtime.ReadMemStats(&after)
	wantClass(t, err, errdefs.ErrTooLarge, "archive has more than 1000 entries")
	// Parsing all 200 000 records costs ~50 MB; the guard stops after ~1000.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("allocated %d bytes refusing the archive", alloc)
	}

	// Long names: few records, but a directory far over its byte budget.
	buf.Reset()
	zw = zip.NewWriter(&buf)
	for i := range 40 {
		zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%05d-%s", i, strings.Repeat("n", 60_000))})
	}
	zw.Close()
	err = upload(t, dest, "a.zip", true, buf.Bytes(), Options{MaxEntries: 100})
	wantClass(t, err, errdefs.ErrTooLarge, "")
	if !strings.Contains(err.Error(), "central directory") {
		t.Fatalf("refused for another reason: %v", err)
	}
	if got := names(t, dest); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

func TestUploadZipAtEntryLimit(t *testing.T) {
	var ents []zent
	for i := range 10 {
		ents = append(ents, zent{name: fmt.Sprintf("d/f%d", i), body: "x"})
	}
	dest := t.TempDir()
	if err := upload(t, dest, "a.zip", true, makeZip(t, ents...), Options{MaxEntries: 10, MaxBytes: 10}); err != nil {
		t.Fatalf("archive exactly at the limits refused: %v", err)
	}
	if got := names(t, filepath.Join(dest, "d")); len(got) != 10 {
		t.Fatalf("extracted %v", got)
	}
}

func TestEntryPath(t *testing.T) {
	for name, want := range map[string]string{
		"a": "a", "a/b": "a/b", "./a": "a", "a//b/": "a/b", "a/./b": "a/b", "./": ".", "a..b": "a..b", "..a/b..": "..a/b..",
	} {
		got, err := entryPath(name)
		if err != nil || got != want {
			t.Errorf("entryPath(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"", "..", "../a", "a/..", "a/../b", "/a", "//a", "a\x00b"} {
		if got, err := entryPath(name); err == nil {
			t.Errorf("entryPath(%q) = %q, want an error", name, got)
		}
	}
}
