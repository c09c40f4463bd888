package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver/docker/image"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
)

const imageAbout = `
Make and list the images sandboxes start from (docker runtime only).

Commands:
  bootstrap  Build a Debian base image from scratch with debootstrap (no registry needed)
  build      Bake sandboxd into a base image, giving a runtime image
  ls         List the images sbx made`

func (a *app) cmdImage(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("image", "want a subcommand: bootstrap, build or ls")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		newFlags("image", "COMMAND [OPTIONS]", imageAbout).usage(a.stdout)
		return nil
	case "bootstrap":
		return a.cmdImageBootstrap(ctx, args[1:])
	case "build":
		return a.cmdImageBuild(ctx, args[1:])
	case "ls":
		return a.cmdImageLs(ctx, args[1:])
	}
	return usageErrorf("image", "unknown image command %q; want bootstrap, build or ls", args[0])
}

// dockerClient is the engine client the image commands talk to.
func dockerClient() (*client.Client, error) {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, "docker client: "+err.Error(), err)
	}
	return c, nil
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
name is printed; use it with --image or SANDBOX_RUNTIME_CONTAINER_IMAGE.`

func (a *app) cmdImageBuild(ctx context.Context, args []string) error {
	f := newFlags("image build", "--base IMAGE [OPTIONS]", imageBuildAbout)
	var o imageBuildOptions
	f.StringVar(&o.Base, "base", "", "base `IMAGE` to build on (default: "+image.DefaultBaseImage+")")
	f.StringVar(&o.ExtraDeps, "extra-deps", "", "shell `COMMAND` run in the image, e.g. 'apt-get install -y ruby'")
	f.StringVar(&o.Tag, "tag", "", "name the image `TAG` (default: "+image.RuntimeRepository+":<inputs hash>)")
	f.BoolVar(&o.Force, "force", false, "build even if an up-to-date image exists, without the build cache")
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usageErrorf("image build", "unexpected argument %q", f.Arg(0))
	}
	return a.imageBuild(ctx, o)
}

func (a *app) imageBuild(ctx context.Context, o imageBuildOptions) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	bin, err := (&sandboxdbin.Locator{Getenv: a.getenv}).Locate(ctx)
	if err != nil {
		return err
	}
	c, err := dockerClient()
	if err != nil {
		return err
	}
	defer c.Close()
	img, err := image.Build(ctx, c, image.BuildOptions{
		Base: o.Base, ExtraDeps: o.ExtraDeps, Tag: o.Tag, Force: o.Force,
		Sandboxd: bin.Path, Progress: a.stderr, Logger: a.logger(cfg),
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, img.Ref)
	return nil
}

const imageLsAbout = `
List the images sbx made (bootstrapped base images and runtime images),
newest first.`

func (a *app) cmdImageLs(ctx context.Context, args []string) error {
	f := newFlags("image ls", "[OPTIONS]", imageLsAbout)
	asJSON := f.Bool("json", false, "print a JSON array")
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usageErrorf("image ls", "unexpected argument %q", f.Arg(0))
	}
	c, err := dockerClient()
	if err != nil {
		return err
	}
	defer c.Close()
	imgs, err := image.List(ctx, c)
	if err != nil {
		return err
	}
	if *asJSON {
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

func imagesJSON(imgs []image.Image) []imageJSON {
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

func writeImageTable(w io.Writer, imgs []image.Image, now time.Time) error {
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
