package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
	"github.com/spf13/cobra"
)

const imageAbout = `
Make and list the images sandboxes start from (docker runtime only).`

func (a *app) imageCmd() *cobra.Command {
	c := newCommand("image COMMAND [OPTIONS]", "Make and list sandbox images (bootstrap, build, ls)", imageAbout, func(c *cobra.Command, args []string) error {
		return usageErrorf("image", "want a subcommand: bootstrap, build or ls")
	})
	c.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return unknownCommand(c, args[0], "image")
		}
		return nil
	}
	c.AddCommand(a.imageBootstrapCmd(), a.imageBuildCmd(), a.imageLsCmd())
	return c
}

type imageBuildOptions struct {
	Base      string
	ExtraDeps string
	Tag       string
	Force     bool
}

const imageBuildAbout = `
Build a runtime image: BASE with sandboxd baked in (and --extra-deps run in
it), so sandboxes start without sandboxd being injected. An image built
earlier from the same inputs is reused unless --force is given. The image
name is printed; use it with --image or SANDBOX_RUNTIME_CONTAINER_IMAGE.

The image also has swerex-remote on its PATH (a link to sandboxd) and no
entrypoint, so SWE-ReX's Docker deployment (SWE-agent's default) starts
sbx's SWE-ReX server in it: set python_standalone_dir to null there.`

func (a *app) imageBuildCmd() *cobra.Command {
	var o imageBuildOptions
	c := newCommand("build --base IMAGE [OPTIONS]", "Bake sandboxd into a base image, giving a runtime image", imageBuildAbout,
		func(c *cobra.Command, args []string) error {
			if err := noArgs(c, args); err != nil {
				return err
			}
			return a.imageBuild(c.Context(), o)
		})
	f := c.Flags()
	f.StringVar(&o.Base, "base", "", "base `IMAGE` to build on (default: "+config.DefaultBaseContainerImage+")")
	f.StringVar(&o.ExtraDeps, "extra-deps", "", "shell `COMMAND` run in the image, e.g. 'apt-get install -y ruby'")
	f.StringVar(&o.Tag, "tag", "", "name the image `TAG` (default: sbx-runtime:<inputs hash>)")
	f.BoolVar(&o.Force, "force", false, "build even if an up-to-date image exists, without the build cache")
	return c
}

func (a *app) imageBuild(ctx context.Context, o imageBuildOptions) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	bo := sbx.BuildImageOptions{Base: o.Base, ExtraDeps: o.ExtraDeps, Force: o.Force, Progress: a.stderr}
	if o.Tag != "" {
		bo.Tags = []string{o.Tag}
	}
	img, err := rt.BuildImage(ctx, bo)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, img.Ref)
	return nil
}

const imageLsAbout = `
List the images sbx made (bootstrapped base images and runtime images),
newest first.`

func (a *app) imageLsCmd() *cobra.Command {
	var asJSON bool
	c := newCommand("ls [OPTIONS]", "List the images sbx made", imageLsAbout, func(c *cobra.Command, args []string) error {
		if err := noArgs(c, args); err != nil {
			return err
		}
		return a.imageLs(c.Context(), asJSON)
	})
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

func (a *app) imageLs(ctx context.Context, asJSON bool) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	imgs, err := rt.Images(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, imagesJSON(imgs))
	}
	return writeImageTable(a.stdout, imgs, time.Now())
}

type imageJSON struct {
	Ref     string            `json:"ref"`
	Tags    []string          `json:"tags"`
	ID      string            `json:"id"`
	Kind    string            `json:"kind"`
	Base    string            `json:"base"`
	Version string            `json:"version"`
	Inputs  string            `json:"inputs"`
	Size    int64             `json:"size"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels"`
}

func imagesJSON(imgs []sbx.Image) []imageJSON {
	out := make([]imageJSON, 0, len(imgs))
	for _, i := range imgs {
		j := imageJSON{Ref: i.Ref, Tags: i.Tags, ID: i.ID, Kind: i.Kind, Base: i.Base, Version: i.Version,
			Inputs: i.Inputs, Size: i.Size, Created: i.Created.UTC(), Labels: i.Labels}
		if j.Tags == nil {
			j.Tags = []string{}
		}
		if j.Labels == nil {
			j.Labels = map[string]string{}
		}
		out = append(out, j)
	}
	return out
}

func writeImageTable(w io.Writer, imgs []sbx.Image, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tID\tKIND\tBASE\tSIZE\tCREATED")
	for _, i := range imgs {
		id := strings.TrimPrefix(i.ID, "sha256:")
		if len(id) > 12 {
			id = id[:12]
		}
		ref := i.Ref
		if len(i.Tags) == 0 {
			ref = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ref, id, orDash(i.Kind), orDash(i.Base), sizeString(i.Size), humanAge(now.Sub(i.Created)))
	}
	return tw.Flush()
}

// sizeString prints bytes in decimal units, as `docker images` does.
func sizeString(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fGB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0fMB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fkB", float64(n)/1e3)
	}
	return fmt.Sprintf("%dB", n)
}
