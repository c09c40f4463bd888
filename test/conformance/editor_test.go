package conformance_test

// edit actions with impl_source "oh_aci" (spec §4.3, §6; tests/runtime/test_aci_edit.py;
// openhands-aci 0.3.2 OHEditor).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func catN(path string, lines ...string) string {
	var b strings.Builder
	b.WriteString("Here's the result of running `cat -n` on " + path + ":\n")
	for i, l := range lines {
		fmt.Fprintf(&b, "%6d\t%s\n", i+1, l)
	}
	return b.String()
}

func (o obs) wantEditShape(t *testing.T, path string) {
	t.Helper()
	o.wantType(t, "edit")
	o.wantMessage(t, "I edited the file "+path+".")
	for _, k := range []string{"path", "prev_exist", "old_content", "new_content", "impl_source", "diff", "_diff_cache"} {
		if _, ok := o.extras()[k]; !ok {
			o.failf(t, "extras.%s missing (FileEditObservation needs every key)", k)
		}
	}
	o.wantExtra(t, "path", path)
	o.wantExtra(t, "impl_source", "oh_aci")
	o.wantExtra(t, "prev_exist", false)
	o.wantExtra(t, "_diff_cache", nil)
}

// test_view_file.
func TestEditorViewFile(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "test.txt")
	s.write(t, f, "This is a test file.\nThis file is for testing purposes.")
	o := s.edit(t, "view", f, nil)
	o.wantEditShape(t, f)
	o.wantContains(t, "Here's the result of running `cat -n` on "+f+":")
	o.wantContains(t, "1\tThis is a test file.")
	o.wantContains(t, "2\tThis file is for testing purposes.")
	o.wantContent(t, catN(f, "This is a test file.", "This file is for testing purposes.", ""))
	o.wantExtra(t, "old_content", nil)
	o.wantExtra(t, "new_content", nil)
	o.wantExtra(t, "diff", "")

	// No trailing newline → no empty last line.
	g := filepath.Join(s.workdir, "nonl.txt")
	mustWriteFile(t, g, []byte("x\ny"), 0o644)
	s.edit(t, "view", g, nil).wantContent(t, catN(g, "x", "y"))
}

// test_view_directory (hidden entries counted, 2 levels deep, sorted).
func TestEditorViewDirectory(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	wd := s.workdir
	s.write(t, filepath.Join(wd, "test.txt"), "This is a test file.\nThis file is for testing purposes.")
	o := s.edit(t, "view", wd, nil)
	o.wantEditShape(t, wd)
	o.wantContent(t, "Here's the files and directories up to 2 levels deep in "+wd+", excluding hidden items:\n"+wd+"/\n"+wd+"/test.txt")

	mustWriteFile(t, filepath.Join(wd, ".hidden"), []byte("h"), 0o644)
	mustWriteFile(t, filepath.Join(wd, ".hdir", "x"), []byte("h"), 0o644)
	mustWriteFile(t, filepath.Join(wd, "sub", "a.txt"), []byte("a"), 0o644)
	mustWriteFile(t, filepath.Join(wd, "sub", ".secret"), []byte("a"), 0o644)
	mustWriteFile(t, filepath.Join(wd, "sub", "deeper", "z.txt"), []byte("z"), 0o644)
	o = s.edit(t, "view", wd, nil)
	o.wantContent(t, "Here's the files and directories up to 2 levels deep in "+wd+", excluding hidden items:\n"+
		wd+"/\n"+wd+"/sub/\n"+wd+"/sub/a.txt\n"+wd+"/sub/deeper/\n"+wd+"/test.txt\n\n"+
		"2 hidden files/directories in this directory are excluded. You can use 'ls -la "+wd+"' to see them.")
}

