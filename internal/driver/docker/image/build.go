package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/version"
)

// buildRecipe is hashed into every runtime image's inputs. Bump it when
// the generated Dockerfile changes, so that images built from the old one
// are not taken for up to date.
const buildRecipe = "sbx-runtime/2"

// SWEReXLink is the name sandboxd also answers to as SWE-ReX's server, on
// the PATH of every runtime image: SWE-ReX's DockerDeployment starts
// `/bin/sh -c 'swerex-remote --auth-token X || …pipx fallback…'` with no
// PATH of its own, so /usr/local/bin (on every distribution's default
// PATH) is where it must be. It is a symbolic link to
// driver.SandboxdPath: sandboxd picks its protocol by argv[0].
const SWEReXLink = "/usr/local/bin/swerex-remote"

// maxSandboxdSize bounds the binary read into memory: sandboxd is about
// 10 MB, and a path to something huge is a mistake worth a clear error.
const maxSandboxdSize = 256 << 20

// buildTailLines is how much build output a failed build quotes.
const buildTailLines = 15

// BuildOptions says what runtime image to build.
type BuildOptions struct {
	// Base is the image to build on (default DefaultBaseImage). It is used
	// when present and pulled otherwise.
	Base string
	// ExtraDeps is a shell command run in the image after sandboxd is
	// copied in (OpenHands' sandbox.runtime_extra_deps), through
	// /bin/sh -c, as the base image's user.
	ExtraDeps string
	// Tag names the result (default sbx-runtime:<inputs hash>). The image
	// is always tagged sbx-runtime:<inputs hash> as well, which is how a
	// later Build with the same inputs finds it.
	Tag string
	// Sandboxd is the path of the static sandboxd binary to bake in.
	Sandboxd string
	// Version is the sbx version recorded in the image (default
	// version.Version); a new version means a new image.
	Version string
	// Force builds even when an image with the same inputs exists, and
	// without the engine's build cache.
	Force    bool
	Progress io.Writer
	Logger   *slog.Logger
}

