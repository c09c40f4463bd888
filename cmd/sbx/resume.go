package main

import (
	"context"

	"github.com/spf13/cobra"
)

const resumeAbout = `
Thaw paused sandboxes and wait until each answers.`

func (a *app) resumeCmd() *cobra.Command {
	c := newCommand("resume ID...", "Thaw paused sandboxes", resumeAbout, func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("resume", "want at least one sandbox id")
		}
		return a.resume(c.Context(), args)
	})
	c.ValidArgsFunction = a.completeIDs(0)
	return c
}

func (a *app) resume(ctx context.Context, ids []string) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error {
		_, err := rt.Resume(ctx, id)
		return err
	})
}
