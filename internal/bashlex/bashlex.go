// Package bashlex predicts where bashlex, the Python bash parser that
// OpenHands and SWE-ReX split agents' commands with, gives up. Both fall
// back to sending the text whole when it does, and agents rely on what
// follows (OpenHands runs every line; SWE-ReX waits for its own end
// marker), so sbx must know when without running Python.
package bashlex

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Fails reports whether the input uses a construct that bashlex cannot
// parse. The list is bashlex 0.18's: [[ ]], $(( )), $[ ], for (( )),
// case, select, coproc, time, array assignments, and quoted heredoc
// delimiters.
func Fails(f *syntax.File) bool {
	fails := false
	syntax.Walk(f, func(n syntax.Node) bool {
		if fails {
			return false
		}
		switch x := n.(type) {
		case *syntax.TestClause, *syntax.ArithmExp, *syntax.CaseClause,
			*syntax.TimeClause, *syntax.CoprocClause, *syntax.CStyleLoop:
			fails = true
		case *syntax.ForClause:
			fails = x.Select
		case *syntax.Assign:
			fails = x.Array != nil
		case *syntax.Redirect:
			fails = x.Hdoc != nil && quotedWord(x.Word)
		}
		return !fails
	})
	return fails
}

func quotedWord(w *syntax.Word) bool {
	if w == nil {
		return false
	}
	for _, p := range w.Parts {
		switch x := p.(type) {
		case *syntax.SglQuoted, *syntax.DblQuoted:
			return true
		case *syntax.Lit:
			if strings.Contains(x.Value, "\\") {
				return true
			}
		}
	}
	return false
}
