package fileops

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	reviewReplace = "Review the changes and make sure they are as expected. Edit the file again if necessary."
	reviewInsert  = "Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary."
)

func twentyLines() string {
	var b strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, "L%d\n", i)
	}
	return b.String()
}

// TestEditorMessages checks every editor text of spec §6 through the edit
// action, against real files.
func TestEditorMessages(t *testing.T) {
	const sample = "This is a test file.\nThis file is for testing purposes."
	tests := []struct {
		name     string
		files    map[string]string
		req      EditRequest
		want     string
		wantFile map[string]string // expected contents afterwards
	}{
		// view: files
		{
			name:  "view file ending in newline shows a final empty line",
			files: map[string]string{"f.txt": "a\nb\n"},
			req:   EditRequest{Command: "view", Path: "{root}/f.txt"},
			want:  "Here's the result of running `cat -n` on {root}/f.txt:\n     1\ta\n     2\tb\n     3\t\n",
		},
		{
			name:  "view file without final newline",
			files: map[string]string{"f.txt": sample},
			req:   EditRequest{Command: "view", Path: "{root}/f.txt"},
			want:  "Here's the result of running `cat -n` on {root}/f.txt:\n     1\tThis is a test file.\n     2\tThis file is for testing purposes.\n",
		},
		{
			name:  "view empty file",
			files: map[string]string{"e.txt": ""},
			req:   EditRequest{Command: "view", Path: "{root}/e.txt"},
			want:  "Here's the result of running `cat -n` on {root}/e.txt:\n     1\t\n",
		},
		{
			name:  "view reads CRLF as LF",
			files: map[string]string{"f.txt": "a\r\nb\rc"},
			req:   EditRequest{Command: "view", Path: "{root}/f.txt"},
			want:  "Here's the result of running `cat -n` on {root}/f.txt:\n     1\ta\n     2\tb\n     3\tc\n",
		},
		{
			name:  "view normalises the path like pathlib",
			files: map[string]string{"f.txt": "x"},
			req:   EditRequest{Command: "view", Path: "{root}//./f.txt"},
			want:  "Here's the result of running `cat -n` on {root}/f.txt:\n     1\tx\n",
		},
		// view: directories
		{
			name: "view directory: sorted as find|sort, dirs slashed, hidden counted",
			files: map[string]string{
				"d/x": "1", "d/.h": "1", "d/sub/y": "1", "d/sub/.z": "1", "d/ab-c": "", "d/ab/k": "",
				"d/.hd/q": "1", "d/link": "->sub", "d/dangling": "->/nonexistent",
			},
			req: EditRequest{Command: "view", Path: "{root}/d"},
			want: "Here's the files and directories up to 2 levels deep in {root}/d, excluding hidden items:\n" +
				"{root}/d/\n{root}/d/ab/\n{root}/d/ab-c\n{root}/d/ab/k\n{root}/d/dangling\n{root}/d/link/\n{root}/d/link/y\n{root}/d/sub/\n{root}/d/sub/y\n{root}/d/x\n\n" +
				"2 hidden files/directories in this directory are excluded. You can use 'ls -la {root}/d' to see them.",
		},
		{
			name:  "view directory without hidden entries has no notice",
			files: map[string]string{"d/x": "1"},
			req:   EditRequest{Command: "view", Path: "{root}/d/"},
			want:  "Here's the files and directories up to 2 levels deep in {root}/d, excluding hidden items:\n{root}/d/\n{root}/d/x",
		},
		{
			name:  "view directory with a symbolic-link loop is find's error",
			files: map[string]string{"d/a/up": "->..", "d/x": "1"},
			req:   EditRequest{Command: "view", Path: "{root}/d"},
			want:  "ERROR:\nfind: File system loop detected; ‘{root}/d/a/up’ is part of the same file system loop as ‘{root}/d’.\n",
		},
		{
			name:  "view directory with a self-referencing link",
			files: map[string]string{"d/s": "->s"},
			req:   EditRequest{Command: "view", Path: "{root}/d"},
			want:  "ERROR:\nfind: ‘{root}/d/s’: Too many levels of symbolic links\n",
		},
		// create
		{
			name:     "create",
			req:      EditRequest{Command: "create", Path: "{root}/new.txt", FileText: ptr("New file content")},
			want:     "File created successfully at: {root}/new.txt",
			wantFile: map[string]string{"new.txt": "New file content"},
		},
		{
			name:     "create writes text verbatim",
			req:      EditRequest{Command: "create", Path: "{root}/crlf.txt", FileText: ptr("a\r\nb")},
			want:     "File created successfully at: {root}/crlf.txt",
			wantFile: map[string]string{"crlf.txt": "a\r\nb"},
		},
		{
			name:     "create over an existing file",
			files:    map[string]string{"f.txt": "old"},
			req:      EditRequest{Command: "create", Path: "{root}/f.txt", FileText: ptr("new")},
			want:     "ERROR:\nInvalid `path` parameter: {root}/f.txt. File already exists at: {root}/f.txt. Cannot overwrite files using command `create`.",
			wantFile: map[string]string{"f.txt": "old"},
		},
		{
			name: "create without file_text",
			req:  EditRequest{Command: "create", Path: "{root}/n.txt"},
			want: "ERROR:\nParameter `file_text` is required for command: create.",
		},
		{
			name: "create does not make parent directories",
			req:  EditRequest{Command: "create", Path: "{root}/nodir/x.txt", FileText: ptr("x")},
			want: "ERROR:\nRan into [Errno 2] No such file or directory: '{root}/nodir/x.txt' while trying to write to {root}/nodir/x.txt",
		},
		{
			name: "create a supported binary",
			req:  EditRequest{Command: "create", Path: "{root}/x.PDF", FileText: ptr("x")},
			want: "ERROR:\nInvalid `path` parameter: {root}/x.PDF. The path {root}/x.PDF points to a binary file (.PDF) and only the `view` command can be used on supported binary files.",
		},
		// path validation
		{
			name:  "relative path with suggestion",
			files: map[string]string{"f.txt": "x"},
			req:   EditRequest{Command: "view", Path: "./f.txt"},
			want:  "ERROR:\nInvalid `path` parameter: f.txt. The path should be an absolute path, starting with `/`. Maybe you meant {root}/f.txt?",
		},
		{
			name: "relative path without suggestion",
			req:  EditRequest{Command: "create", Path: "nope.txt", FileText: ptr("x")},
			want: "ERROR:\nInvalid `path` parameter: nope.txt. The path should be an absolute path, starting with `/`.",
		},
		{
			name: "empty path is '.'",
			req:  EditRequest{Command: "view", Path: ""},
			want: "ERROR:\nInvalid `path` parameter: .. The path should be an absolute path, starting with `/`. Maybe you meant {root}?",
		},
		{
			name: "missing path",
			req:  EditRequest{Command: "view", Path: "{root}/nope"},
			want: "ERROR:\nInvalid `path` parameter: {root}/nope. The path {root}/nope does not exist. Please provide a valid path.",
		},
		{
			name: "unknown command on a missing path reports the path first",
			req:  EditRequest{Command: "bogus", Path: "{root}/nope"},
			want: "ERROR:\nInvalid `path` parameter: {root}/nope. The path {root}/nope does not exist. Please provide a valid path.",
		},
		{
			name:  "unknown command",
			files: map[string]string{"f.txt": "x"},
			req:   EditRequest{Command: "bogus", Path: "{root}/f.txt"},
			want:  "ERROR:\nUnrecognized command bogus. The allowed commands for the oh_editor tool are: view, create, str_replace, insert, undo_edit",
		},
		{
			name:  "non-view command on a directory",
			files: map[string]string{"d/": ""},
			req:   EditRequest{Command: "str_replace", Path: "{root}/d", OldStr: ptr("a"), NewStr: ptr("b")},
			want:  "ERROR:\nInvalid `path` parameter: {root}/d. The path {root}/d is a directory and only the `view` command can be used on directories.",
		},
		{
			name:  "non-view command on a supported binary",
			files: map[string]string{"s.mp3": "ID3"},
			req:   EditRequest{Command: "insert", Path: "{root}/s.mp3", InsertLine: 0, NewStr: ptr("x")},
			want:  "ERROR:\nInvalid `path` parameter: {root}/s.mp3. The path {root}/s.mp3 points to a binary file (.mp3) and only the `view` command can be used on supported binary files.",
		},
		// file validation
		{
			name:  "binary file",
			files: map[string]string{"b.bin": "abc\x00def"},
			req:   EditRequest{Command: "view", Path: "{root}/b.bin"},
			want:  "ERROR:\nFile validation failed for {root}/b.bin: File appears to be binary and this file type cannot be read or edited by this tool.",
		},
		{
			name:  ".pyc is binary by name",
			files: map[string]string{"m.pyc": "plain text"},
			req:   EditRequest{Command: "str_replace", Path: "{root}/m.pyc", OldStr: ptr("plain"), NewStr: ptr("x")},
			want:  "ERROR:\nFile validation failed for {root}/m.pyc: File appears to be binary and this file type cannot be read or edited by this tool.",
		},
		{
			name:  "file larger than 10 MB",
			files: map[string]string{"big.txt": strings.Repeat("x", 10*1024*1024+1)},
			req:   EditRequest{Command: "view", Path: "{root}/big.txt"},
			want:  "ERROR:\nFile validation failed for {root}/big.txt: File is too large (10.0MB). Maximum allowed size is 10MB.",
		},
		// str_replace
		{
			name:     "str_replace",
			files:    map[string]string{"f.txt": sample},
			req:      EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("test file"), NewStr: ptr("sample file")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of {root}/f.txt:\n     1\tThis is a sample file.\n     2\tThis file is for testing purposes.\n" + reviewReplace,
			wantFile: map[string]string{"f.txt": "This is a sample file.\nThis file is for testing purposes."},
		},
		{
			name:  "str_replace snippet is lines L-3..L+4(+new lines) and ends with an empty numbered line",
			files: map[string]string{"f.txt": twentyLines()},
			req:   EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("L10\n"), NewStr: ptr("X\nY\n")},
			want: "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of {root}/f.txt:\n" +
				numbered(7, "L7", "L8", "L9", "X", "Y", "L11", "L12", "L13", "L14", "L15", "") + "\n" + reviewReplace,
		},
		{
			name:     "str_replace with multiple occurrences",
			files:    map[string]string{"f.txt": sample},
			req:      EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("test"), NewStr: ptr("sample")},
			want:     "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `test` in lines [1, 2]. Please ensure it is unique.",
			wantFile: map[string]string{"f.txt": sample},
		},
		{
			name:  "str_replace with two occurrences on one line lists the line once",
			files: map[string]string{"f.txt": "ab ab\n"},
			req:   EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("ab"), NewStr: ptr("x")},
			want:  "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `ab` in lines [1]. Please ensure it is unique.",
		},
		{
			name:  "str_replace with empty old_str matches everywhere",
			files: map[string]string{"f.txt": "Line 1\nLine 2\nLine 3\n"},
			req:   EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr(""), NewStr: ptr("x")},
			want:  "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `` in lines [1, 2, 3, 4]. Please ensure it is unique.",
		},
		{
			name:     "str_replace with empty old_str in an empty file replaces once",
			files:    map[string]string{"e.txt": ""},
			req:      EditRequest{Command: "str_replace", Path: "{root}/e.txt", OldStr: ptr(""), NewStr: ptr("x")},
			want:     "The file {root}/e.txt has been edited. Here's the result of running `cat -n` on a snippet of {root}/e.txt:\n     1\tx\n" + reviewReplace,
			wantFile: map[string]string{"e.txt": "x"},
		},
		{
			name:  "str_replace without a match",
			files: map[string]string{"f.txt": "Line 1\nLine 2"},
			req:   EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr(" Non-existent Line\n"), NewStr: ptr("x")},
			want:  "ERROR:\nNo replacement was performed, old_str `Non-existent Line` did not appear verbatim in {root}/f.txt.",
		},
		{
			name:     "str_replace retries with stripped strings",
			files:    map[string]string{"f.txt": sample},
			req:      EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("  test file.\t"), NewStr: ptr("\nsample file.  ")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of {root}/f.txt:\n     1\tThis is a sample file.\n     2\tThis file is for testing purposes.\n" + reviewReplace,
			wantFile: map[string]string{"f.txt": "This is a sample file.\nThis file is for testing purposes."},
		},
		{
			name:     "str_replace with null new_str deletes",
			files:    map[string]string{"f.txt": "Line 1\nLine to remove\nLine 3"},
			req:      EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("Line to remove\n")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of {root}/f.txt:\n     1\tLine 1\n     2\tLine 3\n" + reviewReplace,
			wantFile: map[string]string{"f.txt": "Line 1\nLine 3"},
		},
		{
			name:  "str_replace with equal strings",
			files: map[string]string{"f.txt": "x"},
			req:   EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("test file"), NewStr: ptr("test file")},
			want:  "ERROR:\nInvalid `new_str` parameter: test file. No replacement was performed. `new_str` and `old_str` must be different.",
		},
		{
			name:  "str_replace without old_str",
			files: map[string]string{"f.txt": "x"},
			req:   EditRequest{Command: "str_replace", Path: "{root}/f.txt", NewStr: ptr("y")},
			want:  "ERROR:\nParameter `old_str` is required for command: str_replace.",
		},
		{
			name:     "str_replace rewrites CRLF as LF",
			files:    map[string]string{"f.txt": "a\r\nb\r\n"},
			req:      EditRequest{Command: "str_replace", Path: "{root}/f.txt", OldStr: ptr("a"), NewStr: ptr("c")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of {root}/f.txt:\n     1\tc\n     2\tb\n     3\t\n" + reviewReplace,
			wantFile: map[string]string{"f.txt": "c\nb\n"},
		},
		// insert
		{
			name:     "insert an empty line (spec example)",
			files:    map[string]string{"f.txt": "Line 1\nLine 2\n"},
			req:      EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: 1, NewStr: ptr("")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n     1\tLine 1\n     2\t\n     3\tLine 2\n     4\t\n" + reviewInsert,
			wantFile: map[string]string{"f.txt": "Line 1\n\nLine 2\n"},
		},
		{
			name:     "insert at the top",
			files:    map[string]string{"f.txt": "a\nb"},
			req:      EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: 0, NewStr: ptr("x\ny")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n     1\tx\n     2\ty\n     3\ta\n     4\tb\n" + reviewInsert,
			wantFile: map[string]string{"f.txt": "x\ny\na\nb"},
		},
		{
			name:     "insert after a last line without newline glues the first piece",
			files:    map[string]string{"f.txt": "Line 1\nLine 2"},
			req:      EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: 2, NewStr: ptr("glued\nnext")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n     1\tLine 1\n     2\tLine 2glued\n     3\tnext\n     4\t\n" + reviewInsert,
			wantFile: map[string]string{"f.txt": "Line 1\nLine 2glued\nnext\n"},
		},
		{
			name:  "insert snippet starts at insert_line-3",
			files: map[string]string{"f.txt": twentyLines()},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: 10, NewStr: ptr("N")},
			want: "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n" +
				numbered(7, "L7", "L8", "L9", "L10", "N", "L11", "L12", "L13", "L14", "") + "\n" + reviewInsert,
		},
		{
			name:  "insert_line beyond the file",
			files: map[string]string{"f.txt": "Line 1\nLine 2"},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: 10, NewStr: ptr("x")},
			want:  "ERROR:\nInvalid `insert_line` parameter: 10. It should be within the range of allowed values: [0, 2]",
		},
		{
			name:  "negative insert_line",
			files: map[string]string{"f.txt": "a\n"},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: -1, NewStr: ptr("x")},
			want:  "ERROR:\nInvalid `insert_line` parameter: -1. It should be within the range of allowed values: [0, 1]",
		},
		{
			name:     "insert_line as a string is converted with int()",
			files:    map[string]string{"f.txt": "a\nb\n"},
			req:      EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: " +1 ", NewStr: ptr("x")},
			want:     "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n     1\ta\n     2\tx\n     3\tb\n     4\t\n" + reviewInsert,
			wantFile: map[string]string{"f.txt": "a\nx\nb\n"},
		},
		{
			name:  "insert_line string that is not an integer",
			files: map[string]string{"f.txt": "a\n"},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: "1.5", NewStr: ptr("x")},
			want:  "ERROR:\nInvalid insert_line value: '1.5'. Expected an integer.",
		},
		{
			name:  "insert_line string is converted even for other commands",
			files: map[string]string{"f.txt": "a\n"},
			req:   EditRequest{Command: "view", Path: "{root}/f.txt", InsertLine: "abc"},
			want:  "ERROR:\nInvalid insert_line value: 'abc'. Expected an integer.",
		},
		{
			name:  "float insert_line carries into the numbering",
			files: map[string]string{"f.txt": twentyLines()},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: json.RawMessage("5.5"), NewStr: ptr("N")},
			want:  "The file {root}/f.txt has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n   2.5\tL3\n   3.5\tL4\n   4.5\tL5\n   5.5\tN\n   6.5\tL6\n   7.5\tL7\n   8.5\tL8\n   9.5\tL9\n  10.5\t\n" + reviewInsert,
		},
		{
			name:  "bool insert_line prints as True",
			files: map[string]string{"e.txt": ""},
			req:   EditRequest{Command: "insert", Path: "{root}/e.txt", InsertLine: true, NewStr: ptr("x")},
			want:  "ERROR:\nInvalid `insert_line` parameter: True. It should be within the range of allowed values: [0, 0]",
		},
		{
			name:  "list insert_line is a TypeError",
			files: map[string]string{"f.txt": "a\n"},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: json.RawMessage("[1]"), NewStr: ptr("x")},
			want:  "ERROR:\n'<' not supported between instances of 'list' and 'int'",
		},
		{
			name:  "insert without insert_line",
			files: map[string]string{"f.txt": "a\n"},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", NewStr: ptr("x")},
			want:  "ERROR:\nParameter `insert_line` is required for command: insert.",
		},
		{
			name:  "insert without new_str",
			files: map[string]string{"f.txt": "a\n"},
			req:   EditRequest{Command: "insert", Path: "{root}/f.txt", InsertLine: 1},
			want:  "ERROR:\nParameter `new_str` is required for command: insert.",
		},
		// undo
		{
			name:  "undo without history",
			files: map[string]string{"f.txt": "a\n"},
			req:   EditRequest{Command: "undo_edit", Path: "{root}/f.txt"},
			want:  "ERROR:\nNo edit history found for {root}/f.txt.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, root := newTestFiles(t)
			setupTree(t, root, tc.files)
			req := tc.req
			req.Path = expand(req.Path, root)
			res := doEdit(t, f, req)
			if want := expand(tc.want, root); res.Content != want {
				t.Errorf("content:\n got  %q\n want %q", res.Content, want)
			}
			if res.Path != req.Path {
				t.Errorf("path = %q, want the request's %q", res.Path, req.Path)
			}
			if res.PrevExist {
				t.Error("prev_exist must stay false")
			}
			for rel, want := range tc.wantFile {
				if got := readFile(t, filepath.Join(root, rel)); got != want {
					t.Errorf("%s = %q, want %q", rel, got, want)
				}
			}
		})
	}
}

