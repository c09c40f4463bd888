package fileops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// The fuzzers check what must hold for any input: no panic or hang, a
// well-formed answer, a file that is either untouched (on error) or exactly
// what an independent model of the command predicts, and no temporary file
// left behind.

// fuzzFile writes content to a fresh file name, so that undo histories of
// iterations never mix.
func fuzzFile(t *testing.T, root string, seq *atomic.Int64, content string) string {
	p := filepath.Join(root, fmt.Sprintf("f%d.txt", seq.Add(1)))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkNoLeftovers(t *testing.T, p string) {
	entries, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".sbx-write-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// plainUTF8 reports whether the editor will treat content as ordinary UTF-8
// text, where the models below apply.
func plainUTF8(content string) bool {
	return utf8.ValidString(content) && !looksBinary([]byte(content[:min(len(content), binarySniffSize)])) &&
		!strings.HasPrefix(content, "\xef\xbb\xbf")
}

// naiveCount counts non-overlapping occurrences scanning every position.
func naiveCount(text, sub string) (count, first int) {
	first = -1
	if sub == "" {
		return utf8.RuneCountInString(text) + 1, 0
	}
	for i := 0; i+len(sub) <= len(text); {
		if text[i:i+len(sub)] == sub {
			if first < 0 {
				first = i
			}
			count++
			i += len(sub)
			continue
		}
		i++
	}
	return count, first
}

func FuzzStrReplace(f *testing.F) {
	f.Add("This is a test file.\nThis file is for testing purposes.", "test file", "sample file")
	f.Add("a\r\nb\r\n", "a", "c")
	f.Add("", "", "x")
	f.Add("aaa", "aa", "b")
	f.Add("x  y\n", "  y \n", "\tz")
	f.Add("caf\xe9\n", "café", "中")
	f.Add("\x00\x01", "\x00", "x")
	files, root := newTestFiles(f)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, content, oldStr, newStr string) {
		if !utf8.ValidString(oldStr) || !utf8.ValidString(newStr) {
			t.Skip("JSON strings are valid UTF-8")
		}
		p := fuzzFile(t, root, &seq, content)
		res := files.Edit(context.Background(), EditRequest{Command: "str_replace", Path: p, OldStr: &oldStr, NewStr: &newStr})
		if res.Err != nil {
			t.Fatalf("request failed: %v", res.Err)
		}
		after, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkNoLeftovers(t, p)
		if strings.HasPrefix(res.Content, "ERROR:\n") {
			if string(after) != content {
				t.Fatalf("failed edit changed the file: %q -> %q", content, after)
			}
			if *res.Diff != "" {
				t.Fatalf("failed edit has a diff")
			}
			return
		}
		if !strings.HasPrefix(res.Content, "The file "+p+" has been edited. Here's the result of running `cat -n` on a snippet of "+p+":\n") ||
			!strings.HasSuffix(res.Content, "\n"+reviewReplace) {
			t.Fatalf("malformed success output %q", res.Content)
		}
		if !plainUTF8(content) {
			return
		}
		text := translateNewlines(content)
		o, n := oldStr, newStr
		count, at := naiveCount(text, o)
		if count == 0 {
			o, n = pyStrip(o), pyStrip(n)
			count, at = naiveCount(text, o)
		}
		if count != 1 {
			t.Fatalf("replaced although old_str occurs %d times", count)
		}
		if want := text[:at] + n + text[at+len(o):]; string(after) != want {
			t.Fatalf("file %q, want %q", after, want)
		}
		if !plainUTF8(string(after)) {
			return // the edit made the file binary: undo is refused, as in OpenHands
		}
		undo := files.Edit(context.Background(), EditRequest{Command: "undo_edit", Path: p})
		if undo.Err != nil || strings.HasPrefix(undo.Content, "ERROR") {
			t.Fatalf("undo: %v %q", undo.Err, undo.Content)
		}
		if got, _ := os.ReadFile(p); string(got) != text {
			t.Fatalf("undo restored %q, want %q", got, text)
		}
	})
}

