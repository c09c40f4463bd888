// Package image builds the Docker image of the agent-server STAND-IN
// (../, package main) for sandbox-api's tests: OpenHands' real
// agent-server image cannot be pulled here.
//
// The image is FROM scratch: the static stand-in at the real image's
// path, /usr/local/bin/openhands-agent-server, user 10001, WORKDIR / and
// EXPOSE 8000 as in runtime-api.md §8.1, plus /workspace and /tmp owned by
// that user. There is no shell and no other program in it, so nothing but
// the stand-in can run there; its counter route replaces the shell loop
// the pause/resume checks once used. The real image's ENTRYPOINT is
// `tini --`; the stand-in's is empty, so a runtime API that runs `command`
// either as the entrypoint or as CMD starts the same process.
//
// Ensure reuses an image whose inputs label matches (the binary's
// SHA-256 and the recipe), so repeated test runs build nothing. The
// image carries dev.sbx.test=agent-server-standin; it is shared between
// test runs and never removed by them.
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
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

const (
	// Tag names the stand-in image.
	Tag = "sbx-test/agent-server:standin"
	// BinaryPath is where the real agent-server image has its binary
	// (runtime-api.md §8.1), so the SDK's and the app server's commands
	// start the stand-in unchanged.
	BinaryPath = "/usr/local/bin/openhands-agent-server"
	// UID is the agent-server image's user (§8.1).
	UID = 10001
	// Port is the agent-server's default port; clients pass --port 60000.
	Port = 8000

	LabelTest   = "dev.sbx.test"
	LabelValue  = "agent-server-standin"
	LabelInputs = "dev.sbx.test.inputs"

	// recipe is hashed into the inputs; bump it when dockerfile changes.
	recipe = "agent-server-standin/2-scratch"
)

// API is the part of the Docker client Ensure uses.
type API interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error)
}

var _ API = (*client.Client)(nil)

// Options say what to build; every field is optional.
type Options struct {
	Tag string // default Tag
	// SourceDir is the stand-in's package directory (default: found from
	// this file's location, which works in `go test` from a checkout).
	SourceDir string
	Logger    *slog.Logger
}

// Result names the image.
type Result struct {
	Tag string
	// Ref is Tag-<Inputs>, a tag only this code builds: run containers
	// from Ref, since Tag is shared with other checkouts' stand-ins.
	Ref    string
	ID     string
	Inputs string
	Reused bool // an image with the same inputs was there; nothing was built
}

// Ensure returns the stand-in image, building it when no image under the
// tag has the same inputs. It needs no other image: the base is scratch.
func Ensure(ctx context.Context, api API, opts Options) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tag := cmp.Or(opts.Tag, Tag)
	src := opts.SourceDir
	if src == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			return Result{}, errdefs.New(errdefs.ErrInternal, "cannot find the stand-in's source directory; set Options.SourceDir")
		}
		src = filepath.Dir(filepath.Dir(file))
	}

	bin, err := buildBinary(ctx, src)
	if err != nil {
		return Result{}, err
	}
	sum := sha256.Sum256(bin)
	inputs := inputsHash(recipe, hex.EncodeToString(sum[:]))
	log = log.With("tag", tag, "inputs", inputs)

	// The shared tag moves whenever a checkout with other stand-in code
	// builds; the pinned tag names these inputs only, so a test that runs
	// Ref cannot start another checkout's stand-in.
	pinned := tag + "-" + inputs
	for _, ref := range []string{tag, pinned} {
		have, err := api.ImageInspect(ctx, ref)
		if err != nil && !cerrdefs.IsNotFound(err) {
			return Result{}, engineError(err, "inspecting "+ref)
		}
		if err == nil && have.Config != nil && have.Config.Labels[LabelInputs] == inputs && have.Config.Labels[LabelTest] == LabelValue {
			log.Debug("agent-server stand-in image is up to date", "id", have.ID, "ref", ref)
			return Result{Tag: tag, Ref: pinned, ID: have.ID, Inputs: inputs, Reused: true}, nil
		}
	}

	var bc bytes.Buffer
	if err := writeContext(&bc, dockerfile(inputs), bin); err != nil {
		return Result{}, fmt.Errorf("writing the build context: %w", err)
	}
	start := time.Now()
	resp, err := api.ImageBuild(ctx, &bc, client.ImageBuildOptions{
		Tags: []string{tag, pinned},
		// The classic builder: BuildKit over the API needs a session the
		// engine calls back (the same choice as internal/driver/docker/image).
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return Result{}, engineError(err, "building "+tag)
	}
	id, err := readBuild(resp.Body)
	resp.Body.Close()
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("building %s: %w", tag, ctx.Err())
		}
		return Result{}, errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("building %s: %v", tag, err), err)
	}
	res, err := api.ImageInspect(ctx, tag)
	if err != nil {
		return Result{}, engineError(err, "inspecting the built "+tag)
	}
	log.Info("built agent-server stand-in image", "id", res.ID, "build_id", id, "elapsed", time.Since(start))
	return Result{Tag: tag, Ref: pinned, ID: res.ID, Inputs: inputs}, nil
}

