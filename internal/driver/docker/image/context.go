package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// BuildContext builds a client's own build context (a tar, optionally
// gzipped: the engine detects it) under tags, with labels added to the
// image, and returns the image. Unlike Build it adds nothing of sbx's.
func BuildContext(ctx context.Context, api API, buildContext io.Reader, tags []string, labels map[string]string, w io.Writer) (Image, error) {
	if len(tags) == 0 {
		return Image{}, errdefs.New(errdefs.ErrInvalidArgument, "a build needs a tag")
	}
	for _, t := range tags {
		if err := checkTag(t); err != nil {
			return Image{}, err
		}
	}
	if w == nil {
		w = io.Discard
	}
	resp, err := api.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags: tags, Labels: maps.Clone(labels),
		// The classic builder, as in Build: BuildKit over the API needs a
		// session the engine calls back.
		Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		return Image{}, engineError(err, "building "+tags[0])
	}
	id, berr := readBuildStream(ctx, resp.Body, w)
	resp.Body.Close()
	if berr != nil {
		var f *buildFailure
		if errors.As(berr, &f) {
			msg := fmt.Sprintf("building %s: %s", tags[0], f.msg)
			if f.step != "" {
				msg += " (at " + f.step + ")"
			}
			if len(f.tail) > 0 {
				msg += "\n" + strings.Join(f.tail, "\n")
			}
			return Image{}, errdefs.New(errdefs.ErrInvalidArgument, msg)
		}
		return Image{}, engineError(berr, "building "+tags[0])
	}
	ref := tags[0]
	if id != "" {
		ref = id
	}
	res, ok, err := inspect(ctx, api, ref)
	if err != nil {
		return Image{}, err
	}
	if !ok {
		return Image{}, errdefs.New(errdefs.ErrInternal, fmt.Sprintf("building %s: the build finished but the image is missing", tags[0]))
	}
	return imageFromInspect(tags[0], res), nil
}

// Exists inspects ref; a missing image is (Image{}, false, nil).
func Exists(ctx context.Context, api API, ref string) (Image, bool, error) {
	if err := checkRef("image", ref); err != nil {
		return Image{}, false, err
	}
	res, ok, err := inspect(ctx, api, ref)
	if err != nil || !ok {
		return Image{}, false, err
	}
	return imageFromInspect(ref, res), true, nil
}

// Tag names the image src tag as well.
func Tag(ctx context.Context, api API, src, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: src, Target: tag}); err != nil {
		return engineError(err, "tagging "+tag)
	}
	return nil
}
