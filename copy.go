package sbx

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/transfer"
)

// CopyTo copies the host file or directory hostSrc to sandboxDst, an
// absolute path in the sandbox, as docker cp does: a file goes into
// sandboxDst if that is a directory (or ends in "/"), and is otherwise
// written as sandboxDst (a new name); a directory goes inside an existing
// directory, or becomes sandboxDst when that does not exist; hostSrc ending
// in "/." copies a directory's contents. File modes are kept; symbolic
// links and special files inside a directory are skipped with a warning in
// the runtime's log.
func (s *Sandbox) CopyTo(ctx context.Context, hostSrc, sandboxDst string) error {
	if !path.IsAbs(sandboxDst) {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%s: a path in a sandbox must be absolute", sandboxDst))
	}
	fi, err := os.Stat(hostSrc)
	if err != nil {
		return fmt.Errorf("copying %s: %w", hostSrc, classifyFS(err))
	}
	dk, err := s.statPath(ctx, sandboxDst)
	if err != nil {
		return err
	}
	dstDir := strings.HasSuffix(sandboxDst, "/")
	dst := path.Clean(sandboxDst)
	var into, name string // unpack into directory into, under name ("" for the contents)
	switch {
	case fi.IsDir():
		switch {
		case dk == pathFile:
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("cannot copy directory %s onto file %s", hostSrc, dst))
		case dk == pathDir && !contentsOnly(hostSrc):
			into, name = dst, filepath.Base(filepath.Clean(hostSrc))
		default:
			into = dst
		}
	case fi.Mode().IsRegular():
		if dk == pathDir || dstDir {
			into, name = dst, filepath.Base(hostSrc)
		} else {
			into, name = path.Dir(dst), path.Base(dst)
		}
	default:
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%s is not a regular file or a directory", hostSrc))
	}

	// sandboxd unpacks a zip, for a single file too: a plain upload would
	// unpack a file that happens to be called *.zip, and would not keep
	// its mode.
	pr, pw := io.Pipe()
	zipErr := make(chan error, 1)
	go func() {
		err := writeZip(pw, hostSrc, fi, name, func(msg, p string) { s.rt.log.Warn(msg + " " + p) })
		pw.CloseWithError(err)
		zipErr <- err
	}()
	_, err = s.Upload(ctx, into, "sbx-cp.zip", pr, true)
	// The request may end before the archive does (an error); unblock the
	// writer so it can finish.
	pr.CloseWithError(io.ErrClosedPipe)
	if zerr := <-zipErr; zerr != nil && !errors.Is(zerr, io.ErrClosedPipe) {
		return fmt.Errorf("reading %s: %w", hostSrc, zerr)
	}
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", hostSrc, dst, err)
	}
	return nil
}

