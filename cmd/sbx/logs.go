package main

import "context"

const logsAbout = `
Print the log of a sandbox's server, sandboxd (not the shell's output:
that is in the replies to the commands).`

func (a *app) cmdLogs(ctx context.Context, args []string) error {
	f := newFlags("logs", "[OPTIONS] ID", logsAbout)
	tail := f.Int("tail", 0, "show only the last `N` lines (default: all)")
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		return usageErrorf("logs", "want exactly one sandbox id")
	}
	if *tail < 0 {
		return usageErrorf("logs", "--tail must not be negative")
	}
	return a.logs(ctx, f.Arg(0), *tail)
}

func (a *app) logs(ctx context.Context, id string, tail int) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return withHint(rt.Logs(ctx, id, a.stdout, tail), id)
}
