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
	// Upstream feeds the text to bash -n through a heredoc: one trailing
	// newline added.
	_, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(command+"\n"), "")
	return err == nil
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
