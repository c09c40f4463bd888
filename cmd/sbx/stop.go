package main

import (
	"context"
	"time"
)

const stopAbout = `
Stop sandboxes: their processes end (after a grace period, then a kill),
their files are kept. 'sbx start' starts them again.`

func (a *app) cmdStop(ctx context.Context, args []string) error {
	f := newFlags("stop", "[OPTIONS] ID...", stopAbout)
	secs := f.Int("t", 10, "`SECONDS` to wait for a clean exit before killing")
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErrorf("stop", "want at least one sandbox id")
	}
	if *secs < 0 {
		return usageErrorf("stop", "-t must not be negative")
	}
	return a.stop(ctx, f.Args(), time.Duration(*secs)*time.Second)
}

func (a *app) stop(ctx context.Context, ids []string, grace time.Duration) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error { return rt.Stop(ctx, id, grace) })
}
