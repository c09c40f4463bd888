package term

import "testing"

func TestScreenRendering(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello\r\nworld\r\n", "hello\nworld\n"},
		{"abc\rX\r\n", "Xbc\n"},
		{"a\tb", "a       b"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"50%\r\x1b[K100%", "100%"},
		{"ab\bc", "ac"},
		{"trailing   \r\nx", "trailing\nx"},
		{"\x1b]0;title\x07shown", "shown"},
		{"line1\r\nline2\x1b[1A\rLINE1", "LINE1\nline2"},
		{"before\r\n\x1b[?1049hin alt\r\n\x1b[?1049lafter", "before\nafter"},
		{"bad \xff utf8", "bad \ufffd utf8"},
		{"é😀", "é😀"},
	}
	for _, tt := range tests {
		s := NewScreen(1000, 200, 1000)
		s.Write([]byte(tt.in))
		if got := s.Text(); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScreenWrapAndHistory(t *testing.T) {
	s := NewScreen(10, 5, 20)
	long := "0123456789abcdefghij"
	s.Write([]byte(long + "\r\n"))
	if got := s.Text(); got != long+"\n" {
		t.Fatalf("wrapped line not joined: %q", got)
	}
	for i := range 100 {
		s.Write([]byte{byte('a' + i%26), '\r', '\n'})
	}
	if s.dropped == 0 {
		t.Fatal("history did not drop rows")
	}
	// Rows held: at most history + 2×screen.
	if n := len(s.rows) + s.history.len(); n > 20+10 {
		t.Fatalf("%d rows held", n)
	}
}

func FuzzScreen(f *testing.F) {
	for _, s := range []string{"a\r\nb", "\x1b[2J\x1b[H", "\x1b[?1049h\x1b[10A\x1b[5Cx", "\t\t\t\b\b", "\xe4\xbd", "\x1b]8;;x\x1b\\y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewScreen(20, 4, 8)
		s.Write(b)
		_ = s.Text()
		if len(s.rows) > 2*4+1 || s.history.len() > 8 {
			t.Fatalf("unbounded: %d rows, %d history", len(s.rows), s.history.len())
		}
	})
}
