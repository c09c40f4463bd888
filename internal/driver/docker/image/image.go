// Package image makes and chooses the images sandboxes run, with or without
// an image registry:
//
//   - Bootstrap builds a Debian base image from scratch with debootstrap and
//     imports it, for machines that cannot pull anything.
//   - Build bakes sandboxd into a base image (a "runtime image", OpenHands'
//     runtime_container_image), reusing an earlier build with the same
//     inputs instead of building again.
//   - Resolve picks the image a sandbox starts from. It is on the sandbox
//     start path, so an image that is present costs one ImageInspect.
//   - List shows the images sbx made.
//
// Images sbx makes carry LabelManaged, LabelKind and LabelInputs; the
// inputs label is a hash of everything the image was made from, which is
// how an up-to-date image is recognised without rebuilding it.
//
// The package talks to the engine only through API, the few moby client
// methods it needs, and never starts containers: running sandboxes is the
// driver's job.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Label keys, in addition to driver.LabelManaged and driver.LabelVersion.
const (
	// LabelKind is KindBase or KindRuntime.
	LabelKind = "dev.sbx.kind"
	// LabelInputs is the hash of what the image was made from; an image
	// whose label matches the inputs of a request is reused as it is.
	LabelInputs = "dev.sbx.inputs"
	// LabelBase is the base image a runtime image was built from, as the
	// user named it.
	LabelBase = "dev.sbx.base"
)

// Values of LabelKind.
const (
	// KindBase is an image bootstrapped by sbx (no sandboxd inside); it is
	// the fallback base image when nothing can be pulled.
	KindBase = "base"
	// KindRuntime is an image with sandboxd at driver.SandboxdPath, which
	// a driver runs as it is instead of injecting sandboxd.
	KindRuntime = "runtime"
)

const (
	// DefaultBaseImage is OpenHands' default sandbox.base_container_image.
	DefaultBaseImage = "nikolaik/python-nodejs:python3.12-nodejs22"
	// DefaultBootstrapTag is the tag Bootstrap gives its image, and the
	// bootstrapped image Resolve prefers as a fallback.
	DefaultBootstrapTag = "sbx/debian:bookworm"
	// RuntimeRepository is the repository of runtime images tagged by
	// their inputs hash.
	RuntimeRepository = "sbx-runtime"
)

// API is the part of the Docker client this package uses;
// *client.Client satisfies it.
type API interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageList(ctx context.Context, opts client.ImageListOptions) (client.ImageListResult, error)
	ImagePull(ctx context.Context, ref string, opts client.ImagePullOptions) (client.ImagePullResponse, error)
	ImageImport(ctx context.Context, src client.ImageImportSource, ref string, opts client.ImageImportOptions) (client.ImageImportResult, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error)
	ImageTag(ctx context.Context, opts client.ImageTagOptions) (client.ImageTagResult, error)
	ImageRemove(ctx context.Context, ref string, opts client.ImageRemoveOptions) (client.ImageRemoveResult, error)
}

var _ API = (*client.Client)(nil)

// Image describes one local image.
type Image struct {
	// Ref is the name the image was asked for or made under; for listed
	// images the first tag, or the ID when it has none.
	Ref string
	// Tags are all its repository:tag names.
	Tags []string
	ID   string
	// Kind, Inputs, Version and Base are its sbx labels (empty when absent).
	Kind    string
	Inputs  string
	Version string
	Base    string
	Size    int64
	Created time.Time
	Labels  map[string]string
	// Reused is set by Bootstrap and Build when an up-to-date image was
	// found and nothing was made.
	Reused bool
}

// List returns the images sbx made (those labelled dev.sbx.managed=true),
// newest first.
func List(ctx context.Context, api API) ([]Image, error) {
	res, err := api.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("label", driver.LabelManaged+"=true"),
	})
	if err != nil {
		return nil, engineError(err, "listing sbx's images")
	}
	out := make([]Image, 0, len(res.Items))
	for _, sum := range res.Items {
		out = append(out, imageFromSummary(sum))
	}
	// The engine's order is unspecified; newest first reads best in a
	// listing and makes "the latest bootstrapped image" easy to pick.
	slices.SortStableFunc(out, func(a, b Image) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// realTags drops the "<none>:<none>" placeholder older engines report for
// untagged images.
func realTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if t != "" && t != "<none>:<none>" {
			out = append(out, t)
		}
	}
	return out
}

func setLabels(img *Image, labels map[string]string) {
	img.Labels = labels
	img.Kind = labels[LabelKind]
	img.Inputs = labels[LabelInputs]
	img.Version = labels[driver.LabelVersion]
	img.Base = labels[LabelBase]
}