// test_create_file, test_create_file_with_empty_content,
// test_create_with_none_file_text, test_create_existing_file_error.
func TestEditorCreate(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "new_file.txt")
	o := s.edit(t, "create", f, map[string]any{"file_text": "New file content"})
	o.wantEditShape(t, f)
	o.wantContains(t, "File created successfully")
	o.wantContent(t, "File created successfully at: "+f)
	o.wantExtra(t, "diff", "--- "+f+"\n+++ "+f+"\n@@ -1 +1 @@\n-\n+New file content")
	o.wantExtra(t, "old_content", nil) // = action.old_str
	o.wantExtra(t, "new_content", nil) // = action.new_str
	if got := mustReadFile(t, f); got != "New file content" {
		t.Errorf("created file: want %q verbatim (no newline added), got %q", "New file content", got)
	}
	s.edit(t, "view", f, nil).wantContains(t, "New file content")

	e := filepath.Join(s.workdir, "empty.txt")
	s.edit(t, "create", e, map[string]any{"file_text": ""}).wantContains(t, "File created successfully")
	o = s.edit(t, "view", e, nil)
	o.wantContains(t, "1\t")
	o.wantContent(t, catN(e, ""))

	n := filepath.Join(s.workdir, "none_content.txt")
	o = s.edit(t, "create", n, map[string]any{"file_text": nil})
	o.wantEditShape(t, n)
	o.wantContent(t, "ERROR:\nParameter `file_text` is required for command: create.")
	o.wantExtra(t, "diff", "")

	o = s.edit(t, "create", f, map[string]any{"file_text": "again"})
	o.wantContains(t, "File already exists")
	o.wantContent(t, fmt.Sprintf("ERROR:\nInvalid `path` parameter: %s. File already exists at: %s. Cannot overwrite files using command `create`.", f, f))

	// The parent directory is not created.
	deep := filepath.Join(s.workdir, "no", "such", "dir.txt")
	o = s.edit(t, "create", deep, map[string]any{"file_text": "x"})
	if c := o.content(); !strings.HasPrefix(c, "ERROR:\nRan into ") || !strings.HasSuffix(c, " while trying to write to "+deep) {
		o.failf(t, "create in a missing directory: want %q", "ERROR:\nRan into <os error> while trying to write to "+deep)
	}
}

