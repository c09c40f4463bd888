package modal_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/drivertest"
	"github.com/sbx-dev/sbx/internal/driver/modal"
	"github.com/sbx-dev/sbx/internal/driver/modal/modalfake"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// tunnelCert is the fake's TLS identity. It is made once, in TestMain,
// because Go reads the trusted roots (SSL_CERT_FILE) once per process:
// the bundle must name it before the first TLS handshake.
var tunnelCert modalfake.Cert

// TestMain trusts the fake's tunnel certificate beside the system's roots,
// so that sbx's clients check the fake's TLS tunnels exactly as they check
// Modal's, with no test-only switch in the driver.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "modalfake-roots-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if tunnelCert, err = modalfake.PrepareProcess(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func testImage() string {
	if s := os.Getenv("SBX_TEST_IMAGE"); s != "" {
		return s
	}
	return "sbx-test/debian:bookworm"
}

// fakeEnv starts the FAKE Modal API (modalfake; its sandboxes are Docker
// containers) and points the SDK at it the way a user points it at a
// Modal server: a profile file (MODAL_CONFIG_PATH) with server_url and a
// token. Without a Docker engine it skips, unless SBX_REQUIRE_DOCKER is
// set.
func fakeEnv(t testing.TB) *modalfake.Server {
	t.Helper()
	fake := modalfake.StartDocker(t, tunnelCert)
	profile, err := fake.ProfileFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MODAL_CONFIG_PATH", profile)
	for _, k := range []string{"MODAL_SERVER_URL", "MODAL_PROFILE", "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_ENVIRONMENT", "MODAL_SANDBOX_V2", "MODAL_IMAGE_BUILDER_VERSION"} {
		t.Setenv(k, "")
	}
	return fake
}

