package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
)

// ApplyOptions say what to apply.
type ApplyOptions struct {
	// Paths selects the changes at or under these folder-relative paths;
	// none selects every change that is not risky. A risky change is
	// applied only when a path at or inside its risky part names it
	// (".git/hooks" applies the hooks, ".git" does not).
	Paths []string
	// Force writes the selected changes over what changed on the host
	// since the start. A symbolic link or file where the folder had a
	// directory is refused even so: writing through it could leave the
	// folder.
	Force bool
	// DryRun checks for conflicts and writes nothing.
	DryRun bool
}

// Conflict is a selected change whose target the host changed since the
// sandbox started.
type Conflict struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	// Forced is true when Force wrote over it; Unforceable when even
	// Force does not.
	Forced      bool `json:"forced,omitempty"`
	Unforceable bool `json:"unforceable,omitempty"`
}

// PathError is a change that failed while writing.
type PathError struct {
	Path string `json:"path"`
	Err  string `json:"error"`
}

// ApplyResult is what an apply did.
type ApplyResult struct {
	Applied []Change `json:"applied"`
	// Skipped are changes not selected (risky ones) or not appliable
	// (fifos, sockets, devices).
	Skipped   []Change    `json:"skipped,omitempty"`
	Conflicts []Conflict  `json:"conflicts,omitempty"`
	Errors    []PathError `json:"errors,omitempty"`
}

// Select picks the changes o.Paths names (see ApplyOptions.Paths) and
// returns them with those left out. A path that names no change is
// ErrNotFound.
func Select(changes []Change, paths []string) (sel, skipped []Change, err error) {
	clean := make([]string, 0, len(paths))
	for _, p := range paths {
		c := path.Clean(strings.TrimPrefix(p, "./"))
		if !ValidPath(c) {
			return nil, nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%q is not a path inside the folder", p))
		}
		clean = append(clean, c)
	}
	used := make([]bool, len(clean))
	for _, c := range changes {
		ok := len(clean) == 0 && !c.Risky
		for i, p := range clean {
			if c.Path == p || strings.HasPrefix(c.Path, p+"/") {
				used[i] = true
				if !c.Risky || IsRisky(p) || c.Path == p {
					ok = true
				}
			}
		}
		if ok && c.Type != Special {
			sel = append(sel, c)
		} else {
			skipped = append(skipped, c)
		}
	}
	for i, u := range used {
		if !u {
			return nil, nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no change at %s", clean[i]))
		}
	}
	return sel, skipped, nil
}