// Build returns a runtime image: Base with sandboxd at driver.SandboxdPath
// as its entrypoint, plus ExtraDeps. Its inputs are the base image's ID,
// sandboxd's SHA-256, Version and ExtraDeps; when an image with the same
// inputs exists (by tag or by label) and Force is unset it is returned at
// once, with Reused set, and nothing is built.
//
// A missing sandboxd or a malformed tag is ErrInvalidArgument (ErrNotFound
// for a path that does not exist); a base image that is neither present
// nor pullable is ErrNotFound; a failing ExtraDeps
// command is ErrInvalidArgument with the end of the build output.
func Build(ctx context.Context, api API, opts BuildOptions) (Image, error) {
	start := time.Now()
	log := orNopLogger(opts.Logger)
	w := orDiscard(opts.Progress)
	base := cmp.Or(opts.Base, DefaultBaseImage)
	ver := cmp.Or(opts.Version, version.Version)

	if err := checkRef("base image", base); err != nil {
		return Image{}, err
	}
	if opts.Tag != "" {
		if err := checkTag(opts.Tag); err != nil {
			return Image{}, err
		}
	}
	bin, err := readSandboxd(opts.Sandboxd)
	if err != nil {
		return Image{}, err
	}
	binSum := sha256.Sum256(bin)

	baseRes, err := ensureBase(ctx, api, base, w)
	if err != nil {
		return Image{}, err
	}

	inputs := inputsHash(buildRecipe, baseRes.ID, hex.EncodeToString(binSum[:]), ver, opts.ExtraDeps)
	hashTag := RuntimeRepository + ":" + inputs
	tag := cmp.Or(opts.Tag, hashTag)
	tags := []string{tag}
	if tag != hashTag {
		tags = append(tags, hashTag)
	}
	log = log.With("tag", tag, "inputs", inputs, "base", base, "base_id", baseRes.ID)

	if !opts.Force {
		res, ok, err := findBuilt(ctx, api, inputs, tags)
		if err != nil {
			return Image{}, err
		}
		if ok {
			if err := ensureTags(ctx, api, res, tags); err != nil {
				return Image{}, err
			}
			log.Debug("runtime image is up to date", "id", res.ID)
			fmt.Fprintf(w, "[build] %s is up to date (inputs %s); not building (force rebuilds)\n", tag, inputs)
			img := imageFromInspect(tag, res)
			img.Tags = mergeTags(img.Tags, tags)
			img.Reused = true
			return img, nil
		}
	}

	// Images now under the tags (stale, or the same inputs when forced)
	// are removed once the new one has taken the tags, if nothing else
	// names or uses them.
	var replaced []string
	for _, t := range tags {
		old, ok, err := inspect(ctx, api, t)
		if err != nil {
			return Image{}, err
		}
		if ok && !slices.Contains(replaced, old.ID) {
			replaced = append(replaced, old.ID)
		}
	}

	df := dockerfile(baseRes.ID, opts.ExtraDeps, map[string]string{
		driver.LabelManaged: "true",
		driver.LabelVersion: ver,
		LabelKind:           KindRuntime,
		LabelInputs:         inputs,
		LabelBase:           base,
	})
	var bc bytes.Buffer
	if err := writeBuildContext(&bc, df, bin); err != nil {
		return Image{}, fmt.Errorf("writing the build context: %w", err)
	}
	fmt.Fprintf(w, "[build] building %s from %s (%s)\n", tag, base, shortID(baseRes.ID))
	log.Debug("building runtime image", "dockerfile", df)

	resp, err := api.ImageBuild(ctx, &bc, client.ImageBuildOptions{
		Tags: tags,
		// The classic builder: BuildKit over the API needs a session
		// (gRPC) the engine calls back, and 20.10 engines default to
		// the classic one anyway.
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
		NoCache:     opts.Force,
	})
	if err != nil {
		return Image{}, engineError(err, "building "+tag)
	}
	id, berr := readBuildStream(ctx, resp.Body, w)
	resp.Body.Close()
	if berr != nil {
		var fail *buildFailure
		if errors.As(berr, &fail) {
			return Image{}, fail.classify(tag, base, opts.ExtraDeps)
		}
		return Image{}, engineError(berr, "building "+tag)
	}

	res, ok, err := inspect(ctx, api, tag)
	if err != nil {
		return Image{}, err
	}
	if ok && id != "" && !sameID(res.ID, id) {
		// Another build took the tag in the meantime; ours is still
		// there by ID.
		res, ok, err = inspect(ctx, api, id)
		if err != nil {
			return Image{}, err
		}
	}
	if !ok {
		return Image{}, errdefs.New(errdefs.ErrInternal, fmt.Sprintf("building %s: the build finished but the image is missing", tag))
	}
	for _, old := range replaced {
		if old != res.ID {
			removeReplaced(ctx, api, old, log)
		}
	}
	img := imageFromInspect(tag, res)
	log.Info("built runtime image", "id", img.ID, "size", img.Size, "elapsed", time.Since(start))
	fmt.Fprintf(w, "[build] built %s (%s, %s) in %s\n", tag, shortID(img.ID), humanBytes(img.Size), roundDuration(time.Since(start)))
	return img, nil
}

// sameID reports whether full and maybe-short name one image ID.
func sameID(full, short string) bool {
	short = strings.TrimPrefix(short, "sha256:")
	return short != "" && strings.HasPrefix(strings.TrimPrefix(full, "sha256:"), short)
}

// checkRef refuses an image reference the engine could not parse.
func checkRef(what, ref string) error {
	if _, err := reference.ParseAnyReference(ref); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("%s %q is not a valid image reference: %v", what, ref, err), err)
	}
	return nil
}

