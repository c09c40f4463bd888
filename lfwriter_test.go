package sbx

import (
	"strings"
	"testing"
)

func TestLFWriterJoinsCRLFAcrossChunks(t *testing.T) {
	for _, tt := range []struct {
		chunks []string
		want   string
	}{
		{[]string{"a\r\nb\r\n"}, "a\nb\n"},
		{[]string{"a\r", "\nb"}, "a\nb"},
		{[]string{"50%\r", "100%\r\n"}, "50%\r100%\n"},
		{[]string{"end\r"}, "end\r"},
		{[]string{"", "x"}, "x"},
	} {
		var b strings.Builder
		w := &lfWriter{w: &b}
		for _, c := range tt.chunks {
			if err := w.write(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.chunks, b.String(), tt.want)
		}
	}
}
