package transfer

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/staging"
)

// Layout of the staging directory an archive upload creates in dest.
const (
	spoolName = "archive.zip"
	treeName  = "tree"
)

// uploadArchive spools body into a staging directory inside root, extracts
// it there and moves the result into root. The staging directory is removed
// whatever happens.
func uploadArchive(ctx context.Context, root *os.Root, body io.Reader, opts Options) error {
	return inStage(root, opts.Journal, func(stage string, sroot *os.Root) error {
		return spoolAndExtract(ctx, root, stage, sroot, body, opts)
	})
}

// inStage runs fn in a new staging directory inside root, which is removed
// whatever happens: nothing half-extracted is ever left in the destination.
func inStage(root *os.Root, journal *staging.Journal, fn func(stage string, sroot *os.Root) error) (retErr error) {
	stage := staging.Name(tempPrefix)
	done, err := journal.Record(filepath.Join(root.Name(), stage))
	if err != nil {
		return err
	}
	// Dropped after the removal below (defers run last in, first out).
	defer done()
	if err := root.Mkdir(stage, 0o700); err != nil {
		return fsError("creating staging directory", err)
	}
	defer func() {
		if err := root.RemoveAll(stage); err != nil && retErr == nil {
			retErr = fsError("removing staging directory", err)
		}
	}()
	sroot, err := root.OpenRoot(stage)
	if err != nil {
		return fsError("opening staging directory", err)
	}
	defer sroot.Close()
	return fn(stage, sroot)
}

func spoolAndExtract(ctx context.Context, root *os.Root, stage string, sroot *os.Root, body io.Reader, opts Options) error {
	spool, err := sroot.OpenFile(spoolName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fsError("creating spool file", err)
	}
	defer spool.Close()
	buf := make([]byte, copyBufSize)
	size, rerr, werr := copyChunks(ctx, spool, body, buf, -1)
	if rerr != nil {
		return bodyError(rerr)
	}
	if werr != nil {
		return fsError("spooling archive", werr)
	}

	if err := sroot.Mkdir(treeName, 0o700); err != nil {
		return fsError("creating staging directory", err)
	}
	troot, err := sroot.OpenRoot(treeName)
	if err != nil {
		return fsError("opening staging directory", err)
	}
	defer troot.Close()
	x := &extractor{
		root:     troot,
		owner:    opts.Owner,
		buf:      buf,
		kinds:    make(map[string]bool),
		dirModes: make(map[string]fs.FileMode),
		rebase:   opts.Rebase,
	}
	if err := x.extract(ctx, spool, size, opts.maxBytes(), opts.maxEntries()); err != nil {
		return err
	}
	// The archive is no longer needed; free its disk space before the move.
	spool.Close()
	if err := sroot.Remove(spoolName); err != nil {
		return fsError("removing spool file", err)
	}
	return moveIntoPlace(ctx, root, stage+"/"+treeName, x.dirModes)
}

// Extract unpacks the zip archive ra (size bytes long) into the existing
// directory dest with the guarantees of an archive upload: every entry is
// checked before anything is written (no "..", absolute names, links or
// special files), the archive is expanded in a staging directory inside
// dest and moved into place only once it is whole, so a refused or failed
// archive leaves dest as it was. Options.Rebase renames entries as docker
// cp does.
func Extract(ctx context.Context, ra io.ReaderAt, size int64, dest string, opts Options) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fsError("opening destination", err)
	}
	defer root.Close()
	return inStage(root, opts.Journal, func(stage string, troot *os.Root) error {
		x := &extractor{
			root:      troot,
			owner:     opts.Owner,
			buf:       make([]byte, copyBufSize),
			kinds:     make(map[string]bool),
			dirModes:  make(map[string]fs.FileMode),
			rebase:    opts.Rebase,
			hostNames: true,
		}
		if err := x.extract(ctx, ra, size, opts.maxBytes(), opts.maxEntries()); err != nil {
			return err
		}
		return moveIntoPlace(ctx, root, stage, x.dirModes)
	})
}

// Rebase renames archive entries the way docker cp renames what it copies
// to a new name: the entry From, and every entry below From/, is written
// as To (below To/). From "" means every entry, the archive being the
// contents of what is copied. An entry outside From is refused.
type Rebase struct {
	From, To string
}

func (rb *Rebase) check() error {
	if rb == nil {
		return nil
	}
	for _, p := range []string{rb.From, rb.To} {
		if p != "" && (!filepath.IsLocal(p) || path.Clean(p) != p) {
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("rebase: %q is not a clean relative path", p))
		}
	}
	if rb.To == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "rebase: no new name")
	}
	return nil
}

