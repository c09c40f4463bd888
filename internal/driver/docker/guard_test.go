package docker

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
)

// guardEngine is a fake engine for the one path the real engine here
// cannot take: it mounts overlays, so it never refuses one at start. This
// one does, with the 20.10 text, the first time a container uses an
// overlay volume; the test then checks that the driver fell back to a
// copy. Volumes live in temporary directories, as the engine's do.
type guardEngine struct {
	fakeEngine
	t       *testing.T
	vmu     sync.Mutex
	vols    map[string]client.VolumeCreateOptions
	dirs    map[string]string
	starts  int
	copied  []string // tar entries sent
	removed []string // volumes
}

func (g *guardEngine) VolumeInspect(ctx context.Context, id string, o client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	g.vmu.Lock()
	defer g.vmu.Unlock()
	if _, ok := g.vols[id]; ok {
		return client.VolumeInspectResult{Volume: volume.Volume{Name: id, Mountpoint: g.dirs[id]}}, nil
	}
	return client.VolumeInspectResult{}, cerrdefs.ErrNotFound.WithMessage("no such volume")
}

func (g *guardEngine) VolumeCreate(ctx context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error) {
	g.vmu.Lock()
	defer g.vmu.Unlock()
	dir := filepath.Join(g.t.TempDir(), "_data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return client.VolumeCreateResult{}, err
	}
	g.vols[o.Name], g.dirs[o.Name] = o, dir
	return client.VolumeCreateResult{Volume: volume.Volume{Name: o.Name, Mountpoint: dir, Labels: o.Labels}}, nil
}

func (g *guardEngine) VolumeRemove(ctx context.Context, id string, o client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	g.vmu.Lock()
	defer g.vmu.Unlock()
	delete(g.vols, id)
	g.removed = append(g.removed, id)
	return client.VolumeRemoveResult{}, nil
}

func (g *guardEngine) VolumeList(ctx context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	g.vmu.Lock()
	defer g.vmu.Unlock()
	var r client.VolumeListResult
	for name, v := range g.vols {
		r.Items = append(r.Items, volume.Volume{Name: name, Mountpoint: g.dirs[name], Labels: v.Labels})
	}
	return r, nil
}

func (g *guardEngine) ContainerStart(ctx context.Context, id string, o client.ContainerStartOptions) (client.ContainerStartResult, error) {
	g.vmu.Lock()
	defer g.vmu.Unlock()
	g.starts++
	for _, v := range g.vols {
		if v.DriverOpts["type"] == "overlay" {
			return client.ContainerStartResult{}, errors.New("Error response from daemon: error while mounting volume '/var/lib/docker/volumes/" + v.Name + "/_data': failed to mount local volume: mount overlay: invalid argument")
		}
	}
	return client.ContainerStartResult{}, errors.New("the test ends here")
}

func (g *guardEngine) CopyToContainer(ctx context.Context, id string, o client.CopyToContainerOptions) (client.CopyToContainerResult, error) {
	tr := tar.NewReader(o.Content)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return client.CopyToContainerResult{}, nil
		}
		if err != nil {
			return client.CopyToContainerResult{}, err
		}
		g.copied = append(g.copied, h.Name)
	}
}

func TestGuardFallsBackToCopyWhenTheOverlayCannotBeMounted(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &guardEngine{t: t, vols: map[string]client.VolumeCreateOptions{}, dirs: map[string]string{}}
	var mounts [][]string
	g.create = func(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
		var ms []string
		for _, m := range o.HostConfig.Mounts {
			ms = append(ms, m.Source+":"+m.Target)
		}
		mounts = append(mounts, ms)
		return client.ContainerCreateResult{ID: "c1"}, nil
	}
	d := fakeDriver(&g.fakeEngine)
	d.api = g
	_, err := d.Create(context.Background(), driver.Spec{ID: "fb1", Image: "img", Prebuilt: true,
		Mounts: []driver.Mount{{Source: host, Target: "/workspace", Guard: true}}})
	if err == nil || !strings.Contains(err.Error(), "the test ends here") {
		t.Fatalf("create: %v", err)
	}
	if g.starts != 2 || len(mounts) != 2 {
		t.Fatalf("%d starts, %d creates; want a second attempt", g.starts, len(mounts))
	}
	// The volume is on this host, so the copy is made here.
	if b, err := os.ReadFile(filepath.Join(g.dirs["sbx-wsv-fb1-0"], "a.txt")); err != nil || string(b) != "a" || len(g.copied) != 0 {
		t.Errorf("the copy: %q %v (through the engine: %v)", b, err, g.copied)
	}
	if !slices.Contains(g.removed, "sbx-wsv-fb1-0") {
		t.Errorf("the overlay volume was not removed before the copy: %v", g.removed)
	}
	// The failed create leaves no guard volume behind.
	if len(g.vols) != 0 {
		t.Errorf("volumes left: %v", g.vols)
	}
}