// checkTag refuses names the engine would refuse, before any work.
func checkTag(tag string) error {
	ref, err := reference.ParseNormalizedNamed(tag)
	if err == nil {
		if _, digested := ref.(reference.Digested); digested {
			err = errors.New("a digest cannot be a tag")
		}
	}
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument,
			fmt.Sprintf("image tag %q is not valid (%v); use repository[:tag], e.g. my-runtime:v1", tag, err), err)
	}
	return nil
}

// readSandboxd reads the binary whole: it is hashed for the inputs and
// then sent in the build context, and reading it once means both see the
// same bytes even if the file is rebuilt meanwhile.
func readSandboxd(path string) ([]byte, error) {
	const how = "build it with `CGO_ENABLED=0 go build -o sandboxd ./cmd/sandboxd` and pass its path"
	if path == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "no sandboxd binary given: "+how)
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("sandboxd binary %s does not exist: %s", path, how), err)
		}
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("sandboxd binary %s: %v", path, err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sandboxd binary %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("sandboxd binary %s is not a regular file: %s", path, how))
	}
	if fi.Size() > maxSandboxdSize {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("sandboxd binary %s is %s, which is not sandboxd: %s", path, humanBytes(fi.Size()), how))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSandboxdSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading sandboxd binary %s: %w", path, err)
	}
	return b, nil
}

// ensureBase inspects the base image and pulls it when it is missing.
func ensureBase(ctx context.Context, api API, base string, w io.Writer) (client.ImageInspectResult, error) {
	res, ok, err := inspect(ctx, api, base)
	if err != nil || ok {
		return res, err
	}
	if perr := pull(ctx, api, base, w); perr != nil {
		if err := fatalPullError(base, perr); err != nil {
			return res, err
		}
		return res, errdefs.Wrap(errdefs.ErrNotFound,
			fmt.Sprintf("base image %s is not present and cannot be pulled (%s); pull or build it first (see `docker images`), or build a base image offline with `sbx image bootstrap`", base, pullReason(perr)), perr)
	}
	res, ok, err = inspect(ctx, api, base)
	if err == nil && !ok {
		err = errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("base image %s is missing right after it was pulled", base))
	}
	return res, err
}

// findBuilt looks for a runtime image made from inputs: under one of tags
// first (one round trip each), then by label, since a user may have
// removed the tags of an image that is still there.
func findBuilt(ctx context.Context, api API, inputs string, tags []string) (client.ImageInspectResult, bool, error) {
	for _, t := range tags {
		res, ok, err := inspect(ctx, api, t)
		if err != nil {
			return res, false, err
		}
		if ok && builtFrom(labelsOf(res), inputs) {
			return res, true, nil
		}
	}
	list, err := api.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("label", LabelInputs+"="+inputs, LabelKind+"="+KindRuntime),
	})
	if err != nil {
		return client.ImageInspectResult{}, false, engineError(err, "looking for a runtime image with inputs "+inputs)
	}
	for _, s := range list.Items {
		res, ok, err := inspect(ctx, api, s.ID)
		if err != nil {
			return res, false, err
		}
		if ok && builtFrom(labelsOf(res), inputs) {
			return res, true, nil
		}
	}
	return client.ImageInspectResult{}, false, nil
}

func builtFrom(labels map[string]string, inputs string) bool {
	return labels[LabelInputs] == inputs && labels[LabelKind] == KindRuntime
}

// ensureTags gives res every one of tags it lacks.
func ensureTags(ctx context.Context, api API, res client.ImageInspectResult, tags []string) error {
	have := realTags(res.RepoTags)
	for _, t := range tags {
		if slices.Contains(have, normalizeTag(t)) || slices.Contains(have, t) {
			continue
		}
		if _, err := api.ImageTag(ctx, client.ImageTagOptions{Source: res.ID, Target: t}); err != nil {
			return engineError(err, fmt.Sprintf("tagging %s as %s", shortID(res.ID), t))
		}
	}
	return nil
}

