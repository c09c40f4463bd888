package guard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Kind is what happened to a path.
type Kind string

// The kinds, with the letters the text form uses.
const (
	Added    Kind = "added"    // A
	Modified Kind = "modified" // M: content, or the type of the file
	Deleted  Kind = "deleted"  // D: a directory with everything in it
	Metadata Kind = "metadata" // T: same content, other mode or mtime
)

// Letter is the one-letter form of k.
func (k Kind) Letter() string {
	switch k {
	case Added:
		return "A"
	case Modified:
		return "M"
	case Deleted:
		return "D"
	case Metadata:
		return "T"
	}
	return "?"
}

// Type is the file type of a change's new content (of the old one for a
// deletion).
type Type string

// The types.
const (
	File    Type = "file"
	Dir     Type = "dir"
	Symlink Type = "symlink"
	Special Type = "special" // fifo, socket or device: listed, never applied
)

// Change is one path the sandbox changed.
type Change struct {
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	Type Type   `json:"type"`
	// Mode and Size are the new content's (the old one's for Deleted).
	Mode fs.FileMode `json:"mode"`
	Size int64       `json:"size"`
	// Link is a symbolic link's new target.
	Link string `json:"link,omitempty"`
	// HardLink names an earlier path of this list (or of the folder) that
	// this file is a hard link of, in the sandbox.
	HardLink string `json:"hard_link,omitempty"`
	// Risky marks a path that can make the host run code (a git hook,
	// .envrc, an editor's task file); apply leaves it out unless named.
	Risky bool `json:"risky,omitempty"`

	// src is the new content in the layer; mtime, uid and gid its stat.
	src      string
	mtimeNs  int64
	uid, gid uint32
}

// Source is where the new content is, on the host ("" for Deleted).
func (c Change) Source() string { return c.src }

// Layer is a change layer and the folder it is compared with.
type Layer struct {
	// Dir is the layer: the overlay's upper directory, or the copy.
	Dir string
	// Host is the user's folder (the overlay's lower directory).
	Host string
	// Copy says Dir is a full copy, compared with Manifest; otherwise it
	// is an overlay upper directory.
	Copy     bool
	Manifest *Manifest
}

// Scan reads the layer into its changes, in path order.
func Scan(ctx context.Context, l Layer) ([]Change, error) {
	s := &scanner{ctx: ctx, l: l, links: map[[2]uint64]string{}}
	var err error
	if l.Copy {
		if l.Manifest == nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "a copied layer needs its manifest")
		}
		s.seen = map[string]bool{}
		err = s.copyDir("")
		if err == nil {
			s.copyDeletes()
		}
	} else {
		err = s.upperDir("", true, false)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(s.out, func(i, j int) bool { return s.out[i].Path < s.out[j].Path })
	return s.out, nil
}

type scanner struct {
	ctx   context.Context
	l     Layer
	out   []Change
	links map[[2]uint64]string // (dev, ino) of a multiply linked file → first path
	seen  map[string]bool      // copy scan: paths present in the copy
}

func (s *scanner) layer(rel string) string { return filepath.Join(s.l.Dir, filepath.FromSlash(rel)) }
func (s *scanner) host(rel string) string  { return filepath.Join(s.l.Host, filepath.FromSlash(rel)) }

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// isWhiteout: overlayfs marks a deleted lower path with a 0/0 character
// device in upper.
func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 || fi.Mode()&fs.ModeDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// xattrIs reports whether the trusted. or user. (rootless overlay) form
// of the overlay attribute name is set to want ("" = set to anything).
func xattrIs(p, name, want string) bool {
	buf := make([]byte, 256)
	for _, pre := range []string{"trusted.overlay.", "user.overlay."} {
		n, err := unix.Lgetxattr(p, pre+name, buf)
		if err == nil && (want == "" || string(buf[:n]) == want) {
			return true
		}
	}
	return false
}

func typeOf(m fs.FileMode) Type {
	switch {
	case m.IsRegular():
		return File
	case m.IsDir():
		return Dir
	case m&fs.ModeSymlink != 0:
		return Symlink
	}
	return Special
}

