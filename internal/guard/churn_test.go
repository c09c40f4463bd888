package guard

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A folder that changes while it is copied (an editor's swap files, git's
// background gc packing loose objects) is copied as it was at each name's
// turn: a file or directory gone by the time the copy reaches it is left
// out, as if it had been deleted first, and the copy does not fail.
func TestCopyWhileFolderChanges(t *testing.T) {
	src := t.TempDir()
	for i := range 400 {
		d := filepath.Join(src, fmt.Sprintf("d%02d", i%20))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Short-lived files, links and whole directories.
			d := filepath.Join(src, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("tmp%d", i%7))
			_ = os.Mkdir(d, 0o755)
			_ = os.WriteFile(filepath.Join(d, "t"), []byte("t"), 0o644)
			_ = os.Link(filepath.Join(d, "t"), filepath.Join(d, "t2"))
			_ = os.Symlink("t", filepath.Join(d, "l"))
			_ = os.RemoveAll(d)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for round := range 5 {
		dst := t.TempDir()
		m, err := CopyFolder(context.Background(), src, dst)
		if err != nil {
			t.Fatalf("round %d: CopyFolder: %v", round, err)
		}
		for p := range m.entries {
			if _, err := os.Lstat(filepath.Join(dst, filepath.FromSlash(p))); err != nil {
				t.Fatalf("round %d: %s in the manifest, not in the copy: %v", round, p, err)
			}
		}
		if _, err := TarFolder(context.Background(), src, io.Discard); err != nil {
			t.Fatalf("round %d: TarFolder: %v", round, err)
		}
	}
}
