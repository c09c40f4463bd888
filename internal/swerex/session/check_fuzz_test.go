package session

import (
	"context"
	"os/exec"
	"testing"
)

// FuzzSyntaxAgreesWithBash looks for text the parser accepts and bash -n
// rejects: such text would skip upstream's BashIncorrectSyntaxError and
// reach the shell. (The other way round only costs a bash -n process.)
func FuzzSyntaxAgreesWithBash(f *testing.F) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		f.Skip("no bash")
	}
	for _, s := range []string{"echo hi", "(a", "a='", "for", "[[ $a == b ]]", "A=(); false", "cat <<EOF\nx\nEOF",
		"f() { echo; }", "case x in a) ;; esac", "echo $((1+2))", "if true; then :; fi", "a && b || c", "x=$(echo ')')",
		"echo `date`", "select x in a; do break; done", "coproc cat", "time ls", "! true", "{ echo; }", "echo ${a:-b}",
		"echo hi )", "done", "fi", "then", "echo <(ls)", "a |& b", "echo {a,b}", "declare -A m=([k]=v)", "((i++))",
		"echo \"unterminated", "echo $'\\x41'", "function g { :; }", "while read l; do echo $l; done < f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		if len(cmd) > 512 || !parses(cmd) {
			return
		}
		// testReaper, not exec.Cmd.Wait: the reaper of TestMain waits for
		// every child of this process, so a plain Wait can lose the race
		// and see ECHILD.
		_, stderr, rc, err := bashN(context.Background(), testReaper, bash, nil, cmd)
		if err != nil {
			t.Fatalf("bash -n %q: %v", cmd, err)
		}
		if rc != 0 {
			t.Errorf("the parser accepts %q, bash -n says (%d) %s", cmd, rc, stderr)
		}
	})
}
