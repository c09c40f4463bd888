package sbx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/guard"
)

// The workspace guard: a guarded mount (CreateOptions.Guard, the volume
// mode "guard", workspace_guard) gives the sandbox a copy-on-write view
// of a host folder. Its changes stay in a layer until Apply writes them
// into the folder, and Discard drops them.

// Change is one path a guarded sandbox changed.
type Change = guard.Change

// Change kinds and types.
const (
	ChangeAdded    = guard.Added
	ChangeModified = guard.Modified
	ChangeDeleted  = guard.Deleted
	ChangeMetadata = guard.Metadata
)

// GuardDiff is one guarded mount's changes.
type GuardDiff struct {
	Target  string // inside the sandbox
	Source  string // the host folder
	Mode    string // "overlay" or "copy"
	Changes []Change
	layer   guard.Layer
}

// WriteText lists the changes one per line (A, M, D, T; "!" marks a
// path that could make the host run code).
func (g GuardDiff) WriteText(w io.Writer) error { return guard.WriteText(w, g.Changes) }

// WriteStat lists the changes with lines added and removed.
func (g GuardDiff) WriteStat(w io.Writer) error { return guard.WriteStat(w, g.layer, g.Changes) }

// WritePatch writes a unified diff of the text files changed, against
// the folder as it is now.
func (g GuardDiff) WritePatch(w io.Writer) error { return guard.WritePatch(w, g.layer, g.Changes) }

// WriteGuardJSON writes diffs as one JSON document.
func WriteGuardJSON(w io.Writer, ds []GuardDiff) error {
	r := guard.JSONReport{Mounts: []guard.JSONMount{}}
	for _, d := range ds {
		r.Mounts = append(r.Mounts, guard.JSONMount{Target: d.Target, Source: d.Source, Mode: d.Mode, Changes: d.Changes})
	}
	return guard.WriteJSON(w, r)
}

func (r *Runtime) guardLayers(ctx context.Context, id string) ([]driver.GuardLayer, error) {
	g := r.be.Caps.Guard
	if g == nil {
		return nil, r.unsupported("guard a mounted folder")
	}
	ls, err := g.GuardLayers(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		if _, err := r.be.Driver.Inspect(ctx, id); err != nil {
			return nil, err
		}
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("sandbox %s has no guarded mount (start one with `sbx run --guard -v DIR:/workspace`)", id))
	}
	return ls, nil
}

func loadLayer(l driver.GuardLayer) (guard.Layer, error) {
	m, err := guard.ReadManifest(l.Manifest)
	if err != nil {
		return guard.Layer{}, fmt.Errorf("guarded mount %s: %w", l.Target, err)
	}
	return guard.Layer{Dir: l.Dir, Host: l.Source, Copy: l.Mode == driver.GuardCopy, Manifest: m}, nil
}

// Diff reads what sandbox id changed in its guarded mounts. It works
// while the sandbox runs (a snapshot of a layer being written), after it
// stopped, and after its container was removed by `--rm` (the layers
// stay until Remove or Discard).
func (r *Runtime) Diff(ctx context.Context, id string) ([]GuardDiff, error) {
	ls, err := r.guardLayers(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]GuardDiff, 0, len(ls))
	for _, l := range ls {
		gl, err := loadLayer(l)
		if err != nil {
			return nil, err
		}
		cs, err := guard.Scan(ctx, gl)
		if err != nil {
			return nil, fmt.Errorf("guarded mount %s: %w", l.Target, err)
		}
		out = append(out, GuardDiff{Target: l.Target, Source: l.Source, Mode: l.Mode, Changes: cs, layer: gl})
	}
	return out, nil
}

// ApplyOptions say what Apply writes.
type ApplyOptions struct {
	// Paths selects changes: a path inside the sandbox (/workspace/src),
	// a host path inside the folder, or a path relative to the only
	// guarded mount. None selects every change that is not risky; a
	// risky one (.git/config, .git/hooks/, .envrc, .vscode/) is applied
	// only when a path at or inside it names it.
	Paths []string
	// Force writes the selected changes over host edits made since the
	// start. A symbolic link in the way is refused even so.
	Force bool
}

// GuardApply is what Apply did in one guarded mount.
type GuardApply struct {
	Target string
	guard.ApplyResult
}

