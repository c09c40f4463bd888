package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
)

const stopAbout = `
Stop sandboxes: their processes end (after a grace period, then a kill),
their files are kept. 'sbx start' starts them again.`

func (a *app) stopCmd() *cobra.Command {
	var secs int
	c := newCommand("stop [OPTIONS] ID...", "Stop sandboxes (their files are kept)", stopAbout, func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("stop", "want at least one sandbox id")
		}
		if secs < 0 {
			return usageErrorf("stop", "-t must not be negative")
		}
		return a.stop(c.Context(), args, time.Duration(secs)*time.Second)
	})
	c.Flags().IntVarP(&secs, "time", "t", 10, "`SECONDS` to wait for a clean exit before killing")
	c.ValidArgsFunction = a.completeIDs(0)
	return c
}

func (a *app) stop(ctx context.Context, ids []string, grace time.Duration) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error { return rt.Stop(ctx, id, grace) })
}
