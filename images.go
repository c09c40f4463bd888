package sbx

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/image"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
)

type imageResolver interface {
	resolve(ctx context.Context, override string, cfg *config.Config) (image.Resolved, error)
}

// dockerImages resolves images once per runtime and remembers the answer:
// a burst of creates from one program then costs one image lookup, not one
// per sandbox.
type dockerImages struct {
	api      image.API
	bin      *sandboxdbin.Locator
	progress io.Writer
	log      *slog.Logger

	// sem serialises resolutions (a pull or build must not run twice for
	// a burst of creates) while letting a waiter give up with its ctx.
	sem   chan struct{}
	cache map[[2]string]image.Resolved
}

func newDockerImages(api image.API, bin *sandboxdbin.Locator, progress io.Writer, log *slog.Logger) *dockerImages {
	return &dockerImages{api: api, bin: bin, progress: progress, log: log, sem: make(chan struct{}, 1), cache: map[[2]string]image.Resolved{}}
}

func (d *dockerImages) resolve(ctx context.Context, override string, cfg *config.Config) (image.Resolved, error) {
	runtimeImage := cfg.Sandbox.RuntimeContainerImage
	if override != "" {
		runtimeImage = override
	}
	key := [2]string{runtimeImage, cfg.Sandbox.BaseContainerImage}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return image.Resolved{}, fmt.Errorf("waiting for the image: %w", ctx.Err())
	}
	defer func() { <-d.sem }()
	if r, ok := d.cache[key]; ok {
		return r, nil
	}
	r, err := image.Resolve(ctx, d.api, image.ResolveOptions{
		RuntimeImage: runtimeImage,
		BaseImage:    cfg.Sandbox.BaseContainerImage,
		Progress:     d.progress,
		Logger:       d.log,
	})
	if err != nil {
		return image.Resolved{}, err
	}
	// image.Resolve has already told Progress about a fallback (r.Note).
	// runtime_extra_deps asks for a runtime image, as in OpenHands: the
	// base plus sandboxd plus the deps, built once and then reused by its
	// input hash (force_rebuild_runtime builds it again).
	if deps := cfg.Sandbox.RuntimeExtraDeps; deps != "" && runtimeImage == "" {
		bin, err := d.bin.Locate(ctx)
		if err != nil {
			return image.Resolved{}, err
		}
		img, err := image.Build(ctx, d.api, image.BuildOptions{
			Base: r.Ref, ExtraDeps: deps, Sandboxd: bin.Path, Force: cfg.Sandbox.ForceRebuildRuntime,
			Progress: d.progress, Logger: d.log,
		})
		if err != nil {
			return image.Resolved{}, err
		}
		r = image.Resolved{Ref: img.Ref, ID: img.ID, Prebuilt: true}
	}
	d.cache[key] = r
	return r, nil
}
