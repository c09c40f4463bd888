package shell

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/sbx-dev/sbx/internal/bashlex"
)

// splitCommands splits what an agent typed into the top-level commands that
// OpenHands (through bashlex) would see, so that the same inputs are
// rejected with "Cannot execute multiple commands at once". Statements
// joined on one line by ';' or '&', pipelines, compound commands, heredocs
// and backslash-continued lines are one command; a newline between two
// statements starts another. Text that does not parse is one command: bash
// will report the syntax error itself.
func splitCommands(command string) []string {
	cmds, _ := splitForBash(command)
	return cmds
}

// splitForBash is splitCommands that also reports whether the text, though
// accepted as one command, holds several top-level lines. bash would then
// show a prompt after each line and the reply would be cut at the first;
// the caller types such text as one { …; } group instead.
func splitForBash(command string) (cmds []string, group bool) {
	if pyStrip(command) == "" {
		return []string{""}, false
	}
	p := syntax.NewParser(syntax.Variant(syntax.LangBash))
	f, err := p.Parse(strings.NewReader(command), "")
	if err != nil || len(f.Stmts) == 0 {
		return []string{command}, false
	}
	if bashlex.Fails(f) {
		// Grouping a single multi-line statement is harmless, so any
		// newline will do.
		return []string{command}, strings.Contains(command, "\n")
	}
	// Byte offsets at which a new top-level command starts.
	var starts []int
	prevEndLine := uint(0)
	for i, st := range f.Stmts {
		if i == 0 || st.Pos().Line() != prevEndLine {
			starts = append(starts, int(st.Pos().Offset()))
		}
		prevEndLine = stmtEndLine(st)
	}
	var out []string
	if lead := command[:starts[0]]; pyStrip(lead) != "" {
		// A leading comment counts as a command of its own, as in bashlex.
		out = append(out, pyRstrip(lead))
	}
	for i, s := range starts {
		end := len(command)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		out = append(out, pyRstrip(command[s:end]))
	}
	return out, false
}

// stmtEndLine is the line on which a statement's own text ends (its ';' or
// '&' included).
func stmtEndLine(st *syntax.Stmt) uint {
	if st.Semicolon.IsValid() {
		return st.Semicolon.Line()
	}
	return st.End().Line()
}
