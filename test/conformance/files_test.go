package conformance_test

// read / write actions (spec §4.1, §4.2; test_simple_cmd_ipython_and_fileop).

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// test_simple_cmd_ipython_and_fileop, file part.
func TestFileReadWriteRoundTrip(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	abs := filepath.Join(s.workdir, "hello.sh")

	o := s.execute(t, readAction("hello.sh", nil))
	o.wantType(t, "error")
	o.wantContains(t, "File not found")
	o.wantContent(t, fmt.Sprintf("File not found: %s. Your current working directory is %s.", abs, s.workdir))
	o.wantExtra(t, "error_id", "")
	o.wantMessage(t, o.content())

	o = s.execute(t, writeAction("hello.sh", `echo "Hello, World!"`, nil))
	o.wantType(t, "write")
	o.wantContent(t, "")
	o.wantExtra(t, "path", abs)
	o.wantMessage(t, "I wrote to the file "+abs+".")
	if _, ok := o.m["success"]; ok {
		o.failf(t, "write observations carry no `success` key")
	}
	if got := mustReadFile(t, abs); got != "echo \"Hello, World!\"\n" {
		t.Errorf("file on disk: want %q, got %q", "echo \"Hello, World!\"\n", got)
	}
	if st, err := os.Stat(abs); err == nil && st.Mode().Perm() != 0o664 {
		t.Errorf("new file mode: want 0664, got %o", st.Mode().Perm())
	}

	o = s.execute(t, readAction("hello.sh", nil))
	o.wantType(t, "read")
	o.wantContent(t, "echo \"Hello, World!\"\n")
	o.wantExtra(t, "path", abs)
	o.wantExtra(t, "impl_source", "default")
	o.wantMessage(t, "I read the file "+abs+".")

	s.run(t, "rm -rf hello.sh").wantExit(t, 0)
}

// Relative paths resolve against the *current* bash cwd (§4.1, §4.2).
func TestFileRelativeToBashCwd(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.run(t, "mkdir -p sub && cd sub").wantExit(t, 0)
	o := s.execute(t, writeAction("rel.txt", "in sub", nil))
	o.wantExtra(t, "path", filepath.Join(s.workdir, "sub", "rel.txt"))
	if got := mustReadFile(t, filepath.Join(s.workdir, "sub", "rel.txt")); got != "in sub\n" {
		t.Errorf("file on disk: got %q", got)
	}
	o = s.execute(t, readAction("rel.txt", nil))
	o.wantType(t, "read")
	o.wantContent(t, "in sub\n")
	o = s.execute(t, readAction("missing.txt", nil))
	o.wantContent(t, fmt.Sprintf("File not found: %s. Your current working directory is %s.",
		filepath.Join(s.workdir, "sub", "missing.txt"), filepath.Join(s.workdir, "sub")))
}

// §4.2: every piece of content.split('\n') is written followed by '\n';
// start/end splice into an existing file; parents are created; modes kept.
func TestFileWriteSemantics(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := filepath.Join(s.workdir, "w.txt")
	cases := []struct {
		content string
		want    string
	}{{"a\nb", "a\nb\n"}, {"", "\n"}, {"x\n", "x\n\n"}}
	for _, c := range cases {
		os.Remove(p)
		s.execute(t, writeAction(p, c.content, nil)).wantType(t, "write")
		if got := mustReadFile(t, p); got != c.want {
			t.Errorf("write %q to a new file: want %q on disk, got %q", c.content, c.want, got)
		}
	}

	splices := []struct {
		start, end int
		want       string
	}{{1, 2, "l0\nX\nY\nl2\nl3\n"}, {0, -1, "X\nY\n"}, {2, -1, "l0\nl1\nX\nY\n"}, {0, 2, "X\nY\nl2\nl3\n"}, {3, 10, "l0\nl1\nl2\nX\nY\n"}}
	for _, c := range splices {
		mustWriteFile(t, p, []byte("l0\nl1\nl2\nl3\n"), 0o644)
		o := s.execute(t, writeAction(p, "X\nY", map[string]any{"start": c.start, "end": c.end}))
		o.wantType(t, "write")
		if got := mustReadFile(t, p); got != c.want {
			o.failf(t, "write start=%d end=%d into \"l0\\nl1\\nl2\\nl3\\n\": want %q on disk, got %q", c.start, c.end, c.want, got)
		}
	}

	// Existing file keeps its mode.
	mustWriteFile(t, p, []byte("old\n"), 0o644)
	os.Chmod(p, 0o755)
	s.execute(t, writeAction(p, "new", nil)).wantType(t, "write")
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o755 {
		t.Errorf("existing file mode after write: want 0755, got %o", st.Mode().Perm())
	}

	// Missing parents are created.
	deep := filepath.Join(s.workdir, "a", "b", "c.txt")
	o := s.execute(t, writeAction(deep, "deep", nil))
	o.wantType(t, "write")
	o.wantExtra(t, "path", deep)
	if got := mustReadFile(t, deep); got != "deep\n" {
		t.Errorf("deep file: got %q", got)
	}

	// A directory cannot be written.
	os.Mkdir(filepath.Join(s.workdir, "adir"), 0o755)
	o = s.execute(t, writeAction(filepath.Join(s.workdir, "adir"), "x", nil))
	o.wantType(t, "error")
	o.wantContent(t, fmt.Sprintf("Path is a directory: %s. You can only write to files", filepath.Join(s.workdir, "adir")))
}

