package sbx

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/image"
)

type imageResolver interface {
	resolve(ctx context.Context, override string, cfg *config.Config) (image.Resolved, error)
}

// dockerImages resolves images once per runtime and remembers the answer:
// a burst of creates from one program then costs one image lookup, not one
// per sandbox.
type dockerImages struct {
	api      image.API
	progress io.Writer
	log      *slog.Logger

	mu    sync.Mutex
	cache map[[2]string]image.Resolved
}

func newDockerImages(api image.API, progress io.Writer, log *slog.Logger) *dockerImages {
	return &dockerImages{api: api, progress: progress, log: log, cache: map[[2]string]image.Resolved{}}
}

func (d *dockerImages) resolve(ctx context.Context, override string, cfg *config.Config) (image.Resolved, error) {
	runtimeImage := cfg.Sandbox.RuntimeContainerImage
	if override != "" {
		runtimeImage = override
	}
	key := [2]string{runtimeImage, cfg.Sandbox.BaseContainerImage}
	d.mu.Lock()
	defer d.mu.Unlock()
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
	if r.Note != "" {
		fmt.Fprintln(d.progress, r.Note)
	}
	d.cache[key] = r
	return r, nil
}