func (s *scanner) change(rel string, k Kind, fi fs.FileInfo) Change {
	// A setuid or setgid bit set in the sandbox would reach the host
	// with the sandbox's owner (root, when sbx runs as root): as risky as
	// a git hook.
	c := Change{Path: rel, Kind: k, Type: typeOf(fi.Mode()), Mode: fi.Mode(), Size: fi.Size(),
		Risky: IsRisky(rel) || typeOf(fi.Mode()) != Symlink && fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0,
		src:   s.layer(rel), mtimeNs: fi.ModTime().UnixNano()}
	if c.Type == Dir {
		c.Size = 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		c.uid, c.gid = st.Uid, st.Gid
		if c.Type == File && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := s.links[key]; ok {
				c.HardLink = first
			} else {
				s.links[key] = rel
			}
		}
	}
	if c.Type == Symlink {
		c.Link, _ = os.Readlink(c.src)
	}
	return c
}

// note records an unchanged file's links, so that a new name linked to
// it is applied as a link.
func (s *scanner) note(p string, fi fs.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if _, ok := s.links[key]; !ok {
			s.links[key] = p
		}
	}
}

func (s *scanner) deleted(rel string, fi fs.FileInfo) {
	// A deletion is never risky: removing a hook runs nothing.
	s.out = append(s.out, Change{Path: rel, Kind: Deleted, Type: typeOf(fi.Mode()), Mode: fi.Mode(), Size: fi.Size()})
}

// upperDir scans the upper directory rel. lowerDir says the lower has a
// directory there (else everything below is new); opaque that the upper
// one hides it.
func (s *scanner) upperDir(rel string, lowerDir, opaque bool) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	names, err := readNames(s.layer(rel))
	if err != nil {
		return fmt.Errorf("read change layer: %w", err)
	}
	inUpper := make(map[string]bool, len(names))
	for _, n := range names {
		inUpper[n] = true
		p := join(rel, n)
		up, err := os.Lstat(s.layer(p))
		if err != nil {
			return fmt.Errorf("read change layer: %w", err)
		}
		var lo fs.FileInfo
		if lowerDir {
			if lo, err = os.Lstat(s.host(p)); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("read folder: %w", err)
				}
				lo = nil
			}
		}
		if isWhiteout(up) {
			if lo != nil {
				s.deleted(p, lo)
			}
			continue
		}
		if up.IsDir() {
			if xattrIs(s.layer(p), "redirect", "") {
				return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("%s: the overlay recorded a directory rename (redirect_dir is on), which sbx cannot read", p))
			}
			op := xattrIs(s.layer(p), "opaque", "y")
			switch {
			case lo == nil:
				s.out = append(s.out, s.change(p, Added, up))
				err = s.upperDir(p, false, false)
			case !lo.IsDir():
				s.out = append(s.out, s.change(p, Modified, up))
				err = s.upperDir(p, false, false)
			default:
				if up.Mode() != lo.Mode() {
					s.out = append(s.out, s.change(p, Metadata, up))
				}
				err = s.upperDir(p, true, op)
			}
			if err != nil {
				return err
			}
			continue
		}
		if k, ok := s.compare(p, up, lo); ok {
			s.out = append(s.out, s.change(p, k, up))
		} else {
			s.note(p, up)
		}
	}
	if opaque && lowerDir {
		lnames, err := readNames(s.host(rel))
		if err != nil {
			return fmt.Errorf("read folder: %w", err)
		}
		for _, n := range lnames {
			if inUpper[n] {
				continue
			}
			p := join(rel, n)
			if lo, err := os.Lstat(s.host(p)); err == nil {
				s.deleted(p, lo)
			}
		}
	}
	return nil
}

// compare classifies a non-directory of the layer against the folder's
// path (lo, nil when missing); ok is false when the two are the same.
func (s *scanner) compare(p string, up, lo fs.FileInfo) (Kind, bool) {
	if lo == nil {
		return Added, true
	}
	if typeOf(up.Mode()) != typeOf(lo.Mode()) {
		return Modified, true
	}
	switch typeOf(up.Mode()) {
	case Symlink:
		a, _ := os.Readlink(s.layer(p))
		b, _ := os.Readlink(s.host(p))
		if a != b {
			return Modified, true
		}
		return "", false
	case File:
		if up.Size() != lo.Size() {
			return Modified, true
		}
		same, err := sameContent(s.layer(p), s.host(p))
		if err != nil || !same {
			return Modified, true
		}
		if up.Mode() != lo.Mode() || !up.ModTime().Equal(lo.ModTime()) {
			return Metadata, true
		}
		return "", false
	}
	if up.Mode() != lo.Mode() {
		return Modified, true
	}
	return "", false
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}

