package main

import (
	"context"

	"github.com/spf13/cobra"
)

const logsAbout = `
Print the log of a sandbox's server, sandboxd (not the shell's output:
that is in the replies to the commands). With --network, print the
connections the sandbox's network policy refused: time, destination, how
it was tried (connect, proxy, http, tls, dns) and why.`

func (a *app) logsCmd() *cobra.Command {
	var tail int
	var network, asJSON bool
	c := newCommand("logs [OPTIONS] ID", "Show a sandbox's server log", logsAbout, func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("logs", "want exactly one sandbox id")
		}
		if tail < 0 {
			return usageErrorf("logs", "--tail must not be negative")
		}
		if asJSON && !network {
			return usageErrorf("logs", "--json goes with --network (the server log is text)")
		}
		if network {
			return a.networkLog(c.Context(), args[0], asJSON)
		}
		return a.logs(c.Context(), args[0], tail)
	})
	c.Flags().IntVar(&tail, "tail", 0, "show only the last `N` lines (default: all)")
	c.Flags().BoolVar(&network, "network", false, "show the connections the network policy refused instead")
	c.Flags().BoolVar(&asJSON, "json", false, "with --network, print the refusals as a JSON array")
	c.ValidArgsFunction = a.completeIDs(1)
	return c
}

func (a *app) logs(ctx context.Context, id string, tail int) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return withHint(rt.Logs(ctx, id, a.stdout, tail), id)
}