func dockerfile(inputs string) string {
	var b strings.Builder
	b.WriteString("FROM scratch\n")
	b.WriteString("ENTRYPOINT []\n")
	fmt.Fprintf(&b, "COPY openhands-agent-server %s\n", BinaryPath)
	// /workspace is the app server's working_dir and must be writable by
	// the image's user (§8.1, Filesystem); COPY --chown makes it without
	// a RUN step, so the build needs no container.
	fmt.Fprintf(&b, "COPY --chown=%d:%d workspace/ /workspace/\n", UID, UID)
	// HOME is /tmp, and scratch has no /tmp.
	fmt.Fprintf(&b, "COPY --chown=%d:%d tmp/ /tmp/\n", UID, UID)
	b.WriteString("ENV LOG_JSON=true OH_ENABLE_VNC=false HOME=/tmp\n")
	fmt.Fprintf(&b, "USER %d\n", UID)
	b.WriteString("WORKDIR /\n")
	fmt.Fprintf(&b, "EXPOSE %d\n", Port)
	fmt.Fprintf(&b, "CMD [%q, \"--port\", \"%d\"]\n", BinaryPath, Port)
	fmt.Fprintf(&b, "LABEL %s=%q %s=%q\n", LabelTest, LabelValue, LabelInputs, inputs)
	return b.String()
}

func writeContext(w io.Writer, df string, bin []byte) error {
	tw := tar.NewWriter(w)
	now := time.Now().Truncate(time.Second)
	for _, f := range []struct {
		name string
		mode int64
		typ  byte
		data []byte
	}{
		{"Dockerfile", 0o644, tar.TypeReg, []byte(df)},
		{"openhands-agent-server", 0o755, tar.TypeReg, bin},
		{"workspace/", 0o775, tar.TypeDir, nil},
		{"tmp/", 0o1777, tar.TypeDir, nil},
	} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Typeflag: f.typ, Size: int64(len(f.data)), ModTime: now}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// buildBinary compiles the stand-in static (CGO_ENABLED=0) and
// reproducibly (-trimpath, no VCS stamp), so its hash changes only when
// its code or the toolchain does.
func buildBinary(ctx context.Context, src string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "agent-server-standin-")
	if err != nil {
		return nil, fmt.Errorf("building the stand-in: %w", err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "openhands-agent-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("building the stand-in in %s: %w", src, ctx.Err())
		}
		return nil, errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("building the stand-in in %s: %v: %s", src, err, strings.TrimSpace(stderr.String())), err)
	}
	return os.ReadFile(out)
}

// readBuild drains the engine's JSON build stream and returns the image
// ID, or the build's error message.
func readBuild(r io.Reader) (string, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var id string
	var tail []string
	for {
		var m struct {
			Stream      string                    `json:"stream"`
			Error       string                    `json:"error"`
			ErrorDetail *struct{ Message string } `json:"errorDetail"`
			Aux         json.RawMessage           `json:"aux"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return "", fmt.Errorf("reading the build output: %w", err)
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			tail = append(tail, s)
			if len(tail) > 10 {
				tail = tail[1:]
			}
		}
		if len(m.Aux) > 0 {
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			return "", fmt.Errorf("%s (last output: %s)", msg, strings.Join(tail, " | "))
		}
	}
}

func inputsHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func engineError(err error, what string) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	case client.IsErrConnectionFailed(err):
		return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("%s: the Docker engine does not answer: %v", what, err), err)
	default:
		return errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("%s: %v", what, err), err)
	}
}
