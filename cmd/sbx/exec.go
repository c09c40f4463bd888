package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// execOptions are `sbx exec`'s flags and operands.
type execOptions struct {
	ID      string
	Command []string
	Timeout time.Duration
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
			return a.execIn(c.Context(), o)
		})
	c.Flags().DurationVar(&o.Timeout, "timeout", 0, "stop waiting after `DURATION` and interrupt the command (default: none)")
	// The command's own flags (sh -c) follow the id.
	c.Flags().SetInterspersed(false)
	c.ValidArgsFunction = a.completeIDs(1)
	return c
}

// execIn is `sbx exec`.
func (a *app) execIn(ctx context.Context, o execOptions) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	// Attach would start a stopped sandbox or resume a paused one; exec
	// should not change a sandbox's state behind the user's back.
	info, err := rt.Get(ctx, o.ID)
	if err != nil {
		return withHint(err, o.ID)
	}
	switch info.State {
	case "running":
	case "paused":
		return fmt.Errorf("sandbox %s is paused; resume it with `sbx resume %s`", o.ID, o.ID)
	default:
		return fmt.Errorf("sandbox %s is %s; start it with `sbx start %s`", o.ID, info.State, o.ID)
	}
	sb, err := rt.Attach(ctx, o.ID)
	if err != nil {
		return withHint(err, o.ID)
	}
	defer sb.Close(context.WithoutCancel(ctx))
	code, err := runCommand(ctx, sb.Client, shellJoin(o.Command), o.Timeout, a.stdout)
	var to timedOut
	if errors.As(err, &to) {
		// The shell outlives this call: left running, the command would
		// keep it busy and refuse the next `sbx exec`. (After Ctrl-C the
		// action still holds sandboxd, so there is nothing to send to.)
		cctx, cancel := cleanupContext(ctx)
		_, _ = sb.Execute(cctx, inputAction("C-c", 5))
		cancel()
	}
	if err != nil {
		return err
	}
	return exitStatus(code)
}

// runCommand runs command in the sandbox's shell until it ends (or the
// hard timeout passes), writes its output to w and returns its exit code.
func runCommand(ctx context.Context, c *sandboxapi.Client, command string, timeout time.Duration, w io.Writer) (int, error) {
	act, err := sandboxapi.NewAction(sandboxapi.ActionRun, sandboxapi.CmdRunArgs{
		Command: command, Blocking: true, ConfirmationState: "confirmed", SecurityRisk: -1,
	}, timeout.Seconds())
	if err != nil {
		return 0, err
	}
	obs, err := c.Execute(ctx, act)
	if err != nil {
		return 0, fmt.Errorf("running the command: %w", err)
	}
	if obs.Observation != sandboxapi.ObservationRun {
		return 0, fmt.Errorf("the sandbox did not run the command: %s", obs.Content)
	}
	ex, err := obs.CmdOutput()
	if err != nil {
		return 0, err
	}
	writeOutput(w, obs.Content)
	if ex.Metadata.ExitCode == -1 {
		if timeout > 0 {
			return -1, timedOut{fmt.Sprintf("the command did not finish within %s", timeout)}
		}
		return -1, errors.New("the sandbox's shell returned before the command finished" + ex.Metadata.Suffix)
	}
	return ex.Metadata.ExitCode, nil
}

// writeOutput prints an observation's content. sandboxd strips leading and
// trailing blank space from it, so the final newline is put back.
func writeOutput(w io.Writer, content string) {
	if content != "" {
		io.WriteString(w, content)
		io.WriteString(w, "\n")
	}
}

// inputAction sends text (or a key such as "C-c") to the running command.
func inputAction(text string, timeout float64) sandboxapi.Action {
	act, err := sandboxapi.NewAction(sandboxapi.ActionRun, sandboxapi.CmdRunArgs{
		Command: text, IsInput: true, ConfirmationState: "confirmed", SecurityRisk: -1,
	}, timeout)
	if err != nil {
		panic(err) // a fixed struct always encodes
	}
	return act
}
