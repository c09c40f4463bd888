package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/guard"
	"github.com/sbx-dev/sbx/internal/version"
)

// A guarded mount is two volumes, both labelled with the session so that
// Remove finds them whether or not the container still exists:
//
//   - the state volume sbx-ws-<id>-<n>: the start manifest, and in
//     overlay mode the overlay's upper/ and work/ directories;
//   - the view volume sbx-wsv-<id>-<n>, mounted at the target: a `local`
//     volume of type overlay (the daemon mounts it, so the sandbox needs
//     no capability), or in copy mode a plain volume holding the copy.
//
// This process reads and writes the volumes' data through their
// Mountpoint, which needs the engine's storage on this machine and
// root (as here); GuardLayers says so when it cannot.
const (
	labelGuardTarget = "dev.sbx.guard.target"
	labelGuardSource = "dev.sbx.guard.source"
	labelGuardMode   = "dev.sbx.guard.mode"
	labelGuardIndex  = "dev.sbx.guard.index"
	kindGuardState   = "guard-state"
	kindGuardView    = "guard-view"
	manifestName     = "manifest"
)

// WorkspaceGuard: the Docker driver honours Mount.Guard.
var _ driver.WorkspaceGuard = (*Driver)(nil)

type guardMount struct {
	idx      int
	m        driver.Mount
	mode     string
	state    string // volume names
	view     string
	stateDir string // host paths of the volumes' data
	viewDir  string
	owner    fs.FileInfo // the host directory's root
	// manifest is set once taken; done is closed then (overlay mode takes
	// it while the container starts).
	manifest *guard.Manifest
	done     chan error
}

func guardStateName(id string, i int) string { return fmt.Sprintf("sbx-ws-%s-%d", id, i) }
func guardViewName(id string, i int) string  { return fmt.Sprintf("sbx-wsv-%s-%d", id, i) }

// overlayPathOK: the overlay's mount options are one comma-separated
// string with ':' separating lower layers, so a path holding either (or
// a backslash) cannot be said there; such a folder is copied instead.
func overlayPathOK(p string) bool { return !strings.ContainsAny(p, ",:\\") }

// makeGuards creates the volumes of spec's guarded mounts. A guard volume
// left by an earlier sandbox of the same id is never reused or touched:
// it may hold changes nobody applied.
func (d *Driver) makeGuards(ctx context.Context, spec driver.Spec) (gs []*guardMount, err error) {
	n := 0
	for _, m := range spec.Mounts {
		if m.Guard {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	switch spec.GuardMode {
	case driver.GuardAuto, driver.GuardOverlay, driver.GuardCopy:
	default:
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("guard mode %q: want overlay, copy or empty", spec.GuardMode))
	}
	defer func() {
		if err != nil {
			d.removeGuardVolumes(ctx, spec.ID)
		}
	}()
	for _, m := range spec.Mounts {
		if !m.Guard {
			continue
		}
		if m.Volume || m.ReadOnly {
			return gs, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("mount on %s: only a writable host directory can be guarded", m.Target))
		}
		fi, err := os.Stat(m.Source)
		if err != nil || !fi.IsDir() {
			return gs, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("guarded mount %s: %s is not a directory on this host", m.Target, m.Source))
		}
		g := &guardMount{idx: len(gs), m: m, owner: fi, state: guardStateName(spec.ID, len(gs)), view: guardViewName(spec.ID, len(gs))}
		for _, name := range []string{g.state, g.view} {
			if _, err := d.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
				return gs, errdefs.New(errdefs.ErrAlreadyExists, fmt.Sprintf("volume %s of an earlier sandbox %s still holds its guarded changes: `sbx diff %s`, then `sbx apply` or `sbx discard`, and `sbx rm %s`", name, spec.ID, spec.ID, spec.ID))
			} else if !cerrdefs.IsNotFound(err) {
				return gs, classify(err, "inspect volume "+name)
			}
		}
		g.mode = driver.GuardOverlay
		if spec.GuardMode == driver.GuardCopy || !overlayPathOK(m.Source) {
			if spec.GuardMode == driver.GuardOverlay {
				return gs, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("guarded mount %s: the path %s holds ',', ':' or '\\', which an overlay's options cannot carry; use the copy mode", m.Target, m.Source))
			}
			g.mode = driver.GuardCopy
		}
		gs = append(gs, g)
		if g.stateDir, err = d.guardVolume(ctx, spec.ID, g, kindGuardState, g.state, nil); err != nil {
			return gs, err
		}
		if err := d.makeView(ctx, spec.ID, g); err != nil {
			return gs, err
		}
	}
	return gs, nil
}

