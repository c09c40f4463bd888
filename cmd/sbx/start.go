package main

import (
	"context"
	"fmt"
)

const startAbout = `
Start stopped sandboxes again (a paused one is resumed) and wait until
each answers. Files survive a stop; processes and the shell's state do not.`

func (a *app) cmdStart(ctx context.Context, args []string) error {
	f := newFlags("start", "ID...", startAbout)
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErrorf("start", "want at least one sandbox id")
	}
	return a.start(ctx, f.Args())
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