// TestViewRange covers every view_range rule of spec §6.3, through the read
// action's oh_aci mode, which is where view_range comes from.
func TestViewRange(t *testing.T) {
	const content = "a\nb\nc\n"
	head := "Here's the result of running `cat -n` on {root}/f.txt:\n"
	tests := []struct {
		viewRange any
		want      string
	}{
		{json.RawMessage("[1, 2]"), head + "     1\ta\n     2\tb\n"},
		{[]any{2.0, -1.0}, head + "     2\tb\n     3\tc\n"},
		{[]int{2, 9}, "NOTE: We only show up to 3 since there're only 3 lines in this file.\n" + head + "     2\tb\n     3\tc\n"},
		{[]int{3, 3}, head + "     3\tc\n"},
		{json.RawMessage("[0, 1]"), "ERROR:\nInvalid `view_range` parameter: [0, 1]. Its first element `0` should be within the range of lines of the file: [1, 3]."},
		{json.RawMessage("[4, 4]"), "ERROR:\nInvalid `view_range` parameter: [4, 4]. Its first element `4` should be within the range of lines of the file: [1, 3]."},
		{json.RawMessage("[3, 2]"), "ERROR:\nInvalid `view_range` parameter: [3, 2]. Its second element `2` should be greater than or equal to the first element `3`."},
		{json.RawMessage("[2, -5]"), "ERROR:\nInvalid `view_range` parameter: [2, -5]. Its second element `-5` should be greater than or equal to the first element `2`."},
		{json.RawMessage("[1]"), "ERROR:\nInvalid `view_range` parameter: [1]. It should be a list of two integers."},
		{json.RawMessage("[1, 2, 3]"), "ERROR:\nInvalid `view_range` parameter: [1, 2, 3]. It should be a list of two integers."},
		{json.RawMessage("[1.0, 2]"), "ERROR:\nInvalid `view_range` parameter: [1.0, 2]. It should be a list of two integers."},
		{json.RawMessage(`[1, "2"]`), "ERROR:\nInvalid `view_range` parameter: [1, '2']. It should be a list of two integers."},
		{json.RawMessage(`[null, "it's"]`), "ERROR:\nInvalid `view_range` parameter: [None, \"it's\"]. It should be a list of two integers."},
		{"12", "ERROR:\nInvalid `view_range` parameter: 12. It should be a list of two integers."},
		{json.RawMessage(`{"b": 1, "a": 2}`), "ERROR:\nInvalid `view_range` parameter: {'b': 1, 'a': 2}. It should be a list of two integers."},
		{json.RawMessage("[99999999999999999999999, 2]"), "ERROR:\nInvalid `view_range` parameter: [99999999999999999999999, 2]. Its first element `99999999999999999999999` should be within the range of lines of the file: [1, 3]."},
		{5, "ERROR:\nobject of type 'int' has no len()"},
		{json.RawMessage("1.5"), "ERROR:\nobject of type 'float' has no len()"},
		{true, "ERROR:\nobject of type 'bool' has no len()"},
		{json.RawMessage("[true, 2]"), head + "     1\ta\n     2\tb\n"},
		{json.RawMessage("[2, true]"), "ERROR:\nInvalid `view_range` parameter: [2, True]. Its second element `True` should be greater than or equal to the first element `2`."},
		// Falsy values show the whole file.
		{nil, head + "     1\ta\n     2\tb\n     3\tc\n     4\t\n"},
		{[]any{}, head + "     1\ta\n     2\tb\n     3\tc\n     4\t\n"},
		{0, head + "     1\ta\n     2\tb\n     3\tc\n     4\t\n"},
		{"", head + "     1\ta\n     2\tb\n     3\tc\n     4\t\n"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.viewRange), func(t *testing.T) {
			f, root := newTestFiles(t)
			setupTree(t, root, map[string]string{"f.txt": content})
			res := f.Read(context.Background(), ReadRequest{Path: root + "/f.txt", ImplSource: "oh_aci", ViewRange: tc.viewRange})
			if res.Err != nil || res.ErrorText != "" {
				t.Fatalf("Read: %v %q", res.Err, res.ErrorText)
			}
			if want := expand(tc.want, root); res.Content != want {
				t.Errorf("got  %q\nwant %q", res.Content, want)
			}
			if res.ImplSource != "oh_aci" || res.Path != root+"/f.txt" {
				t.Errorf("impl_source %q path %q", res.ImplSource, res.Path)
			}
		})
	}
}