// imageFromSummary turns a listed image into an Image named by its first
// tag, or its ID when it has none.
func imageFromSummary(s imagetypes.Summary) Image {
	img := Image{
		ID:      s.ID,
		Tags:    realTags(s.RepoTags),
		Size:    s.Size,
		Created: time.Unix(s.Created, 0),
	}
	setLabels(&img, s.Labels)
	img.Ref = img.ID
	if len(img.Tags) > 0 {
		img.Ref = img.Tags[0]
	}
	return img
}

// imageFromInspect turns an inspect result into an Image named ref.
func imageFromInspect(ref string, res client.ImageInspectResult) Image {
	img := Image{
		Ref:  ref,
		ID:   res.ID,
		Tags: realTags(res.RepoTags),
		Size: res.Size,
	}
	if t, err := time.Parse(time.RFC3339Nano, res.Created); err == nil {
		img.Created = t
	}
	if res.Config != nil {
		setLabels(&img, res.Config.Labels)
	}
	return img
}

// removeReplaced removes an image sbx made that a new one has replaced,
// if nothing still names or uses it. Failure is only logged: the old image
// costs disk space, nothing else.
func removeReplaced(ctx context.Context, api API, id string, log *slog.Logger) {
	res, ok, err := inspect(ctx, api, id)
	if err != nil || !ok || len(realTags(res.RepoTags)) > 0 || labelsOf(res)[driver.LabelManaged] != "true" {
		return
	}
	if _, err := api.ImageRemove(ctx, id, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		log.Debug("keeping the replaced image", "id", id, "err", err)
		return
	}
	log.Debug("removed the replaced image", "id", id)
}

// inspect looks ref up; a missing image is (zero, false, nil), so callers
// branch on presence without classifying errors themselves.
func inspect(ctx context.Context, api API, ref string) (client.ImageInspectResult, bool, error) {
	res, err := api.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return res, true, nil
	case cerrdefs.IsNotFound(err):
		return client.ImageInspectResult{}, false, nil
	default:
		return client.ImageInspectResult{}, false, engineError(err, "inspecting image "+ref)
	}
}

func labelsOf(res client.ImageInspectResult) map[string]string {
	if res.Config == nil {
		return nil
	}
	return res.Config.Labels
}

// engineError classifies an error from the engine. what says what was
// being done ("inspecting image x").
func engineError(err error, what string) error {
	if err == nil {
		return nil
	}
	if ctxErr := contextError(err); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	if client.IsErrConnectionFailed(err) {
		return errdefs.Wrap(errdefs.ErrUnavailable,
			fmt.Sprintf("%s: the Docker engine does not answer (%v); start it, or point DOCKER_HOST at one", what, err), err)
	}
	return errdefs.Wrap(classOf(err), fmt.Sprintf("%s: %s", what, shortReason(err)), err)
}

// contextError returns the context error err stems from, if any, so that
// a cancelled call reports cancellation rather than a transport failure.
func contextError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// classOf maps the engine's error classes onto ours.
func classOf(err error) error {
	switch {
	case cerrdefs.IsNotFound(err):
		return errdefs.ErrNotFound
	case cerrdefs.IsInvalidArgument(err):
		return errdefs.ErrInvalidArgument
	case cerrdefs.IsConflict(err):
		return errdefs.ErrConflict
	case cerrdefs.IsAlreadyExists(err):
		return errdefs.ErrAlreadyExists
	case cerrdefs.IsUnauthorized(err):
		return errdefs.ErrUnauthorized
	case cerrdefs.IsPermissionDenied(err):
		return errdefs.ErrPermission
	case cerrdefs.IsUnavailable(err):
		return errdefs.ErrUnavailable
	case cerrdefs.IsNotImplemented(err):
		return errdefs.ErrNotImplemented
	}
	return errdefs.ErrInternal
}

// shortReason is an engine error's text without the boilerplate the
// client puts in front, cut to a length that fits in a sentence.
func shortReason(err error) string {
	s := strings.TrimSpace(err.Error())
	s = strings.TrimPrefix(s, "Error response from daemon: ")
	s = strings.Join(strings.Fields(s), " ")
	const max = 200
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

// inputsHash is the value of LabelInputs: 16 hex digits of a SHA-256 over
// parts, each length-prefixed so that no two part lists collide.
func inputsHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func orNopLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// shortID is the 12-digit form docker prints.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// humanBytes prints n in decimal units, as docker does.
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// roundDuration rounds d for a progress line.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