// copyDir scans the copy's directory rel against the manifest: a
// stat-only comparison, with the content read only where size agrees
// and mtime or mode does not (to tell an edit from a touch).
func (s *scanner) copyDir(rel string) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	names, err := readNames(s.layer(rel))
	if err != nil {
		return fmt.Errorf("read change layer: %w", err)
	}
	for _, n := range names {
		p := join(rel, n)
		s.seen[p] = true
		up, err := os.Lstat(s.layer(p))
		if err != nil {
			return fmt.Errorf("read change layer: %w", err)
		}
		e, had := s.l.Manifest.Get(p)
		switch {
		case !had:
			s.out = append(s.out, s.change(p, Added, up))
		case typeOf(up.Mode()) != typeOf(e.Mode):
			s.out = append(s.out, s.change(p, Modified, up))
		case up.IsDir():
			if up.Mode() != e.Mode {
				s.out = append(s.out, s.change(p, Metadata, up))
			}
		case typeOf(up.Mode()) == Symlink:
			if l, _ := os.Readlink(s.layer(p)); l != e.Link {
				s.out = append(s.out, s.change(p, Modified, up))
			}
		case typeOf(up.Mode()) == File:
			switch {
			case up.Size() != e.Size:
				s.out = append(s.out, s.change(p, Modified, up))
			case up.ModTime().UnixNano() != e.MtimeNs || up.Mode() != e.Mode:
				k := Modified
				if hostUnchanged(s.host(p), e) {
					if same, err := sameContent(s.layer(p), s.host(p)); err == nil && same {
						k = Metadata
					}
				}
				s.out = append(s.out, s.change(p, k, up))
			default:
				// Same size, mtime and mode: taken as unchanged, as rsync
				// does; an edit that keeps all three is not seen.
				s.note(p, up)
			}
		default:
			if up.Mode() != e.Mode {
				s.out = append(s.out, s.change(p, Modified, up))
			}
		}
		if up.IsDir() {
			if err := s.copyDir(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyDeletes lists what the manifest has and the copy lost, a deleted
// directory once.
func (s *scanner) copyDeletes() {
	for _, e := range s.l.Manifest.Entries() {
		if s.seen[e.Path] {
			continue
		}
		if i := strings.LastIndexByte(e.Path, '/'); i > 0 {
			if parent, ok := s.l.Manifest.Get(e.Path[:i]); ok && !s.seen[parent.Path] {
				continue
			}
		}
		s.out = append(s.out, Change{Path: e.Path, Kind: Deleted, Type: typeOf(e.Mode), Mode: e.Mode, Size: e.Size})
	}
}

// hostUnchanged reports whether the folder's file is still as the
// manifest recorded it.
func hostUnchanged(p string, e Entry) bool {
	fi, err := os.Lstat(p)
	return err == nil && sameAsEntry(fi, e)
}

func sameAsEntry(fi fs.FileInfo, e Entry) bool {
	if typeOf(fi.Mode()) != typeOf(e.Mode) || fi.Mode() != e.Mode {
		return false
	}
	if fi.IsDir() {
		return true
	}
	if fi.Size() != e.Size || fi.ModTime().UnixNano() != e.MtimeNs {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && e.Ino != 0 && st.Ino != e.Ino {
		return false
	}
	return true
}

// IsRisky reports whether writing p into a folder can make the host run
// code the next time someone works there: git's config and hooks (of any
// repository in the folder), direnv's .envrc, VS Code's tasks and
// settings.
func IsRisky(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if el == ".envrc" || el == ".vscode" {
			return true
		}
	}
	for i := 0; ; {
		j := strings.Index(p[i:], ".git/")
		if j < 0 {
			break
		}
		at := i + j
		if at == 0 || p[at-1] == '/' {
			rest := p[at+len(".git/"):]
			if rest == "config" || rest == "hooks" || strings.HasPrefix(rest, "hooks/") {
				return true
			}
		}
		i = at + 1
	}
	return false
}
