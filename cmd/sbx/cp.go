package main

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"
)

const cpAbout = `
Copy a file or directory between the host and a running sandbox; one of
SRC and DST is ID:/absolute/path, as with docker cp. Copying a directory to
a directory that exists puts it inside (SRC/. copies its contents
instead); to one that does not, creates it. File modes are kept; symbolic
links and special files in a copied directory are skipped with a warning.`

// cpOptions are the two operands of `sbx cp`; exactly one names a sandbox.
type cpOptions struct {
	Src cpPath
	Dst cpPath
}

// cpPath is a host path (ID empty) or a path in a sandbox.
type cpPath struct {
	ID   string
	Path string
}

func (p cpPath) String() string {
	if p.ID == "" {
		return p.Path
	}
	return p.ID + ":" + p.Path
}

func (a *app) cpCmd() *cobra.Command {
	c := newCommand("cp SRC DST", "Copy files between the host and a sandbox", cpAbout, func(c *cobra.Command, args []string) error {
		if len(args) != 2 {
			return usageErrorf("cp", "want SRC and DST, one of them ID:/path")
		}
		o := cpOptions{Src: parseCpPath(args[0]), Dst: parseCpPath(args[1])}
		switch {
		case (o.Src.ID == "") == (o.Dst.ID == ""):
			return usageErrorf("cp", "exactly one of SRC and DST must be in a sandbox (ID:/path)")
		case o.Src.ID != "" && !path.IsAbs(o.Src.Path), o.Dst.ID != "" && !path.IsAbs(o.Dst.Path):
			return usageErrorf("cp", "a path in a sandbox must be absolute (ID:/path)")
		case o.Src.Path == "" || o.Dst.Path == "":
			return usageErrorf("cp", "empty path")
		case o.Src.Path == "-" || o.Dst.Path == "-":
			return usageErrorf("cp", "copying from or to a tar stream (-) is not supported; give a path")
		}
		return a.copy(c.Context(), o)
	})
	c.ValidArgsFunction = a.completeCp
	return c
}

// completeCp offers host files and "ID:" for each sandbox.
func (a *app) completeCp(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) >= 2 || strings.ContainsRune(toComplete, ':') {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids, _ := a.completeIDs(0)(c, args, toComplete)
	for i, id := range ids {
		id, _, _ = strings.Cut(id, "\t")
		ids[i] = id + ":"
	}
	return ids, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveDefault
}

// parseCpPath splits ID:/path. As with docker cp, a host path containing
// a colon can be written ./a:b or /abs/a:b.
func parseCpPath(s string) cpPath {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return cpPath{Path: s}
	}
	id, p, ok := strings.Cut(s, ":")
	if !ok || !plausibleID(id) {
		return cpPath{Path: s}
	}
	return cpPath{ID: id, Path: p}
}

func plausibleID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

func (a *app) copy(ctx context.Context, o cpOptions) error {
	id := o.Src.ID + o.Dst.ID
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	info, err := rt.Get(ctx, id)
	if err != nil {
		return withHint(err, id)
	}
	if info.State != "running" {
		return fmt.Errorf("sandbox %s is %s; files are copied through its server, so start it first (`sbx start %s` or `sbx resume %s`)", id, info.State, id, id)
	}
	sb, err := rt.Attach(ctx, id)
	if err != nil {
		return withHint(err, id)
	}
	defer sb.Close(context.WithoutCancel(ctx))
	if o.Src.ID != "" {
		return sb.CopyFrom(ctx, o.Src.Path, o.Dst.Path)
	}
	return sb.CopyTo(ctx, o.Src.Path, o.Dst.Path)
}