// apply gives the name under which the entry rel (from name) is written;
// "." stays the destination itself.
func (rb *Rebase) apply(name, rel string) (string, error) {
	switch {
	case rb == nil:
		return rel, nil
	case rel == "." && rb.From != "":
		return rel, nil // "./", the destination itself, is skipped
	case rb.From == "":
		return path.Join(rb.To, rel), nil
	case rel == rb.From:
		return rb.To, nil
	case strings.HasPrefix(rel, rb.From+"/"):
		return rb.To + rel[len(rb.From):], nil
	}
	return "", refused(fmt.Sprintf("archive entry %q is not %q or below it", name, rb.From))
}

// entry is one validated archive member.
type entry struct {
	f    *zip.File
	rel  string // slash-separated, clean, relative, never "."
	dir  bool
	mode fs.FileMode // permission bits to give it
}

// extractor writes validated entries below root, the staging tree.
type extractor struct {
	root    *os.Root
	owner   *Owner
	buf     []byte
	written int64
	// kinds records every path created in the tree (true: directory), to
	// detect entries that contradict each other without asking the disk.
	kinds map[string]bool
	// dirModes holds the final mode of every directory created; directories
	// stay 0700 while being filled and get these modes once moved.
	dirModes map[string]fs.FileMode
	rebase   *Rebase
	// hostNames refuses backslashes in names too: on a host they may be
	// separators, and the archive comes from a sandbox, not a user.
	hostNames bool
}

func (x *extractor) extract(ctx context.Context, ra io.ReaderAt, size, maxBytes int64, maxEntries int) error {
	zr, err := openZip(ra, size, maxEntries)
	if err != nil {
		return err
	}
	if len(zr.File) > maxEntries {
		return tooManyEntries(maxEntries)
	}
	entries, err := checkEntries(zr.File, maxBytes, x.rebase, x.hostNames)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		if e.dir {
			if err := x.mkdirs(e.rel); err != nil {
				return err
			}
			x.dirModes[e.rel] = e.mode
			continue
		}
		if err := x.mkdirs(path.Dir(e.rel)); err != nil {
			return err
		}
		if err := x.writeFile(ctx, e, maxBytes); err != nil {
			return err
		}
	}
	return nil
}

// mkdirs creates rel and its missing parents in the staging tree.
func (x *extractor) mkdirs(rel string) error {
	if rel == "." {
		return nil
	}
	if isDir, ok := x.kinds[rel]; ok {
		if !isDir {
			return conflictingEntries(rel)
		}
		return nil
	}
	if err := x.mkdirs(path.Dir(rel)); err != nil {
		return err
	}
	if err := x.root.Mkdir(rel, 0o700); err != nil {
		return fsError("extracting "+rel, err)
	}
	if x.owner != nil {
		if err := x.root.Lchown(rel, x.owner.UID, x.owner.GID); err != nil {
			return fsError("setting owner of "+rel, err)
		}
	}
	x.kinds[rel] = true
	x.dirModes[rel] = 0o755
	return nil
}

func (x *extractor) writeFile(ctx context.Context, e entry, maxBytes int64) error {
	if isDir, ok := x.kinds[e.rel]; ok && isDir {
		return conflictingEntries(e.rel)
	}
	rc, err := e.f.Open()
	if err != nil {
		return invalidEntry(e.f.Name, err)
	}
	defer rc.Close()
	// O_TRUNC: a later entry of the same name wins, as with unzip.
	f, err := x.root.OpenFile(e.rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fsError("extracting "+e.rel, err)
	}
	defer f.Close()
	x.kinds[e.rel] = false
	// Count what is really written, whatever the headers said.
	n, rerr, werr := copyChunks(ctx, f, rc, x.buf, maxBytes-x.written)
	x.written += n
	switch {
	case errors.Is(rerr, errLimit):
		return tooLarge(maxBytes)
	case errors.Is(rerr, context.Canceled), errors.Is(rerr, context.DeadlineExceeded):
		return fmt.Errorf("upload: %w", rerr)
	case rerr != nil:
		return invalidEntry(e.f.Name, rerr)
	case werr != nil:
		return fsError("extracting "+e.rel, werr)
	}
	if err := f.Chmod(e.mode); err != nil {
		return fsError("setting mode of "+e.rel, err)
	}
	if x.owner != nil {
		if err := f.Chown(x.owner.UID, x.owner.GID); err != nil {
			return fsError("setting owner of "+e.rel, err)
		}
	}
	if err := f.Close(); err != nil {
		return fsError("extracting "+e.rel, err)
	}
	return nil
}