func FuzzInsert(f *testing.F) {
	f.Add("Line 1\nLine 2\n", "1", "")
	f.Add("Line 1\nLine 2", "2", "glued\nnext")
	f.Add("a\r\nb", `"1"`, "x\r\ny")
	f.Add("", "0", "x")
	f.Add("a\nb\nc\n", "1.5", "f")
	f.Add("a\n", "true", "b")
	f.Add("a\n", `[1]`, "b")
	f.Add("a\n", `" 1_0 "`, "b")
	f.Add("a\n", `{"x": 1}`, "b")
	f.Add("a\n", "-1", "b")
	f.Add("a\n", "1e309", "b")
	files, root := newTestFiles(f)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, content, insertLine, newStr string) {
		if !utf8.ValidString(newStr) {
			t.Skip("JSON strings are valid UTF-8")
		}
		p := fuzzFile(t, root, &seq, content)
		res := files.Edit(context.Background(), EditRequest{Command: "insert", Path: p, InsertLine: json.RawMessage(insertLine), NewStr: &newStr})
		after, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkNoLeftovers(t, p)
		if res.Err != nil {
			// Only JSON that does not parse is refused as a request.
			if !errdefs.IsInvalidArgument(res.Err) || json.Valid([]byte(insertLine)) {
				t.Fatalf("request failed: %v", res.Err)
			}
			if string(after) != content {
				t.Fatal("refused request changed the file")
			}
			return
		}
		if strings.HasPrefix(res.Content, "ERROR:\n") {
			if string(after) != content {
				t.Fatalf("failed insert changed the file: %q -> %q", content, after)
			}
			return
		}
		if !strings.HasPrefix(res.Content, "The file "+p+" has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n") ||
			!strings.HasSuffix(res.Content, "\n"+reviewInsert) {
			t.Fatalf("malformed success output %q", res.Content)
		}
		if !plainUTF8(content) {
			return
		}
		k, ok := modelInsertLine(insertLine)
		if !ok {
			return
		}
		lines := splitKeepNewlines(translateNewlines(content))
		if k < 0 || k > len(lines) {
			t.Fatalf("inserted at %d of %d lines", k, len(lines))
		}
		var want strings.Builder
		want.WriteString(strings.Join(lines[:k], ""))
		for _, l := range strings.Split(newStr, "\n") {
			want.WriteString(l + "\n")
		}
		want.WriteString(strings.Join(lines[k:], ""))
		if string(after) != want.String() {
			t.Fatalf("file %q, want %q", after, want.String())
		}
	})
}

// modelInsertLine reads the insertion point from plain JSON integers,
// floats and digit strings; anything else is left to the implementation.
func modelInsertLine(raw string) (int, bool) {
	raw = strings.TrimSpace(raw)
	if s, err := strconv.Unquote(raw); err == nil && strings.HasPrefix(raw, `"`) {
		raw = strings.TrimSpace(s)
	}
	if i, err := strconv.Atoi(raw); err == nil {
		return i, true
	}
	if x, err := strconv.ParseFloat(raw, 64); err == nil && x >= 0 && x < 1e9 {
		return int(x), true
	}
	return 0, false
}

func FuzzViewRange(f *testing.F) {
	f.Add("a\nb\nc\n", "[1, 2]")
	f.Add("a\nb\nc\n", "[2, -1]")
	f.Add("a\nb\nc\n", "[2, 9]")
	f.Add("a\fb\nc\n", "[1, 1]")
	f.Add("a\n", "[0, 1]")
	f.Add("a\n", "[1.0, 1]")
	f.Add("a\n", `"12"`)
	f.Add("a\n", "5")
	f.Add("a\n", "[]")
	f.Add("a\n", `{"a": [1, {"b": null}]}`)
	f.Add("a\n", "[99999999999999999999999, -99999999999999999999999]")
	f.Add("", "[1, 1]")
	files, root := newTestFiles(f)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, content, viewRange string) {
		p := fuzzFile(t, root, &seq, content)
		res := files.Read(context.Background(), ReadRequest{Path: p, ImplSource: "oh_aci", ViewRange: json.RawMessage(viewRange)})
		if after, _ := os.ReadFile(p); string(after) != content {
			t.Fatal("view changed the file")
		}
		switch {
		case res.Err != nil:
			if !errdefs.IsInvalidArgument(res.Err) || json.Valid([]byte(viewRange)) {
				t.Fatalf("request failed: %v", res.Err)
			}
			return
		case res.ErrorText != "":
			if res.ErrorText != errorBinaryFile {
				t.Fatalf("unexpected error text %q", res.ErrorText)
			}
			return
		}
		header := "Here's the result of running `cat -n` on " + p + ":\n"
		body, ok := strings.CutPrefix(res.Content, header)
		if !ok {
			_, rest, noted := strings.Cut(res.Content, " lines in this file.\n")
			body, ok = strings.CutPrefix(rest, header)
			ok = ok && noted && strings.HasPrefix(res.Content, "NOTE: We only show up to ")
		}
		if !ok {
			if !strings.HasPrefix(res.Content, "ERROR:\n") {
				t.Fatalf("malformed output %q", res.Content)
			}
			return
		}
		if !plainUTF8(content) || strings.Contains(body, "<response clipped>") {
			return
		}
		a, b, ok := twoJSONInts(viewRange)
		if !ok {
			return
		}
		lines := splitKeepNewlines(translateNewlines(content))
		n := len(lines)
		if b == -1 || b > n {
			b = n
		}
		if a < 1 || a > n || b < a {
			t.Fatalf("viewed an invalid range [%d, %d] of %d lines", a, b, n)
		}
		want := strings.Join(pySplitlines(strings.Join(lines[a-1:b], "")), "\n")
		var got []string
		for i, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
			num, text, _ := strings.Cut(l, "\t")
			if strings.TrimSpace(num) != strconv.Itoa(a+i) {
				t.Fatalf("line %d numbered %q", i, num)
			}
			got = append(got, text)
		}
		if strings.Join(got, "\n") != want {
			t.Fatalf("shown %q, want %q", strings.Join(got, "\n"), want)
		}
	})
}