func TestViewRangeSplitlinesQuirk(t *testing.T) {
	// A ranged view re-splits the text with str.splitlines(), which also
	// breaks at form feeds and other separators; the full view does not.
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"f.txt": "a\fb\nc\u2028d\n"})
	p := root + "/f.txt"
	ranged := f.Read(context.Background(), ReadRequest{Path: p, ImplSource: "oh_aci", ViewRange: []int{1, 2}})
	if want := "Here's the result of running `cat -n` on " + p + ":\n     1\ta\n     2\tb\n     3\tc\n     4\td\n"; ranged.Content != want {
		t.Errorf("ranged view:\n got  %q\n want %q", ranged.Content, want)
	}
	full := doEdit(t, f, EditRequest{Command: "view", Path: p})
	if want := "Here's the result of running `cat -n` on " + p + ":\n     1\ta\fb\n     2\tc\u2028d\n     3\t\n"; full.Content != want {
		t.Errorf("full view:\n got  %q\n want %q", full.Content, want)
	}
}

func TestViewDirectoryRejectsViewRange(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"d/x": "1"})
	res := f.Read(context.Background(), ReadRequest{Path: root + "/d", ImplSource: "oh_aci", ViewRange: []int{1, 2}})
	want := "ERROR:\nInvalid `view_range` parameter: [1, 2]. The `view_range` parameter is not allowed when `path` points to a directory."
	if res.Content != want {
		t.Errorf("got  %q\nwant %q", res.Content, want)
	}
}

