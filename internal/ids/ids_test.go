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

func TestUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := UUID(), UUID()
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Errorf("UUID() = %q, %q", a, b)
	}
}
