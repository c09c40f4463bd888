package sandboxd

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTinyFS mounts a 1 MiB tmpfs in a temporary directory, so that a
// write fails with ENOSPC as it would on a full disk.
func mountTinyFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a 1 MiB tmpfs (the only way to get a real ENOSPC)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestDiskFullIs507: a full disk is "insufficient storage" on every route
// that writes files, not "too large" (413), which a client reads as "this
// request can never succeed".
func TestDiskFullIs507(t *testing.T) {
	full := mountTinyFS(t)
	s := newTestServer(t, "")
	big := strings.Repeat("x", 2<<20)

	action := func(args map[string]any, typ string) (int, string) {
		b, _ := json.Marshal(map[string]any{"action": map[string]any{"action": typ, "args": args}})
		return s.post(t, "/execute_action", string(b), map[string]string{"Content-Type": "application/json"})
	}
	if st, body := action(map[string]any{"path": filepath.Join(full, "w.txt"), "content": big}, "write"); st != http.StatusInsufficientStorage ||
		!strings.Contains(body, "No space left on device") {
		t.Errorf("write: %d %s, want 507 naming ENOSPC", st, body)
	}
	if st, body := action(map[string]any{"path": filepath.Join(full, "e.txt"), "command": "create", "file_text": big, "impl_source": "oh_aci"}, "edit"); st != http.StatusInsufficientStorage ||
		!strings.Contains(body, "No space left on device") {
		t.Errorf("edit: %d %s, want 507 naming ENOSPC", st, body)
	}

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "u.bin")
	fw.Write([]byte(big))
	mw.Close()
	if st, body := s.post(t, "/upload_file?destination="+full, buf.String(), map[string]string{"Content-Type": mw.FormDataContentType()}); st != http.StatusInsufficientStorage ||
		!strings.Contains(body, "no space left on device") {
		t.Errorf("upload: %d %s, want 507 naming ENOSPC", st, body)
	}
	ents, _ := os.ReadDir(full)
	for _, e := range ents {
		t.Errorf("left behind in the full file system: %s", e.Name())
	}
}
