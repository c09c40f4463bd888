package ids

import (
	"regexp"
	"testing"
)

func TestNew(t *testing.T) {
	hexRE := regexp.MustCompile(`^[0-9a-f]*$`)
	seen := map[string]bool{}
	for _, n := range []int{0, 1, 6, 16} {
		for range 100 {
			s := New(n)
			if len(s) != 2*n || !hexRE.MatchString(s) {
				t.Fatalf("New(%d) = %q", n, s)
			}
			if n >= 6 && seen[s] {
				t.Fatalf("New(%d) repeated %q", n, s)
			}
			seen[s] = true
		}
	}
	if len(Token()) != 32 {
		t.Errorf("Token() = %q, want 32 hex digits", Token())
	}
}