// Apply writes the changes o selects into l.Host. It first checks every
// target against l.Manifest and writes nothing when one changed on the
// host (ErrConflict, the conflicts in the result) unless o.Force. Each
// file is written beside its target and renamed over it, through an
// os.Root of the folder, never through a symbolic link: an interrupted
// apply leaves every file old or new. One sync of the filesystem ends it.
// The manifest is updated to what was written (the caller stores it).
func Apply(ctx context.Context, l Layer, changes []Change, o ApplyOptions) (ApplyResult, error) {
	var res ApplyResult
	if l.Manifest == nil {
		return res, errdefs.New(errdefs.ErrInvalidArgument, "apply needs the start manifest")
	}
	sel, skipped, err := Select(changes, o.Paths)
	if err != nil {
		return res, err
	}
	res.Skipped = skipped
	root, err := os.OpenRoot(l.Host)
	if err != nil {
		return res, fmt.Errorf("open folder: %w", err)
	}
	defer root.Close()

	a := &applier{ctx: ctx, root: root, l: l, parents: map[string]string{}, made: map[string]bool{}, written: map[string]bool{},
		seen: map[string]fs.FileInfo{}, subs: map[string]*os.Root{}, prefix: ".sbx-apply-" + ids.New(4) + "-"}
	defer a.closeSubs()
	for _, c := range sel {
		if c.Type == Dir && c.Kind != Deleted && c.Kind != Metadata {
			a.made[c.Path] = true
		}
	}
	// Phase 1: look, write nothing.
	for _, c := range sel {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		for _, cf := range a.check(c) {
			if o.Force && !cf.Unforceable {
				cf.Forced = true
			}
			res.Conflicts = append(res.Conflicts, cf)
		}
	}
	for _, cf := range res.Conflicts {
		if !cf.Forced {
			return res, errdefs.New(errdefs.ErrConflict, conflictMessage(res.Conflicts))
		}
	}
	if o.DryRun {
		return res, nil
	}

	// Phase 2: deletions, then everything else parents first, hard links
	// once their first name exists, directory modes last (a read-only
	// directory would refuse its own children).
	var links, dirs, files []Change
	for _, c := range sel {
		if c.Kind == Deleted {
			a.do(&res, c, func() error { return root.RemoveAll(c.Path) })
		}
	}
	for _, c := range sel {
		if ctx.Err() != nil {
			break
		}
		switch {
		case c.Kind == Deleted:
		case c.HardLink != "":
			links = append(links, c)
		case c.Type == Dir:
			dirs = append(dirs, c)
			if c.Kind != Metadata {
				a.do(&res, c, func() error { return a.mkdir(c) })
			}
		default:
			files = append(files, c)
		}
	}
	// Files in parallel: creating an inode is most of an apply's CPU time,
	// and the kernel serialises it per directory only.
	errs := make([]error, len(files))
	ran := make([]bool, len(files))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range applyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) || ctx.Err() != nil {
					return
				}
				ran[i] = true
				errs[i] = a.write(files[i])
			}
		}()
	}
	wg.Wait()
	for i, c := range files {
		if !ran[i] {
			continue // not reached before the interrupt
		}
		a.do(&res, c, func() error { return errs[i] })
	}
	for _, c := range links {
		if ctx.Err() != nil {
			break
		}
		a.do(&res, c, func() error { return a.link(c) })
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path > dirs[j].Path })
	for _, c := range dirs {
		if a.failed(c.Path) {
			continue
		}
		if err := root.Chmod(c.Path, c.Mode&modeBits); err != nil {
			res.Errors = append(res.Errors, PathError{Path: c.Path, Err: err.Error()})
		}
	}
	if f, err := os.Open(l.Host); err == nil {
		_ = unix.Syncfs(int(f.Fd()))
		f.Close()
	}
	a.updateManifest(res.Applied)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("apply interrupted after %d of %d changes (each file is old or new): %w", len(res.Applied), len(sel), err)
	}
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("%d of %d changes could not be applied; the first: %s: %s", len(res.Errors), len(sel), res.Errors[0].Path, res.Errors[0].Err)
	}
	return res, nil
}

const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// applyWorkers write files at once.
const applyWorkers = 4

func conflictMessage(cs []Conflict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "nothing was applied: %d path(s) changed on the host since the sandbox started", len(cs))
	for i, c := range cs {
		if i == 10 {
			fmt.Fprintf(&b, "\n  … and %d more", len(cs)-10)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s", c.Path, c.Reason)
	}
	b.WriteString("\n(apply them anyway with --force, naming the paths; a symbolic link in the way is never followed)")
	return b.String()
}

type applier struct {
	ctx     context.Context
	root    *os.Root
	l       Layer
	parents map[string]string // ancestor → "" when fine, else why not
	made    map[string]bool   // directories this apply creates
	written map[string]bool   // paths written
	errs    map[string]bool
	// seen is each target's Lstat in the check (nil: absent), so the
	// write need not look again.
	seen map[string]fs.FileInfo
	// subs are roots of the directories written into: an operation on a
	// name in one is one system call, where the folder's root resolves
	// the whole path each time.
	subMu  sync.Mutex
	subs   map[string]*os.Root
	prefix string // of staging names
	n      atomic.Int64
}

// sub returns the root of directory dir ("" is the folder).
func (a *applier) sub(dir string) (*os.Root, error) {
	if dir == "" {
		return a.root, nil
	}
	a.subMu.Lock()
	defer a.subMu.Unlock()
	if r, ok := a.subs[dir]; ok {
		return r, nil
	}
	r, err := a.root.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	a.subs[dir] = r
	return r, nil
}