// CopyFrom copies sandboxSrc, an absolute path in the sandbox, to the host
// path hostDst with docker cp's rules (see CopyTo). What the sandbox sends
// is not trusted: an archive with an entry that would land outside the
// destination, a link or a special file is refused whole, and nothing is
// written.
func (s *Sandbox) CopyFrom(ctx context.Context, sandboxSrc, hostDst string) error {
	if !path.IsAbs(sandboxSrc) {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%s: a path in a sandbox must be absolute", sandboxSrc))
	}
	sk, err := s.statPath(ctx, sandboxSrc)
	if err != nil {
		return err
	}
	if sk == pathMissing {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("%s:%s: no such file or directory in the sandbox", s.ID(), sandboxSrc))
	}
	dfi, derr := os.Stat(hostDst)
	if derr != nil && !errors.Is(derr, fs.ErrNotExist) {
		return classifyFS(derr)
	}
	dstExists := derr == nil
	srcBase := path.Base(path.Clean(sandboxSrc))
	// Extract into an existing directory, renaming the archive's entries
	// from what the sandbox sends to the name they get.
	var into string
	var rb *transfer.Rebase
	switch {
	case sk == pathFile && dstExists && dfi.IsDir():
		into, rb = hostDst, &transfer.Rebase{From: srcBase, To: srcBase}
	case sk == pathFile && strings.HasSuffix(hostDst, "/"):
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("directory %s does not exist", hostDst))
	case sk == pathFile:
		into, rb = filepath.Dir(filepath.Clean(hostDst)), &transfer.Rebase{From: srcBase, To: filepath.Base(hostDst)}
	case dstExists && !dfi.IsDir():
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("cannot copy directory %s:%s onto file %s", s.ID(), sandboxSrc, hostDst))
	case dstExists && contentsOnly(sandboxSrc):
		into = hostDst // a directory's download is its contents
	case dstExists:
		into, rb = hostDst, &transfer.Rebase{To: srcBase}
	default:
		into, rb = filepath.Dir(filepath.Clean(hostDst)), &transfer.Rebase{To: filepath.Base(hostDst)}
	}
	if fi, err := os.Stat(into); err != nil || !fi.IsDir() {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("directory %s does not exist", into))
	}
	// A zip needs random access, so the download is spooled first.
	tmp, err := os.CreateTemp("", "sbx-cp-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := s.Download(ctx, path.Clean(sandboxSrc), tmp); err != nil {
		return fmt.Errorf("copying %s:%s: %w", s.ID(), sandboxSrc, err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if err := transfer.Extract(ctx, tmp, size, into, transfer.Options{Rebase: rb}); err != nil {
		return fmt.Errorf("copying %s:%s to %s: %w", s.ID(), sandboxSrc, hostDst, err)
	}
	if sk == pathDir && rb != nil {
		// An empty directory downloads as an empty archive; it is still
		// copied.
		if err := os.Mkdir(filepath.Join(into, rb.To), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// contentsOnly is docker cp's SRC/. : the directory's contents, not the
// directory itself.
func contentsOnly(p string) bool {
	return p == "." || strings.HasSuffix(p, "/.")
}

func classifyFS(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.Wrap(errdefs.ErrNotFound, err.Error(), err)
	}
	return err
}

// pathKind is what a path in a sandbox is.
type pathKind int

const (
	pathMissing pathKind = iota
	pathFile
	pathDir
)

// statPath finds out what p is in the sandbox through the listing of its
// parent: sandboxd has no stat, and a download alone cannot tell a
// directory holding one file from that file.
func (s *Sandbox) statPath(ctx context.Context, p string) (pathKind, error) {
	p = path.Clean(p)
	if p == "/" {
		return pathDir, nil
	}
	names, err := s.ListFiles(ctx, path.Dir(p))
	if err != nil {
		return pathMissing, fmt.Errorf("listing %s: %w", path.Dir(p), err)
	}
	base := path.Base(p)
	for _, n := range names {
		switch n {
		case base + "/":
			return pathDir, nil
		case base:
			return pathFile, nil
		}
	}
	return pathMissing, nil
}

// writeZip archives src under name (a file) or into name/ (a directory;
// "" puts its contents at the top). Entries are stored: the archive
// crosses loopback, where compressing costs more than it saves.
func writeZip(w io.Writer, src string, fi fs.FileInfo, name string, warn func(msg, path string)) error {
	zw := zip.NewWriter(w)
	if fi.Mode().IsRegular() {
		if err := addZipFile(zw, src, name, fi); err != nil {
			return err
		}
		return zw.Close()
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		entry := path.Join(name, filepath.ToSlash(rel))
		if entry == "." {
			entry = ""
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if entry == "" {
				return nil
			}
			h, err := zip.FileInfoHeader(info)
			if err != nil {
				return err
			}
			h.Name = entry + "/"
			_, err = zw.CreateHeader(h)
			return err
		case info.Mode().IsRegular():
			return addZipFile(zw, p, entry, info)
		case info.Mode()&fs.ModeSymlink != 0:
			warn("skipped symbolic link", p)
		default:
			warn("skipped, not a regular file:", p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return zw.Close()
}

func addZipFile(zw *zip.Writer, p, name string, fi fs.FileInfo) error {
	h, err := zip.FileInfoHeader(fi)
	if err != nil {
		return err
	}
	h.Name, h.Method = name, zip.Store
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
