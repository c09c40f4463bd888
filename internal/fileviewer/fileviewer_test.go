package fileviewer

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestViewer(t *testing.T) {
	urlFile := filepath.Join(t.TempDir(), "url")
	s, err := Start(0, urlFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	if b, _ := os.ReadFile(urlFile); string(b) != s.URL {
		t.Fatalf("url file %q, want %q", b, s.URL)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("<hi>"), 0o644)
	get := func(q string) (int, string) {
		resp, err := http.Get(s.URL + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/"); code != 200 || body != `{"status":"File viewer server is running"}` {
		t.Fatalf("/ = %d %s", code, body)
	}
	for q, want := range map[string]int{"/view?path=rel": 400, "/view?path=/no/such": 404, "/view?path=" + dir: 400} {
		if code, _ := get(q); code != want {
			t.Errorf("%s = %d, want %d", q, code, want)
		}
	}
	if code, body := get("/view?path=" + filepath.Join(dir, "a.txt")); code != 200 || !strings.Contains(body, "&lt;hi&gt;") {
		t.Fatalf("view = %d %s", code, body)
	}
}
