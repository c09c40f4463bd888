package docker

import (
	"context"
	"fmt"
	"io"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/docker/image"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Images are the image settings of a Driver (OpenHands' [sandbox] keys).
type Images struct {
	// Runtime is runtime_container_image: used as given.
	Runtime string
	// Base is base_container_image, used with sandboxd injected when
	// Runtime is empty.
	Base string
	// ExtraDeps is runtime_extra_deps: a runtime image of Base + sandboxd
	// + these commands is built once and reused.
	ExtraDeps string
	// ForceRebuild is force_rebuild_runtime.
	ForceRebuild bool
}

// imageKey is what a resolution depends on besides the settings.
type imageKey struct{ override string }

// ResolveImage implements driver.ImageResolver. The answer is remembered
// for the driver's life: a burst of creates then costs one image lookup,
// not one per sandbox, and a pull or build never runs twice at once.
func (d *Driver) ResolveImage(ctx context.Context, override string) (driver.Image, error) {
	if d.img == nil {
		return driver.Image{}, errdefs.New(errdefs.ErrNotImplemented, "this docker driver was made without an image API")
	}
	select {
	case d.imgSem <- struct{}{}:
	case <-ctx.Done():
		return driver.Image{}, fmt.Errorf("waiting for the image: %w", ctx.Err())
	}
	defer func() { <-d.imgSem }()
	key := imageKey{override}
	if r, ok := d.imgCache[key]; ok {
		return r, nil
	}
	runtimeImage := d.images.Runtime
	if override != "" {
		runtimeImage = override
	}
	r, err := image.Resolve(ctx, d.img, image.ResolveOptions{
		RuntimeImage: runtimeImage,
		BaseImage:    d.images.Base,
		Progress:     d.progress,
		Logger:       d.log,
		Failures:     d.pullFailures,
	})
	if err != nil {
		return driver.Image{}, err
	}
	out := driver.Image{Ref: r.Ref, ID: r.ID, Prebuilt: r.Prebuilt}
	// image.Resolve has already told Progress about a fallback (r.Note).
	// runtime_extra_deps asks for a runtime image, as in OpenHands: the
	// base plus sandboxd plus the deps, built once and then reused by its
	// input hash (force_rebuild_runtime builds it again).
	if deps := d.images.ExtraDeps; deps != "" && runtimeImage == "" {
		img, err := d.build(ctx, driver.BuildOptions{Base: r.Ref, ExtraDeps: deps, Force: d.images.ForceRebuild, Progress: d.progress})
		if err != nil {
			return driver.Image{}, err
		}
		out = img
		out.Prebuilt = true
	}
	d.imgCache[key] = out
	return out, nil
}

// BuildImage implements driver.ImageBuilder.
func (d *Driver) BuildImage(ctx context.Context, o driver.BuildOptions) (driver.Image, error) {
	if d.img == nil {
		return driver.Image{}, errdefs.New(errdefs.ErrNotImplemented, "this docker driver was made without an image API")
	}
	return d.build(ctx, o)
}

func (d *Driver) build(ctx context.Context, o driver.BuildOptions) (driver.Image, error) {
	bin, err := d.bin.Locate(ctx)
	if err != nil {
		return driver.Image{}, err
	}
	var tag string
	if len(o.Tags) > 0 {
		tag = o.Tags[0]
	}
	img, err := image.Build(ctx, d.img, image.BuildOptions{
		Base: o.Base, ExtraDeps: o.ExtraDeps, Tag: tag, Sandboxd: bin.Path, Force: o.Force,
		Progress: orProgress(o.Progress, d.progress), Logger: d.log,
	})
	if err != nil {
		return driver.Image{}, err
	}
	return fromImage(img), nil
}

// BootstrapImage implements driver.ImageBuilder.
func (d *Driver) BootstrapImage(ctx context.Context, o driver.BootstrapOptions) (driver.Image, error) {
	if d.img == nil {
		return driver.Image{}, errdefs.New(errdefs.ErrNotImplemented, "this docker driver was made without an image API")
	}
	img, err := image.Bootstrap(ctx, d.img, image.BootstrapOptions{
		Tag: o.Tag, Suite: o.Suite, Mirror: o.Mirror, Packages: o.Packages, Force: o.Force,
		Progress: orProgress(o.Progress, d.progress), Logger: d.log,
	})
	if err != nil {
		return driver.Image{}, err
	}
	return fromImage(img), nil
}

// Images implements driver.ImageBuilder.
func (d *Driver) Images(ctx context.Context) ([]driver.Image, error) {
	if d.img == nil {
		return nil, errdefs.New(errdefs.ErrNotImplemented, "this docker driver was made without an image API")
	}
	imgs, err := image.List(ctx, d.img)
	if err != nil {
		return nil, err
	}
	out := make([]driver.Image, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, fromImage(i))
	}
	return out, nil
}

// Engine implements driver.Describer.
func (d *Driver) Engine(ctx context.Context) (driver.EngineInfo, error) {
	sv, err := d.api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return driver.EngineInfo{Name: "docker"}, classify(err, "docker engine")
	}
	return driver.EngineInfo{Name: "docker", Version: sv.Version, APIVersion: sv.APIVersion}, nil
}

func fromImage(i image.Image) driver.Image {
	return driver.Image{Ref: i.Ref, ID: i.ID, Kind: i.Kind, Tags: i.Tags, Base: i.Base, Version: i.Version, Inputs: i.Inputs, Created: i.Created,
		Size: i.Size, Labels: i.Labels, Reused: i.Reused, Prebuilt: i.Kind == image.KindRuntime}
}

func orProgress(w, def io.Writer) io.Writer {
	if w != nil {
		return w
	}
	return def
}

// BuildContext implements driver.ContextBuilder.
func (d *Driver) BuildContext(ctx context.Context, buildContext io.Reader, tags []string, labels map[string]string) (driver.Image, error) {
	if d.img == nil {
		return driver.Image{}, errdefs.New(errdefs.ErrNotImplemented, "this docker driver was made without an image API")
	}
	img, err := image.BuildContext(ctx, d.img, buildContext, tags, labels, d.progress)
	if err != nil {
		return driver.Image{}, err
	}
	return fromImage(img), nil
}

// ImageExists implements driver.ContextBuilder.
func (d *Driver) ImageExists(ctx context.Context, ref string) (driver.Image, bool, error) {
	if d.img == nil {
		return driver.Image{}, false, errdefs.New(errdefs.ErrNotImplemented, "this docker driver was made without an image API")
	}
	img, ok, err := image.Exists(ctx, d.img, ref)
	if err != nil || !ok {
		return driver.Image{}, ok, err
	}
	return fromImage(img), true, nil
}

// TagImage implements driver.ContextBuilder.
func (d *Driver) TagImage(ctx context.Context, src, tag string) error {
	if d.img == nil {
		return errdefs.New(errdefs.ErrNotImplemented, "this docker driver was made without an image API")
	}
	return image.Tag(ctx, d.img, src, tag)
}