func TestClipping(t *testing.T) {
	f, root := newTestFiles(t)
	tests := []struct {
		name, content string
		wantClip      bool
	}{
		{"exactly 16000 characters", strings.Repeat("é", 16000), false},
		{"16001 characters", strings.Repeat("é", 16001), true},
		{"many lines", strings.Repeat("Line 1\n", 16000), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(root, strings.ReplaceAll(tc.name, " ", "_"))
			mustDo(t, os.WriteFile(p, []byte(tc.content), 0o644))
			res := doEdit(t, f, EditRequest{Command: "view", Path: p})
			body, ok := strings.CutPrefix(res.Content, "Here's the result of running `cat -n` on "+p+":\n")
			if !ok {
				t.Fatalf("unexpected output %.200q", res.Content)
			}
			if got := strings.HasSuffix(body, textClipNotice+"\n"); got != tc.wantClip {
				t.Fatalf("clipped = %v, want %v", got, tc.wantClip)
			}
			// The clip is applied before numbering, at 16 000 characters.
			shown := strings.TrimSuffix(strings.TrimSuffix(body, "\n"), textClipNotice)
			var text []string
			for _, l := range strings.Split(shown, "\n") {
				_, after, _ := strings.Cut(l, "\t")
				text = append(text, after)
			}
			if got, want := runeLen(strings.Join(text, "\n")), min(runeLen(tc.content), maxResponseLen); got != want {
				t.Errorf("shown %d characters, want %d", got, want)
			}
		})
	}
}

