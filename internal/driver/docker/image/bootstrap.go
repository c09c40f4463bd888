package image

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/version"
)

// bootstrapRecipe is hashed into a bootstrapped image's inputs. Bump it
// when the way the rootfs is made or tidied changes.
const bootstrapRecipe = "sbx-bootstrap/1"

// DefaultPackages are installed on top of debootstrap's minbase: what an
// agent expects to find in a sandbox, and nothing more.
func DefaultPackages() []string {
	return []string{"bash", "python3", "python3-venv", "git", "curl", "ca-certificates", "procps", "less", "sudo"}
}

// BootstrapOptions says what base image to bootstrap.
type BootstrapOptions struct {
	// Tag names the image (default DefaultBootstrapTag).
	Tag string
	// Suite is the Debian suite (default "bookworm").
	Suite string
	// Mirror is the Debian archive to install from (default: the one
	// this host's apt uses for Suite, else http://deb.debian.org/debian).
	Mirror string
	// Packages are installed on top of minbase (default DefaultPackages).
	Packages []string
	// TmpDir is where the root file system is assembled (default
	// /var/tmp: it needs about 500 MB, more than a tmpfs /tmp may have,
	// and must allow exec and device files).
	TmpDir string
	// Debootstrap is the debootstrap program (default: found in PATH or
	// the sbin directories).
	Debootstrap string
	// Force bootstraps even when an image with the same inputs exists.
	Force    bool
	Progress io.Writer
	Logger   *slog.Logger
}

