package main

import (
	"context"

	"github.com/spf13/cobra"
)

const pauseAbout = `
Freeze sandboxes with their processes: nothing runs, nothing is lost, and
'sbx resume' continues where they were (unlike stop and start).`

func (a *app) pauseCmd() *cobra.Command {
	c := newCommand("pause ID...", "Freeze sandboxes with their processes", pauseAbout, func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("pause", "want at least one sandbox id")
		}
		return a.pause(c.Context(), args)
	})
	c.ValidArgsFunction = a.completeIDs(0)
	return c
}

func (a *app) pause(ctx context.Context, ids []string) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error { return rt.Pause(ctx, id) })
}
