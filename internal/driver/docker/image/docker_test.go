package image

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// testBase is the local Debian image the container tests build on; it
// is made by scripts/mkimage-debian.sh, without any registry.
const testBase = "sbx-test/debian:bookworm"

// unpullable names an image in the .invalid domain, which never
// resolves: pulling it fails at once, online or not.
const unpullableRef = "sbx-nonexistent.invalid/sbx-test:none"

// requireDocker reports whether a missing Docker daemon (or test image)
// must fail the tests rather than skip them.
func requireDocker() bool {
	v := strings.TrimSpace(os.Getenv("SBX_REQUIRE_DOCKER"))
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// dockerClient returns a client for the local engine, skipping the test
// (or failing it under SBX_REQUIRE_DOCKER) when no daemon answers a ping.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		if requireDocker() {
			t.Fatalf("SBX_REQUIRE_DOCKER is set but the Docker daemon does not answer: %v", err)
		}
		t.Skipf("Docker daemon does not answer (set SBX_REQUIRE_DOCKER=1 to make this a failure): %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// needImage skips (or fails) when a test image is missing.
func needImage(t *testing.T, cli *client.Client, ref string) client.ImageInspectResult {
	t.Helper()
	res, err := cli.ImageInspect(t.Context(), ref)
	if err != nil {
		msg := "image " + ref + " is missing; build it with scripts/mkimage-debian.sh (" + err.Error() + ")"
		if requireDocker() {
			t.Fatal("SBX_REQUIRE_DOCKER is set but " + msg)
		}
		t.Skip(msg)
	}
	return res
}

var unsafeTagChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// uniqueTag is a tag no other test or run uses: the test's name plus a
// random suffix, in a repository only tests use.
func uniqueTag(t *testing.T) string {
	name := unsafeTagChars.ReplaceAllString(strings.ToLower(t.Name()), "-")
	name = strings.Trim(name, "-._")
	if len(name) > 60 {
		name = name[:60]
	}
	return "sbx-test/image-" + name + ":" + randomHex(6)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// removeImageAtCleanup removes ref (a tag or an ID) when the test ends;
// a tag shared with another image name is just untagged.
func removeImageAtCleanup(t *testing.T, cli *client.Client, ref string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
		if err != nil && !isNotFound(err) {
			t.Logf("cleanup: removing image %s: %v", ref, err)
		}
	})
}

func isNotFound(err error) bool {
	var nf interface{ NotFound() }
	return errors.As(err, &nf) || strings.Contains(err.Error(), "No such image")
}

// fileInImage reads path from ref's file system through a container that
// is created but never started.
func fileInImage(t *testing.T, cli *client.Client, ref, path string) (data []byte, hdr *tar.Header) {
	t.Helper()
	ctx := t.Context()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:      ref,
			Entrypoint: []string{"/nonexistent"},
			Labels:     map[string]string{"sbx.test": "1"},
		},
	})
	if err != nil {
		t.Fatalf("creating a container of %s: %v", ref, err)
	}
	defer cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	res, err := cli.CopyFromContainer(ctx, c.ID, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		if isNotFound(err) || strings.Contains(err.Error(), "Could not find") {
			return nil, nil
		}
		t.Fatalf("copying %s from %s: %v", path, ref, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	hdr, err = tr.Next()
	if err != nil {
		t.Fatalf("reading %s from %s: %v", path, ref, err)
	}
	data, err = io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return data, hdr
}

// countingAPI counts the calls that reach the engine.
type countingAPI struct {
	API
	mu    sync.Mutex
	calls map[string]int
}

func newCountingAPI(api API) *countingAPI { return &countingAPI{API: api, calls: map[string]int{}} }

func (c *countingAPI) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *countingAPI) n(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

func (c *countingAPI) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

func (c *countingAPI) ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	c.count("ImageInspect")
	return c.API.ImageInspect(ctx, ref, opts...)
}

func (c *countingAPI) ImageList(ctx context.Context, opts client.ImageListOptions) (client.ImageListResult, error) {
	c.count("ImageList")
	return c.API.ImageList(ctx, opts)
}

func (c *countingAPI) ImagePull(ctx context.Context, ref string, opts client.ImagePullOptions) (client.ImagePullResponse, error) {
	c.count("ImagePull")
	return c.API.ImagePull(ctx, ref, opts)
}

func (c *countingAPI) ImageImport(ctx context.Context, src client.ImageImportSource, ref string, opts client.ImageImportOptions) (client.ImageImportResult, error) {
	c.count("ImageImport")
	return c.API.ImageImport(ctx, src, ref, opts)
}

func (c *countingAPI) ImageBuild(ctx context.Context, r io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error) {
	c.count("ImageBuild")
	return c.API.ImageBuild(ctx, r, opts)
}

func (c *countingAPI) ImageTag(ctx context.Context, opts client.ImageTagOptions) (client.ImageTagResult, error) {
	c.count("ImageTag")
	return c.API.ImageTag(ctx, opts)
}

func (c *countingAPI) ImageRemove(ctx context.Context, ref string, opts client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	c.count("ImageRemove")
	return c.API.ImageRemove(ctx, ref, opts)
}

// noAPI fails every call: for paths that must not reach the engine.
type noAPI struct{ API }

func (noAPI) ImageInspect(context.Context, string, ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return client.ImageInspectResult{}, errors.New("unexpected engine call")
}

// testWriter collects progress lines and logs them.
type testWriter struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	for line := range strings.Lines(string(p)) {
		w.t.Log(strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// fileMode is the permission bits of a tar header.
func fileMode(h *tar.Header) fs.FileMode { return fs.FileMode(h.Mode).Perm() }

// writeBuildContextFiles writes a build context holding files.
func writeBuildContextFiles(w io.Writer, files map[string]string) error {
	tw := tar.NewWriter(w)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// runIn runs script with /bin/sh -c in a container of ref, as SWE-ReX's
// DockerDeployment starts its server, and fails the test unless it
// exits 0.
func runIn(t *testing.T, cli *client.Client, ref, script string) {
	t.Helper()
	ctx := t.Context()
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:      ref,
			Entrypoint: []string{"/bin/sh", "-c"},
			Cmd:        []string{script},
			Labels:     map[string]string{"sbx.test": "1"},
		},
	})
	if err != nil {
		t.Fatalf("creating a container of %s: %v", ref, err)
	}
	defer cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	w := cli.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting a container of %s: %v", ref, err)
	}
	var code int64
	select {
	case r := <-w.Result:
		code = r.StatusCode
	case err := <-w.Error:
		t.Fatalf("waiting for a container of %s: %v", ref, err)
	}
	if code != 0 {
		var out strings.Builder
		if rc, err := cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
			_, _ = stdcopy.StdCopy(&out, &out, rc)
			rc.Close()
		}
		t.Errorf("in %s, sh -c %q exited %d: %s", ref, script, code, out.String())
	}
}