func (a *applier) closeSubs() {
	for _, r := range a.subs {
		r.Close()
	}
}

func (a *applier) do(res *ApplyResult, c Change, fn func() error) {
	if err := fn(); err != nil {
		if a.errs == nil {
			a.errs = map[string]bool{}
		}
		a.errs[c.Path] = true
		res.Errors = append(res.Errors, PathError{Path: c.Path, Err: err.Error()})
		return
	}
	a.written[c.Path] = true
	res.Applied = append(res.Applied, c)
}

func (a *applier) failed(p string) bool { return a.errs[p] }

// check returns the conflicts of one change.
func (a *applier) check(c Change) []Conflict {
	var out []Conflict
	// Every directory above the target must still be a directory of the
	// folder, not a symbolic link, unless this apply replaces it.
	replaced := false
	for i := 0; i < len(c.Path); i++ {
		if c.Path[i] != '/' {
			continue
		}
		anc := c.Path[:i]
		if a.made[anc] {
			replaced = true
			break
		}
		why, ok := a.parents[anc]
		if !ok {
			fi, err := a.root.Lstat(anc)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				why = "its directory " + anc + " was removed on the host"
			case err != nil:
				why = err.Error()
			case fi.Mode()&fs.ModeSymlink != 0:
				why = "its directory " + anc + " is a symbolic link on the host"
			case !fi.IsDir():
				why = "its directory " + anc + " is not a directory on the host"
			}
			a.parents[anc] = why
		}
		if why != "" {
			return []Conflict{{Path: c.Path, Reason: why, Unforceable: !strings.HasSuffix(why, "removed on the host")}}
		}
	}
	e, had := a.l.Manifest.Get(c.Path)
	fi, err := a.root.Lstat(c.Path)
	exists := err == nil
	if exists {
		a.seen[c.Path] = fi
	}
	if err != nil && replaced {
		// A directory above is made anew (whatever the host has there,
		// a symbolic link included, is replaced, not followed).
		err, exists = fs.ErrNotExist, false
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return []Conflict{{Path: c.Path, Reason: err.Error()}}
	}
	switch {
	case !had && exists:
		if c.Type == Dir && fi.IsDir() && c.Kind == Added {
			break // both made the same directory: their files are checked one by one
		}
		out = append(out, Conflict{Path: c.Path, Reason: "created on the host since the sandbox started"})
	case had && !exists:
		if c.Kind != Deleted {
			out = append(out, Conflict{Path: c.Path, Reason: "deleted on the host since the sandbox started"})
		}
	case had && exists && !sameAsEntry(fi, e):
		out = append(out, Conflict{Path: c.Path, Reason: "changed on the host since the sandbox started"})
	}
	if c.Kind == Deleted && exists && fi.IsDir() {
		// The user may have added or edited files in a directory the agent
		// deleted.
		_ = fs.WalkDir(a.root.FS(), c.Path, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == c.Path {
				return nil
			}
			sub, ok := a.l.Manifest.Get(p)
			fi, ierr := d.Info()
			if !ok {
				out = append(out, Conflict{Path: p, Reason: "created on the host inside a directory the sandbox deleted"})
			} else if ierr == nil && !sameAsEntry(fi, sub) {
				out = append(out, Conflict{Path: p, Reason: "changed on the host inside a directory the sandbox deleted"})
			}
			return nil
		})
	}
	return out
}

func (a *applier) mkdir(c Change) error {
	fi, err := a.root.Lstat(c.Path)
	if err == nil && !fi.IsDir() {
		if err := a.root.Remove(c.Path); err != nil {
			return err
		}
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := a.root.Mkdir(c.Path, 0o700); err != nil {
			return err
		}
		a.chown(c.Path, nil, c)
		return nil
	}
	return err
}

// chown gives a path sbx created as root the owner it should have: the
// replaced file's, else the sandbox file's. Not root, the writer owns it.
func (a *applier) chown(p string, old fs.FileInfo, c Change) {
	if os.Geteuid() != 0 {
		return
	}
	uid, gid := owner(old, c)
	_ = a.root.Lchown(p, uid, gid)
}

