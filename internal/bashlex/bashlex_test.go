package bashlex

import (
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"
)

// The cases are what bashlex 0.18 does with them (SWE-ReX's
// test_execution.py names several: [[ ]] and A=() are "bugs in bashlex").
func TestFails(t *testing.T) {
	for cmd, want := range map[string]bool{
		"echo hi":                         false,
		"cat <<EOF\nx\nEOF":               false,
		"cat <<'EOF'\nx\nEOF":             true,
		"[[ $a == $a ]]":                  true,
		"A=(); false":                     true,
		"echo $((1+2))":                   true,
		"for ((i=0;i<3;i++)); do :; done": true,
		"for i in 1 2; do :; done":        false,
		"case x in x) ;; esac":            true,
		"select x in a; do break; done":   true,
		"time ls":                         true,
		"a | b && c; d &":                 false,
	} {
		f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(cmd), "")
		if err != nil {
			t.Fatalf("%q: %v", cmd, err)
		}
		if got := Fails(f); got != want {
			t.Errorf("Fails(%q) = %v, want %v", cmd, got, want)
		}
	}
}