// normalizeTag is the form the engine reports in RepoTags (docker.io
// names lose their domain and "library/", a missing tag is "latest").
func normalizeTag(t string) string {
	ref, err := reference.ParseNormalizedNamed(t)
	if err != nil {
		return t
	}
	return reference.FamiliarString(reference.TagNameOnly(ref))
}

func mergeTags(have, want []string) []string {
	out := slices.Clone(have)
	for _, t := range want {
		if !slices.Contains(out, t) && !slices.Contains(out, normalizeTag(t)) {
			out = append(out, t)
		}
	}
	return out
}

// dockerfile is the recipe of a runtime image. It is ordered for the
// classic builder's cache, which commits an image for every step (about a
// second each, metadata included): the steps that never change come
// first and are cached after the first build, and all labels share one
// step at the end because the inputs label differs every time.
//
// FROM names the base by ID, so the image is built from exactly the base
// that was hashed into its inputs even if the base's tag moves meanwhile.
// ExtraDeps goes in the exec form of RUN with /bin/sh -c spelled out, so
// any command text, newlines included, reaches the shell unchanged.
func dockerfile(baseID, extraDeps string, labels map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\n", baseID)
	// No entrypoint (the base's is reset): SWE-ReX's DockerDeployment
	// runs `docker run IMAGE /bin/sh -c 'swerex-remote …'` without
	// --entrypoint, which an entrypoint would turn into arguments of its
	// own. The drivers set sandboxd as the entrypoint themselves; CMD is
	// for `docker run IMAGE` by hand.
	b.WriteString("ENTRYPOINT []\n")
	cmd := launch.Default()
	cmd.Port, cmd.WorkDir = 8000, "/workspace"
	fmt.Fprintf(&b, "CMD %s\n", jsonArray(append([]string{driver.SandboxdPath}, cmd.Argv()...)...))
	// The directory's content, a symbolic link, is copied as it is (the
	// classic builder keeps links inside a copied directory), which needs
	// no shell or ln in the image.
	fmt.Fprintf(&b, "COPY %s/ %s/\n", linkDir, path.Dir(SWEReXLink))
	fmt.Fprintf(&b, "COPY sandboxd %s\n", driver.SandboxdPath)
	if strings.TrimSpace(extraDeps) != "" {
		fmt.Fprintf(&b, "RUN %s\n", jsonArray("/bin/sh", "-c", extraDeps))
	}
	if len(labels) > 0 {
		b.WriteString("LABEL")
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			fmt.Fprintf(&b, " %s=%s", k, dockerfileQuote(labels[k]))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// dockerfileQuote quotes s as a Dockerfile word: in double quotes, with
// the characters the builder would interpret (\ " $) escaped and line
// breaks, which would end the instruction, made spaces.
func dockerfileQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "\n", " ", "\r", " ")
	return `"` + r.Replace(s) + `"`
}

// jsonArray is the exec form of an instruction. HTML escaping is off:
// the builder echoes each instruction into the build log as written, where
// json.Marshal's \u003e for > and \u0026 for & would show up verbatim.
func jsonArray(s ...string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // strings always encode
	return strings.TrimSuffix(b.String(), "\n")
}

// linkDir is the build context's directory of links for the image's PATH.
const linkDir = "links"

// writeBuildContext writes the tar the engine builds from. sandboxd's
// mode is set here: the classic builder's COPY keeps the mode from the
// context and has no --chmod.
func writeBuildContext(w io.Writer, df string, sandboxd []byte) error {
	tw := tar.NewWriter(w)
	now := time.Now().Truncate(time.Second)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(df)},
		{"sandboxd", 0o755, sandboxd},
	}
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.name,
			Mode:     f.mode,
			Size:     int64(len(f.data)),
			ModTime:  now,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	// A fixed time, so that the builder's cache of this step holds
	// across builds.
	fixed := time.Unix(0, 0)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: linkDir + "/", Mode: 0o755, ModTime: fixed},
		{Typeflag: tar.TypeSymlink, Name: linkDir + "/" + path.Base(SWEReXLink), Linkname: driver.SandboxdPath, Mode: 0o777, ModTime: fixed},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return tw.Close()
}