// guardVolume creates one of a guard's volumes and returns where its
// data is on this host.
func (d *Driver) guardVolume(ctx context.Context, id string, g *guardMount, kind, name string, opts map[string]string) (string, error) {
	labels := map[string]string{
		driver.LabelManaged: "true", driver.LabelSession: id, driver.LabelVersion: version.Version, labelKind: kind,
		labelGuardTarget: g.m.Target, labelGuardSource: g.m.Source, labelGuardMode: g.mode, labelGuardIndex: strconv.Itoa(g.idx),
	}
	o := client.VolumeCreateOptions{Name: name, Labels: labels}
	if opts != nil {
		o.Driver, o.DriverOpts = "local", opts
	}
	res, err := d.api.VolumeCreate(ctx, o)
	if err != nil {
		return "", classify(err, "create volume "+name)
	}
	return res.Volume.Mountpoint, nil
}

// makeView creates the view volume of g's mode. For an overlay, the
// upper directory's owner and mode are the host directory's: the merged
// root takes them from upper, and a non-root sandbox user could not
// write at the top of its workspace otherwise.
func (d *Driver) makeView(ctx context.Context, id string, g *guardMount) error {
	if g.mode == driver.GuardCopy {
		dir, err := d.guardVolume(ctx, id, g, kindGuardView, g.view, nil)
		if err != nil {
			return err
		}
		if _, err := os.Stat(dir); err != nil {
			// An engine elsewhere: the copy goes through its API.
			return nil
		}
		g.viewDir = dir
		return copyOwner(dir, g.owner)
	}
	upper, work := filepath.Join(g.stateDir, "upper"), filepath.Join(g.stateDir, "work")
	for _, p := range []string{upper, work} {
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return noHostAccess(err, g.stateDir)
		}
	}
	if err := copyOwner(upper, g.owner); err != nil {
		return err
	}
	_, err := d.guardVolume(ctx, id, g, kindGuardView, g.view, map[string]string{
		"type": "overlay", "device": "overlay",
		// redirect_dir, metacopy and index off keep upper readable as a
		// plain list of files, whiteouts and opaque directories.
		"o": "lowerdir=" + g.m.Source + ",upperdir=" + upper + ",workdir=" + work + ",redirect_dir=off,metacopy=off,index=off",
	})
	return err
}

func copyOwner(p string, fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
			return noHostAccess(err, p)
		}
	}
	return noHostAccess(os.Chmod(p, fi.Mode().Perm()), p)
}

func noHostAccess(err error, p string) error {
	if err == nil {
		return nil
	}
	return errdefs.Wrap(errdefs.ErrNotImplemented, fmt.Sprintf("the workspace guard reads and writes its layers where the engine keeps volumes (%s), and this process cannot: it needs the engine on this machine and root (%v)", p, err), err)
}

// toCopy turns overlay guards into copies, after the engine could not
// mount an overlay.
func (d *Driver) toCopy(ctx context.Context, id string, gs []*guardMount) error {
	for _, g := range gs {
		if g.mode != driver.GuardOverlay {
			continue
		}
		if _, err := d.api.VolumeRemove(ctx, g.view, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return classify(err, "remove volume "+g.view)
		}
		_ = os.RemoveAll(filepath.Join(g.stateDir, "upper"))
		_ = os.RemoveAll(filepath.Join(g.stateDir, "work"))
		g.mode = driver.GuardCopy
		// The state volume's mode label is fixed at creation; the view
		// volume's says which mode is in use.
		if err := d.makeView(ctx, id, g); err != nil {
			return err
		}
	}
	return nil
}

