package shell

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// splitCommands splits what an agent typed into the top-level commands that
// OpenHands (through bashlex) would see, so that the same inputs are
// rejected with "Cannot execute multiple commands at once". Statements
// joined on one line by ';' or '&', pipelines, compound commands, heredocs
// and backslash-continued lines are one command; a newline between two
// statements starts another. Text that does not parse is one command: bash
// will report the syntax error itself.
func splitCommands(command string) []string {
	if pyStrip(command) == "" {
		return []string{""}
	}
	p := syntax.NewParser(syntax.Variant(syntax.LangBash))
	f, err := p.Parse(strings.NewReader(command), "")
	if err != nil || len(f.Stmts) == 0 {
		return []string{command}
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
	return out
}

// stmtEndLine is the line on which a statement's own text ends (its ';' or
// '&' included).
func stmtEndLine(st *syntax.Stmt) uint {
	if st.Semicolon.IsValid() {
		return st.Semicolon.Line()
	}
	return st.End().Line()
}