// buildMessage is one message of the build's JSON stream. It is decoded
// here rather than as jsonstream.Message because the classic builder also
// sends the plain "error" and "progress" strings.
type buildMessage struct {
	Stream      string            `json:"stream"`
	Status      string            `json:"status"`
	Progress    string            `json:"progress"`
	ID          string            `json:"id"`
	Error       string            `json:"error"`
	ErrorDetail *jsonstream.Error `json:"errorDetail"`
	Aux         json.RawMessage   `json:"aux"`
}

// buildFailure is a build the engine ran and reported failed.
type buildFailure struct {
	msg  string
	step string   // the Dockerfile step that was running ("RUN [...]")
	tail []string // the last lines of output
}

func (f *buildFailure) Error() string { return f.msg }

// classify words the failure for the user. A failing RUN is the user's
// extra dependencies command; anything else is the engine's problem.
func (f *buildFailure) classify(tag, base, extraDeps string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "building %s failed: %s", tag, f.msg)
	if len(f.tail) > 0 {
		b.WriteString("\nlast build output:\n    ")
		b.WriteString(strings.Join(f.tail, "\n    "))
	}
	class := errdefs.ErrInternal
	if strings.HasPrefix(f.step, "RUN ") && extraDeps != "" {
		class = errdefs.ErrInvalidArgument
		fmt.Fprintf(&b, "\nthe extra dependencies command (%q) failed in %s; fix it and build again", extraDeps, base)
	}
	return errdefs.Wrap(class, b.String(), f)
}

// readBuildStream copies the build's output to w as "[build] " lines and
// returns the built image's ID (empty if the engine did not say).
func readBuildStream(ctx context.Context, r io.Reader, w io.Writer) (string, error) {
	var (
		id      string
		step    string
		partial string
		tail    []string
		status  string
	)
	emit := func(line string) {
		line = strings.TrimRight(line, " \t")
		// The classic builder's bookkeeping of its step containers is
		// noise to the user.
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, " ---> Running in ") ||
			strings.HasPrefix(line, "Removing intermediate container ") {
			return
		}
		if s, ok := strings.CutPrefix(line, "Step "); ok {
			if _, after, found := strings.Cut(s, " : "); found {
				step = after
			}
		}
		// The aux message carries the full ID; this line is the
		// fallback for engines that do not send it.
		if rest, ok := strings.CutPrefix(line, "Successfully built "); ok && id == "" {
			id = strings.TrimSpace(rest)
		}
		fmt.Fprintf(w, "[build] %s\n", line)
		tail = append(tail, line)
		if len(tail) > buildTailLines {
			tail = tail[len(tail)-buildTailLines:]
		}
	}
	// Output arrives in arbitrary chunks; only whole lines are printed,
	// and carriage returns (progress bars in RUN output) end lines too.
	feed := func(s string) {
		s = partial + strings.ReplaceAll(s, "\r", "\n")
		lines := strings.Split(s, "\n")
		partial = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			emit(l)
		}
	}

	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("reading the build output: %w", err)
		}
		if m.Stream != "" {
			feed(m.Stream)
		}
		if m.Status != "" && m.Status != status {
			status = m.Status
			emit(strings.TrimSpace(m.ID + " " + m.Status))
		}
		if len(m.Aux) > 0 {
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
		if m.ErrorDetail != nil || m.Error != "" {
			emit(partial)
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			return "", &buildFailure{msg: strings.TrimSpace(msg), step: step, tail: tail}
		}
	}
	emit(partial)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return id, nil
}