// Bootstrap makes a Debian base image without any registry: it runs
// debootstrap into a temporary directory, tidies the result and streams
// it into the engine as an image (docker import) labelled
// dev.sbx.kind=base, which Resolve then uses when the base image cannot be
// pulled. When an image with the same inputs (suite, packages, recipe)
// exists under Tag and Force is unset it is returned at once with Reused
// set; this needs neither root nor debootstrap.
//
// The temporary root file system is removed whatever happens, including
// cancellation, which stops debootstrap and its children.
//
// Errors: ErrPermission when not root, ErrNotFound when debootstrap is
// not installed, ErrInvalidArgument for bad options or packages that do
// not exist, ErrUnavailable when the mirror cannot be reached.
func Bootstrap(ctx context.Context, api API, opts BootstrapOptions) (Image, error) {
	start := time.Now()
	log := orNopLogger(opts.Logger)
	w := &lockedWriter{w: orDiscard(opts.Progress)}
	tag := cmp.Or(opts.Tag, DefaultBootstrapTag)
	suite := cmp.Or(opts.Suite, "bookworm")
	tmpDir := cmp.Or(opts.TmpDir, "/var/tmp")
	pkgs := opts.Packages
	if pkgs == nil {
		pkgs = DefaultPackages()
	}
	pkgs, err := checkBootstrapOptions(tag, suite, pkgs)
	if err != nil {
		return Image{}, err
	}
	if opts.Mirror != "" {
		if err := checkMirror(opts.Mirror); err != nil {
			return Image{}, err
		}
	}
	inputs := bootstrapInputs(suite, pkgs)
	log = log.With("tag", tag, "suite", suite, "inputs", inputs)

	// reuse returns the image under tag when it was made from the same
	// inputs, and what is under tag in any case.
	reuse := func() (client.ImageInspectResult, bool, *Image, error) {
		res, found, err := inspect(ctx, api, tag)
		if err != nil || !found || opts.Force || labelsOf(res)[LabelInputs] != inputs {
			return res, found, nil, err
		}
		img := imageFromInspect(tag, res)
		img.Reused = true
		fmt.Fprintf(w, "[bootstrap] %s is up to date\n", tag)
		return res, found, &img, nil
	}
	old, hadOld, img, err := reuse()
	if img != nil || err != nil {
		return deref(img), err
	}
	// The same inputs under another name (a bootstrap with --tag, or an
	// image since renamed) are the same image: naming it costs nothing,
	// debootstrapping again a minute or more.
	if !opts.Force {
		img, err := tagSameInputs(ctx, api, tag, inputs, w)
		if img != nil || err != nil {
			if img != nil && hadOld && old.ID != img.ID {
				removeReplaced(ctx, api, old.ID, log)
			}
			return deref(img), err
		}
	}

	if !bootstrapSupported {
		return Image{}, errdefs.New(errdefs.ErrNotImplemented,
			"bootstrapping a base image needs Linux (debootstrap); build it on a Linux machine, or set SANDBOX_BASE_CONTAINER_IMAGE to a local image")
	}
	prog, err := findDebootstrap(opts.Debootstrap)
	if err != nil {
		return Image{}, err
	}
	if os.Geteuid() != 0 {
		return Image{}, errdefs.New(errdefs.ErrPermission, "debootstrap needs root: run sudo sbx image bootstrap")
	}

	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return Image{}, fmt.Errorf("bootstrap temporary directory: %w", err)
	}
	// Two bootstraps at once would download twice and race for the tag;
	// the second waits, then finds the first one's image up to date.
	unlock, err := lockFile(ctx, filepath.Join(tmpDir, "sbx-bootstrap.lock"), func() {
		fmt.Fprintln(w, "[bootstrap] another bootstrap is running; waiting for it")
	})
	if err != nil {
		return Image{}, fmt.Errorf("waiting for another bootstrap: %w", err)
	}
	defer unlock()
	// Again under the lock: the bootstrap we waited for may have made it.
	old, hadOld, img, err = reuse()
	if img != nil || err != nil {
		return deref(img), err
	}
	if hadOld && !opts.Force {
		fmt.Fprintf(w, "[bootstrap] %s was made from other inputs (suite, packages or recipe); making it again\n", tag)
	}

	mirror := opts.Mirror
	if mirror == "" {
		mirror = detectMirror("/etc/apt", suite)
		if mirror != "" {
			log.Debug("using the host's Debian mirror", "mirror", mirror)
		} else {
			mirror = defaultMirror
		}
	}

	parent, err := os.MkdirTemp(tmpDir, "sbx-bootstrap-")
	if err != nil {
		return Image{}, fmt.Errorf("bootstrap temporary directory: %w", err)
	}
	defer func() {
		// Unmount before removing: removing through a mount left by a
		// killed debootstrap would delete the host's files.
		if err := unmountUnder(parent); err != nil {
			log.Warn("unmounting inside the bootstrap directory", "dir", parent, "err", err)
		}
		if err := removeTree(parent); err != nil {
			log.Warn("removing the bootstrap directory", "dir", parent, "err", err)
			fmt.Fprintf(w, "[bootstrap] warning: could not remove %s: %v\n", parent, err)
		}
	}()
	rootfs := filepath.Join(parent, "rootfs")

	fmt.Fprintf(w, "[bootstrap] debootstrap %s from %s (+ %s)\n", suite, mirror, strings.Join(pkgs, " "))
	t0 := time.Now()
	args := []string{
		"--debian-installer",
		"--variant=minbase",
		"--include=" + strings.Join(pkgs, ","),
		suite, rootfs, mirror,
	}
	if err := runDebootstrap(ctx, log, w, prog, args, mirror); err != nil {
		return Image{}, err
	}
	debootstrapTime := time.Since(t0)
	fmt.Fprintf(w, "[bootstrap] debootstrap done in %s\n", roundDuration(debootstrapTime))

	if err := tidyRootfs(rootfs); err != nil {
		return Image{}, fmt.Errorf("tidying the root file system: %w", err)
	}

	t1 := time.Now()
	fmt.Fprintf(w, "[bootstrap] importing into Docker as %s\n", tag)
	changes := []string{
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		// C.UTF-8 is built into Debian's libc, so this needs no locales.
		"ENV LANG=C.UTF-8",
		"LABEL " + driver.LabelManaged + "=true",
		"LABEL " + LabelKind + "=" + KindBase,
		"LABEL " + LabelInputs + "=" + inputs,
		"LABEL " + driver.LabelVersion + "=" + labelValue(version.Version),
		`CMD ["/bin/bash"]`,
	}
	msg := fmt.Sprintf("debootstrap --variant=minbase %s + %s", suite, strings.Join(pkgs, " "))
	id, err := importRootfs(ctx, api, rootfs, tag, changes, msg, w)
	if err != nil {
		return Image{}, err
	}
	importTime := time.Since(t1)

	res, ok, err := inspect(ctx, api, tag)
	if err == nil && !ok {
		err = errdefs.New(errdefs.ErrInternal, fmt.Sprintf("importing %s: the import finished but the image is missing", tag))
	}
	if err != nil {
		return Image{}, err
	}
	if id != "" && !sameID(res.ID, id) {
		log.Warn("the tag moved during the import", "imported", id, "tagged", res.ID)
	}
	if hadOld && old.ID != res.ID {
		removeReplaced(ctx, api, old.ID, log)
	}
	made := imageFromInspect(tag, res)
	elapsed := time.Since(start)
	log.Info("bootstrapped base image", "id", made.ID, "size", made.Size, "elapsed", elapsed)
	fmt.Fprintf(w, "[bootstrap] %s ready: %s, %s in %s (debootstrap %s, import %s)\n",
		tag, shortID(made.ID), humanBytes(made.Size), roundDuration(elapsed),
		roundDuration(debootstrapTime), roundDuration(importTime))
	return made, nil
}

