package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/version"
)

// sandboxdVolume returns the name of the volume holding this sbx's
// sandboxd, creating and filling it the first time. The name carries the
// binary's digest, so different sbx builds never share or overwrite one,
// and the engine holds the binary itself: sbx can run in a container of
// its own with only the Docker socket and still inject sandboxd, because
// no host path is involved.
func (d *Driver) sandboxdVolume(ctx context.Context, image string) (string, error) {
	bin, err := d.bin.Locate(ctx)
	if err != nil {
		return "", err
	}
	name := "sbx-sandboxd-" + bin.Digest[:16]
	d.volMu.Lock()
	defer d.volMu.Unlock()
	if d.volumes[name] {
		return name, nil
	}
	if _, err := d.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		d.volumes[name] = true
		return name, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", classify(err, "inspect volume "+name)
	}
	if err := d.fillVolume(ctx, name, image, bin.Path); err != nil {
		return "", err
	}
	d.volumes[name] = true
	return name, nil
}

// resetVolume refills a volume found empty.
func (d *Driver) resetVolume(ctx context.Context, name, image string) error {
	bin, err := d.bin.Locate(ctx)
	if err != nil {
		return err
	}
	d.volMu.Lock()
	defer d.volMu.Unlock()
	return d.fillVolume(ctx, name, image, bin.Path)
}

// fillVolume copies the binary into the volume through a container that is
// created and never started: the engine mounts a created container's
// volumes for a copy, and the image is one the sandbox is about to use, so
// nothing has to be pulled or built for it.
//
// The engine writes a copied file in place, so the binary goes in under a
// name of its own first and the entrypoint name, a symbolic link, comes
// second: a sandbox never runs a half-written binary, whether this copy is
// cut short or another sbx process fills the same volume at the same time.
// A fill that fails removes the volume (unless sandboxes already use it),
// so the next attempt starts clean.
func (d *Driver) fillVolume(ctx context.Context, name, image, path string) (err error) {
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = d.api.VolumeRemove(cctx, name, client.VolumeRemoveOptions{})
		}
	}()
	start := time.Now()
	if _, err := d.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: map[string]string{
		driver.LabelManaged: "true", driver.LabelVersion: version.Version, "dev.sbx.kind": "sandboxd",
	}}); err != nil {
		return classify(err, "create volume "+name)
	}
	res, err := d.createContainer(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Entrypoint: []string{driver.SandboxdPath}, Labels: map[string]string{driver.LabelManaged: "true", "dev.sbx.kind": "filler"}},
		HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/opt/sbx",
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}}}},
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("image %s: not present", image), err)
		}
		return classify(err, "create a container to fill volume "+name)
	}
	defer d.discard(ctx, res.ID)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fill volume %s: %w", name, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sandboxd binary: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	real := ".sandboxd-" + ids.New(4)
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: real, Mode: 0o755, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err = d.api.CopyToContainer(ctx, res.ID, client.CopyToContainerOptions{DestinationPath: "/opt/sbx", Content: pr})
	pr.Close()
	if err != nil {
		return classify(err, "copy sandboxd into volume "+name)
	}
	var link bytes.Buffer
	tw := tar.NewWriter(&link)
	if err := tw.WriteHeader(&tar.Header{Name: "sandboxd", Linkname: real, Mode: 0o777, ModTime: st.ModTime(), Typeflag: tar.TypeSymlink}); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := d.api.CopyToContainer(ctx, res.ID, client.CopyToContainerOptions{DestinationPath: "/opt/sbx", Content: &link}); err != nil {
		return classify(err, "link sandboxd in volume "+name)
	}
	d.log.Info("sandboxd volume filled", "volume", name, "bytes", st.Size(), "took", time.Since(start))
	return nil
}

// PruneVolumes removes sandboxd volumes of earlier sbx builds that no
// container uses any more (each build's sandboxd gets a volume of its own,
// so upgrades would otherwise leave one behind each time). It returns the
// names removed, or with dryRun those it would remove. Volumes younger
// than minAge are kept: one may be being filled for a sandbox starting now.
func (d *Driver) PruneVolumes(ctx context.Context, minAge time.Duration, dryRun bool) ([]string, error) {
	return d.pruneVolumes(ctx, minAge, dryRun, nil)
}

// pruneVolumes is PruneVolumes limited to volumes carrying all the labels
// of only, so that a test prunes the volumes it made and nothing else.
//
// "Earlier" means created before this build's own volume: a volume made
// since belongs to a build that ran later, another checkout's or a newer
// install's, whose sandboxes may start at any moment. Without this build's
// volume every volume is earlier than now. When this build's sandboxd
// cannot be located, which volume is current is unknown, and nothing is
// pruned rather than risking the one in use.
func (d *Driver) pruneVolumes(ctx context.Context, minAge time.Duration, dryRun bool, only map[string]string) ([]string, error) {
	bin, err := d.bin.Locate(ctx)
	if err != nil {
		d.log.Debug("not pruning sandboxd volumes: this build's sandboxd is unknown", "err", err)
		return nil, nil
	}
	current := "sbx-sandboxd-" + bin.Digest[:16]
	cutoff := time.Now()
	if cur, err := d.api.VolumeInspect(ctx, current, client.VolumeInspectOptions{}); err == nil {
		if t, err := time.Parse(time.RFC3339, cur.Volume.CreatedAt); err == nil {
			cutoff = t
		}
	} else if !cerrdefs.IsNotFound(err) {
		return nil, classify(err, "inspect volume "+current)
	}
	f := client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", "dev.sbx.kind=sandboxd")
	for k, v := range only {
		f = f.Add("label", k+"="+v)
	}
	res, err := d.api.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, classify(err, "list volumes")
	}
	// Every container, not only sbx's: a volume someone mounted in a
	// container of their own (running or stopped) is theirs too, and the
	// engine would refuse its removal anyway, but a dry run must not list
	// it either.
	used, err := d.api.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, classify(err, "list containers")
	}
	inUse := map[string]bool{}
	for _, c := range used.Items {
		for _, m := range c.Mounts {
			inUse[m.Name] = true
		}
	}
	var out []string
	var errs []error
	for _, v := range res.Items {
		if v.Name == current || inUse[v.Name] {
			continue
		}
		created, err := time.Parse(time.RFC3339, v.CreatedAt)
		if err != nil || time.Since(created) < minAge || !created.Before(cutoff) {
			continue
		}
		if !dryRun {
			// Not forced: the engine refuses a volume a container started
			// since the listing uses, which is the right answer.
			if _, err := d.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil {
				if !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
					errs = append(errs, classify(err, "remove volume "+v.Name))
				}
				continue
			}
		}
		out = append(out, v.Name)
	}
	return out, errors.Join(errs...)
}

// Prune implements driver.Pruner: the sandboxd volumes of earlier builds.
func (d *Driver) Prune(ctx context.Context, o driver.PruneOptions) ([]string, error) {
	vols, err := d.PruneVolumes(ctx, o.MinAge, o.DryRun)
	egress, eerr := d.pruneEgress(ctx, o.MinAge, o.DryRun, nil)
	return append(vols, egress...), errors.Join(err, eerr)
}