// openDriver is the driver as RUNTIME=modal opens it, from configuration.
func openDriver(t testing.TB, cfg *config.Config) *modal.Driver {
	t.Helper()
	cfg.Runtime = modal.Name
	cfg.Sandbox.BaseContainerImage = testImage()
	d, closer, err := modal.Open(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	return d
}

// TestConformanceFake runs the driver conformance suite against the
// driver talking to the FAKE Modal API: create (image, copy-in exec of
// sandboxd, TLS tunnel, readiness), exec, list by tags, logs, terminate.
// It shows the driver and the SDK agree with the fake, not that Modal
// behaves as the fake does.
func TestConformanceFake(t *testing.T) {
	fakeEnv(t)
	d := openDriver(t, config.Default())
	drivertest.Run(t, func(t *testing.T) driver.Driver { return d }, drivertest.Options{
		Name:       modal.Name,
		Concurrent: 3,
	})
}

// TestConformanceFakeV1 is the suite again with the SDK on Modal's V1
// sandbox calls (MODAL_SANDBOX_V2=0, or sandbox_v2 = false in a profile):
// the environment in an ephemeral secret, scheduling waited for, the
// command router found by task.
func TestConformanceFakeV1(t *testing.T) {
	fake := fakeEnv(t)
	t.Setenv("MODAL_SANDBOX_V2", "0")
	d := openDriver(t, config.Default())
	drivertest.Run(t, func(t *testing.T) driver.Driver { return d }, drivertest.Options{
		Name:       modal.Name,
		Concurrent: 3,
	})
	t.Cleanup(func() {
		calls := fake.Calls()
		if calls["SandboxCreate"] == 0 || calls["SandboxCreateV2"] != 0 || calls["SecretGetOrCreate"] == 0 {
			t.Errorf("the SDK did not take the V1 path: %v", calls)
		}
	})
}

// TestFakeSawTheFlow checks what the SDK asked of the (fake) Modal API
// for one sandbox: the resources and timeouts from the configuration,
// one encrypted port, sandboxd's copy-in through an exec with stdin, and
// the session key enforced through the tunnel.
func TestFakeSawTheFlow(t *testing.T) {
	fake := fakeEnv(t)
	cfg := config.Default()
	cfg.Sandbox.RemoteRuntimeResourceFactor = 2
	cfg.Sandbox.CloseDelay = 600
	d := openDriver(t, cfg)
	ctx := t.Context()
	id := "mf-" + ids.New(5)
	sb, err := d.Create(ctx, driver.Spec{ID: id, Image: testImage(), Labels: map[string]string{"dev.sbx.test": "flow"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Remove(context.WithoutCancel(ctx), id); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	if !strings.HasPrefix(sb.Endpoint.URL, "https://127.0.0.1:") {
		t.Errorf("endpoint %q is not the TLS tunnel", sb.Endpoint.URL)
	}
	def := fake.Definition("sbx-" + id)
	if def == nil {
		t.Fatal("the fake has no running sandbox sbx-" + id)
	}
	r := def.GetResources()
	if r.GetMilliCpu() != 2000 || r.GetMemoryMb() != 4096 {
		t.Errorf("resources = %d mCPU, %d MiB; want 2000, 4096 (factor 2)", r.GetMilliCpu(), r.GetMemoryMb())
	}
	if def.GetTimeoutSecs() != uint32(modal.DefaultTimeout/time.Second) || def.GetIdleTimeoutSecs() != 600 {
		t.Errorf("timeout %d s, idle %d s; want %d, 600", def.GetTimeoutSecs(), def.GetIdleTimeoutSecs(), modal.DefaultTimeout/time.Second)
	}
	ports := def.GetOpenPorts().GetPorts()
	if len(ports) != 1 || ports[0].GetPort() != modal.ServerPort || ports[0].GetUnencrypted() {
		t.Errorf("open ports = %v, want only %d, encrypted", ports, modal.ServerPort)
	}
	if args := def.GetEntrypointArgs(); len(args) < 3 || args[0] != "/bin/sh" {
		t.Errorf("entrypoint %q: want the copy-in wait in /bin/sh", args)
	}
	calls := fake.Calls()
	for _, m := range []string{"SandboxCreateV2", "TaskExecStart", "TaskExecStdinWrite", "TaskExecWait"} {
		if calls[m] == 0 {
			t.Errorf("the SDK never called %s (calls: %v)", m, calls)
		}
	}
	c := sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token)
	obs, _, err := c.Run(ctx, sandboxapi.NewRunAction("test -x /opt/sbx/sandboxd && echo copied", 30))
	if err != nil || strings.TrimSpace(obs.Content) != "copied" {
		t.Errorf("sandboxd in the sandbox: %q, %v", obs.Content, err)
	}
	if _, err := sandboxapi.NewClient(sb.Endpoint.URL, "").Execute(ctx, sandboxapi.NewRunAction("true", 10)); !sandboxapi.IsStatus(err, 401) && !sandboxapi.IsStatus(err, 403) {
		t.Errorf("no session key: %v, want 401 or 403", err)
	}
	got, err := d.Inspect(ctx, id)
	if err != nil || got.Endpoint != sb.Endpoint || got.Labels["dev.sbx.test"] != "flow" {
		t.Errorf("Inspect = %+v, %v", got, err)
	}
	for k := range got.Labels {
		if strings.HasPrefix(k, "dev.sbx.modal.") {
			t.Errorf("the driver's own tag %s shows as a label", k)
		}
	}
	// A writer that fails (the client reading the logs went away) ends
	// Logs with a classified error that still carries the writer's.
	if err := d.Logs(ctx, id, failingWriter{}, 0); !errors.Is(err, errdefs.ErrInternal) || !errors.Is(err, errWriterGone) {
		t.Errorf("Logs into a failing writer: %v, want ErrInternal wrapping the writer's error", err)
	}
}

var errWriterGone = errors.New("the reader went away")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWriterGone }

// A wrong token is refused by the (fake) server, and the driver says so
// as ErrUnauthorized.
func TestFakeWrongToken(t *testing.T) {
	fake := fakeEnv(t)
	cfg := config.Default()
	cfg.Host.ModalTokenID, cfg.Host.ModalTokenSecret = fake.TokenID, "wrong"
	d := openDriver(t, cfg)
	_, err := d.List(t.Context(), nil)
	if !errors.Is(err, errdefs.ErrUnauthorized) || !strings.Contains(err.Error(), "Modal token") {
		t.Fatalf("List with a wrong secret: %v, want an unauthorized error naming the token", err)
	}
}

// runtimeImage makes a local image as `sbx image build` would for Modal: the
// test image with sandboxd at driver.SandboxdPath. It and its build
// container are removed when the test ends.
func runtimeImage(t testing.TB) string {
	t.Helper()
	ctx := t.Context()
	dc, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	bin, err := (&sandboxdbin.Locator{}).Locate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin.Path)
	if err != nil {
		t.Fatal(err)
	}
	tag := "sbx-test/modalfake-runtime:" + ids.New(5)
	c, err := dc.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: testImage(), Cmd: []string{"true"},
		Labels: map[string]string{modalfake.Label: "runtime-image"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true})
	// /opt exists in Debian; the archive brings /opt/sbx with the binary.
	var dir bytes.Buffer
	dw := tar.NewWriter(&dir)
	if err := dw.WriteHeader(&tar.Header{Name: "sbx/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if err := dw.WriteHeader(&tar.Header{Name: "sbx/sandboxd", Mode: 0o755, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := dw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.CopyToContainer(ctx, c.ID, client.CopyToContainerOptions{DestinationPath: "/opt", Content: &dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.ContainerCommit(ctx, c.ID, client.ContainerCommitOptions{Reference: tag}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dc, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			t.Error(err)
			return
		}
		defer dc.Close()
		if _, err := dc.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true}); err != nil {
			t.Errorf("removing %s: %v", tag, err)
		}
	})
	return tag
}