// test_str_replace, test_str_replace_multi_line(_with_tabs), diff/extras.
func TestEditorStrReplace(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "test.txt")
	s.write(t, f, "This is a test file.\nThis file is for testing purposes.")
	o := s.edit(t, "str_replace", f, map[string]any{"old_str": "test file", "new_str": "sample file"})
	o.wantEditShape(t, f)
	o.wantContains(t, "The file "+f+" has been edited")
	o.wantContent(t, "The file "+f+" has been edited. Here's the result of running `cat -n` on a snippet of "+f+":\n"+
		"     1\tThis is a sample file.\n     2\tThis file is for testing purposes.\n     3\t\n"+
		"Review the changes and make sure they are as expected. Edit the file again if necessary.")
	o.wantExtra(t, "old_content", "test file")
	o.wantExtra(t, "new_content", "sample file")
	o.wantExtra(t, "diff", "--- "+f+"\n+++ "+f+"\n@@ -1 +1 @@\n-This is a test file.\n+This is a sample file.")
	s.edit(t, "view", f, nil).wantContains(t, "This is a sample file.")

	o = s.edit(t, "str_replace", f, map[string]any{
		"old_str": "This is a sample file.\nThis file is for testing purposes.",
		"new_str": "This is a new file.\nThis file is for testing purposes."})
	o.wantContains(t, "The file "+f+" has been edited.")
	o.wantContains(t, "This is a new file.")
	o.wantContains(t, "This file is for testing purposes.")

	g := filepath.Join(s.workdir, "tabs.txt")
	s.edit(t, "create", g, map[string]any{"file_text": "def test():\n\tprint(\"Hello, World!\")"})
	o = s.edit(t, "str_replace", g, map[string]any{
		"old_str": "def test():\n\tprint(\"Hello, World!\")",
		"new_str": "def test():\n\tprint(\"Hello, Universe!\")"})
	o.wantContent(t, "The file "+g+" has been edited. Here's the result of running `cat -n` on a snippet of "+g+":\n"+
		"     1\tdef test():\n     2\t\tprint(\"Hello, Universe!\")\n"+
		"Review the changes and make sure they are as expected. Edit the file again if necessary.")

	// spec §3.4 example.
	a := filepath.Join(s.workdir, "a.txt")
	mustWriteFile(t, a, []byte("foo\n"), 0o644)
	o = s.edit(t, "str_replace", a, map[string]any{"old_str": "foo", "new_str": "bar"})
	o.wantContent(t, "The file "+a+" has been edited. Here's the result of running `cat -n` on a snippet of "+a+":\n     1\tbar\n     2\t\nReview the changes and make sure they are as expected. Edit the file again if necessary.")
	o.wantExtra(t, "diff", "--- "+a+"\n+++ "+a+"\n@@ -1 +1 @@\n-foo\n+bar")
	o.wantExtra(t, "old_content", "foo")
	o.wantExtra(t, "new_content", "bar")

	// Snippet window: lines max(1, L-3)…L+4+newlines(new_str), numbered from there.
	long := filepath.Join(s.workdir, "long.txt")
	var lines []string
	for i := 1; i <= 20; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	mustWriteFile(t, long, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	o = s.edit(t, "str_replace", long, map[string]any{"old_str": "line 10\n", "new_str": "line ten\nline ten bis\n"})
	var b strings.Builder
	b.WriteString("The file " + long + " has been edited. Here's the result of running `cat -n` on a snippet of " + long + ":\n")
	want := []string{"line 7", "line 8", "line 9", "line ten", "line ten bis", "line 11", "line 12", "line 13", "line 14", "line 15", ""}
	for i, l := range want {
		fmt.Fprintf(&b, "%6d\t%s\n", i+7, l)
	}
	b.WriteString("Review the changes and make sure they are as expected. Edit the file again if necessary.")
	o.wantContent(t, b.String())

	// Whitespace-stripped retry.
	w := filepath.Join(s.workdir, "ws.txt")
	mustWriteFile(t, w, []byte("foo bar\n"), 0o644)
	o = s.edit(t, "str_replace", w, map[string]any{"old_str": "  foo  ", "new_str": " baz "})
	o.wantContains(t, "has been edited")
	if got := mustReadFile(t, w); got != "baz bar\n" {
		t.Errorf("whitespace-stripped retry: want file %q, got %q", "baz bar\n", got)
	}
}

// The str_replace error messages (test_aci_edit.py).
func TestEditorStrReplaceErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "test.txt")

	s.write(t, f, "This is a test file.\nThis file is for testing purposes.")
	o := s.edit(t, "str_replace", f, map[string]any{"old_str": "test", "new_str": "sample"})
	o.wantEditShape(t, f)
	o.wantContains(t, "Multiple occurrences of old_str `test`")
	o.wantContent(t, "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `test` in lines [1, 2]. Please ensure it is unique.")
	o.wantExtra(t, "diff", "")
	o.wantExtra(t, "old_content", "test")
	o.wantExtra(t, "new_content", "sample")

	block := "def example():\n        print(\"Hello\")\n        return True"
	s.write(t, f, block+"\n\nprint('separator')\n\n"+block)
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": block, "new_str": "def new():\n    print(\"World\")"})
	o.wantContains(t, "[1, 7]")
	o.wantContent(t, "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `"+block+"` in lines [1, 7]. Please ensure it is unique.")

	s.write(t, f, "Line 1\nLine 2")
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "Non-existent Line", "new_str": "New Line"})
	o.wantContent(t, "ERROR:\nNo replacement was performed, old_str `Non-existent Line` did not appear verbatim in "+f+".")

	s.write(t, f, "Line 1\nLine to remove\nLine 3")
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "Line to remove\n", "new_str": ""})
	o.wantNotContains(t, "Line to remove")
	o.wantContains(t, "Line 1")
	o.wantContains(t, "Line 3")

	s.write(t, f, "Line 1\nLine 2\nLine 3")
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "", "new_str": "New string"})
	o.wantContent(t, "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `` in lines [1, 2, 3, 4]. Please ensure it is unique.")

	o = s.edit(t, "str_replace", f, map[string]any{"old_str": nil, "new_str": "new content"})
	o.wantContains(t, "old_str")
	o.wantContent(t, "ERROR:\nParameter `old_str` is required for command: str_replace.")

	s.write(t, f, "Line 1\nLine 2")
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "test file", "new_str": "test file"})
	o.wantContains(t, "No replacement was performed. `new_str` and `old_str` must be different.")
	o.wantContent(t, "ERROR:\nInvalid `new_str` parameter: test file. No replacement was performed. `new_str` and `old_str` must be different.")

	// new_str omitted (null) means "".
	s.write(t, f, "keep\ndrop me\nkeep")
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "drop me\n"})
	o.wantContains(t, "has been edited")
	if got := mustReadFile(t, f); got != "keep\nkeep\n" {
		t.Errorf("str_replace with new_str null: want %q, got %q", "keep\nkeep\n", got)
	}
}

