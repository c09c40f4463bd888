package fileops

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestReadLineWindow(t *testing.T) {
	three := "l0\nl1\nl2\n"
	tests := []struct {
		content    string
		start, end int
		want       string
	}{
		{three, 0, -1, three},
		{three, 1, -1, "l1\nl2\n"},
		{three, 5, -1, ""},
		{three, -3, -1, three},
		{three, 0, 1, "l0\n"},
		{three, 0, 2, "l0\nl1\n"},
		{three, 0, 3, three},
		{three, 0, 0, "l0\n"},  // the window is at least one line
		{three, 0, -5, "l0\n"}, // any other negative end behaves like 0
		{three, 2, 2, "l1\n"},  // begin is clamped to n-2
		{three, 2, 3, "l1\nl2\n"},
		{three, 3, 3, "l1\nl2\n"},
		// An end beyond the file is clamped first, as OpenHands' read_lines
		// does (not the "drops the last line" note of spec §4.1).
		{three, 0, 4, three},
		{three, 1, 9, "l1\nl2\n"},
		{"only\n", 0, 5, "only\n"},
		{"only\n", 0, 1, "only\n"},
		{"", 0, 3, ""},
		{"a\nb", 1, -1, "b"},
		{"a\r\nb\rc", 0, -1, "a\nb\nc"}, // universal newlines
	}
	f, root := newTestFiles(t)
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%q[%d:%d]", tc.content, tc.start, tc.end), func(t *testing.T) {
			name := fmt.Sprintf("w%d.txt", i)
			mustDo(t, os.WriteFile(filepath.Join(root, name), []byte(tc.content), 0o644))
			res := f.Read(context.Background(), ReadRequest{Path: name, Start: tc.start, End: tc.end, Cwd: root})
			if res.Err != nil || res.ErrorText != "" {
				t.Fatalf("Read: %v %q", res.Err, res.ErrorText)
			}
			if res.Content != tc.want {
				t.Errorf("got %q, want %q", res.Content, tc.want)
			}
			if res.Path != root+"/"+name || res.ImplSource != "default" {
				t.Errorf("path %q impl_source %q", res.Path, res.ImplSource)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{
		"d/":        "",
		"latin.txt": "caf\xe9\n",
		"bin.dat":   "\x00\x01\x02\x03",
		"text.png":  "not really a png",
		"real.png":  "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
		"v.WEBM":    "webm?",
		"doc.pdf":   "%PDF-1.4 text",
	})
	cwd := root + "/d"
	tests := []struct {
		name      string
		req       ReadRequest
		wantError string
		want      string
	}{
		{"missing file, relative", ReadRequest{Path: "nope.txt", Cwd: cwd, End: -1}, "File not found: {root}/d/nope.txt. Your current working directory is {root}/d.", ""},
		{"directory", ReadRequest{Path: "{root}/d/", Cwd: cwd, End: -1}, "Path is a directory: {root}/d. You can only read files", ""},
		{"not utf-8", ReadRequest{Path: "../latin.txt", Cwd: cwd, End: -1}, "File could not be decoded as utf-8: {root}/d/../latin.txt.", ""},
		{"binary", ReadRequest{Path: "{root}/bin.dat", End: -1}, "ERROR_BINARY_FILE", ""},
		{"binary even in oh_aci mode", ReadRequest{Path: "{root}/bin.dat", ImplSource: "oh_aci"}, "ERROR_BINARY_FILE", ""},
		{"a real image is binary first", ReadRequest{Path: "{root}/real.png", End: -1}, "ERROR_BINARY_FILE", ""},
		{".pyc is binary by name even when missing", ReadRequest{Path: "{root}/missing.pyc", End: -1}, "ERROR_BINARY_FILE", ""},
		{"text image as data URL", ReadRequest{Path: "{root}/text.png", End: -1}, "", "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("not really a png"))},
		{"video suffix matched case-insensitively", ReadRequest{Path: "{root}/v.WEBM", End: -1}, "", "data:video/webm;base64," + base64.StdEncoding.EncodeToString([]byte("webm?"))},
		{"pdf as data URL", ReadRequest{Path: "{root}/doc.pdf", End: -1}, "", "data:application/pdf;base64," + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 text"))},
		{"missing image", ReadRequest{Path: "{root}/none.gif", End: -1}, "File not found: {root}/none.gif. Your current working directory is {root}.", ""},
		{"oh_aci error is content, not an error", ReadRequest{Path: "{root}/none.txt", ImplSource: "oh_aci"}, "", "ERROR:\nInvalid `path` parameter: {root}/none.txt. The path {root}/none.txt does not exist. Please provide a valid path."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Path = expand(req.Path, root)
			res := f.Read(context.Background(), req)
			if res.Err != nil {
				t.Fatalf("Err: %v", res.Err)
			}
			if want := expand(tc.wantError, root); res.ErrorText != want {
				t.Errorf("error text %q, want %q", res.ErrorText, want)
			}
			if res.Content != expand(tc.want, root) {
				t.Errorf("content %q, want %q", res.Content, tc.want)
			}
		})
	}
}

func TestReadLimitAndSpecialFiles(t *testing.T) {
	f, root := newTestFiles(t, func(o *Options) { o.MaxReadBytes = 10 })
	setupTree(t, root, map[string]string{"big.txt": "0123456789a"})
	res := f.Read(context.Background(), ReadRequest{Path: "big.txt", Cwd: root, End: -1})
	if want := "File is too large (0.0MB) to read: " + root + "/big.txt. Maximum allowed size is 10 bytes."; res.ErrorText != want {
		t.Errorf("got %q", res.ErrorText)
	}
	fifo := root + "/fifo"
	mustDo(t, mkfifo(fifo))
	if res := f.Read(context.Background(), ReadRequest{Path: fifo, End: -1}); res.Err == nil {
		t.Errorf("reading a FIFO: %+v", res)
	}
}

func TestReadCancelled(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"a.txt": "x"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := f.Read(ctx, ReadRequest{Path: root + "/a.txt", End: -1}); res.Err == nil {
		t.Error("cancelled read succeeded")
	}
}

func TestReadRelativeBinarySniffUsesTheProcessDirectory(t *testing.T) {
	// The sniff looks at the path as sent, before it is resolved against
	// the shell's directory: a relative name is opened from the server's
	// own working directory. A binary file there makes the read fail even
	// though the shell's directory holds a text file of that name.
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"shell/x.dat": "text\n", "server/x.dat": "\x00\x00\x00"})
	t.Chdir(root + "/server")
	if res := f.Read(context.Background(), ReadRequest{Path: "x.dat", Cwd: root + "/shell", End: -1}); res.ErrorText != "ERROR_BINARY_FILE" {
		t.Errorf("got %+v", res)
	}
	t.Chdir(root + "/shell")
	if res := f.Read(context.Background(), ReadRequest{Path: "x.dat", Cwd: root + "/shell", End: -1}); res.Content != "text\n" {
		t.Errorf("got %+v", res)
	}
}

func TestReadDefaultCwdIsWorkspace(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"a.txt": "x"})
	res := f.Read(context.Background(), ReadRequest{Path: "./a.txt", End: -1})
	if res.Content != "x" || res.Path != root+"/a.txt" {
		t.Errorf("got %+v", res)
	}
}