func TestDirectoryClipping(t *testing.T) {
	f, root := newTestFiles(t)
	files := map[string]string{}
	for i := range 400 {
		files[fmt.Sprintf("d/sub%03d/file_with_a_long_name_%03d.txt", i, i)] = "1"
	}
	setupTree(t, root, files)
	res := doEdit(t, f, EditRequest{Command: "view", Path: root + "/d"})
	if !strings.HasSuffix(res.Content, directoryClipNotice) {
		t.Fatalf("no directory notice at the end: %q", res.Content[len(res.Content)-300:])
	}
	header := "Here's the files and directories up to 2 levels deep in " + root + "/d, excluding hidden items:\n"
	body := strings.TrimSuffix(strings.TrimPrefix(res.Content, header), directoryClipNotice)
	// 16 000 characters of find's output, of which every complete line is
	// a path (directories gain a "/" after the clip).
	raw := strings.ReplaceAll(body, "/\n", "\n")
	if got := runeLen(raw); got != maxResponseLen {
		t.Errorf("clipped listing has %d characters", got)
	}
}

func TestUndoHistory(t *testing.T) {
	f, root := newTestFiles(t)
	p := root + "/f.txt"
	setupTree(t, root, map[string]string{"f.txt": "v0\n"})
	// 12 edits, but only the last 10 can be undone.
	for i := range 12 {
		res := doEdit(t, f, EditRequest{Command: "str_replace", Path: p, OldStr: ptr(fmt.Sprintf("v%d", i)), NewStr: ptr(fmt.Sprintf("v%d", i+1))})
		if strings.HasPrefix(res.Content, "ERROR") {
			t.Fatal(res.Content)
		}
	}
	for i := 12; i > 2; i-- {
		res := doEdit(t, f, EditRequest{Command: "undo_edit", Path: p})
		want := fmt.Sprintf("Last edit to %s undone successfully. Here's the result of running `cat -n` on %s:\n     1\tv%d\n     2\t\n", p, p, i-1)
		if res.Content != want {
			t.Fatalf("undo %d:\n got  %q\n want %q", i, res.Content, want)
		}
		if got := readFile(t, p); got != fmt.Sprintf("v%d\n", i-1) {
			t.Fatalf("file after undo = %q", got)
		}
		wantDiff := fmt.Sprintf("--- %s\n+++ %s\n@@ -1 +1 @@\n-v%d\n+v%d", p, p, i, i-1)
		if *res.Diff != wantDiff {
			t.Errorf("diff %q, want %q", *res.Diff, wantDiff)
		}
	}
	res := doEdit(t, f, EditRequest{Command: "undo_edit", Path: p})
	if want := "ERROR:\nNo edit history found for " + p + "."; res.Content != want {
		t.Errorf("11th undo: %q", res.Content)
	}
	if got := readFile(t, p); got != "v2\n" {
		t.Errorf("file = %q, want v2", got)
	}
}