func owner(old fs.FileInfo, c Change) (int, int) {
	if old != nil {
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			return int(st.Uid), int(st.Gid)
		}
	}
	return int(c.uid), int(c.gid)
}

func (a *applier) tmpName(p string) string {
	dir, base := path.Split(p)
	if len(base) > 200 {
		base = base[:200]
	}
	return dir + a.prefix + strconv.FormatInt(a.n.Add(1), 10) + "-" + base
}

// replace renames tmp over c.Path, removing a directory in the way.
func (a *applier) replace(tmp string, old fs.FileInfo, c Change) error {
	if old != nil && old.IsDir() {
		if err := a.root.RemoveAll(c.Path); err != nil {
			return err
		}
	}
	return a.root.Rename(tmp, c.Path)
}

func (a *applier) write(c Change) (err error) {
	old := a.seen[c.Path]
	if c.Kind == Metadata && old != nil && old.Mode().IsRegular() && c.Type == File {
		if err := a.root.Chmod(c.Path, c.Mode&modeBits); err != nil {
			return err
		}
		t := time.Unix(0, c.mtimeNs)
		return a.root.Chtimes(c.Path, t, t)
	}
	tmp := a.tmpName(c.Path)
	defer func() {
		if err != nil {
			_ = a.root.Remove(tmp)
		}
	}()
	switch c.Type {
	case Symlink:
		if err := a.root.Symlink(c.Link, tmp); err != nil {
			return err
		}
		a.chown(tmp, old, c)
		return a.replace(tmp, old, c)
	case File:
		dir, base := path.Split(c.Path)
		tbase := path.Base(tmp)
		sub, err := a.sub(strings.TrimSuffix(dir, "/"))
		if err != nil {
			return err
		}
		src, err := os.Open(c.src)
		if err != nil {
			return err
		}
		defer src.Close()
		f, err := sub.OpenFile(tbase, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, src)
		if err == nil && os.Geteuid() == 0 {
			uid, gid := owner(old, c)
			err = f.Chown(uid, gid)
		}
		if err == nil {
			err = f.Chmod(c.Mode & modeBits)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		t := time.Unix(0, c.mtimeNs)
		if err := sub.Chtimes(tbase, t, t); err != nil {
			return err
		}
		if old != nil && old.IsDir() {
			if err := a.root.RemoveAll(c.Path); err != nil {
				return err
			}
		}
		return sub.Rename(tbase, base)
	}
	return fmt.Errorf("%s files are not applied", c.Type)
}

// link makes c a hard link of its first name when that name was written
// by this apply or is the host's unchanged file; otherwise c is written
// as a copy.
func (a *applier) link(c Change) (err error) {
	first := c.HardLink
	ok := a.written[first]
	if !ok {
		if e, had := a.l.Manifest.Get(first); had {
			fi, err := a.root.Lstat(first)
			ok = err == nil && sameAsEntry(fi, e)
		}
	}
	if !ok {
		return a.write(c)
	}
	old, lerr := a.root.Lstat(c.Path)
	if lerr != nil {
		old = nil
	}
	tmp := a.tmpName(c.Path)
	if err := a.root.Link(first, tmp); err != nil {
		return err
	}
	if err := a.replace(tmp, old, c); err != nil {
		_ = a.root.Remove(tmp)
		return err
	}
	return nil
}

// updateManifest records what the apply wrote, so that the next apply
// compares with it.
func (a *applier) updateManifest(applied []Change) {
	m := a.l.Manifest
	for _, c := range applied {
		if c.Kind == Deleted {
			m.Delete(c.Path)
			continue
		}
		fi, err := a.root.Lstat(c.Path)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			m.Delete(c.Path) // a directory it replaced, with its entries
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = a.root.Readlink(c.Path)
		}
		m.Set(EntryOf(c.Path, fi, link))
		if c.HardLink != "" {
			// The link changed the first name's link count.
			if fi, err := a.root.Lstat(c.HardLink); err == nil {
				m.Set(EntryOf(c.HardLink, fi, ""))
			}
		}
	}
}