// test_insert, test_insert_invalid_line, test_insert_with_empty_string,
// test_insert_with_none_new_str, test_insert_missing_line_param.
func TestEditorInsert(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "test.txt")
	s.write(t, f, "Line 1\nLine 2")
	o := s.edit(t, "insert", f, map[string]any{"insert_line": 1, "new_str": "Inserted line"})
	o.wantEditShape(t, f)
	o.wantContains(t, "The file "+f+" has been edited")
	o.wantContent(t, "The file "+f+" has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n"+
		"     1\tLine 1\n     2\tInserted line\n     3\tLine 2\n     4\t\n"+
		"Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.")
	o.wantExtra(t, "diff", "--- "+f+"\n+++ "+f+"\n@@ -1,0 +2 @@\n+Inserted line")
	o.wantExtra(t, "old_content", nil)
	o.wantExtra(t, "new_content", "Inserted line")
	o = s.edit(t, "view", f, nil)
	o.wantContent(t, catN(f, "Line 1", "Inserted line", "Line 2", ""))

	s.write(t, f, "Line 1\nLine 2")
	o = s.edit(t, "insert", f, map[string]any{"insert_line": 10, "new_str": "Invalid Insert"})
	o.wantContains(t, "Invalid `insert_line` parameter")
	o.wantContains(t, "It should be within the range of allowed values")
	o.wantContent(t, "ERROR:\nInvalid `insert_line` parameter: 10. It should be within the range of allowed values: [0, 2]")

	o = s.edit(t, "insert", f, map[string]any{"insert_line": 1, "new_str": ""})
	o.wantContains(t, "1\tLine 1")
	o.wantContains(t, "2\t\n")
	o.wantContains(t, "3\tLine 2")

	s.write(t, f, "Line 1\nLine 2")
	o = s.edit(t, "insert", f, map[string]any{"insert_line": 1, "new_str": nil})
	o.wantContains(t, "ERROR")
	o.wantContent(t, "ERROR:\nParameter `new_str` is required for command: insert.")

	o = s.edit(t, "insert", f, map[string]any{"new_str": "Missing insert line"})
	o.wantContent(t, "ERROR:\nParameter `insert_line` is required for command: insert.")

	// insert_line given as a string is converted with int() (issue #8369).
	o = s.edit(t, "insert", f, map[string]any{"insert_line": "0", "new_str": "top"})
	o.wantContains(t, "has been edited")
	if got := mustReadFile(t, f); got != "top\nLine 1\nLine 2\n" {
		t.Errorf("insert_line \"0\": want %q, got %q", "top\nLine 1\nLine 2\n", got)
	}
	o = s.edit(t, "insert", f, map[string]any{"insert_line": "abc", "new_str": "x"})
	o.wantType(t, "edit")
	o.wantContent(t, "ERROR:\nInvalid insert_line value: 'abc'. Expected an integer.")

	// Insert at the end of a file without a trailing newline glues (§6.6 quirk).
	g := filepath.Join(s.workdir, "glue.txt")
	mustWriteFile(t, g, []byte("a\nb"), 0o644)
	s.edit(t, "insert", g, map[string]any{"insert_line": 2, "new_str": "c"}).wantContains(t, "has been edited")
	if got := mustReadFile(t, g); got != "a\nbc\n" {
		t.Errorf("insert after a last line without newline: want %q (glued, as OpenHands), got %q", "a\nbc\n", got)
	}
}

