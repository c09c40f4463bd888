package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

const startAbout = `
Start stopped sandboxes again (a paused one is resumed) and wait until
each answers. Files survive a stop; processes and the shell's state do not.`

func (a *app) startCmd() *cobra.Command {
	c := newCommand("start ID...", "Start stopped sandboxes again", startAbout, func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("start", "want at least one sandbox id")
		}
		return a.start(c.Context(), args)
	})
	c.ValidArgsFunction = a.completeIDs(0)
	return c
}

func (a *app) start(ctx context.Context, ids []string) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error {
		sb, err := rt.Attach(ctx, id)
		if err != nil {
			return err
		}
		// An attached sandbox is left running by Close.
		if err := sb.Close(ctx); err != nil {
			return fmt.Errorf("sandbox %s: %w", id, err)
		}
		return nil
	})
}
