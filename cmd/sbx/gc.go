package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sbx-dev/sbx"
)

type gcOptions struct {
	Grace  time.Duration
	DryRun bool
	JSON   bool
}

const gcAbout = `
Remove sandboxes nothing holds: stopped ones, and running ones whose
creator (an sbx process on this host) has exited. Sandboxes started with
'sbx run -d' or keep_runtime_alive, paused ones and ones younger than the
grace period are left alone.`

func (a *app) cmdGC(ctx context.Context, args []string) error {
	f := newFlags("gc", "[OPTIONS]", gcAbout)
	var o gcOptions
	f.DurationVar(&o.Grace, "grace", 10*time.Minute, "leave sandboxes younger than `DURATION`")
	f.BoolVar(&o.DryRun, "dry-run", false, "only print what would be removed")
	f.BoolVar(&o.JSON, "json", false, "print a JSON array of the sandboxes")
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usageErrorf("gc", "unexpected argument %q", f.Arg(0))
	}
	if o.Grace < 0 {
		return usageErrorf("gc", "--grace must not be negative")
	}
	return a.gc(ctx, o)
}

func (a *app) gc(ctx context.Context, o gcOptions) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	removed, err := rt.GC(ctx, sbx.GCOptions{Grace: o.Grace, DryRun: o.DryRun})
	// What was removed is worth printing even when some removals failed.
	if o.JSON {
		if jerr := writeJSON(a.stdout, sandboxesJSON(removed)); jerr != nil && err == nil {
			err = jerr
		}
		return err
	}
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	now := time.Now()
	for _, in := range removed {
		fmt.Fprintf(a.stdout, "%s %s (%s, created %s)\n", verb, in.ID, in.State, humanAge(now.Sub(in.Created)))
	}
	return err
}