// §4.1 errors and the line window (read_lines in openhands/runtime/utils/files.py).
func TestFileReadSemantics(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := filepath.Join(s.workdir, "lines.txt")
	mustWriteFile(t, p, []byte("0\n1\n2\n3\n4\n"), 0o644)
	// Values computed with OpenHands' read_lines: note `end` is clamped to the
	// line count before the window rule, and `begin` to n-2.
	windows := []struct {
		start, end int
		want       string
	}{
		{0, -1, "0\n1\n2\n3\n4\n"}, {1, 3, "1\n2\n"}, {2, -1, "2\n3\n4\n"}, {0, 10, "0\n1\n2\n3\n4\n"},
		{4, 5, "3\n4\n"}, {10, -1, ""}, {0, 0, "0\n"}, {3, 1, "3\n"}, {-5, 2, "0\n1\n"}, {4, -1, "4\n"},
		{5, 6, "3\n4\n"}, {2, 2, "2\n"},
	}
	for _, w := range windows {
		o := s.execute(t, readAction(p, map[string]any{"start": w.start, "end": w.end}))
		o.wantType(t, "read")
		if o.content() != w.want {
			o.failf(t, "read start=%d end=%d of \"0\\n1\\n2\\n3\\n4\\n\": want %q, got %q", w.start, w.end, w.want, o.content())
		}
	}

	o := s.execute(t, readAction(s.workdir, nil))
	o.wantType(t, "error")
	o.wantContent(t, fmt.Sprintf("Path is a directory: %s. You can only read files", s.workdir))

	bin := filepath.Join(s.workdir, "data.bin")
	mustWriteFile(t, bin, []byte{0x00, 0x01, 0x02, 0xff, 0x00, 'a', 0x00, 0x10, 0x80, 0x00}, 0o644)
	o = s.execute(t, readAction(bin, nil))
	o.wantType(t, "error")
	o.wantContent(t, "ERROR_BINARY_FILE")

	latin := filepath.Join(s.workdir, "latin1.txt")
	mustWriteFile(t, latin, []byte("This is latin-1 text: caf\xe9 cr\xe8me br\xfbl\xe9e, plain words around it.\n"), 0o644)
	o = s.execute(t, readAction(latin, nil))
	o.wantType(t, "error")
	o.wantContent(t, fmt.Sprintf("File could not be decoded as utf-8: %s.", latin))

	empty := filepath.Join(s.workdir, "empty.txt")
	mustWriteFile(t, empty, nil, 0o644)
	o = s.execute(t, readAction(empty, nil))
	o.wantType(t, "read")
	o.wantContent(t, "")

	uni := filepath.Join(s.workdir, "uni.txt")
	mustWriteFile(t, uni, []byte("héllo\n你好\r\nlast"), 0o644)
	o = s.execute(t, readAction(uni, nil))
	o.wantType(t, "read")
	o.wantContent(t, "héllo\n你好\nlast") // Python text mode: universal newlines
}

