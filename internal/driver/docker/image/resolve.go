package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

// ResolveOptions are the image settings of a sandbox.
type ResolveOptions struct {
	// RuntimeImage is OpenHands' sandbox.runtime_container_image: used as
	// given, pulled when missing.
	RuntimeImage string
	// BaseImage is sandbox.base_container_image (default
	// DefaultBaseImage), used when RuntimeImage is empty.
	BaseImage string
	// BootstrapTag is the bootstrapped image to fall back to when BaseImage
	// is missing and cannot be pulled. Empty means DefaultBootstrapTag,
	// or else the newest image labelled dev.sbx.kind=base; when it is set,
	// only that image is considered.
	BootstrapTag string
	// Failures, when set, remembers base images that could not be pulled,
	// so a machine without a registry does not try again on every run. It
	// is used only where a bootstrapped image can stand in: a runtime
	// image that cannot be had is always tried again.
	Failures *PullFailures
	Progress io.Writer
	Logger   *slog.Logger
}

// Resolved is the image a sandbox starts from.
type Resolved struct {
	// Ref is the image to run, as it should be passed to the engine.
	Ref string
	// ID is its image ID.
	ID string
	// Prebuilt is set when sandboxd is baked into the image (it is
	// labelled dev.sbx.kind=runtime), so the driver need not inject it.
	Prebuilt bool
	// Note, when set, tells the user about a substitution worth knowing
	// (the bootstrapped image standing in for a base image).
	Note string
}

// Resolve chooses the image a sandbox starts from. A RuntimeImage is used
// as given. Otherwise BaseImage is used as it is, with sandboxd injected
// at start: no build step, so a new base image is usable at once. An image
// that is present costs one ImageInspect and nothing else; a missing one
// is pulled with progress, and a base image that cannot be pulled is
// replaced by a bootstrapped one when there is one (with a Note saying so).
//
// An image that is neither present, pullable nor replaceable is
// ErrNotFound, with a message saying how to get one without a registry.
func Resolve(ctx context.Context, api API, opts ResolveOptions) (Resolved, error) {
	log := orNopLogger(opts.Logger)
	w := orDiscard(opts.Progress)

	if opts.RuntimeImage != "" {
		ref := opts.RuntimeImage
		if err := checkRef("runtime image", ref); err != nil {
			return Resolved{}, err
		}
		res, err := presentOrPulled(ctx, api, ref, w, nil)
		if err != nil {
			if reason, ok := unpullable(err); ok {
				return Resolved{}, errdefs.Wrap(errdefs.ErrNotFound,
					fmt.Sprintf("runtime image %s is not present and cannot be pulled (%s); check the name (see `docker images`), build one with `sbx image build`, or unset SANDBOX_RUNTIME_CONTAINER_IMAGE to start from the base image", ref, reason), err)
			}
			return Resolved{}, err
		}
		prebuilt := labelsOf(res)[LabelKind] == KindRuntime
		log.Debug("resolved runtime image", "ref", ref, "id", res.ID, "prebuilt", prebuilt)
		return Resolved{Ref: ref, ID: res.ID, Prebuilt: prebuilt}, nil
	}

	base := opts.BaseImage
	if base == "" {
		base = DefaultBaseImage
	}
	if err := checkRef("base image", base); err != nil {
		return Resolved{}, err
	}
	res, err := presentOrPulled(ctx, api, base, w, opts.Failures)
	if err == nil {
		log.Debug("resolved base image", "ref", base, "id", res.ID)
		return Resolved{Ref: base, ID: res.ID}, nil
	}
	reason, ok := unpullable(err)
	if !ok {
		return Resolved{}, err
	}
	fb, found, ferr := bootstrapped(ctx, api, opts.BootstrapTag)
	if ferr != nil {
		return Resolved{}, ferr
	}
	if !found {
		return Resolved{}, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf(
			"image %s is not present and cannot be pulled (%s). Without a registry, build a base image offline with `sbx image bootstrap` (it is then used automatically), or set SANDBOX_BASE_CONTAINER_IMAGE to a local image (see `docker images`)",
			base, reason), err)
	}
	note := fmt.Sprintf("base image %s is not present and cannot be pulled (%s); using the bootstrapped image %s (set SANDBOX_BASE_CONTAINER_IMAGE=%s to skip this attempt)", base, reason, fb.Ref, fb.Ref)
	log.Info("using the bootstrapped image instead of the base image", "base", base, "image", fb.Ref, "reason", reason)
	fmt.Fprintf(w, "[image] %s\n", note)
	return Resolved{Ref: fb.Ref, ID: fb.ID, Note: note}, nil
}

// errUnpullable is a missing image the registry could not supply.
type errUnpullable struct {
	reason string
	cause  error
}

func (e *errUnpullable) Error() string { return e.reason }
func (e *errUnpullable) Unwrap() error { return e.cause }

func unpullable(err error) (string, bool) {
	var u *errUnpullable
	if !errors.As(err, &u) {
		return "", false
	}
	return u.reason, true
}

// presentOrPulled inspects ref, pulling it first when it is missing. An
// image that cannot be pulled is *errUnpullable; cancellation and an
// engine that does not answer are returned as they are.
func presentOrPulled(ctx context.Context, api API, ref string, w io.Writer, failures *PullFailures) (client.ImageInspectResult, error) {
	res, ok, err := inspect(ctx, api, ref)
	if err != nil {
		return res, err
	}
	if ok {
		failures.Forget(ref)
		return res, nil
	}
	if reason, until, ok := failures.Recent(ref); ok {
		return res, &errUnpullable{reason: fmt.Sprintf("%s; not tried again until %s, or delete %s", reason, until.Format("15:04"), failures.Where())}
	}
	if perr := pull(ctx, api, ref, w); perr != nil {
		if fatal := fatalPullError(ref, perr); fatal != nil {
			return res, fatal
		}
		reason := pullReason(perr)
		failures.Record(ref, reason)
		return res, &errUnpullable{reason: reason, cause: perr}
	}
	res, ok, err = inspect(ctx, api, ref)
	if err == nil && !ok {
		err = &errUnpullable{reason: "it was pulled but is missing afterwards"}
	}
	return res, err
}

// bootstrapped finds the image to fall back on: tag when given; else the
// default bootstrap tag, else the newest sbx image labelled kind=base.
func bootstrapped(ctx context.Context, api API, tag string) (Image, bool, error) {
	explicit := tag != ""
	if !explicit {
		tag = DefaultBootstrapTag
	}
	res, ok, err := inspect(ctx, api, tag)
	if err != nil {
		return Image{}, false, err
	}
	if ok {
		return imageFromInspect(tag, res), true, nil
	}
	if explicit {
		return Image{}, false, nil
	}
	list, err := api.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("label", driver.LabelManaged+"=true", LabelKind+"="+KindBase),
	})
	if err != nil {
		return Image{}, false, engineError(err, "looking for a bootstrapped image")
	}
	var best *Image
	for _, sum := range list.Items {
		img := imageFromSummary(sum)
		if len(img.Tags) == 0 {
			continue // untagged: replaced by a newer bootstrap
		}
		if best == nil || img.Created.After(best.Created) {
			best = &img
		}
	}
	if best == nil {
		return Image{}, false, nil
	}
	return *best, true, nil
}
