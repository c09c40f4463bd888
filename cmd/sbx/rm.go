package main

import (
	"context"
	"fmt"
)

const rmAbout = `
Remove sandboxes with their files. A running or paused sandbox is only
removed with -f.`

func (a *app) cmdRm(ctx context.Context, args []string) error {
	f := newFlags("rm", "[OPTIONS] ID...", rmAbout)
	force := f.Bool("f", false, "remove running and paused sandboxes too")
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErrorf("rm", "want at least one sandbox id")
	}
	return a.remove(ctx, f.Args(), *force)
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
		if err != nil {
			return err
		}
		if !force && (info.State == "running" || info.State == "paused") {
			return fmt.Errorf("sandbox %s is %s; stop it first (`sbx stop %s`) or remove it anyway with `sbx rm -f %s`", id, info.State, id, id)
		}
		return rt.Remove(ctx, id)
	})
}
