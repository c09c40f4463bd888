package session

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/syntax"

	"github.com/sbx-dev/sbx/internal/pyrepr"
	"github.com/sbx-dev/sbx/internal/reaper"
	"github.com/sbx-dev/sbx/internal/term"
)

// checkSyntax is upstream's `bash -n` pre-check without its process in
// the common case: text a bash parser accepts is taken as valid; only text
// it rejects goes to bash -n, which is the judge and whose words the error
// carries. (Where the parser is stricter than bash, bash -n accepts and
// the command runs; FuzzSyntaxAgreesWithBash looks for the other way
// round.)
func checkSyntax(ctx context.Context, st term.Starter, bash string, env []string, command string) error {
	if parses(command) {
		return nil
	}
	stdout, stderr, rc, err := bashN(ctx, st, bash, env, command)
	if err != nil {
		return &Error{Kind: KindInternal, Msg: "checking bash syntax: " + err.Error(), Err: err}
	}
	if rc == 0 {
		return nil
	}
	return &Error{
		Kind: KindSyntax,
		Msg: "Error (exit code " + strconv.Itoa(rc) + ") while checking bash command \n" + pyrepr.Str(command) +
			"\n---- Stderr ----\n" + stderr + "\n---- Stdout ----\n" + stdout,
		Extra: map[string]any{"bash_stdout": stdout, "bash_stderr": stderr},
	}
}

func parses(command string) bool {
	// bash's blanks are space and tab only; the parser also skips \r and
	// friends, which bash keeps in words.
	for i := 0; i < len(command); i++ {
		if c := command[i]; c < 0x20 && c != '\t' && c != '\n' {
			return false
		}
	}
	// Backslashes inside backquotes are unquoted in a second pass that
	// the parser does not model exactly.
	if strings.Contains(command, "`") && strings.Contains(command, "\\") {
		return false
	}
	// Upstream feeds the text to bash -n through a heredoc: one trailing
	// newline added.
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash), syntax.KeepComments(true)).Parse(strings.NewReader(command+"\n"), "")
	if err != nil {
		return false
	}
	// Some of what the parser accepts depends on shell options that bash
	// -n runs without (extglob's !(…) patterns): bash decides those.
	// And the parser is more lenient than bash in places FuzzSyntaxAgreesWithBash
	// found: there too bash decides.
	plain := true
	syntax.Walk(f, func(n syntax.Node) bool {
		if !plain {
			return false
		}
		if c, ok := n.(*syntax.Comment); ok {
			// A # glued to what precedes it: bash's rules for where a
			// comment starts are subtler than the parser's.
			if o := int(c.Hash.Offset()); o > 0 && o <= len(command) && !strings.ContainsRune(" \t\n;&|", rune(command[o-1])) {
				plain = false
			}
			return plain
		}
		plain = !lenient(n)
		return plain
	})
	return plain
}

var reserved = map[string]bool{
	"in": true, "do": true, "done": true, "then": true, "fi": true, "else": true, "elif": true, "esac": true,
	"{": true, "}": true, "[[": true, "]]": true, "!": true, "function": true, "case": true, "if": true,
	"while": true, "until": true, "for": true, "select": true, "time": true, "coproc": true,
}

// lenient reports nodes where the parser accepts what bash may not.
func lenient(n syntax.Node) bool {
	switch n := n.(type) {
	case *syntax.ExtGlob:
		return true
	case *syntax.FuncDecl:
		// bash wants a name and a compound command as the body.
		if n.Name == nil || n.Body == nil {
			return true
		}
		switch n.Body.Cmd.(type) {
		case *syntax.Block, *syntax.Subshell, *syntax.IfClause, *syntax.WhileClause, *syntax.ForClause,
			*syntax.CaseClause, *syntax.ArithmCmd, *syntax.TestClause:
		default:
			return true
		}
	case *syntax.CallExpr:
		// A reserved word where a command name goes parses as a plain
		// word here and is an error (or a different command) in bash.
		if len(n.Args) > 0 {
			if w := n.Args[0].Lit(); reserved[w] {
				return true
			}
		}
		// An array assignment glued to the next word ("A=()B=1") is one
		// word to bash, and an error.
		for i, a := range n.Assigns {
			if a.Array == nil {
				continue
			}
			end := a.Array.Rparen.Offset() + 1
			if i+1 < len(n.Assigns) && n.Assigns[i+1].Pos().Offset() == end {
				return true
			}
			if i+1 == len(n.Assigns) && len(n.Args) > 0 && n.Args[0].Pos().Offset() == end {
				return true
			}
		}
	case *syntax.Redirect:
		// bash reads digits right before a redirection operator as its
		// file descriptor (">0>0" is an error there): a bare number as a
		// file target goes to bash.
		if n.Op != syntax.DplIn && n.Op != syntax.DplOut && n.Word != nil && allDigits(n.Word.Lit()) {
			return true
		}
	case *syntax.TimeClause:
		return n.Stmt == nil
	case *syntax.Stmt:
		return n.Cmd == nil
	case *syntax.Subshell:
		return len(n.Stmts) == 0
	case *syntax.Block:
		return len(n.Stmts) == 0
	}
	return false
}

// bashN runs bash -n on the command as upstream does, the text on
// standard input, and returns what bash said. The child goes through the
// starter (sandboxd's reaper) when there is one: a process can be waited
// for only once.
func bashN(ctx context.Context, st term.Starter, bash string, env []string, command string) (stdout, stderr string, rc int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	inR, inW, err := os.Pipe()
	if err != nil {
		return "", "", 0, err
	}
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inW.Close()
		return "", "", 0, err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		inW.Close()
		outW.Close()
		return "", "", 0, err
	}
	defer errR.Close()
	cmd := exec.Command(bash, "-n")
	// bash names itself by argv[0] in its messages; upstream runs it
	// through /usr/bin/env, so it says "bash: line 1: …".
	cmd.Args[0] = "bash"
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var exited <-chan reaper.Status
	var waitErr chan error
	if st != nil {
		exited, err = st.Start(cmd)
	} else {
		err = cmd.Start()
		if err == nil {
			waitErr = make(chan error, 1)
			go func() { waitErr <- cmd.Wait() }()
		}
	}
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		return "", "", 0, err
	}
	go func() {
		io.WriteString(inW, command+"\n")
		inW.Close()
	}()
	outc, errc := readAll(outR), readAll(errR)
	select {
	case s := <-exited:
		rc = s.ExitCode
	case err := <-waitErr:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			rc = ee.ExitCode()
		} else if err != nil {
			return "", "", 0, err
		}
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		outR.SetReadDeadline(time.Now())
		errR.SetReadDeadline(time.Now())
		<-outc
		<-errc
		return "", "", 0, ctx.Err()
	}
	return decode(<-outc), decode(<-errc), rc, nil
}

// readAll reads r to its end, keeping at most 1 MiB.
func readAll(r io.Reader) <-chan []byte {
	c := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
		io.Copy(io.Discard, r)
		c <- b
	}()
	return c
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