// bootstrapInputs is the inputs hash of a bootstrap of suite with pkgs (as
// checkBootstrapOptions returns them), the label by which an image made
// from the same inputs is recognised under any name.
func bootstrapInputs(suite string, pkgs []string) string {
	return inputsHash(append([]string{bootstrapRecipe, suite}, pkgs...)...)
}

// tagSameInputs finds a bootstrapped image made from inputs under any name
// and tags it as tag; nil when there is none.
func tagSameInputs(ctx context.Context, api API, tag, inputs string, w io.Writer) (*Image, error) {
	res, err := api.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.
		Add("label", LabelKind+"="+KindBase).Add("label", LabelInputs+"="+inputs)})
	if err != nil {
		return nil, engineError(err, "listing images")
	}
	// Only an import (one layer) is a bootstrap: an image built FROM one
	// inherits its labels but is not it.
	i := slices.IndexFunc(res.Items, func(it imagetypes.Summary) bool {
		in, ok, err := inspect(ctx, api, it.ID)
		return err == nil && ok && len(in.RootFS.Layers) == 1
	})
	if i < 0 {
		return nil, nil
	}
	src := res.Items[i]
	if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: src.ID, Target: tag}); err != nil {
		return nil, engineError(err, "tagging "+tag)
	}
	got, ok, err := inspect(ctx, api, tag)
	if err != nil || !ok {
		return nil, err
	}
	from := shortID(src.ID)
	if t := realTags(src.RepoTags); len(t) > 0 {
		from = t[0]
	}
	fmt.Fprintf(w, "[bootstrap] %s was made from the same inputs; tagged it %s\n", from, tag)
	img := imageFromInspect(tag, got)
	img.Reused = true
	return &img, nil
}

// debianName reports whether s is a valid Debian package (or suite) name:
// lower case letters, digits, + - and ., starting with a letter or digit,
// at least two long. Anything else could not be a package and might be an
// option to debootstrap.
func debianName(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// checkMirror refuses a mirror debootstrap could not use, or could take
// for an option.
func checkMirror(mirror string) error {
	u, err := url.Parse(mirror)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Host == "" && u.Scheme != "file") {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("mirror %q is not an http(s):// or file:/ URL of a Debian archive (e.g. %s)", mirror, defaultMirror))
	}
	return nil
}

func deref(img *Image) Image {
	if img == nil {
		return Image{}
	}
	return *img
}

// checkBootstrapOptions validates the options and returns the package
// list sorted and without duplicates: the order of --include does not
// matter to debootstrap, so it must not change the inputs hash.
func checkBootstrapOptions(tag, suite string, pkgs []string) ([]string, error) {
	if err := checkTag(tag); err != nil {
		return nil, err
	}
	if !debianName(suite) {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("suite %q is not a Debian suite name (e.g. bookworm)", suite))
	}
	out := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !debianName(p) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%q is not a Debian package name", p))
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// labelValue keeps a value usable in an import change line, which the
// engine splits on whitespace.
func labelValue(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Join(strings.Fields(s), "_")
}

// lockedWriter serialises progress lines written from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