func TestUndoAfterCreateRestoresTheCreatedText(t *testing.T) {
	f, root := newTestFiles(t)
	p := root + "/n.txt"
	doEdit(t, f, EditRequest{Command: "create", Path: p, FileText: ptr("hello\n")})
	doEdit(t, f, EditRequest{Command: "str_replace", Path: p, OldStr: ptr("hello"), NewStr: ptr("bye")})
	for range 2 {
		res := doEdit(t, f, EditRequest{Command: "undo_edit", Path: p})
		want := "Last edit to " + p + " undone successfully. Here's the result of running `cat -n` on " + p + ":\n     1\thello\n     2\t\n"
		if res.Content != want {
			t.Fatalf("got %q", res.Content)
		}
		if got := readFile(t, p); got != "hello\n" {
			t.Fatalf("file = %q", got)
		}
	}
}

func TestUndoHistoryLivesOnDisk(t *testing.T) {
	f, root := newTestFiles(t)
	p := root + "/f.txt"
	setupTree(t, root, map[string]string{"f.txt": "secret-old-content\n"})
	doEdit(t, f, EditRequest{Command: "str_replace", Path: p, OldStr: ptr("old"), NewStr: ptr("new")})
	entries, err := os.ReadDir(f.hist.dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("history dir: %v %v", entries, err)
	}
	if got := readFile(t, filepath.Join(f.hist.dir, entries[0].Name())); got != "secret-old-content\n" {
		t.Errorf("entry = %q", got)
	}
	st, err := os.Stat(f.hist.dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("history dir mode %v %v", st.Mode(), err)
	}
	dir := f.hist.dir
	mustDo(t, f.Close())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("history dir survives Close: %v", err)
	}
	if res := f.Edit(context.Background(), EditRequest{Command: "view", Path: p}); res.Err == nil {
		t.Error("Edit after Close succeeded")
	}
}

