package pyrepr

import (
	"math"
	"testing"
)

// Expected values are what CPython 3.11 prints for repr() of the same
// value.
func TestStr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `''`},
		{"echo hi", `'echo hi'`},
		{"it's", `"it's"`},
		{`it's "x"`, `'it\'s "x"'`},
		{"a\nb\tc\r", `'a\nb\tc\r'`},
		{"back\\slash", `'back\\slash'`},
		{"\x00\x1b\x7f", `'\x00\x1b\x7f'`},
		{"é ü", `'é ü'`},
		{"\u00a0", `'\xa0'`},
		{"\u200b", `'\u200b'`},
		{"\U0001F600", "'\U0001F600'"},
		{"\U000E0001", `'\U000e0001'`},
		{"a\xffb", `'a\xffb'`},
	}
	for _, tt := range tests {
		if got := Str(tt.in); got != tt.want {
			t.Errorf("Str(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0.1, "0.1"}, {5, "5.0"}, {0, "0.0"}, {-2.5, "-2.5"}, {25, "25.0"},
		{1e-5, "1e-05"}, {0.0001, "0.0001"}, {1e16, "1e+16"}, {1.5e16, "1.5e+16"},
		{123456789012345.0, "123456789012345.0"}, {1e300, "1e+300"},
		{math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {math.NaN(), "nan"},
	}
	for _, tt := range tests {
		if got := Float(tt.in); got != tt.want {
			t.Errorf("Float(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