// Apply writes the changes of sandbox id into the host folders, once the
// sandbox is not running (its overlay is unmounted then). Every target is
// checked against the start manifest first: if the host changed one,
// nothing at all is written (ErrConflict, the conflicts in the result)
// unless Force. Each file is replaced atomically through the folder's
// os.Root, never through a symbolic link.
func (r *Runtime) Apply(ctx context.Context, id string, o ApplyOptions) ([]GuardApply, error) {
	ls, err := r.guardLayers(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.notRunning(ctx, id, "apply its changes"); err != nil {
		return nil, err
	}
	perMount, err := splitPaths(ls, o.Paths)
	if err != nil {
		return nil, err
	}
	type prepared struct {
		l   driver.GuardLayer
		gl  guard.Layer
		cs  []Change
		sel []string
	}
	var ps []prepared
	for i, l := range ls {
		if len(o.Paths) > 0 && len(perMount[i]) == 0 {
			continue
		}
		gl, err := loadLayer(l)
		if err != nil {
			return nil, err
		}
		cs, err := guard.Scan(ctx, gl)
		if err != nil {
			return nil, fmt.Errorf("guarded mount %s: %w", l.Target, err)
		}
		ps = append(ps, prepared{l, gl, cs, perMount[i]})
	}
	// Every mount's conflicts are known before any is written.
	var out []GuardApply
	for _, p := range ps {
		res, err := guard.Apply(ctx, p.gl, p.cs, guard.ApplyOptions{Paths: p.sel, Force: o.Force, DryRun: true})
		if err != nil {
			out = append(out, GuardApply{Target: p.l.Target, ApplyResult: res})
			return out, fmt.Errorf("%s: %w", p.l.Target, err)
		}
	}
	var errs []error
	for _, p := range ps {
		res, err := guard.Apply(ctx, p.gl, p.cs, guard.ApplyOptions{Paths: p.sel, Force: o.Force})
		out = append(out, GuardApply{Target: p.l.Target, ApplyResult: res})
		if len(res.Applied) > 0 {
			if werr := guard.WriteManifest(p.l.Manifest, p.gl.Manifest); werr != nil {
				errs = append(errs, werr)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.l.Target, err))
			if errors.Is(err, errdefs.ErrConflict) {
				break
			}
		}
	}
	return out, errors.Join(errs...)
}

// splitPaths maps the caller's paths to each layer's folder-relative
// ones.
func splitPaths(ls []driver.GuardLayer, paths []string) ([][]string, error) {
	out := make([][]string, len(ls))
	for _, p := range paths {
		found := false
		if !strings.HasPrefix(p, "/") {
			if len(ls) != 1 {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%q: the sandbox has %d guarded mounts; name the path as the sandbox sees it (%s/…)", p, len(ls), ls[0].Target))
			}
			out[0] = append(out[0], p)
			continue
		}
		for i, l := range ls {
			for _, base := range []string{l.Target, filepath.ToSlash(l.Source)} {
				c := path.Clean(p)
				if c == base {
					return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%q is the whole folder: leave the paths out to apply everything", p))
				}
				if rel, ok := strings.CutPrefix(c, base+"/"); ok && !found {
					out[i] = append(out[i], rel)
					found = true
				}
			}
		}
		if !found {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%q is in no guarded mount", p))
		}
	}
	return out, nil
}

func (r *Runtime) notRunning(ctx context.Context, id, what string) error {
	ds, err := r.be.Driver.Inspect(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil // the container is gone, the layers are not
	}
	if err != nil {
		return err
	}
	if ds.State == driver.StateRunning || ds.State == driver.StatePaused {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s is %s; stop it first (`sbx stop %s`) to %s: until then its changes are still being made", id, ds.State, id, what))
	}
	return nil
}

// Discard drops the changes of sandbox id, which must not be running:
// its guarded mounts show the host folders as they are now when it
// starts again. A sandbox whose container is gone is removed.
func (r *Runtime) Discard(ctx context.Context, id string) error {
	if _, err := r.guardLayers(ctx, id); err != nil {
		return err
	}
	if err := r.notRunning(ctx, id, "discard its changes"); err != nil {
		return err
	}
	if _, err := r.be.Driver.Inspect(ctx, id); errors.Is(err, errdefs.ErrNotFound) {
		return r.be.Driver.Remove(ctx, id)
	}
	return r.be.Caps.Guard.ResetGuard(ctx, id)
}

// pending counts the unapplied changes of a guarded sandbox; 0 for one
// without a guard.
func (r *Runtime) pending(ctx context.Context, id string) (int, error) {
	if r.be.Caps.Guard == nil {
		return 0, nil
	}
	ls, err := r.be.Caps.Guard.GuardLayers(ctx, id)
	if err != nil || len(ls) == 0 {
		return 0, err
	}
	ds, err := r.Diff(ctx, id)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range ds {
		n += len(d.Changes)
	}
	return n, nil
}

// RemoveOptions tune RemoveWith.
type RemoveOptions struct {
	// Force removes a guarded sandbox with changes nobody applied.
	Force bool
}

// RemoveWith removes a sandbox as Remove does, but refuses a guarded one
// whose changes were neither applied nor discarded (ErrConflict) unless
// Force.
func (r *Runtime) RemoveWith(ctx context.Context, id string, o RemoveOptions) error {
	if !o.Force {
		n, err := r.pending(ctx, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s has %d unapplied change(s) in its guarded folder: review them with `sbx diff %s`, then `sbx apply %s` or `sbx discard %s`, or remove it anyway with `sbx rm -f %s`", id, n, id, id, id, id))
		}
	}
	return r.be.Driver.Remove(ctx, id)
}

// Diff, Apply and Discard of this sandbox; see Runtime's.
func (s *Sandbox) Diff(ctx context.Context) ([]GuardDiff, error) { return s.rt.Diff(ctx, s.info.ID) }

// Apply writes this sandbox's changes; it must be stopped first.
func (s *Sandbox) Apply(ctx context.Context, o ApplyOptions) ([]GuardApply, error) {
	return s.rt.Apply(ctx, s.info.ID, o)
}

// Discard drops this sandbox's changes; it must be stopped first.
func (s *Sandbox) Discard(ctx context.Context) error { return s.rt.Discard(ctx, s.info.ID) }
