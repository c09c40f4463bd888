package sbx

import (
	"context"

	"github.com/sbx-dev/sbx/internal/driver"
)

// Image is an image sandboxes can start from.
type Image = driver.Image

// BuildImageOptions say what BuildImage makes.
type BuildImageOptions = driver.BuildOptions

// BootstrapImageOptions say what BootstrapImage makes.
type BootstrapImageOptions = driver.BootstrapOptions

// EngineInfo names what the runtime's driver runs sandboxes on.
type EngineInfo = driver.EngineInfo

// BuildImage makes a runtime image (base + sandboxd + extra deps), reusing
// one with the same inputs; ErrNotSupported on runtimes without images.
func (r *Runtime) BuildImage(ctx context.Context, o BuildImageOptions) (Image, error) {
	if r.be.Caps.Build == nil {
		return Image{}, r.unsupported("build images")
	}
	return r.be.Caps.Build.BuildImage(ctx, o)
}

// BootstrapImage makes a base image without any registry.
func (r *Runtime) BootstrapImage(ctx context.Context, o BootstrapImageOptions) (Image, error) {
	if r.be.Caps.Build == nil {
		return Image{}, r.unsupported("bootstrap images")
	}
	return r.be.Caps.Build.BootstrapImage(ctx, o)
}

// Images lists the images sbx made.
func (r *Runtime) Images(ctx context.Context) ([]Image, error) {
	if r.be.Caps.Build == nil {
		return nil, r.unsupported("list images")
	}
	return r.be.Caps.Build.Images(ctx)
}

// Engine describes what the driver runs on (the Docker engine's version);
// ErrNotSupported where there is nothing to describe.
func (r *Runtime) Engine(ctx context.Context) (EngineInfo, error) {
	if r.be.Caps.Describe == nil {
		return EngineInfo{}, r.unsupported("describe its engine")
	}
	return r.be.Caps.Describe.Engine(ctx)
}
