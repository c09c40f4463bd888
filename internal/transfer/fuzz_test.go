package transfer

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds arbitrary bytes to an archive upload. Whatever the
// bytes, Upload must not panic, must not change anything beside the
// destination (checked on its parent, which holds a file, a directory and a
// symbolic link an archive might aim at), must leave no staging directory,
// must create no symbolic link, and must leave the destination exactly as it
// was when it refuses the archive. Seeds: testdata/fuzz/FuzzExtract.
func FuzzExtract(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dest := filepath.Join(parent, "dest")
		writeFile(t, filepath.Join(parent, "outside.txt"), "outside", 0o644)
		writeFile(t, filepath.Join(parent, "sibling", "file"), "sibling", 0o644)
		writeFile(t, filepath.Join(dest, "existing", "keep.txt"), "keep", 0o644)
		if err := os.Symlink(parent, filepath.Join(dest, "up")); err != nil {
			t.Fatal(err)
		}
		outside := snapshot(t, parent, "dest")
		inside := snapshot(t, dest, "")

		err := Upload(t.Context(), dest, "fuzz.zip", true, bytes.NewReader(data),
			Options{MaxBytes: 1 << 20, MaxEntries: 64})

		sameSnapshot(t, outside, snapshot(t, parent, "dest"))
		if err != nil {
			sameSnapshot(t, inside, snapshot(t, dest, ""))
			return
		}
		filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(d.Name(), tempPrefix) {
				t.Fatalf("staging left behind: %s", p)
			}
			if d.Type()&fs.ModeSymlink != 0 && p != filepath.Join(dest, "up") {
				t.Fatalf("archive created a symbolic link: %s", p)
			}
			return nil
		})
	})
}