// §4.1: media files come back as data URLs. The binary sniff runs on the
// path *as given*: a relative path is sniffed against the server process cwd
// (where it does not exist → "not binary"), so a real PNG given by relative
// path is returned, while the same PNG by absolute path is ERROR_BINARY_FILE.
func TestFileReadMedia(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	textish := []byte("not really an image")
	b64 := base64.StdEncoding.EncodeToString(textish)
	for ext, mime := range map[string]string{".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".pdf": "application/pdf", ".mp4": "video/mp4", ".PNG": "image/png"} {
		p := filepath.Join(s.workdir, "m"+ext)
		mustWriteFile(t, p, textish, 0o644)
		o := s.execute(t, readAction(p, nil))
		o.wantType(t, "read")
		o.wantContent(t, "data:"+mime+";base64,"+b64)
		o.wantExtra(t, "path", p)
	}

	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
	mustWriteFile(t, filepath.Join(s.workdir, "real.png"), png, 0o644)
	o := s.execute(t, readAction(filepath.Join(s.workdir, "real.png"), nil))
	o.wantType(t, "error")
	o.wantContent(t, "ERROR_BINARY_FILE")

	o = s.execute(t, readAction("real.png", nil))
	o.wantType(t, "read")
	o.wantContent(t, "data:image/png;base64,"+base64.StdEncoding.EncodeToString(png))
	o.wantExtra(t, "path", filepath.Join(s.workdir, "real.png"))
}

// read with impl_source "oh_aci" goes through the editor's view (§4.1 step 2).
func TestFileReadOhAci(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := filepath.Join(s.workdir, "abc.txt")
	mustWriteFile(t, p, []byte("a\nb\nc\n"), 0o644)
	header := "Here's the result of running `cat -n` on " + p + ":\n"

	o := s.execute(t, readAction(p, map[string]any{"impl_source": "oh_aci"}))
	o.wantType(t, "read")
	o.wantExtra(t, "impl_source", "oh_aci")
	o.wantExtra(t, "path", p)
	o.wantContent(t, header+"     1\ta\n     2\tb\n     3\tc\n     4\t\n")

	cases := []struct {
		vr   any
		want string
	}{
		{[]int{2, -1}, header + "     2\tb\n     3\tc\n"},
		{[]int{1, 2}, header + "     1\ta\n     2\tb\n"},
		{[]int{2, 2}, header + "     2\tb\n"},
		{[]int{1, 10}, "NOTE: We only show up to 3 since there're only 3 lines in this file.\n" + header + "     1\ta\n     2\tb\n     3\tc\n"},
		{[]int{0, 2}, "ERROR:\nInvalid `view_range` parameter: [0, 2]. Its first element `0` should be within the range of lines of the file: [1, 3]."},
		{[]int{4, 5}, "ERROR:\nInvalid `view_range` parameter: [4, 5]. Its first element `4` should be within the range of lines of the file: [1, 3]."},
		{[]int{3, 2}, "ERROR:\nInvalid `view_range` parameter: [3, 2]. Its second element `2` should be greater than or equal to the first element `3`."},
		{[]int{1}, "ERROR:\nInvalid `view_range` parameter: [1]. It should be a list of two integers."},
	}
	for _, c := range cases {
		o := s.execute(t, readAction(p, map[string]any{"impl_source": "oh_aci", "view_range": c.vr}))
		o.wantType(t, "read")
		o.wantContent(t, c.want)
	}

	// Editor errors stay inside a read observation.
	missing := filepath.Join(s.workdir, "nope.txt")
	o = s.execute(t, readAction(missing, map[string]any{"impl_source": "oh_aci"}))
	o.wantType(t, "read")
	o.wantContent(t, fmt.Sprintf("ERROR:\nInvalid `path` parameter: %s. The path %s does not exist. Please provide a valid path.", missing, missing))

	o = s.execute(t, readAction("abc.txt", map[string]any{"impl_source": "oh_aci"}))
	o.wantType(t, "read")
	o.wantExtra(t, "path", "abc.txt")
	o.wantContent(t, fmt.Sprintf("ERROR:\nInvalid `path` parameter: abc.txt. The path should be an absolute path, starting with `/`. Maybe you meant %s?", p))

	// The server's binary sniff comes first, even for oh_aci.
	bin := filepath.Join(s.workdir, "blob.bin")
	mustWriteFile(t, bin, []byte{0, 1, 2, 3, 0, 0xff, 0, 7}, 0o644)
	o = s.execute(t, readAction(bin, map[string]any{"impl_source": "oh_aci"}))
	o.wantType(t, "error")
	o.wantContent(t, "ERROR_BINARY_FILE")

	o = s.execute(t, readAction(s.workdir, map[string]any{"impl_source": "oh_aci", "view_range": []int{1, 2}}))
	o.wantType(t, "read")
	o.wantContent(t, "ERROR:\nInvalid `view_range` parameter: [1, 2]. The `view_range` parameter is not allowed when `path` points to a directory.")
}