// checkEntries validates every member before anything is written, so that a
// malicious or oversized archive is refused without side effects.
func checkEntries(files []*zip.File, maxBytes int64, rb *Rebase, hostNames bool) ([]entry, error) {
	entries := make([]entry, 0, len(files))
	var declared int64
	if err := rb.check(); err != nil {
		return nil, err
	}
	for _, f := range files {
		rel, err := entryPath(f.Name)
		if err != nil {
			return nil, err
		}
		if hostNames && strings.ContainsRune(f.Name, '\\') {
			return nil, refused(fmt.Sprintf("archive entry %q has a backslash; it could escape the destination", f.Name))
		}
		m := f.Mode()
		isDir := m.IsDir() || strings.HasSuffix(f.Name, "/")
		if rel, err = rb.apply(f.Name, rel); err != nil {
			return nil, err
		}
		switch {
		case m&fs.ModeSymlink != 0:
			return nil, refused(fmt.Sprintf("archive entry %q is a symbolic link; links are not extracted", f.Name))
		case !isDir && !m.IsRegular():
			return nil, refused(fmt.Sprintf("archive entry %q is not a regular file or directory", f.Name))
		case f.Flags&0x1 != 0:
			return nil, refused(fmt.Sprintf("archive entry %q is encrypted; encrypted archives are not supported", f.Name))
		case rel == ".":
			if isDir {
				continue // "./": the destination itself
			}
			return nil, refused(fmt.Sprintf("archive entry %q is not a valid file name", f.Name))
		}
		if !isDir {
			if f.Method != zip.Store && f.Method != zip.Deflate {
				return nil, refused(fmt.Sprintf("archive entry %q uses unsupported compression method %d", f.Name, f.Method))
			}
			if f.UncompressedSize64 > uint64(maxBytes-declared) {
				return nil, tooLarge(maxBytes)
			}
			declared += int64(f.UncompressedSize64)
		}
		entries = append(entries, entry{f: f, rel: rel, dir: isDir, mode: entryMode(f, isDir)})
	}
	return entries, nil
}

// entryPath turns a member name into a clean relative path, refusing any
// name that could leave the destination. ".." is refused wherever it
// appears, even where it would stay inside: no sane archiver writes it.
// Backslashes are ordinary characters on Linux and are kept.
func entryPath(name string) (string, error) {
	switch {
	case name == "":
		return "", refused("archive entry with an empty name")
	case strings.ContainsRune(name, 0):
		return "", refused(fmt.Sprintf("archive entry %q contains a NUL byte", name))
	case strings.HasPrefix(name, "/"):
		return "", refused(fmt.Sprintf("archive entry %q is an absolute path", name))
	}
	for elem := range strings.SplitSeq(name, "/") {
		if elem == ".." {
			return "", refused(fmt.Sprintf("archive entry %q has a \"..\" element; it could escape the destination", name))
		}
	}
	return path.Clean(name), nil
}

// entryMode returns the permission bits to give an entry: the archive's
// Unix bits without setuid, setgid and sticky (FileMode.Perm drops them),
// or 0644/0755 when the archive carries no Unix modes.
func entryMode(f *zip.File, isDir bool) fs.FileMode {
	const creatorUnix, creatorMacOSX = 3, 19
	switch f.CreatorVersion >> 8 {
	case creatorUnix, creatorMacOSX:
		if p := f.Mode().Perm(); p != 0 {
			return p
		}
	}
	if isDir {
		return 0o755
	}
	return 0o644
}

// centralDirSig starts every central directory record.
var centralDirSig = []byte("PK\x01\x02")

// dirGuard stands between zip.NewReader and the spool file while the central
// directory is parsed. archive/zip keeps reading directory records until one
// does not parse, whatever count the archive declares, and allocates a File
// for each, so a crafted directory of a few hundred MB would cost GBs of
// memory before any limit could be checked. The guard fails the read once
// the records seen exceed the entry limit or the directory exceeds its byte
// budget. Signatures in the last 66 KiB (where archive/zip looks for the end
// record, and which may hold file data) are not counted: that undercounts by
// at most ~1500 records, which is harmless, and avoids refusing an archive
// whose last stored member is itself a zip.
type dirGuard struct {
	r         io.ReaderAt
	armed     bool
	tailStart int64
	bytesLeft int64
	sigsLeft  int
}

var errDirTooLarge = errors.New("central directory over its limit")

func (g *dirGuard) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.r.ReadAt(p, off)
	if !g.armed {
		return n, err
	}
	g.bytesLeft -= int64(n)
	if counted := min(int64(n), g.tailStart-off); counted > 0 {
		g.sigsLeft -= bytes.Count(p[:counted], centralDirSig)
	}
	if g.bytesLeft < 0 || g.sigsLeft < 0 {
		return 0, errDirTooLarge
	}
	return n, err
}

