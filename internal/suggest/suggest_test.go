package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"open", "open", 0}, {"opne", "open", 1}, {"nmae", "name", 1}, {"nnone", "none", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestClosest(t *testing.T) {
	words := []string{"none", "open", "allow"}
	for in, want := range map[string]string{"opne": "open", "nnone": "none", "alow": "allow", "xyzzy": "", "openopenopen": ""} {
		if got := Closest(in, words); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
