package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

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

func (a *app) gcCmd() *cobra.Command {
	var o gcOptions
	c := newCommand("gc [OPTIONS]", "Remove sandboxes nothing holds any more", gcAbout, func(c *cobra.Command, args []string) error {
		if err := noArgs(c, args); err != nil {
			return err
		}
		if o.Grace < 0 {
			return usageErrorf("gc", "--grace must not be negative")
		}
		return a.gc(c.Context(), o)
	})
	c.Flags().DurationVar(&o.Grace, "grace", 10*time.Minute, "leave sandboxes younger than `DURATION`")
	c.Flags().BoolVar(&o.DryRun, "dry-run", false, "only print what would be removed")
	c.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array of the sandboxes")
	return c
}

func (a *app) gc(ctx context.Context, o gcOptions) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	var volumes []string
	removed, err := rt.GC(ctx, sbx.GCOptions{Grace: o.Grace, DryRun: o.DryRun, Pruned: func(v string) { volumes = append(volumes, v) }})
	// What was removed is worth printing even when some removals failed.
	if o.JSON {
		if jerr := writeJSON(a.stdout, sandboxesJSON(removed)); jerr != nil && err == nil {
			err = jerr
		}
		return err
	}
	for _, v := range volumes {
		fmt.Fprintf(a.stderr, "%s %s\n", verb, sbx.DescribePruned(v))
	}
	if len(removed) == 0 && len(volumes) == 0 && err == nil {
		// Silence would leave the user wondering whether gc ran at all.
		if o.DryRun {
			fmt.Fprintln(a.stdout, "nothing would be removed")
		} else {
			fmt.Fprintln(a.stdout, "nothing to remove")
		}
		return nil
	}
	now := time.Now()
	for _, in := range removed {
		fmt.Fprintf(a.stdout, "%s %s (%s, created %s)\n", verb, in.ID, in.State, humanAge(now.Sub(in.Created)))
	}
	return err
}