// write below a regular file: open() raises NotADirectoryError, which the
// write handler does not catch → HTTP 500 (action_execution_server.py).
func TestFileWriteUnderAFile(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	afile := filepath.Join(s.workdir, "afile")
	mustWriteFile(t, afile, []byte("x"), 0o644)
	target := filepath.Join(afile, "x.txt")
	body, _ := json.Marshal(map[string]any{"action": writeAction(target, "y", nil)})
	r := s.postRaw(t, "/execute_action", string(body), nil)
	want := fmt.Sprintf("Internal server error: [Errno 20] Not a directory: '%s'", target)
	if r.status != 500 {
		t.Errorf("POST /execute_action %s\n=> HTTP %d, want 500 {\"detail\": %q}; body %s", body, r.status, want, r.body)
		return
	}
	if d := r.json(t)["detail"]; d != want {
		t.Errorf("POST /execute_action %s\n=> detail %q, want %q", body, d, want)
	}
}

// Paths in observations are what Python's pathlib produces: "." segments
// collapse, ".." segments stay, "~" is not expanded.
func TestFilePathNormalization(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	wd := s.workdir
	o := s.execute(t, writeAction("./a.txt", "a", nil))
	o.wantExtra(t, "path", wd+"/a.txt")
	os.Mkdir(filepath.Join(wd, "sub"), 0o755)
	o = s.execute(t, writeAction("sub/../b.txt", "b", nil))
	o.wantExtra(t, "path", wd+"/sub/../b.txt")
	o.wantMessage(t, "I wrote to the file "+wd+"/sub/../b.txt.")
	if got := mustReadFile(t, filepath.Join(wd, "b.txt")); got != "b\n" {
		t.Errorf("b.txt: %q", got)
	}
	o = s.execute(t, readAction("~/nonexistent", nil))
	o.wantContent(t, fmt.Sprintf("File not found: %s/~/nonexistent. Your current working directory is %s.", wd, wd))
}

// Non-ASCII file names through every file endpoint.
func TestUnicodePaths(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	wd := s.workdir
	p := filepath.Join(wd, "dïr", "名前 file.txt")
	s.execute(t, writeAction(p, "ünïcödé", nil)).wantExtra(t, "path", p)
	o := s.execute(t, readAction(p, nil))
	o.wantContent(t, "ünïcödé\n")
	o = s.edit(t, "view", p, nil)
	o.wantContent(t, catN(p, "ünïcödé", ""))
	r := s.postRaw(t, "/list_files", `{"path": "dïr"}`, nil)
	var names []any
	json.Unmarshal(r.body, &names)
	if !jsonEqual(names, []any{"名前 file.txt"}) {
		t.Errorf("POST /list_files {\"path\": \"dïr\"} => %s", r.body)
	}
	up := s.upload(t, "ファイル.txt", []byte("x"), filepath.Join(wd, "dïr"), no)
	if up.status != 200 {
		t.Errorf("upload of ファイル.txt => HTTP %d: %s", up.status, up.body)
	}
	if got := mustReadFile(t, filepath.Join(wd, "dïr", "ファイル.txt")); got != "x" {
		t.Errorf("uploaded file: %q", got)
	}
	dl := s.get(t, "/download_files?path="+url.QueryEscape(filepath.Join(wd, "dïr")))
	if dl.status != 200 {
		t.Fatalf("download => HTTP %d: %s", dl.status, dl.body)
	}
	got := readZip(t, dl.body)
	if !jsonEqual(got, map[string]string{"名前 file.txt": "ünïcödé\n", "ファイル.txt": "x"}) {
		t.Errorf("zip entries: %v", got)
	}
}

// Multi-megabyte payloads through write/read and upload.
func TestFileLargePayloads(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	big := strings.Repeat("0123456789abcdef\n", 2*1024*1024/17) // ~2 MB
	p := filepath.Join(s.workdir, "big.txt")
	o := s.execute(t, writeAction(p, strings.TrimSuffix(big, "\n"), nil))
	o.wantType(t, "write")
	if got := mustReadFile(t, p); got != big {
		t.Errorf("2 MB write: file has %d bytes, want %d", len(got), len(big))
	}
	o = s.execute(t, readAction(p, nil))
	o.wantType(t, "read")
	if o.content() != big {
		o.failf(t, "2 MB read: got %d chars, want %d", len(o.content()), len(big))
	}
	r := s.upload(t, "big.bin", []byte(big), s.workdir, no)
	if r.status != 200 {
		t.Errorf("2 MB upload => HTTP %d: %s", r.status, r.body)
	}
}