func hasOverlay(gs []*guardMount) bool {
	for _, g := range gs {
		if g.mode == driver.GuardOverlay {
			return true
		}
	}
	return false
}

// guardMounts are the engine mounts of the guards, in place of binds.
func guardMounts(gs []*guardMount) []mount.Mount {
	var out []mount.Mount
	for _, g := range gs {
		// NoCopy: an empty folder must not be filled from the image.
		out = append(out, mount.Mount{Type: mount.TypeVolume, Source: g.view, Target: g.m.Target, VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	return out
}

// beforeStart fills copies into the created container cid and starts
// the manifests of overlays, which are taken while the container
// starts: the sandbox never writes the host directory, so the two do not
// race.
func (d *Driver) beforeStart(ctx context.Context, cid string, gs []*guardMount) error {
	for _, g := range gs {
		if g.mode == driver.GuardCopy {
			if err := d.fillCopy(ctx, cid, g); err != nil {
				return err
			}
			continue
		}
		g.done = make(chan error, 1)
		go func() {
			m, err := guard.Take(ctx, g.m.Source)
			if err == nil {
				err = guard.WriteManifest(filepath.Join(g.stateDir, manifestName), m)
			}
			g.manifest = m
			g.done <- err
		}()
	}
	return nil
}

// afterStart waits for the manifests.
func afterStart(gs []*guardMount) error {
	var errs []error
	for _, g := range gs {
		if g.done != nil {
			errs = append(errs, <-g.done)
			g.done = nil
		}
	}
	return errors.Join(errs...)
}

// fillCopy copies the host directory into the copy volume through the
// engine (a tar stream to the created container), recording the manifest
// from the same walk.
func (d *Driver) fillCopy(ctx context.Context, cid string, g *guardMount) error {
	t0 := time.Now()
	if g.viewDir != "" {
		// The diff reads the volume here anyway: copying here is several
		// times faster than the engine unpacking a tar (20 s for 20 000
		// small files on 20.10).
		m, err := guard.CopyFolder(ctx, g.m.Source, g.viewDir)
		if err != nil {
			return err
		}
		d.log.Debug("guarded folder copied", "source", g.m.Source, "entries", m.Len(), "took", time.Since(t0))
		g.manifest = m
		return guard.WriteManifest(filepath.Join(g.stateDir, manifestName), m)
	}
	pr, pw := io.Pipe()
	var m *guard.Manifest
	go func() {
		var err error
		m, err = guard.TarFolder(ctx, g.m.Source, pw)
		pw.CloseWithError(err)
	}()
	_, err := d.api.CopyToContainer(ctx, cid, client.CopyToContainerOptions{DestinationPath: g.m.Target, Content: pr, CopyUIDGID: true})
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return classify(err, "copy "+g.m.Source+" into the sandbox")
	}
	if m == nil {
		return fmt.Errorf("copy of %s ended early", g.m.Source)
	}
	d.log.Debug("guarded folder copied", "source", g.m.Source, "entries", m.Len(), "took", time.Since(t0))
	g.manifest = m
	return guard.WriteManifest(filepath.Join(g.stateDir, manifestName), m)
}

// GuardLayers implements driver.WorkspaceGuard.
func (d *Driver) GuardLayers(ctx context.Context, id string) ([]driver.GuardLayer, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	vols, err := d.guardVolumes(ctx, id)
	if err != nil {
		return nil, err
	}
	views := map[string]string{}
	for _, v := range vols {
		if v.Labels[labelKind] == kindGuardView {
			views[v.Labels[labelGuardIndex]] = v.Mountpoint
		}
	}
	var out []driver.GuardLayer
	for _, v := range vols {
		if v.Labels[labelKind] != kindGuardState {
			continue
		}
		l := driver.GuardLayer{Target: v.Labels[labelGuardTarget], Source: v.Labels[labelGuardSource],
			Manifest: filepath.Join(v.Mountpoint, manifestName)}
		// The mode in use is the view volume's: a fallback turns an
		// overlay into a copy after the state volume was made.
		for _, vv := range vols {
			if vv.Labels[labelKind] == kindGuardView && vv.Labels[labelGuardIndex] == v.Labels[labelGuardIndex] {
				l.Mode = vv.Labels[labelGuardMode]
			}
		}
		switch l.Mode {
		case driver.GuardOverlay:
			l.Dir = filepath.Join(v.Mountpoint, "upper")
		case driver.GuardCopy:
			l.Dir = views[v.Labels[labelGuardIndex]]
		default:
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %s: the guard of %s has lost its view volume", id, l.Target))
		}
		if _, err := os.Stat(l.Dir); err != nil {
			return nil, noHostAccess(err, l.Dir)
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, nil
}

type guardVol struct {
	Name, Mountpoint string
	Labels           map[string]string
}

func (d *Driver) guardVolumes(ctx context.Context, id string) ([]guardVol, error) {
	f := client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", driver.LabelSession+"="+id)
	res, err := d.api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, classify(err, "list volumes of "+id)
	}
	var out []guardVol
	for _, v := range res.Items {
		if k := v.Labels[labelKind]; k == kindGuardState || k == kindGuardView {
			out = append(out, guardVol{Name: v.Name, Mountpoint: v.Mountpoint, Labels: v.Labels})
		}
	}
	return out, nil
}

// removeGuardVolumes removes a session's guard volumes, views first (an
// overlay's upper lives in the state volume). The host directory is the
// overlay's lower layer and is never written by a removal.
func (d *Driver) removeGuardVolumes(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	vols, err := d.guardVolumes(ctx, id)
	if err != nil {
		return err
	}
	sort.Slice(vols, func(i, j int) bool {
		return vols[i].Labels[labelKind] == kindGuardView && vols[j].Labels[labelKind] != kindGuardView
	})
	var errs []error
	for _, v := range vols {
		if _, err := d.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, classify(err, "remove volume "+v.Name))
		}
	}
	return errors.Join(errs...)
}

// ResetGuard implements driver.WorkspaceGuard.
func (d *Driver) ResetGuard(ctx context.Context, id string) error {
	ls, err := d.GuardLayers(ctx, id)
	if err != nil {
		return err
	}
	cid, c, err := d.ownContainer(ctx, id)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if err == nil && c.State != nil && (c.State.Running || c.State.Paused) {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s is running; stop it first (`sbx stop %s`): its overlay is mounted until then", id, id))
	}
	for i, l := range ls {
		if err := emptyDir(l.Dir); err != nil {
			return fmt.Errorf("empty the change layer of %s: %w", l.Target, err)
		}
		if l.Mode == driver.GuardOverlay {
			if err := emptyDir(filepath.Join(filepath.Dir(l.Dir), "work")); err != nil {
				return fmt.Errorf("empty the overlay's work directory of %s: %w", l.Target, err)
			}
			m, err := guard.Take(ctx, l.Source)
			if err == nil {
				err = guard.WriteManifest(l.Manifest, m)
			}
			if err != nil {
				return err
			}
			continue
		}
		if cid == "" {
			return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %s: its container is gone, so its copy cannot be made again; remove it with `sbx rm %s`", id, id))
		}
		g := &guardMount{idx: i, m: driver.Mount{Source: l.Source, Target: l.Target}, mode: l.Mode, stateDir: filepath.Dir(l.Manifest), viewDir: l.Dir}
		if err := d.fillCopy(ctx, cid, g); err != nil {
			return err
		}
	}
	return nil
}

// emptyDir removes what is in dir, keeping dir (its owner and mode are
// the merged root's).
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
