package pyliteral

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`{'A': 'b'}`, map[string]any{"A": "b"}},
		{`{"A": "b", 'n': 1, 'f': 2.5, 't': True, 'x': None}`, map[string]any{"A": "b", "n": int64(1), "f": 2.5, "t": true, "x": nil}},
		{`["--network=host", '-v']`, []any{"--network=host", "-v"}},
		{`('a', 'b',)`, []any{"a", "b"}},
		{`'it\'s' " ok"`, "it's ok"},
		{`r'a\nb'`, `a\nb`},
		{`'a\nb\t\x41\u00e9'`, "a\nb\tAé"},
		{`-3`, int64(-3)},
		{`1e3`, 1000.0},
		{`{'command': 'str_replace', 'path': '/w/a.py', 'old_str': 'x = 1', 'new_str': "y = '2'"}`,
			map[string]any{"command": "str_replace", "path": "/w/a.py", "old_str": "x = 1", "new_str": "y = '2'"}},
		{"'''multi\nline'''", "multi\nline"},
		{`{}`, map[string]any{}},
		{`[]`, []any{}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `{'a' 1}`, `{1: 2}`, `'unterminated`, `os.system('x')`, `[1, 2`, `1 2`, `__import__('os')`, `'\x4'`} {
		if v, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %#v, want an error", in, v)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{'A': 'b'}`, `["x", 1, 2.5, None]`, `'a\x00'`, `((((1))))`, `{'a': {'b': [True]}}`, `r"\d"`, `0x1f`, `-1e-5`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Parse(s) // must not panic or hang
	})
}