// test_undo_edit, test_undo_edit_no_history_error, undo after create (§6.4, §6.7).
func TestEditorUndo(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "test.txt")
	s.write(t, f, "This is a test file.")
	o := s.edit(t, "str_replace", f, map[string]any{"old_str": "test", "new_str": "sample"})
	o.wantContains(t, "This is a sample file.")
	o = s.edit(t, "undo_edit", f, nil)
	o.wantEditShape(t, f)
	o.wantContains(t, "Last edit to")
	o.wantContains(t, "This is a test file.")
	o.wantContent(t, "Last edit to "+f+" undone successfully. "+catN(f, "This is a test file.", ""))
	o.wantExtra(t, "diff", "--- "+f+"\n+++ "+f+"\n@@ -1 +1 @@\n-This is a sample file.\n+This is a test file.")
	s.edit(t, "view", f, nil).wantContains(t, "This is a test file.")

	o = s.edit(t, "undo_edit", f, nil)
	o.wantContent(t, "ERROR:\nNo edit history found for "+f+".")

	e := filepath.Join(s.workdir, "empty.txt")
	s.write(t, e, "")
	o = s.edit(t, "undo_edit", e, nil)
	o.wantContains(t, "No edit history found for")
	o.wantContent(t, "ERROR:\nNo edit history found for "+e+".")

	c := filepath.Join(s.workdir, "created.txt")
	s.edit(t, "create", c, map[string]any{"file_text": "abc"})
	o = s.edit(t, "undo_edit", c, nil)
	o.wantContent(t, "Last edit to "+c+" undone successfully. "+catN(c, "abc"))

	// Several edits undo in LIFO order.
	m := filepath.Join(s.workdir, "multi.txt")
	mustWriteFile(t, m, []byte("v0\n"), 0o644)
	s.edit(t, "str_replace", m, map[string]any{"old_str": "v0", "new_str": "v1"})
	s.edit(t, "str_replace", m, map[string]any{"old_str": "v1", "new_str": "v2"})
	s.edit(t, "undo_edit", m, nil)
	if got := mustReadFile(t, m); got != "v1\n" {
		t.Errorf("first undo: want %q, got %q", "v1\n", got)
	}
	s.edit(t, "undo_edit", m, nil)
	if got := mustReadFile(t, m); got != "v0\n" {
		t.Errorf("second undo: want %q, got %q", "v0\n", got)
	}
}

