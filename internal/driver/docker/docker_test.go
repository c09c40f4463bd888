package docker

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/drivertest"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/launch"
)

func testImage() string {
	if s := os.Getenv("SBX_TEST_IMAGE"); s != "" {
		return s
	}
	return "sbx-test/debian:bookworm"
}

// newDriver connects to the real engine; without one the test skips,
// unless SBX_REQUIRE_DOCKER is set (as in CI), and then it fails.
func newDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := New(Options{})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = d.Ping(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			t.Fatalf("docker engine required: %v", err)
		}
		t.Skipf("no docker engine: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	d := newDriver(t)
	drivertest.Run(t, func(t *testing.T) driver.Driver { return d }, drivertest.Options{
		Name:       "docker",
		Image:      testImage(),
		Concurrent: 5,
	})
}

// The capabilities callers rely on are declared, and only those.
func TestCapabilities(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := strings.Join(driver.CapabilitiesOf(d).Names(), ",")
	if want := "pause,restart,kill,prune,images,build,describe"; got != want {
		t.Errorf("capabilities = %s, want %s", got, want)
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"", "-x", "a/b", "a b", "../x", strings.Repeat("a", 129), "é"} {
		if err := validID(id); !errdefs.IsInvalidArgument(err) {
			t.Errorf("validID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"a", "A-1_b.c", "0abc"} {
		if err := validID(id); err != nil {
			t.Errorf("validID(%q) = %v", id, err)
		}
	}
}

// A volume that a crashed sbx created but never filled is refilled on
// the next Create instead of breaking every sandbox.
func TestEmptySandboxdVolumeIsRefilled(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	bin, err := d.bin.Locate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A private locator digest would be neater; instead use a private
	// driver whose volume name is derived from a copy of the binary with
	// one byte appended, so the shared volume is not disturbed.
	dir := t.TempDir()
	b, err := os.ReadFile(bin.Path)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0)
	p := dir + "/sandboxd"
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SBX_SANDBOXD", p)
	d2, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	b2, err := d2.bin.Locate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vol := "sbx-sandboxd-" + b2.Digest[:16]
	api := d2.api.(*client.Client)
	if _, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.VolumeRemove(context.Background(), vol, client.VolumeRemoveOptions{Force: true}) })
	id := "refill-" + strings.ReplaceAll(t.Name(), "/", "-")
	t.Cleanup(func() { d2.Remove(context.Background(), id) })
	sb, err := d2.Create(ctx, driver.Spec{ID: id, Image: testImage(), User: "root"})
	if err != nil {
		t.Fatalf("create with an empty sandboxd volume: %v", err)
	}
	if sb.State != driver.StateRunning {
		t.Fatalf("state %s", sb.State)
	}
}

func TestPruneVolumes(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	api := d.api.(*client.Client)
	bin, err := d.bin.Locate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	current := "sbx-sandboxd-" + bin.Digest[:16]
	stale := "sbx-sandboxd-stale-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	if _, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: stale,
		Labels: map[string]string{driver.LabelManaged: "true", "dev.sbx.kind": "sandboxd"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.VolumeRemove(context.Background(), stale, client.VolumeRemoveOptions{Force: true}) })
	// A sandbox makes sure the current volume exists.
	id := "prune-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	t.Cleanup(func() { d.Remove(context.Background(), id) })
	if _, err := d.Create(ctx, driver.Spec{ID: id, Image: testImage(), User: "root"}); err != nil {
		t.Fatal(err)
	}
	got, err := d.PruneVolumes(ctx, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, stale) || slices.Contains(got, current) {
		t.Fatalf("dry run = %v; want %s and not %s", got, stale, current)
	}
	// Young volumes are kept.
	got, err = d.PruneVolumes(ctx, time.Hour, false)
	if err != nil || slices.Contains(got, stale) {
		t.Fatalf("prune with a one-hour minimum age = %v, %v", got, err)
	}
	if _, err := api.VolumeInspect(ctx, stale, client.VolumeInspectOptions{}); err != nil {
		t.Fatalf("young volume removed: %v", err)
	}
}

// The container's command and environment are what sandboxd parses back
// into the launch the spec asked for; no engine is needed to check it.
func TestContainerConfigLaunch(t *testing.T) {
	spec := driver.Spec{ID: "x", Image: "img", User: "root", UserID: 0, Plugins: []string{"agent_skills", "jupyter"},
		Env: map[string]string{"SESSION_API_KEY": "from-spec", "X": "1"}, Debug: true}
	cfg, _, err := (&Driver{}).containerConfig(spec, "", "tok")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	l, err := launch.Parse(cfg.Cmd, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("sandboxd would refuse %q: %v", cfg.Cmd, err)
	}
	if l.Port != ServerPort || l.WorkDir != "/workspace" || l.Host != launch.DefaultHost || l.Username != "root" ||
		l.UserID != 0 || !slices.Equal(l.Plugins, spec.Plugins) || l.SessionAPIKey != "tok" {
		t.Errorf("cmd %q env %q parse to %+v", cfg.Cmd, cfg.Env, l)
	}
	if env["X"] != "1" || env["DEBUG"] != "true" || !slices.IsSorted(cfg.Env) {
		t.Errorf("env %q", cfg.Env)
	}
}
