package main

import (
	"context"
	"fmt"

	"github.com/sbx-dev/sbx"
	"github.com/spf13/cobra"
)

type imageBootstrapOptions struct {
	Tag    string
	Suite  string
	Mirror string
	Force  bool
}

const imageBootstrapAbout = `
Build a Debian base image from scratch with debootstrap and import it, for
machines that cannot pull images. Sandboxes fall back to it when the base
image cannot be pulled. Needs root and debootstrap on the host.`

func (a *app) imageBootstrapCmd() *cobra.Command {
	var o imageBootstrapOptions
	c := newCommand("bootstrap [OPTIONS]", "Build a Debian base image from scratch with debootstrap (no registry needed)", imageBootstrapAbout,
		func(c *cobra.Command, args []string) error {
			if err := noArgs(c, args); err != nil {
				return err
			}
			return a.imageBootstrap(c.Context(), o)
		})
	f := c.Flags()
	f.StringVar(&o.Tag, "tag", "", "name the image `TAG` (default: sbx/debian:bookworm)")
	f.StringVar(&o.Suite, "suite", "", "Debian `SUITE` (default: bookworm)")
	f.StringVar(&o.Mirror, "mirror", "", "Debian mirror `URL` (default: the host's apt source, else deb.debian.org)")
	f.BoolVar(&o.Force, "force", false, "bootstrap even if an up-to-date image exists")
	return c
}

func (a *app) imageBootstrap(ctx context.Context, o imageBootstrapOptions) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	img, err := rt.BootstrapImage(ctx, sbx.BootstrapImageOptions{
		Tag: o.Tag, Suite: o.Suite, Mirror: o.Mirror, Force: o.Force, Progress: a.stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, img.Ref)
	return nil
}