// test_validate_path_invalid and §6.2 path validation, §6.1 unknown command.
func TestEditorPathValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	wd := s.workdir
	missing := filepath.Join(wd, "nonexistent.txt")
	o := s.edit(t, "view", missing, nil)
	o.wantContains(t, "Invalid `path` parameter")
	o.wantContains(t, "The path "+missing+" does not exist")
	o.wantContent(t, fmt.Sprintf("ERROR:\nInvalid `path` parameter: %s. The path %s does not exist. Please provide a valid path.", missing, missing))

	o = s.edit(t, "view", "relative.txt", nil)
	o.wantContent(t, "ERROR:\nInvalid `path` parameter: relative.txt. The path should be an absolute path, starting with `/`.")
	mustWriteFile(t, filepath.Join(wd, "relative.txt"), []byte("r\n"), 0o644)
	o = s.edit(t, "view", "relative.txt", nil)
	o.wantContent(t, fmt.Sprintf("ERROR:\nInvalid `path` parameter: relative.txt. The path should be an absolute path, starting with `/`. Maybe you meant %s/relative.txt?", wd))

	o = s.edit(t, "str_replace", wd, map[string]any{"old_str": "a", "new_str": "b"})
	o.wantContent(t, fmt.Sprintf("ERROR:\nInvalid `path` parameter: %s. The path %s is a directory and only the `view` command can be used on directories.", wd, wd))

	pdf := filepath.Join(wd, "doc.pdf")
	mustWriteFile(t, pdf, []byte("%PDF-1.4\n"), 0o644)
	o = s.edit(t, "str_replace", pdf, map[string]any{"old_str": "a", "new_str": "b"})
	o.wantContent(t, fmt.Sprintf("ERROR:\nInvalid `path` parameter: %s. The path %s points to a binary file (.pdf) and only the `view` command can be used on supported binary files.", pdf, pdf))

	bin := filepath.Join(wd, "blob.bin")
	mustWriteFile(t, bin, []byte{0, 1, 2, 3, 0, 0xff, 0, 7}, 0o644)
	o = s.edit(t, "view", bin, nil)
	o.wantContent(t, fmt.Sprintf("ERROR:\nFile validation failed for %s: File appears to be binary and this file type cannot be read or edited by this tool.", bin))

	txt := filepath.Join(wd, "relative.txt")
	o = s.edit(t, "frobnicate", txt, nil)
	o.wantType(t, "edit")
	o.wantContent(t, "ERROR:\nUnrecognized command frobnicate. The allowed commands for the oh_editor tool are: view, create, str_replace, insert, undo_edit")

	big := filepath.Join(wd, "big.txt")
	mustWriteFile(t, big, []byte(strings.Repeat("0123456789abcdef\n", 11*1024*1024/17)), 0o644)
	st, _ := os.Stat(big)
	o = s.edit(t, "view", big, nil)
	o.wantContent(t, fmt.Sprintf("ERROR:\nFile validation failed for %s: File is too large (%.1fMB). Maximum allowed size is 10MB.", big, float64(st.Size())/1024/1024))
}

// test_view_large_file_with_truncation: 16 000-char cut before numbering.
func TestEditorViewLargeFileTruncation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "large_test.txt")
	s.write(t, f, strings.Repeat("Line 1\n", 16000))
	o := s.edit(t, "view", f, nil)
	notice := "<response clipped><NOTE>Due to the max output limit, only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>"
	o.wantContains(t, "Due to the max output limit, only part of this file has been shown to you.")
	lines := make([]string, 0, 2286)
	for i := 0; i < 2285; i++ {
		lines = append(lines, "Line 1")
	}
	lines = append(lines, "Line "+notice)
	o.wantContent(t, catN(f, lines...))
}

// §3.1 decoding leniency for legacy editor payloads (test_action_serialization.py).
func TestEditorLegacyTranslatedIpythonCode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "game_2048.py")
	a := map[string]any{"action": "edit", "args": map[string]any{
		"path": f, "content": "", "start": 1, "end": -1,
		"thought":                 "I'll create the file.",
		"impl_source":             "oh_aci",
		"translated_ipython_code": fmt.Sprintf("print(file_editor(**{'command': 'create', 'path': '%s', 'file_text': 'New file content'}))", f),
	}, "timeout": pyFloat(120)}
	o := s.execute(t, a)
	o.wantType(t, "edit")
	o.wantContent(t, "File created successfully at: "+f)
	if got := mustReadFile(t, f); got != "New file content" {
		t.Errorf("legacy create: file %q", got)
	}

	r := map[string]any{"action": "read", "args": map[string]any{
		"path": f, "start": 0, "end": -1, "thought": "Reading the file contents", "impl_source": "oh_aci",
		"translated_ipython_code": fmt.Sprintf("print(file_editor(**{'command': 'view', 'path': '%s'}))", f),
	}, "timeout": pyFloat(120)}
	o = s.execute(t, r)
	o.wantType(t, "read")
	o.wantContent(t, catN(f, "New file content"))
}