// openZip parses the archive's directory under a dirGuard.
func openZip(ra io.ReaderAt, size int64, maxEntries int) (*zip.Reader, error) {
	g := &dirGuard{
		r:         ra,
		armed:     true,
		tailStart: size - 66*1024,
		bytesLeft: 1<<20 + 512*int64(maxEntries),
		sigsLeft:  maxEntries,
	}
	zr, err := zip.NewReader(g, size)
	g.armed = false
	switch {
	case errors.Is(err, errDirTooLarge):
		if g.sigsLeft < 0 {
			return nil, tooManyEntries(maxEntries)
		}
		return nil, errdefs.Wrap(errdefs.ErrTooLarge,
			fmt.Sprintf("zip archive's central directory is larger than %d bytes", 1<<20+512*int64(maxEntries)), err)
	case errors.Is(err, zip.ErrInsecurePath):
		// Only with GODEBUG=zipinsecurepath=0; checkEntries refuses
		// these names itself, with a message that names the entry.
		return zr, nil
	case err != nil:
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid zip archive: %v", err), err)
	}
	return zr, nil
}

// moveIntoPlace moves the extracted tree (tree, relative to root) into root.
// It first plans every move and checks for conflicts, so that a conflict
// refuses the archive before dest changes; then it renames each new subtree
// and file into place and finally gives new directories their modes.
func moveIntoPlace(ctx context.Context, root *os.Root, tree string, dirModes map[string]fs.FileMode) error {
	var moves []string
	if err := planMoves(root, tree, ".", &moves, dirModes); err != nil {
		return err
	}
	// Past this point dest changes; the renames are quick and are not
	// interrupted, so cancellation cannot leave a half-moved archive.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	for _, rel := range moves {
		if err := root.Rename(tree+"/"+rel, rel); err != nil {
			return fsError("moving "+rel+" into place", err)
		}
	}
	// Deepest first, so a directory that loses its owner's search bit
	// does not hide the ones below it.
	dirs := make([]string, 0, len(dirModes))
	for rel := range dirModes {
		dirs = append(dirs, rel)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return cmp.Or(-cmp.Compare(strings.Count(a, "/"), strings.Count(b, "/")), strings.Compare(a, b))
	})
	for _, rel := range dirs {
		if err := root.Chmod(rel, dirModes[rel]); err != nil {
			return fsError("setting mode of "+rel, err)
		}
	}
	return nil
}

// planMoves compares the staging directory tree/rel with rel in root. A name
// absent from root moves as a whole; a directory present in root as a real
// directory is merged into (and keeps its mode: it is dropped from dirModes).
// Anything else that would have to be written through or replaced is a
// conflict, except a file, which replaces a file or symbolic link.
func planMoves(root *os.Root, tree, rel string, moves *[]string, dirModes map[string]fs.FileMode) error {
	children, err := readDir(root, path.Join(tree, rel))
	if err != nil {
		return fsError("reading staging directory", err)
	}
	for _, c := range children {
		name := path.Join(rel, c.Name())
		fi, err := root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			*moves = append(*moves, name)
			continue
		}
		if err != nil {
			return fsError("checking "+name, err)
		}
		switch {
		case c.IsDir() && fi.Mode()&fs.ModeSymlink != 0:
			return errdefs.New(errdefs.ErrConflict,
				fmt.Sprintf("archive would write through the symbolic link %s in the destination", name))
		case c.IsDir() && fi.IsDir():
			delete(dirModes, name)
			if err := planMoves(root, tree, name, moves, dirModes); err != nil {
				return err
			}
		case c.IsDir():
			return errdefs.New(errdefs.ErrConflict,
				fmt.Sprintf("archive has a directory %s where the destination has a file", name))
		case fi.IsDir():
			return errdefs.New(errdefs.ErrConflict,
				fmt.Sprintf("archive has a file %s where the destination has a directory", name))
		default:
			*moves = append(*moves, name)
		}
	}
	return nil
}

func refused(msg string) error { return errdefs.New(errdefs.ErrInvalidArgument, msg) }

func invalidEntry(name string, err error) error {
	return errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid zip archive: entry %q: %v", name, err), err)
}

func conflictingEntries(rel string) error {
	return refused(fmt.Sprintf("archive has both a file and a directory named %q", rel))
}

func tooLarge(maxBytes int64) error {
	return errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("archive expands to more than %d bytes", maxBytes))
}

func tooManyEntries(maxEntries int) error {
	return errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("archive has more than %d entries", maxEntries))
}
