package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
)

const diffAbout = `
Show what a sandbox changed in its guarded folders ('sbx run --guard'),
which the host folder does not have yet: one line per path, A added,
M modified, D deleted (a directory with everything in it), T metadata
only (mode or mtime). '!' marks a path that could make the host run code
(.git/config, .git/hooks/, .envrc, .vscode/): 'sbx apply' leaves it out
unless it is named.

It works while the sandbox runs (a snapshot), after it stopped, and after
an 'sbx run --rm' removed it: its change layers stay until 'sbx discard'
or 'sbx rm' (after 'sbx apply' they hold nothing new, and rm needs no -f).`

func (a *app) diffCmd() *cobra.Command {
	var stat, patch, asJSON bool
	c := newCommand("diff [OPTIONS] ID", "Show a guarded sandbox's changes to its folders", diffAbout, func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("diff", "want one sandbox id")
		}
		n := 0
		for _, b := range []bool{stat, patch, asJSON} {
			if b {
				n++
			}
		}
		if n > 1 {
			return usageErrorf("diff", "--stat, --patch and --json are alternatives")
		}
		return a.diff(c.Context(), args[0], stat, patch, asJSON)
	})
	c.Flags().BoolVar(&stat, "stat", false, "count the lines added and removed per file")
	c.Flags().BoolVarP(&patch, "patch", "p", false, "show a unified diff of the text files")
	c.Flags().BoolVar(&asJSON, "json", false, "print the changes as JSON")
	c.ValidArgsFunction = a.completeIDs(1)
	return c
}

func (a *app) diff(ctx context.Context, id string, stat, patch, asJSON bool) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	ds, err := rt.Diff(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		return sbx.WriteGuardJSON(a.stdout, ds)
	}
	for _, d := range ds {
		if len(ds) > 1 {
			fmt.Fprintf(a.stdout, "# %s (host %s)\n", d.Target, d.Source)
		}
		switch {
		case stat:
			err = d.WriteStat(a.stdout)
		case patch:
			err = d.WritePatch(a.stdout)
		default:
			err = d.WriteText(a.stdout)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
