package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
)

const networkAbout = `
Show or change a running sandbox's network (egress) policy. Without
options, print it. --allow and --deny add entries (a domain, *.wildcard or
CIDR; an entry moves from one list to the other), --policy replaces the
whole policy. New connections follow the change at once, without a
restart; connections already open go on. A sandbox started with policy
open, or none, cannot change kind while it runs.`

func (a *app) networkCmd() *cobra.Command {
	var allow, deny []string
	var policy string
	var asJSON bool
	c := newCommand("network [OPTIONS] ID", "Show or change a sandbox's network policy", networkAbout, func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("network", "want exactly one sandbox id")
		}
		if policy != "" && len(allow)+len(deny) > 0 {
			return usageErrorf("network", "--policy replaces the policy; give it alone, or use --allow/--deny")
		}
		return a.network(c.Context(), args[0], policy, allow, deny, asJSON)
	})
	c.Flags().BoolVar(&asJSON, "json", false, "print the policy as a JSON object (policy, mode, allow, deny)")
	stringsFlag(c.Flags(), &allow, "allow", "", "allow `ENTRY` (domain, *.domain or CIDR; repeatable)")
	stringsFlag(c.Flags(), &deny, "deny", "", "deny `ENTRY` (repeatable)")
	c.Flags().StringVar(&policy, "policy", "", "replace the policy with `POLICY` (or a name from [sandbox.network_policies])")
	c.ValidArgsFunction = a.completeIDs(1)
	return c
}

func (a *app) network(ctx context.Context, id, policy string, allow, deny []string, asJSON bool) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	cur, err := rt.NetworkPolicy(ctx, id)
	if err != nil {
		return withHint(err, id)
	}
	next := cur
	switch {
	case policy != "":
		if next, err = rt.ResolveNetworkPolicy(policy); err != nil {
			return err
		}
	case len(allow)+len(deny) > 0:
		if next, err = cur.With(allow, deny); err != nil {
			return err
		}
	default:
		return a.printPolicy(cur, asJSON)
	}
	if err := rt.SetNetworkPolicy(ctx, id, next); err != nil {
		return withHint(err, id)
	}
	return a.printPolicy(next, asJSON)
}

func (a *app) networkLog(ctx context.Context, id string, asJSON bool) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	if !asJSON {
		return withHint(rt.NetworkLog(ctx, id, a.stdout), id)
	}
	ds, err := rt.NetworkDenials(ctx, id)
	if err != nil {
		return withHint(err, id)
	}
	return writeJSON(a.stdout, ds)
}

// policyJSON is `sbx network --json`'s object.
type policyJSON struct {
	Policy string   `json:"policy"`
	Mode   string   `json:"mode"`
	Allow  []string `json:"allow"`
	Deny   []string `json:"deny"`
}

func (a *app) printPolicy(p sbx.NetworkPolicy, asJSON bool) error {
	if !asJSON {
		_, err := fmt.Fprintln(a.stdout, p.String())
		return err
	}
	o := policyJSON{Policy: p.String(), Mode: string(p.Mode), Allow: p.Allow, Deny: p.Deny}
	if o.Allow == nil {
		o.Allow = []string{}
	}
	if o.Deny == nil {
		o.Deny = []string{}
	}
	return writeJSON(a.stdout, o)
}
