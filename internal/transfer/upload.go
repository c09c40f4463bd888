package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/staging"
)

// Default archive limits, used when the corresponding Options field is zero.
const (
	DefaultMaxBytes   int64 = 10 << 30 // 10 GiB uncompressed
	DefaultMaxEntries       = 100_000
)

// Options configures Upload. The zero value is usable: no chown, default
// limits.
type Options struct {
	// Owner, when non-nil, becomes the owner of every file and directory an
	// upload creates (normally the sandbox user).
	Owner *Owner
	// MaxBytes bounds the total uncompressed size of an archive;
	// zero or less means DefaultMaxBytes.
	MaxBytes int64
	// MaxEntries bounds the number of entries of an archive;
	// zero or less means DefaultMaxEntries.
	MaxEntries int
	// Rebase, when non-nil, renames the entries of an archive (Extract).
	Rebase *Rebase
	// Journal records every staging file and directory before it is
	// created, so that the next start of a killed sandboxd removes it;
	// nil records nothing (the host side of a copy).
	Journal *staging.Journal
}

// Owner is a numeric owner. Either id may be -1 to leave it unchanged,
// as with os.Chown.
type Owner struct {
	UID, GID int
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

func (o Options) maxEntries() int {
	if o.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return o.MaxEntries
}

// copyBufSize is the chunk size of every copy loop. Large chunks keep the
// syscall count low (the throughput target is ~1 GB/s) while staying a
// constant, small amount of memory per transfer; ctx is checked per chunk.
const copyBufSize = 256 << 10

// The upload refusals that OpenHands answers as HTTPException(400), so that
// sandboxd can answer them the same way without comparing message texts.
// Upload returns them wrapped in an ErrInvalidArgument whose text is
// exactly theirs (part of the wire contract).
var (
	ErrDestinationNotAbsolute = errors.New("Destination must be an absolute path")
	ErrRecursiveNotZip        = errors.New("Recursive uploads must be zip files")
)

// tempPrefix names the hidden temporary files and staging directories that
// uploads create inside the destination.
const tempPrefix = ".sbx-upload-"

// Upload stores body under the absolute directory dest, creating dest if
// needed. If recursive is set or filename ends in ".zip", body is a zip
// archive that is unpacked into dest; otherwise it becomes <dest>/<filename>.
// The package documentation states the guarantees. Cancelling ctx stops the
// upload between chunks and entries and returns an error wrapping ctx.Err().
func Upload(ctx context.Context, dest, filename string, recursive bool, body io.Reader, opts Options) error {
	if !filepath.IsAbs(dest) {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, ErrDestinationNotAbsolute.Error(), ErrDestinationNotAbsolute)
	}
	isZip := strings.HasSuffix(filename, ".zip")
	if recursive && !isZip {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, ErrRecursiveNotZip.Error(), ErrRecursiveNotZip)
	}
	if err := checkBaseName(filename); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	dest = filepath.Clean(dest)
	if err := makeDirs(dest, opts.Owner); err != nil {
		return err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fsError("opening destination", err)
	}
	defer root.Close()
	if isZip {
		return uploadArchive(ctx, root, body, opts)
	}
	return uploadFile(ctx, root, filename, body, opts.Owner, opts.Journal)
}

// checkBaseName refuses a part file name that is not a single path element:
// OpenHands joins it onto the destination, which would let "../x" or "a/b"
// write elsewhere.
func checkBaseName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return errdefs.New(errdefs.ErrInvalidArgument,
			fmt.Sprintf("invalid file name %q: must be a plain file name without path separators", name))
	}
	return nil
}

// makeDirs is mkdir -p for dest that gives each directory it creates to
// owner, so that the sandbox user can use a destination it asked for.
func makeDirs(dir string, owner *Owner) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("destination %s is not a directory", dir))
	case !errors.Is(err, fs.ErrNotExist):
		return fsError("checking destination", err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := makeDirs(parent, owner); err != nil {
			return err
		}
	}
	// 0777 before umask, as os.makedirs does.
	if err := os.Mkdir(dir, 0o777); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Lost a race with another creator: fine if it made a directory.
			return makeDirs(dir, nil)
		}
		return fsError("creating destination", err)
	}
	if owner != nil {
		if err := os.Lchown(dir, owner.UID, owner.GID); err != nil {
			return fsError("setting owner of destination", err)
		}
	}
	return nil
}

