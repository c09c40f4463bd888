package fileops

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"syscall"
	"testing"

	"github.com/sbx-dev/sbx/internal/pyrepr"
)

// Expected values are what CPython prints for the same input.

func TestPyRepr(t *testing.T) {
	tests := map[string]string{
		"/a/b":         `'/a/b'`,
		"it's":         `"it's"`,
		`it's "x"`:     `'it\'s "x"'`,
		"tab\tnl\n\r":  `'tab\tnl\n\r'`,
		"back\\slash":  `'back\\slash'`,
		"\x00\x1f\x7f": `'\x00\x1f\x7f'`,
		"é中":           `'é中'`,
		"\u00a0\u0085": `'\xa0\x85'`,
		"\u200b":       `'\u200b'`,
		"\U000e0001":   `'\U000e0001'`,
	}
	for in, want := range tests {
		if got := pyrepr.Str(in); got != want {
			t.Errorf("pyrepr.Str(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPyFloatRepr(t *testing.T) {
	tenth, fifth := 0.1, 0.2 // variables: Go constant arithmetic is exact
	tests := []struct {
		in   float64
		want string
	}{
		{1.0, "1.0"}, {2.5, "2.5"}, {math.Copysign(0, -1), "-0.0"}, {0, "0.0"}, {1e16, "1e+16"}, {1e-5, "1e-05"},
		{1e22, "1e+22"}, {0.0001, "0.0001"}, {123456789012345678, "1.2345678901234568e+17"},
		{1234567890123456, "1234567890123456.0"}, {tenth + fifth, "0.30000000000000004"}, {math.Inf(1), "inf"}, {-1.5e-7, "-1.5e-07"},
	}
	for _, tc := range tests {
		if got := pyrepr.Float(tc.in); got != tc.want {
			t.Errorf("pyrepr.Float(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestPyParseInt(t *testing.T) {
	valid := map[string]string{
		"185": "185", " 1_000 ": "1000", "+5": "5", "-0": "0", "00012": "12", "٣": "3", "\u3000७\n": "7",
		"99999999999999999999": "99999999999999999999", "-12": "-12",
	}
	for in, want := range valid {
		text, _, ok := pyParseInt(in)
		if !ok || text != want {
			t.Errorf("pyParseInt(%q) = %q %v, want %q", in, text, ok, want)
		}
	}
	for _, in := range []string{"", " ", "1.0", "0x1", "1__0", "_1", "1_", "+", "abc", "1 2", "+_1"} {
		if _, _, ok := pyParseInt(in); ok {
			t.Errorf("pyParseInt(%q) accepted", in)
		}
	}
	if _, v, _ := pyParseInt("99999999999999999999"); v != math.MaxInt64 {
		t.Errorf("huge value not saturated: %d", v)
	}
}

func TestPySplitlinesAndSpace(t *testing.T) {
	got := pySplitlines("a\x0bb\x0cc\x1cd\x1fe\u0085f\u2028g\r\nh\ri\n")
	want := []string{"a", "b", "c", "d\x1fe", "f", "g", "h", "i"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pySplitlines = %q", got)
	}
	if got := pySplitlines(""); got != nil {
		t.Errorf("pySplitlines(\"\") = %q", got)
	}
	spaces := []rune{0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000}
	for _, r := range spaces {
		if !pyIsSpace(r) {
			t.Errorf("%U should be whitespace", r)
		}
	}
	for _, r := range []rune{'a', 0x200b, 0x180e, 0xfeff, 0} {
		if pyIsSpace(r) {
			t.Errorf("%U should not be whitespace", r)
		}
	}
}

func TestPyPaths(t *testing.T) {
	for in, want := range map[string]string{
		"": ".", "/": "/", "//": "//", "///": "/", "//a//b/./c/": "//a/b/c", "///a": "/a", "a/../b": "a/../b", "./a": "a", ".": ".",
	} {
		if got := pyPath(in); got != want {
			t.Errorf("pyPath(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range [][3]string{{"/w", "a/b", "/w/a/b"}, {"/", "x", "/x"}, {"/w", "/abs", "/abs"}, {"/w/", ".", "/w"}, {"/w", "../x", "/w/../x"}} {
		if got := pyJoin(c[0], c[1]); got != c[2] {
			t.Errorf("pyJoin(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	for in, want := range map[string]string{"/a/b.PDF": ".PDF", "/a/.pdf": "", "/a/b.": "", "/a/b.tar.gz": ".gz", "/a.b/c": "", "/": ""} {
		if got := pySuffix(in); got != want {
			t.Errorf("pySuffix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPyOSError(t *testing.T) {
	err := &os.PathError{Op: "open", Path: "/tmp/x.tmp", Err: syscall.ENOENT}
	if got := pyOSError(err, "/a/it's"); got != `[Errno 2] No such file or directory: "/a/it's"` {
		t.Errorf("got %s", got)
	}
	if got := pyOSError(syscall.EACCES, "/x"); got != "[Errno 13] Permission denied: '/x'" {
		t.Errorf("got %s", got)
	}
	if got := pyOSError(syscall.EINVAL, "a\x00b"); got != "embedded null byte" {
		t.Errorf("got %s", got)
	}
}

func TestPyValues(t *testing.T) {
	tests := []struct {
		in       any
		str      string
		truthy   bool
		typeName string
	}{
		{nil, "None", false, "NoneType"},
		{true, "True", true, "bool"},
		{json.Number("5"), "5", true, "int"},
		{json.Number("-0"), "0", false, "int"},
		{json.Number("5.0"), "5.0", true, "float"},
		{json.Number("1e400"), "inf", true, "float"},
		{7.0, "7", true, "int"}, // a float64 from encoding/json stands for the integer
		{7.5, "7.5", true, "float"},
		{"x", "x", true, "str"},
		{[]any{1.0, "a", nil, false, []any{}}, "[1, 'a', None, False, []]", true, "list"},
		{map[string]any{"b": 1.0, "a": "it's"}, `{'a': "it's", 'b': 1}`, true, "dict"},
		{json.RawMessage(`{"b": 1, "a": [2.50, -0, 1E2], "b": 3}`), "{'b': 3, 'a': [2.5, 0, 100.0]}", true, "dict"},
		{json.RawMessage(` `), "None", false, "NoneType"},
	}
	for _, tc := range tests {
		v, err := pyValueOf(tc.in)
		if err != nil {
			t.Errorf("%v: %v", tc.in, err)
			continue
		}
		if v.str() != tc.str || v.truthy() != tc.truthy || v.typeName() != tc.typeName {
			t.Errorf("%v: str %q truthy %v type %s", tc.in, v.str(), v.truthy(), v.typeName())
		}
	}
	for _, bad := range []any{json.RawMessage(`[1,`), json.RawMessage(`1 2`), struct{}{}} {
		if _, err := pyValueOf(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestFnmatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{`/w/\.*`, "/w/.git", true},
		{`/w/\.*`, "/w/.git/config", true}, // "*" crosses "/"
		{`/w/\.*`, "/w/x", false},
		{`/w/*/\.*`, "/w/a/.h", true},
		{`/w/*/\.*`, "/w/a/b/.h", true},
		{`/w/*/\.*`, "/w/.h", false},
		{`/w/a[1]/\.*`, "/w/a[1]/.h", false}, // the bracket is a set
		{`/w/a[1]/\.*`, "/w/a1/.h", true},
		{`/w/a[!x]?`, "/w/ab中", true},
		{`/w/[a-c]`, "/w/b", true},
		{`/w/[a-c]`, "/w/d", false},
		{`/w/[`, "/w/[", true}, // unterminated bracket matches itself
		{`*`, "", true},
		{`?`, "", false},
	}
	for _, tc := range tests {
		if got := fnmatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestHistoryDepth(t *testing.T) {
	h, err := newHistory(t.TempDir())
	mustDo(t, err)
	defer h.close()
	for i := range 15 {
		mustDo(t, h.push("/f", string(rune('a'+i))))
	}
	if len(h.entries["/f"]) != historyDepth {
		t.Fatalf("depth %d", len(h.entries["/f"]))
	}
	entries, _ := os.ReadDir(h.dir)
	if len(entries) != historyDepth {
		t.Errorf("%d entry files on disk", len(entries))
	}
	for i := 14; i >= 5; i-- {
		text, ok, err := h.pop("/f")
		if err != nil || !ok || text != string(rune('a'+i)) {
			t.Fatalf("pop = %q %v %v", text, ok, err)
		}
	}
	if _, ok, _ := h.pop("/f"); ok {
		t.Error("popped past the depth")
	}
	if entries, _ := os.ReadDir(h.dir); len(entries) != 0 {
		t.Errorf("%d files left", len(entries))
	}
}