func TestEditObservationFields(t *testing.T) {
	f, root := newTestFiles(t)
	p := root + "/a.txt"
	setupTree(t, root, map[string]string{"a.txt": "foo"})

	// The spec's example observation.
	res := doEdit(t, f, EditRequest{Command: "str_replace", Path: p, OldStr: ptr("foo"), NewStr: ptr("bar")})
	if want := "The file " + p + " has been edited. Here's the result of running `cat -n` on a snippet of " + p + ":\n     1\tbar\n" + reviewReplace; res.Content != want {
		t.Errorf("content %q", res.Content)
	}
	if *res.OldContent != "foo" || *res.NewContent != "bar" || res.PrevExist {
		t.Errorf("old/new/prev_exist = %q %q %v", *res.OldContent, *res.NewContent, res.PrevExist)
	}
	if want := "--- " + p + "\n+++ " + p + "\n@@ -1 +1 @@\n-foo\n+bar"; *res.Diff != want {
		t.Errorf("diff %q, want %q", *res.Diff, want)
	}

	// create: old_str/new_str are null, the diff is against the empty text.
	res = doEdit(t, f, EditRequest{Command: "create", Path: root + "/n.txt", FileText: ptr("New file content")})
	if res.OldContent != nil || res.NewContent != nil {
		t.Errorf("create old/new = %v %v", res.OldContent, res.NewContent)
	}
	if want := "--- " + root + "/n.txt\n+++ " + root + "/n.txt\n@@ -1 +1 @@\n-\n+New file content"; *res.Diff != want {
		t.Errorf("create diff %q", *res.Diff)
	}

	// Failures and views have an empty diff; the path is echoed unnormalised.
	for _, r := range []EditRequest{
		{Command: "view", Path: root + "//a.txt"},
		{Command: "str_replace", Path: p, OldStr: ptr("nothing"), NewStr: ptr("x")},
		{Command: "insert", Path: p, InsertLine: "x", NewStr: ptr("y")},
	} {
		res := doEdit(t, f, r)
		if *res.Diff != "" || res.Path != r.Path {
			t.Errorf("%s: diff %q path %q", r.Command, *res.Diff, res.Path)
		}
	}

	// Trailing whitespace is stripped from every diff line.
	res = doEdit(t, f, EditRequest{Command: "str_replace", Path: p, OldStr: ptr("bar"), NewStr: ptr("baz  \n\t")})
	if want := "--- " + p + "\n+++ " + p + "\n@@ -1 +1,2 @@\n-bar\n+baz\n+"; *res.Diff != want {
		t.Errorf("diff %q, want %q", *res.Diff, want)
	}
}

func TestEditorKeepsModeAndOwnerAndCreatesSandboxFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	f, root := newTestFiles(t, func(o *Options) { o.UID, o.GID = 1234, 2345 })
	p := root + "/x.sh"
	mustDo(t, os.WriteFile(p, []byte("echo a\n"), 0o644))
	mustDo(t, os.Chown(p, 42, 43))
	mustDo(t, os.Chmod(p, 0o750|os.ModeSetuid))
	doEdit(t, f, EditRequest{Command: "insert", Path: p, InsertLine: 1, NewStr: ptr("echo b")})
	st, err := os.Stat(p)
	mustDo(t, err)
	if uid, gid := ownerOf(st); st.Mode()&os.ModeSetuid == 0 || st.Mode().Perm() != 0o750 || uid != 42 || gid != 43 {
		t.Errorf("after insert: mode %v owner %d:%d", st.Mode(), uid, gid)
	}
	n := root + "/new.txt"
	doEdit(t, f, EditRequest{Command: "create", Path: n, FileText: ptr("x")})
	st, err = os.Stat(n)
	mustDo(t, err)
	if uid, gid := ownerOf(st); st.Mode().Perm() != 0o664 || uid != 1234 || gid != 2345 {
		t.Errorf("created file: mode %v owner %d:%d", st.Mode(), uid, gid)
	}
}

