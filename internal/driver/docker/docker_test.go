package docker

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/drivertest"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
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
func newDriver(t testing.TB) *Driver {
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
	if want := "pause,restart,kill,prune,images,build,describe,network-policy,swerex,workloads,context-build,guard"; got != want {
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

// privateDriver is a driver whose sandboxd is a copy of the real one with
// one byte appended: another digest, so "this build's volume" is one the
// test makes and removes, and the shared one is not disturbed.
func privateDriver(t *testing.T, d *Driver) (*Driver, string) {
	t.Helper()
	ctx := context.Background()
	bin, err := d.bin.Locate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin.Path)
	if err != nil {
		t.Fatal(err)
	}
	p := t.TempDir() + "/sandboxd"
	if err := os.WriteFile(p, append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SBX_SANDBOXD", p)
	d2, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	b2, err := d2.bin.Locate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d2, "sbx-sandboxd-" + b2.Digest[:16]
}

// PruneVolumes takes the sandboxd volumes of earlier builds that nothing
// uses, and nothing else: not this build's, not a later build's (another
// checkout's, whose sandboxes may start any moment), not one that someone's
// stopped container mounts. The test removes only volumes it made: its real
// prunes are limited to its run label.
func TestPruneVolumes(t *testing.T) {
	d, current := privateDriver(t, newDriver(t))
	ctx := context.Background()
	api := d.api.(*client.Client)
	run := ids.New(6)
	labels := map[string]string{driver.LabelManaged: "true", "dev.sbx.kind": "sandboxd", "sbx.test.run": run}
	volume := func(name string) {
		t.Helper()
		if _, err := api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { api.VolumeRemove(context.Background(), name, client.VolumeRemoveOptions{Force: true}) })
	}
	stale := "sbx-sandboxd-stale-" + run
	volume(stale)
	// An earlier build's volume that a developer's stopped container (not
	// one of sbx's) still mounts.
	inUse := "sbx-sandboxd-inuse-" + run
	volume(inUse)
	c, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: testImage(), Cmd: []string{"true"}, Labels: map[string]string{"sbx.test.run": run}},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: inUse, Target: "/opt/sbx"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		api.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	})
	// Creation times have one-second resolution.
	time.Sleep(1100 * time.Millisecond)
	if _, err := d.sandboxdVolume(ctx, testImage()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.VolumeRemove(context.Background(), current, client.VolumeRemoveOptions{Force: true}) })
	time.Sleep(1100 * time.Millisecond)
	newer := "sbx-sandboxd-newer-" + run
	volume(newer)

	// A dry run of the real thing, over every volume on the engine.
	got, err := d.PruneVolumes(ctx, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, stale) {
		t.Errorf("dry run = %v; want it to include the unused earlier volume %s", got, stale)
	}
	for _, keep := range []string{current, newer, inUse} {
		if slices.Contains(got, keep) {
			t.Errorf("dry run = %v; would remove %s", got, keep)
		}
	}
	// Young volumes are kept.
	got, err = d.pruneVolumes(ctx, time.Hour, false, map[string]string{"sbx.test.run": run})
	if err != nil || len(got) != 0 {
		t.Fatalf("prune with a one-hour minimum age = %v, %v", got, err)
	}
	got, err = d.pruneVolumes(ctx, 0, false, map[string]string{"sbx.test.run": run})
	if err != nil || !slices.Equal(got, []string{stale}) {
		t.Fatalf("prune = %v, %v; want [%s]", got, err, stale)
	}
	for _, keep := range []string{current, newer, inUse} {
		if _, err := api.VolumeInspect(ctx, keep, client.VolumeInspectOptions{}); err != nil {
			t.Errorf("%s removed: %v", keep, err)
		}
	}
}

// The container's command and environment are what sandboxd parses back
// into the launch the spec asked for; no engine is needed to check it.
func TestContainerConfigLaunch(t *testing.T) {
	spec := driver.Spec{ID: "x", Image: "img", User: "root", UserID: 0, Plugins: []string{"agent_skills", "jupyter"},
		Env: map[string]string{"SESSION_API_KEY": "from-spec", "X": "1"}, Debug: true}
	cfg, _, err := (&Driver{}).containerConfig(spec, "", "tok", nil, nil)
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

// A Create whose name is held by an auto-removed sandbox that is not on its
// way out (created, never started: a crash between create and start) says
// "already exists" at once; it used to wait 31 s for a removal that never
// comes.
func TestCreateOverStuckAutoRemoveIsAlreadyExists(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	api := d.api.(*client.Client)
	id := "stuck-" + strings.ToLower(t.Name()[len(t.Name())-6:]) + "-" + time.Now().Format("150405.000")
	id = strings.ReplaceAll(id, ".", "")
	res, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: ContainerName(id),
		Config: &container.Config{Image: testImage(), Cmd: []string{"true"},
			Labels: map[string]string{driver.LabelManaged: "true", driver.LabelSession: id}},
		HostConfig: &container.HostConfig{AutoRemove: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true}) })
	start := time.Now()
	_, err = d.Create(ctx, driver.Spec{ID: id, Image: testImage(), AutoRemove: true})
	took := time.Since(start)
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("Create over a stuck sandbox: %v, want ErrAlreadyExists", err)
	}
	if took > 5*time.Second {
		t.Errorf("Create took %v to say so; nothing was being removed", took)
	}
}