// With runtime_container_image the image runs as is: sandboxd is its
// entrypoint and nothing is copied in.
func TestFakeRuntimeImage(t *testing.T) {
	fake := fakeEnv(t)
	cfg := config.Default()
	cfg.Sandbox.RuntimeContainerImage = runtimeImage(t)
	d := openDriver(t, cfg)
	ctx := t.Context()
	id := "mr-" + ids.New(5)
	sb, err := d.Create(ctx, driver.Spec{ID: id, Env: map[string]string{"SESSION_API_KEY": "key-chosen-by-the-caller"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove(context.WithoutCancel(ctx), id)
	if sb.Endpoint.Token != "key-chosen-by-the-caller" {
		t.Errorf("session key %q, want the one the spec's environment names", sb.Endpoint.Token)
	}
	def := fake.Definition("sbx-" + id)
	if args := def.GetEntrypointArgs(); len(args) == 0 || args[0] != driver.SandboxdPath {
		t.Errorf("entrypoint %q, want sandboxd itself", args)
	}
	if n := fake.Calls()["TaskExecStart"]; n != 0 {
		t.Errorf("%d execs for a runtime image, want none (nothing to copy in)", n)
	}
	obs, _, err := sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token).Run(ctx, sandboxapi.NewRunAction("echo ok", 30))
	if err != nil || strings.TrimSpace(obs.Content) != "ok" {
		t.Errorf("run: %q, %v", obs.Content, err)
	}
	if sb.Image != cfg.Sandbox.RuntimeContainerImage {
		t.Errorf("Sandbox.Image = %q", sb.Image)
	}
}

// BenchmarkCreateFake is Create + Remove of one sandbox through the driver
// and the FAKE Modal API (Docker containers on this machine, TLS tunnels
// on loopback): "runtime-image" starts sandboxd from the image, the
// baseline; "copy-in" streams sandboxd into the base image first, the
// cost of not needing a registry. Modal's own scheduling and network are
// not in either figure.
func BenchmarkCreateFake(b *testing.B) {
	fakeEnv(b)
	runtime := runtimeImage(b)
	for _, bc := range []struct {
		name     string
		image    string
		prebuilt bool
	}{{"runtime-image", runtime, true}, {"copy-in", testImage(), false}} {
		b.Run(bc.name, func(b *testing.B) {
			d := openDriver(b, config.Default())
			ctx := b.Context()
			for b.Loop() {
				id := "mb-" + ids.New(5)
				if _, err := d.Create(ctx, driver.Spec{ID: id, Image: bc.image, Prebuilt: bc.prebuilt}); err != nil {
					b.Fatal(err)
				}
				if err := d.Remove(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A Create whose context ends while Modal is still making the sandbox
// leaves nothing behind: the fake, like Modal, finishes making it, and
// the driver finds it by name and key and terminates it. The context is
// cancelled once the fake has the create call, so the test cannot pass
// on a Create that never asked for a sandbox; and the error is the
// caller's cancellation, not Modal being unavailable.
func TestFakeCreateGivenUp(t *testing.T) {
	fake := fakeEnv(t)
	d := openDriver(t, config.Default())
	// The App and the auth token first, so the create call is the next
	// the fake sees.
	if _, err := d.List(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	id := "mg-" + ids.New(5)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	created := func() bool {
		c := fake.Calls()
		return c["SandboxCreateV2"]+c["SandboxCreate"] > 0
	}
	go func() {
		defer cancel()
		for !created() && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := d.Create(ctx, driver.Spec{ID: id})
	if err == nil {
		d.Remove(t.Context(), id)
		t.Fatal("Create succeeded although its context was cancelled")
	}
	if !created() {
		t.Fatalf("the create call never reached the fake (calls: %v); err %v", fake.Calls(), err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Create given up: %v, want an error wrapping context.Canceled", err)
	}
	if errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Create given up by its caller is classified unavailable: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for fake.Definition("sbx-"+id) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox of a given-up create still runs after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := d.Inspect(t.Context(), id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after a given-up create: %v, want ErrNotFound", err)
	}
	// The fake may still be making the sandbox's container when the test
	// ends; closing it must wait for that, or the container outlives it
	// (a test binary exits right after).
	if err := fake.Close(); err != nil {
		t.Errorf("fake: %v", err)
	}
	// Watched for a while: a create the fake did not wait for makes its
	// container after Close returned.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		left, err := fake.Containers(context.WithoutCancel(t.Context()))
		if err != nil || len(left) > 0 {
			t.Fatalf("containers of the fake after it closed: %v, %v", left, err)
		}
	}
}
