package transfer

import (
	"archive/zip"
	"bufio"
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
	"syscall"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Download writes a zip archive of the absolute path p to w, as described in
// the package documentation. Validation errors ("Path must be an absolute
// path", "File not found") are returned before anything is written to w.
// Cancelling ctx stops the stream between chunks and files.
func Download(ctx context.Context, w io.Writer, p string) error {
	if !filepath.IsAbs(p) {
		return errdefs.New(errdefs.ErrInvalidArgument, "Path must be an absolute path")
	}
	// Like os.path.exists: any failure to stat means "not found".
	fi, err := os.Stat(p)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrNotFound, "File not found", err)
	}
	z := newZipStream(w)
	switch {
	case fi.IsDir():
		err = z.addTree(ctx, p)
	case fi.Mode().IsRegular():
		err = z.addPath(ctx, p)
	}
	if err != nil {
		return err
	}
	return z.close()
}

// ArchiveName is the file name OpenHands offers for the download of p:
// the text after its last "/" plus ".zip" (so "/a/b/" gives ".zip").
func ArchiveName(p string) string {
	return p[strings.LastIndex(p, "/")+1:] + ".zip"
}

// zipStream is one Download's zip writer with the buffers it reuses for
// every file.
type zipStream struct {
	bw  *bufio.Writer
	zw  *zip.Writer
	buf []byte
}

func newZipStream(w io.Writer) *zipStream {
	z := &zipStream{buf: make([]byte, copyBufSize)}
	// zip.Writer reuses a *bufio.Writer that is large enough instead of
	// adding its own 4 KiB one, so this sets the size of writes to w.
	z.bw = bufio.NewWriterSize(w, copyBufSize)
	z.zw = zip.NewWriter(z.bw)
	return z
}

func (z *zipStream) close() error {
	if err := z.zw.Close(); err != nil {
		return writeError(err)
	}
	if err := z.bw.Flush(); err != nil {
		return writeError(err)
	}
	return nil
}

// addPath adds the single file p under its base name.
func (z *zipStream) addPath(ctx context.Context, p string) error {
	// O_NONBLOCK: if p was swapped for a FIFO since the Stat, opening it
	// must not hang; it is then skipped by the regular-file check.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fsError("reading "+p, err)
	}
	defer f.Close()
	return z.addFile(ctx, f, filepath.Base(p))
}

// addTree adds every file below dir, named relative to dir.
func (z *zipStream) addTree(ctx context.Context, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil // os.walk yields nothing for a directory it cannot open
	}
	defer root.Close()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	return z.addDir(ctx, root, realDir, ".")
}

// addDir adds the files below dir (relative to root) in name order.
func (z *zipStream) addDir(ctx context.Context, root *os.Root, realDir, dir string) error {
	children, err := readDir(root, dir)
	if err != nil && len(children) == 0 {
		return nil // unreadable directory: skipped, as os.walk does
	}
	for _, d := range children {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("download: %w", err)
		}
		name := path.Join(dir, d.Name())
		open := name
		switch t := d.Type(); {
		case t.IsDir():
			if err := z.addDir(ctx, root, realDir, name); err != nil {
				return err
			}
			continue // directories get no entries of their own
		case t.IsRegular():
		case t&fs.ModeSymlink != 0:
			target, ok := linkTarget(realDir, name)
			if !ok {
				continue
			}
			open = target
		default:
			continue // FIFOs, sockets, devices
		}
		if err := z.addRootFile(ctx, root, open, name); err != nil {
			return err
		}
	}
	return nil
}

// addRootFile adds the file open (relative to root) as the entry name.
func (z *zipStream) addRootFile(ctx context.Context, root *os.Root, open, name string) error {
	f, err := root.OpenFile(open, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || open != name {
			return nil // gone since listed, or a link the root refuses
		}
		return fsError("reading "+name, err)
	}
	defer f.Close()
	return z.addFile(ctx, f, name)
}

// readDir lists dir (relative to root) sorted by name. Unlike fs.ReadDir on
// root.FS(), it accepts names that are not UTF-8: Linux names are bytes,
// and such files must neither vanish from a download nor fail an upload.
// On a read error it returns what it could read with the error.
func readDir(root *os.Root, dir string) ([]fs.DirEntry, error) {
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	children, err := f.ReadDir(-1)
	slices.SortFunc(children, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return children, err
}

// linkTarget resolves the symbolic link name (relative to the real path of
// the tree) and returns its target relative to the tree, if that target
// exists and lies inside it. The caller still opens the result through the
// os.Root, so a link changed after this check cannot lead outside.
func linkTarget(realDir, name string) (string, bool) {
	target, err := filepath.EvalSymlinks(filepath.Join(realDir, filepath.FromSlash(name)))
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(realDir, target)
	if err != nil || !filepath.IsLocal(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// addFile writes the open file f as the entry name, if it is a regular file.
func (z *zipStream) addFile(ctx context.Context, f *os.File, name string) error {
	fi, err := f.Stat()
	if err != nil {
		return fsError("reading "+name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	hdr, err := zip.FileInfoHeader(fi)
	if err != nil {
		return fsError("reading "+name, err)
	}
	hdr.Name = name
	// The first chunk decides the method; it is written out unchanged.
	n, err := io.ReadFull(f, z.buf)
	eof := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !eof {
		return fsError("reading "+name, err)
	}
	// Stored, as OpenHands' ZipFile does by default: downloads mostly cross
	// loopback, where deflating (≈130 MB/s for source code on one core)
	// would be the bottleneck; storing runs at disk speed.
	hdr.Method = zip.Store
	ew, err := z.zw.CreateHeader(hdr)
	if err != nil {
		return writeError(err)
	}
	if _, err := ew.Write(z.buf[:n]); err != nil {
		return writeError(err)
	}
	if eof {
		return nil
	}
	_, rerr, werr := copyChunks(ctx, ew, f, z.buf, -1)
	switch {
	case errors.Is(rerr, context.Canceled), errors.Is(rerr, context.DeadlineExceeded):
		return fmt.Errorf("download: %w", rerr)
	case rerr != nil:
		return fsError("reading "+name, rerr)
	case werr != nil:
		return writeError(werr)
	}
	return nil
}

func writeError(err error) error {
	return errdefs.Wrap(errdefs.ErrInternal, fmt.Sprintf("writing archive: %v", err), err)
}
