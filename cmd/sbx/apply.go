package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
)

const applyAbout = `
Write a guarded sandbox's changes into its host folders, after it stopped
('sbx stop ID'). PATHs (inside the sandbox, like /workspace/src, or
relative to its only guarded folder) limit the apply to what is at or
under them; a risky path (marked ! by 'sbx diff') is applied only when
a PATH at or inside it names it, e.g. 'sbx apply ID .git/hooks'.

Every target is checked first: if the host changed one since the sandbox
started, nothing is written and the conflicts are listed. --force writes
the named paths (all, without PATHs) anyway; a symbolic link in the way is
never followed, with or without it. Each file is replaced atomically, so
an interrupted apply leaves each file old or new.`

func (a *app) applyCmd() *cobra.Command {
	var force, asJSON bool
	c := newCommand("apply [OPTIONS] ID [PATH...]", "Write a guarded sandbox's changes into its folders", applyAbout, func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("apply", "want a sandbox id")
		}
		return a.apply(c.Context(), args[0], args[1:], force, asJSON)
	})
	c.Flags().BoolVarP(&force, "force", "f", false, "write over what changed on the host meanwhile")
	c.Flags().BoolVar(&asJSON, "json", false, "print what was applied, skipped and in conflict as JSON")
	c.ValidArgsFunction = a.completeIDs(1)
	return c
}

func (a *app) apply(ctx context.Context, id string, paths []string, force, asJSON bool) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	res, err := rt.Apply(ctx, id, sbx.ApplyOptions{Paths: paths, Force: force})
	if asJSON {
		if res == nil {
			res = []sbx.GuardApply{}
		}
		if jerr := writeJSON(a.stdout, res); jerr != nil {
			return jerr
		}
		return err
	}
	for _, r := range res {
		if len(r.Applied) > 0 {
			fmt.Fprintf(a.stdout, "%s: applied %d change(s)\n", r.Target, len(r.Applied))
		}
		for _, c := range r.Conflicts {
			if c.Forced {
				fmt.Fprintf(a.stderr, "sbx: %s/%s: %s (written anyway: --force)\n", r.Target, c.Path, c.Reason)
			}
		}
		unnamed := 0
		for _, c := range r.Skipped {
			var why string
			switch {
			case c.Type == "special":
				why = "a " + c.Mode.Type().String() + ": not applied"
			case c.Risky:
				why = "risky: name it to apply it"
			default:
				// Left out because other paths were named: not worth
				// a line each.
				unnamed++
				continue
			}
			fmt.Fprintf(a.stderr, "sbx: left out %s/%s (%s)\n", r.Target, c.Path, why)
		}
		if unnamed > 0 {
			fmt.Fprintf(a.stderr, "sbx: %s: %d change(s) not named stay for a later apply (sbx diff %s lists them)\n", r.Target, unnamed, id)
		}
	}
	if err == nil && len(res) > 0 && countApplied(res) == 0 {
		fmt.Fprintln(a.stderr, "sbx: nothing to apply")
	}
	return err
}

func countApplied(res []sbx.GuardApply) int {
	n := 0
	for _, r := range res {
		n += len(r.Applied)
	}
	return n
}
