package main

import (
	"context"

	"github.com/spf13/cobra"
)

const discardAbout = `
Drop a guarded sandbox's changes to its folders (it must be stopped):
started again, it sees the host folders as they are now. A sandbox that
'sbx run --rm' already removed is removed with its changes.`

func (a *app) discardCmd() *cobra.Command {
	c := newCommand("discard ID...", "Drop a guarded sandbox's changes", discardAbout, func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("discard", "want at least one sandbox id")
		}
		return a.discard(c.Context(), args)
	})
	c.ValidArgsFunction = a.completeIDs(0)
	return c
}

func (a *app) discard(ctx context.Context, ids []string) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error { return rt.Discard(ctx, id) })
}
