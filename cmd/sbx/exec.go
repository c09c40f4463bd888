package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
)

// execOptions are `sbx exec`'s flags and operands.
type execOptions struct {
	ID      string
	Command []string
	Timeout time.Duration
	// Interactive (-i) and TTY (-t) run the command on a terminal in the
	// sandbox instead (attach.go).
	Interactive, TTY bool
}

const execAbout = `
Run COMMAND in the shell of a running sandbox, print its output and exit
with its exit status. The shell is the sandbox's persistent one: its
working directory and variables carry over between calls. The sandbox is
left as it was.`

func (a *app) execCmd() *cobra.Command {
	var o execOptions
	c := newCommand("exec [OPTIONS] ID [--] COMMAND [ARG...]", "Run a command in a running sandbox", execAbout,
		func(c *cobra.Command, rest []string) error {
			if len(rest) > 1 && rest[1] == "--" {
				// Only right after the id: a later -- belongs to the command.
				rest = append(rest[:1:1], rest[2:]...)
			}
			if len(rest) < 2 {
				return usageErrorf("exec", "want a sandbox id and a command: sbx exec ID -- COMMAND")
			}
			if o.Timeout < 0 {
				return usageErrorf("exec", "--timeout must not be negative")
			}
			o.ID, o.Command = rest[0], rest[1:]
			if o.Interactive || o.TTY {
				return a.execTTY(c.Context(), o)
			}
			return a.execIn(c.Context(), o)
		})
	c.Flags().DurationVar(&o.Timeout, "timeout", 0, "stop waiting after `DURATION` and interrupt the command (default: none)")
	c.Flags().BoolVarP(&o.Interactive, "interactive", "i", false, "forward stdin to the command (with -t)")
	c.Flags().BoolVarP(&o.TTY, "tty", "t", false, "run the command on a terminal, as `docker exec -t`")
	// The command's own flags (sh -c) follow the id.
	c.Flags().SetInterspersed(false)
	c.ValidArgsFunction = a.completeIDs(1)
	return c
}

// execIn is `sbx exec`: one SDK call, which looks at the sandbox once
// and refuses one that is not running rather than starting it behind the
// user's back.
func (a *app) execIn(ctx context.Context, o execOptions) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	res, err := rt.Exec(ctx, o.ID, shellJoin(o.Command), a.sdkExecOptions(o.Timeout))
	return a.commandResult(res, err, o.Timeout, o.ID)
}

// sdkExecOptions are the SDK's options for a CLI --timeout: 0 is none, and a
// command that runs into it is interrupted, so the shell is free for the
// next `sbx exec`. Output is streamed to stdout as the command produces it,
// and Ctrl-C (the context's end) interrupts the command in the sandbox.
func (a *app) sdkExecOptions(timeout time.Duration) sbx.ExecOptions {
	o := sbx.ExecOptions{Timeout: -1, Output: a.stdout}
	if timeout > 0 {
		o.Timeout, o.Interrupt = timeout, true
	}
	return o
}

// commandResult prints a command's output and turns its outcome into the
// CLI's: the command's exit status, or 124 for --timeout.
func (a *app) commandResult(res sbx.ExecResult, err error, timeout time.Duration, id string) error {
	// The output was streamed as it came (sdkExecOptions).
	switch {
	case errors.Is(err, sbx.ErrTimeout):
		return timedOut{fmt.Sprintf("the command did not finish within %s", timeout)}
	case err != nil:
		return withHint(err, id)
	}
	return exitStatus(res.ExitCode)
}

// writeOutput prints an observation's content. sandboxd strips leading and
// trailing blank space from it, so the final newline is put back.
func writeOutput(w io.Writer, content string) {
	if content != "" {
		io.WriteString(w, content)
		io.WriteString(w, "\n")
	}
}