func TestEditorRefusesSpecialFiles(t *testing.T) {
	f, root := newTestFiles(t)
	p := root + "/fifo"
	mustDo(t, mkfifo(p))
	res := doEdit(t, f, EditRequest{Command: "view", Path: p})
	if want := "ERROR:\nFile validation failed for " + p + ": Not a regular file. Only regular files and directories can be viewed or edited by this tool."; res.Content != want {
		t.Errorf("got %q", res.Content)
	}
}

func TestEditorEncodings(t *testing.T) {
	f, root := newTestFiles(t)
	cp1251 := "\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0! \xdd\xf2\xee \xf2\xe5\xf1\xf2\xee\xe2\xe0\xff \xf1\xf2\xf0\xee\xea\xe0\n" // "Привет, мир! Это тестовая строка"
	tests := []struct {
		name, content, old, new, wantView, wantFile string
	}{
		{"utf-8 BOM is hidden and kept", "\xef\xbb\xbfhi\n", "hi", "yo", "hi", "\xef\xbb\xbfyo\n"},
		{"utf-16 with BOM", "\xff\xfeh\x00i\x00\n\x00", "hi", "yo", "hi", "\xff\xfey\x00o\x00\n\x00"},
		{"utf-16 big endian keeps its order", "\xfe\xff\x00h\x00i", "hi", "é", "hi", "\xfe\xff\x00\xe9"},
		{"latin-1 text", "caf\xe9 cr\xe8me\n", "café", "thé", "café crème", "th\xe9 cr\xe8me\n"},
		{"cp1251 text", cp1251, "мир", "свет", "Привет, мир! Это тестовая строка", strings.Replace(cp1251, "\xec\xe8\xf0", "\xf1\xe2\xe5\xf2", 1)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := fmt.Sprintf("%s/enc%d.txt", root, i)
			mustDo(t, os.WriteFile(p, []byte(tc.content), 0o644))
			view := doEdit(t, f, EditRequest{Command: "view", Path: p})
			if !strings.Contains(view.Content, "     1\t"+tc.wantView) {
				t.Errorf("view %q lacks %q", view.Content, tc.wantView)
			}
			res := doEdit(t, f, EditRequest{Command: "str_replace", Path: p, OldStr: ptr(tc.old), NewStr: ptr(tc.new)})
			if strings.HasPrefix(res.Content, "ERROR") {
				t.Fatal(res.Content)
			}
			if got := readFile(t, p); got != tc.wantFile {
				t.Errorf("file %q, want %q", got, tc.wantFile)
			}
		})
	}
}

func TestEditorUnencodableTextLeavesFileUntouched(t *testing.T) {
	f, root := newTestFiles(t)
	p := root + "/l.txt"
	mustDo(t, os.WriteFile(p, []byte("caf\xe9\n"), 0o644))
	res := doEdit(t, f, EditRequest{Command: "str_replace", Path: p, OldStr: ptr("café"), NewStr: ptr("a中b")})
	want := "ERROR:\nRan into 'charmap' codec can't encode character '\\u4e2d' in position 1: character maps to <undefined> while trying to write to " + p
	if res.Content != want {
		t.Errorf("got  %q\nwant %q", res.Content, want)
	}
	if got := readFile(t, p); got != "caf\xe9\n" {
		t.Errorf("file changed to %q", got)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
	if d := len(f.hist.entries[p]); d != 0 {
		t.Errorf("failed edit pushed history (%d)", d)
	}
}

// TestConcurrentUse runs editor commands, writes and reads from several
// goroutines at once (meaningful under -race): each file must end up
// exactly as its own sequence of commands leaves it.
func TestConcurrentUse(t *testing.T) {
	f, root := newTestFiles(t)
	setupTree(t, root, map[string]string{"shared.txt": "shared\n"})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("%s/g%d.txt", root, g)
			ctx := context.Background()
			if res := f.Edit(ctx, EditRequest{Command: "create", Path: p, FileText: ptr("v0\n")}); res.Err != nil {
				t.Error(res.Err)
				return
			}
			for i := range 5 {
				f.Edit(ctx, EditRequest{Command: "str_replace", Path: p, OldStr: ptr(fmt.Sprintf("v%d", i)), NewStr: ptr(fmt.Sprintf("v%d", i+1))})
				f.Edit(ctx, EditRequest{Command: "insert", Path: p, InsertLine: 1, NewStr: ptr("x")})
				f.Edit(ctx, EditRequest{Command: "undo_edit", Path: p})
				if res := f.Read(ctx, ReadRequest{Path: root + "/shared.txt", End: -1}); res.Content != "shared\n" {
					t.Errorf("shared read %+v", res)
				}
				f.Write(ctx, WriteRequest{Path: fmt.Sprintf("%s/w%d.txt", root, g), Content: fmt.Sprint(i), End: -1})
				f.Read(ctx, ReadRequest{Path: root, ImplSource: "oh_aci"})
			}
		}()
	}
	wg.Wait()
	for g := range 6 {
		if got := readFile(t, fmt.Sprintf("%s/g%d.txt", root, g)); got != "v5\n" {
			t.Errorf("g%d = %q", g, got)
		}
		if got := readFile(t, fmt.Sprintf("%s/w%d.txt", root, g)); got != "4\n" {
			t.Errorf("w%d = %q", g, got)
		}
	}
}
