package fileops

import (
	"strings"
	"testing"
	"time"
)

func TestLooksBinary(t *testing.T) {
	cjk := strings.Repeat("中文字符", 100) // 1200 bytes, all high
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"empty", "", false},
		{"ascii", "hello world\n", false},
		{"NUL byte", "abc\x00def", true},
		{"0xFF byte", "abc\xffdef", true},
		{"control characters", strings.Repeat("\x01\x02\x03", 100), true},
		{"form feed and backspace are text", "a\f\bb\n", false},
		{"UTF-8 with NUL but four multi-byte characters", "ééé é\x00", false},
		{"UTF-8 with NUL and only three", "ééé\x00", true},
		{"CJK UTF-8, complete within the sample", cjk[:1023], false}, // 1023 = 341 characters
		{"CJK UTF-8 cut mid-character by the sample", cjk[:1024], true},
		{"UTF-16 with BOM", "\xff\xfeh\x00i\x00", false},
		{"UTF-16 without BOM", "h\x00i\x00\n\x00", true},
		{"UTF-32 with BOM", "\xff\xfe\x00\x00h\x00\x00\x00", false},
		{"latin-1 text", "caf\xe9 cr\xe8me", false},
		{"latin-1 with ÿ", "caf\xe9 \xff", true},
		{"cp1251 with я (0xFF)", "\xdd\xf2\xee \xf2\xe5\xf1\xf2\xee\xe2\xe0\xff \xf1\xf2\xf0\xee\xea\xe0", false},
		{"high bytes that are not text", strings.Repeat("\x80\x81\x82\x83\x84", 50), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := looksBinary([]byte(tc.data)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsBinaryPath(t *testing.T) {
	root := t.TempDir()
	setupTree(t, root, map[string]string{"d/": "", "text.pyc": "text", "a.txt": "text", "b.bin": "\x00\x00"})
	mustDo(t, mkfifo(root+"/fifo"))
	tests := map[string]bool{
		root + "/missing.pyc": true, // by name
		root + "/text.pyc":    true,
		root + "/missing.txt": false,
		root + "/d":           false,
		root + "/a.txt":       false,
		root + "/b.bin":       true,
		root + "/fifo":        false, // and must not block
		"a\x00b":              false,
	}
	for p, want := range tests {
		done := make(chan bool)
		go func() { done <- isBinaryPath(p) }()
		select {
		case got := <-done:
			if got != want {
				t.Errorf("isBinaryPath(%q) = %v, want %v", p, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("isBinaryPath(%q) blocked", p)
		}
	}
}