// twoJSONInts accepts exactly a JSON array of two integers.
func twoJSONInts(raw string) (int, int, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var v []json.Number
	if err := dec.Decode(&v); err != nil || len(v) != 2 || dec.More() {
		return 0, 0, false
	}
	a, err1 := strconv.Atoi(v[0].String())
	b, err2 := strconv.Atoi(v[1].String())
	return a, b, err1 == nil && err2 == nil
}

func FuzzUnifiedDiff(f *testing.F) {
	f.Add("a\nb\nc", "a\nc\nd")
	f.Add("", "x")
	f.Add("y\nx\nx", strings.Repeat("x\n", 200)+"y")
	f.Fuzz(func(t *testing.T, oldText, newText string) {
		diff, err := unifiedDiff(context.Background(), oldText, newText, "p")
		if err != nil {
			t.Fatal(err)
		}
		a, b := strings.Split(oldText, "\n"), strings.Split(newText, "\n")
		if diff == "" {
			if oldText != newText {
				t.Fatal("no diff for different texts")
			}
			return
		}
		lines := strings.Split(diff, "\n")
		if lines[0] != "--- p" || lines[1] != "+++ p" {
			t.Fatalf("header %q", lines[:2])
		}
		// Rebuild b from a and the hunks: their ranges must be consistent
		// and their lines the right-stripped lines of both texts.
		var rebuilt []string
		ai := 0
		for i := 2; i < len(lines); {
			var s1, l1, s2, l2 int
			if !parseHunkHeader(lines[i], &s1, &l1, &s2, &l2) {
				t.Fatalf("bad hunk header %q", lines[i])
			}
			if l1 == 0 {
				s1++ // an empty range names the line before it
			}
			rebuilt = append(rebuilt, a[ai:s1-1]...)
			ai = s1 - 1
			i++
			for k := range l1 {
				if lines[i] != pyRStrip("-"+a[ai+k]) {
					t.Fatalf("deleted line %q, want %q", lines[i], a[ai+k])
				}
				i++
			}
			ai += l1
			if l2 == 0 {
				s2++
			}
			for k := range l2 {
				if lines[i] != pyRStrip("+"+b[s2-1+k]) {
					t.Fatalf("added line %q, want %q", lines[i], b[s2-1+k])
				}
				rebuilt = append(rebuilt, b[s2-1+k])
				i++
			}
		}
		rebuilt = append(rebuilt, a[ai:]...)
		if strings.Join(rebuilt, "\n") != newText {
			t.Fatalf("hunks do not turn old into new")
		}
	})
}

func parseHunkHeader(h string, s1, l1, s2, l2 *int) bool {
	var r1, r2 string
	if _, err := fmt.Sscanf(h, "@@ -%s +%s @@", &r1, &r2); err != nil {
		return false
	}
	parse := func(r string, s, l *int) bool {
		start, length, found := strings.Cut(r, ",")
		var err1, err2 error
		*s, err1 = strconv.Atoi(start)
		*l = 1
		if found {
			*l, err2 = strconv.Atoi(length)
		}
		return err1 == nil && err2 == nil
	}
	return parse(r1, s1, l1) && parse(r2, s2, l2)
}