// uploadFile writes body to a temporary file in root and renames it over
// name, so the target is never seen half-written.
func uploadFile(ctx context.Context, root *os.Root, name string, body io.Reader, owner *Owner, journal *staging.Journal) (retErr error) {
	mode := fs.FileMode(0o644)
	uid, gid, keepOwner := -1, -1, false
	switch fi, err := root.Lstat(name); {
	case err == nil && fi.IsDir():
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("cannot upload %s: a directory of that name exists", name))
	case err == nil && fi.Mode().IsRegular():
		// Writing in place (what OpenHands does) keeps mode and owner;
		// the rename must too.
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid, keepOwner = int(st.Uid), int(st.Gid), true
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fsError("checking upload target", err)
	}
	if !keepOwner && owner != nil {
		uid, gid = owner.UID, owner.GID
	}

	tmp := staging.Name(tempPrefix)
	done, err := journal.Record(filepath.Join(root.Name(), tmp))
	if err != nil {
		return err
	}
	defer done()
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fsError("creating temporary file", err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	if _, rerr, werr := copyChunks(ctx, f, body, make([]byte, copyBufSize), -1); rerr != nil {
		return bodyError(rerr)
	} else if werr != nil {
		return fsError("writing "+name, werr)
	}
	if err := f.Chmod(mode); err != nil {
		return fsError("setting mode of "+name, err)
	}
	if uid != -1 || gid != -1 {
		// Keeping a foreign owner needs privilege; without it the file
		// simply stays ours, which is the documented best effort.
		if err := f.Chown(uid, gid); err != nil && !(keepOwner && errors.Is(err, fs.ErrPermission)) {
			return fsError("setting owner of "+name, err)
		}
	}
	if err := f.Close(); err != nil {
		return fsError("writing "+name, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		return fsError("storing "+name, err)
	}
	return nil
}

// bodyError classifies a failure to read the upload body: cancellation is
// passed through, anything else is the client's truncated or broken request.
func bodyError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("upload: %w", err)
	}
	return errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("reading upload body: %v", err), err)
}

// errLimit reports that a copy hit its byte limit.
var errLimit = errors.New("byte limit exceeded")

// copyChunks copies src to dst in len(buf) chunks, checking ctx before each.
// If limit >= 0 and src holds more than limit bytes, it stops before writing
// the excess and returns errLimit as the read error. Read and write failures
// are returned separately because they are classified differently.
func copyChunks(ctx context.Context, dst io.Writer, src io.Reader, buf []byte, limit int64) (n int64, readErr, writeErr error) {
	for {
		if err := ctx.Err(); err != nil {
			return n, err, nil
		}
		nr, er := src.Read(buf)
		if nr > 0 {
			if limit >= 0 && int64(nr) > limit-n {
				return n, errLimit, nil
			}
			nw, ew := dst.Write(buf[:nr])
			n += int64(nw)
			if ew == nil && nw != nr {
				ew = io.ErrShortWrite
			}
			if ew != nil {
				return n, nil, ew
			}
		}
		if er == io.EOF {
			return n, nil, nil
		}
		if er != nil {
			return n, er, nil
		}
	}
}

// fsError classifies a file-system error for the HTTP edge.
func fsError(what string, err error) error {
	class := errdefs.ErrInternal
	switch {
	case errors.Is(err, fs.ErrPermission):
		class = errdefs.ErrPermission
	case errors.Is(err, fs.ErrNotExist):
		class = errdefs.ErrNotFound
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The disk, not the request, is the limit: the same upload can
		// succeed once space is freed.
		class = errdefs.ErrInsufficientStorage
	case errors.Is(err, syscall.EFBIG):
		class = errdefs.ErrTooLarge
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, syscall.ENOTEMPTY):
		class = errdefs.ErrConflict
	case errors.Is(err, syscall.ENAMETOOLONG):
		class = errdefs.ErrInvalidArgument
	}
	return errdefs.Wrap(class, fmt.Sprintf("%s: %v", what, err), err)
}
