package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
)

const rmAbout = `
Remove sandboxes with their files. A running or paused sandbox is only
removed with -f, and so is a guarded one whose changes were neither
applied nor discarded ('sbx diff ID').`

func (a *app) rmCmd() *cobra.Command {
	var force bool
	c := newCommand("rm [OPTIONS] ID...", "Remove sandboxes", rmAbout, func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("rm", "want at least one sandbox id")
		}
		return a.remove(c.Context(), args, force)
	})
	c.Flags().BoolVarP(&force, "force", "f", false, "remove running and paused sandboxes, and unapplied guarded changes, too; a missing one is no error")
	c.ValidArgsFunction = a.completeIDs(0)
	return c
}

func (a *app) remove(ctx context.Context, ids []string, force bool) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error {
		// Remove of a missing sandbox is no error to the SDK, but a typo
		// in an id should be one here.
		info, err := rt.Get(ctx, id)
		if errors.Is(err, sbx.ErrNotFound) {
			// `sbx run --rm --guard` leaves the changes behind the
			// container; rm is how they go.
			if _, derr := rt.Diff(ctx, id); derr == nil {
				return rt.RemoveWith(ctx, id, sbx.RemoveOptions{Force: force})
			}
		}
		if force && errors.Is(err, sbx.ErrNotFound) {
			// As docker rm -f: the sandbox is gone, which is what was asked.
			return errNothingDone
		}
		if err != nil {
			return err
		}
		if !force && (info.State == "running" || info.State == "paused") {
			return fmt.Errorf("sandbox %s is %s; stop it first (`sbx stop %s`) or remove it anyway with `sbx rm -f %s`", id, info.State, id, id)
		}
		return rt.RemoveWith(ctx, id, sbx.RemoveOptions{Force: force})
	})
}