// LLM-based edits are host-side; sent to the server they are a 500 (§2.4).
func TestEditorLLMBasedEditRejected(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	body := fmt.Sprintf(`{"action":{"action":"edit","args":{"path":%q,"content":"x","start":1,"end":-1,"thought":"","impl_source":"llm_based_edit"},"timeout":120.0}}`, filepath.Join(s.workdir, "x.txt"))
	r := s.postRaw(t, "/execute_action", body, nil)
	if r.status != 500 {
		t.Errorf("POST /execute_action %s\n=> HTTP %d (want 500): %s", body, r.status, r.body)
		return
	}
	m := r.json(t)
	if d, _ := m["detail"].(string); !strings.HasPrefix(d, "Internal server error: ") {
		t.Errorf("detail: want prefix %q, got %q", "Internal server error: ", d)
	}
}

// Matching is literal and non-overlapping (re.finditer(re.escape(old_str))).
func TestEditorStrReplaceMatching(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "m.txt")

	mustWriteFile(t, f, []byte("aaa\n"), 0o644)
	o := s.edit(t, "str_replace", f, map[string]any{"old_str": "aa", "new_str": "X"})
	o.wantContains(t, "has been edited")
	if got := mustReadFile(t, f); got != "Xa\n" {
		o.failf(t, "\"aa\" occurs once non-overlapping in \"aaa\": want file %q, got %q", "Xa\n", got)
	}

	mustWriteFile(t, f, []byte("a.b*c axbbc [x](y)\n"), 0o644)
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "a.b*c", "new_str": "LIT"})
	o.wantContains(t, "has been edited")
	if got := mustReadFile(t, f); got != "LIT axbbc [x](y)\n" {
		o.failf(t, "regex metacharacters must match literally: got %q", got)
	}
	s.edit(t, "str_replace", f, map[string]any{"old_str": "[x](y)", "new_str": "$1\\n"})
	if got := mustReadFile(t, f); got != "LIT axbbc $1\\n\n" {
		t.Errorf("replacement text must be inserted literally: got %q", got)
	}

	// Empty old_str in a one-line file without newline: 2 matches, one line.
	mustWriteFile(t, f, []byte("x"), 0o644)
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "", "new_str": "y"})
	o.wantContent(t, "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `` in lines [1]. Please ensure it is unique.")

	// Overlapping-looking matches on several lines are de-duplicated per line.
	mustWriteFile(t, f, []byte("aaa\naaaa\n"), 0o644)
	o = s.edit(t, "str_replace", f, map[string]any{"old_str": "aa", "new_str": "X"})
	o.wantContent(t, "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `aa` in lines [1, 2]. Please ensure it is unique.")
}

// insert_line strings go through Python's int(): surrounding whitespace and
// a sign are accepted.
func TestEditorInsertLineStringForms(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "t.txt")
	mustWriteFile(t, f, []byte("Line 1\nLine 2\n"), 0o644)
	o := s.edit(t, "insert", f, map[string]any{"insert_line": " 2 ", "new_str": "end"})
	o.wantContains(t, "has been edited")
	if got := mustReadFile(t, f); got != "Line 1\nLine 2\nend\n" {
		t.Errorf("insert_line \" 2 \": got %q", got)
	}
	o = s.edit(t, "insert", f, map[string]any{"insert_line": "-1", "new_str": "x"})
	o.wantContent(t, "ERROR:\nInvalid `insert_line` parameter: -1. It should be within the range of allowed values: [0, 3]")
	o = s.edit(t, "insert", f, map[string]any{"insert_line": "1.5", "new_str": "x"})
	o.wantContent(t, "ERROR:\nInvalid insert_line value: '1.5'. Expected an integer.")
}

// view_range on an empty file: N = 0.
func TestEditorViewRangeEmptyFile(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "empty.txt")
	mustWriteFile(t, f, nil, 0o644)
	o := s.execute(t, readAction(f, map[string]any{"impl_source": "oh_aci", "view_range": []int{1, 1}}))
	o.wantType(t, "read")
	o.wantContent(t, "ERROR:\nInvalid `view_range` parameter: [1, 1]. Its first element `1` should be within the range of lines of the file: [1, 0].")
}

// The editor works on pathlib.Path(path): "." segments and a trailing "/"
// vanish from the messages; extras.path keeps the action's text.
func TestEditorPathNormalization(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	wd := s.workdir
	f := filepath.Join(wd, "test.txt")
	mustWriteFile(t, f, []byte("x\n"), 0o644)
	o := s.edit(t, "view", wd+"/./test.txt", nil)
	o.wantContent(t, catN(f, "x", ""))
	o.wantExtra(t, "path", wd+"/./test.txt")
	o = s.edit(t, "view", wd+"/", nil)
	o.wantContent(t, "Here's the files and directories up to 2 levels deep in "+wd+", excluding hidden items:\n"+wd+"/\n"+f)
	o.wantExtra(t, "path", wd+"/")
}

// The editor reads with Python's universal newlines and writes "\n": CRLF
// files are shown without "\r" and come back with LF endings after an edit.
func TestEditorCRLF(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "win.txt")
	mustWriteFile(t, f, []byte("a\r\nb\r\n"), 0o644)
	s.edit(t, "view", f, nil).wantContent(t, catN(f, "a", "b", ""))
	o := s.edit(t, "str_replace", f, map[string]any{"old_str": "a", "new_str": "A"})
	o.wantContains(t, "has been edited")
	if got := mustReadFile(t, f); got != "A\nb\n" {
		t.Errorf("after str_replace on a CRLF file: want %q (as OpenHands writes it), got %q", "A\nb\n", got)
	}
}

// A directory listing longer than 16 000 characters is cut (raw `find`
// output) and gets the directory notice.
func TestEditorViewLargeDirectoryTruncation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	wd := s.workdir
	lines := []string{wd}
	for i := 0; i < 2000; i++ {
		name := fmt.Sprintf("%s/f_%04d.txt", wd, i)
		mustWriteFile(t, name, nil, 0o644)
		lines = append(lines, name)
	}
	raw := strings.Join(lines, "\n") + "\n"
	notice := "<response clipped><NOTE>Due to the max output limit, only part of this directory has been shown to you. You should use `ls -la` instead to view large directories incrementally.</NOTE>"
	cut := strings.Split(strings.TrimSpace(raw[:16000]+notice), "\n")
	cut[0] = wd + "/"
	want := "Here's the files and directories up to 2 levels deep in " + wd + ", excluding hidden items:\n" + strings.Join(cut, "\n")
	o := s.edit(t, "view", wd, nil)
	o.wantContains(t, "Due to the max output limit, only part of this directory has been shown to you.")
	o.wantContent(t, want)
}

// minimalPDF is a one-page PDF showing `text` (valid for pdfminer).
func minimalPDF(text string) []byte {
	stream := "BT /F1 18 Tf 20 100 Td (" + text + ") Tj ET"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	offs := []int{}
	for i, o := range objs {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	return []byte(b.String())
}

// §6.1/§6.3: supported binaries (.pdf, .docx, …) are viewed as Markdown.
// (OpenHands: "Here's the content of the file <p> displayed in Markdown
// format:\nHello PDF\n\n\n" with pdfminer.)
func TestEditorViewPDFAsMarkdown(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := filepath.Join(s.workdir, "hello.pdf")
	mustWriteFile(t, f, minimalPDF("Hello PDF"), 0o644)
	o := s.edit(t, "view", f, nil)
	o.wantType(t, "edit")
	// sbx does not convert PDFs yet (OpenHands uses markitdown): it must
	// say so clearly, in the editor's error shape.
	if !strings.HasPrefix(o.content(), "ERROR:\nError in converting file to Markdown: ") || !strings.Contains(o.content(), "not supported") {
		o.failf(t, "want a clear conversion error")
	}
}
