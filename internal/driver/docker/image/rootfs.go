package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// tidyRootfs removes what an image does not need: apt's package lists and
// caches (rebuilt by apt-get update), logs, manual pages, documentation
// but the copyright files, message catalogues; and empties the files the
// engine provides at run time. It works through os.Root, so no absolute
// symlink in the new tree can make it touch the host.
func tidyRootfs(rootfs string) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	fsys := root.FS()

	var errs []error
	for _, pattern := range []string{
		"var/lib/apt/lists/*",
		"var/cache/apt/*.bin",
		"var/cache/apt/archives/*.deb",
		"var/log/*.log",
		"usr/share/man/*",
		"usr/share/info/*",
		"debootstrap",
	} {
		matches, err := fs.Glob(fsys, pattern)
		if err != nil {
			return err
		}
		for _, m := range matches {
			if err := root.RemoveAll(m); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// Documentation: keep copyright files, drop the rest and the
	// directories left empty.
	var dirs []string
	err = fs.WalkDir(fsys, "usr/share/doc", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Name() != "copyright":
			if err := root.Remove(p); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	slices.Reverse(dirs)
	for _, d := range dirs[:max(len(dirs)-1, 0)] { // keep usr/share/doc itself
		_ = root.Remove(d) // fails when not empty, as it should
	}

	// Message catalogues: the image runs with C.UTF-8.
	if entries, err := fs.ReadDir(fsys, "usr/share/locale"); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				if err := root.RemoveAll("usr/share/locale/" + e.Name()); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}

	// The engine bind-mounts these at run time; the build host's values
	// must not leak into the image. Remove first: they may be symlinks.
	for _, f := range []string{"etc/hostname", "etc/resolv.conf", "etc/machine-id"} {
		if err := root.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if err := root.WriteFile(f, nil, 0o644); err != nil {
			errs = append(errs, err)
		}
	}

	if _, err := root.Stat("bin/sh"); err != nil {
		errs = append(errs, fmt.Errorf("the new root file system has no /bin/sh: %w", err))
	}
	return errors.Join(errs...)
}

// importRootfs streams a tar of rootfs into the engine as image tag and
// returns the new image's ID. The tar is written while it is sent, so the
// root file system is never held in memory or on disk twice.
func importRootfs(ctx context.Context, api API, rootfs, tag string, changes []string, message string, w io.Writer) (string, error) {
	pr, pw := io.Pipe()
	counter := &progressCounter{w: w, every: 3 * time.Second, now: time.Now, label: "[bootstrap] importing…"}
	tarErr := make(chan error, 1)
	go func() {
		err := writeRootfsTar(ctx, io.MultiWriter(pw, counter), rootfs)
		pw.CloseWithError(err) // nil: the engine sees the end of the stream
		tarErr <- err
	}()

	resp, err := api.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, tag,
		client.ImageImportOptions{Changes: changes, Message: message})
	var id string
	if err == nil {
		id, err = readImportStream(resp)
		resp.Close()
	}
	// Unblock the writer if the engine stopped reading early.
	pr.CloseWithError(errors.New("import ended"))
	if terr := <-tarErr; terr != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("importing %s: %w", tag, ctx.Err())
		}
		return "", fmt.Errorf("writing the root file system for import: %w", terr)
	}
	if err != nil {
		return "", engineError(err, "importing "+tag)
	}
	fmt.Fprintf(w, "[bootstrap] imported %s\n", humanBytes(counter.total()))
	return id, nil
}

// readImportStream reads the engine's answer to an import: JSON messages
// whose last status is the new image's ID, or an error.
func readImportStream(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	var id string
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return "", fmt.Errorf("reading the import result: %w", err)
		}
		if m.ErrorDetail != nil || m.Error != "" {
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			return "", errors.New(msg)
		}
		if strings.HasPrefix(m.Status, "sha256:") {
			id = strings.TrimSpace(m.Status)
		}
	}
}

// writeRootfsTar writes the tree at root to w as the tar stream of an
// image layer: numeric owners, permission bits with setuid, setgid and
// sticky, symlinks as they are, and hard links as links to the first path
// of the same file, so the image holds one copy. Device nodes and sockets
// are skipped (the engine provides /dev at run time), and so is whatever
// is mounted inside root: a mount point is written as an empty directory.
// Extended attributes are not copied.
func writeRootfsTar(ctx context.Context, w io.Writer, root string) error {
	rootInfo, err := os.Lstat(root)
	if err != nil {
		return err
	}
	rootDev := identityOf(rootInfo).dev
	type inode struct{ dev, ino uint64 }
	firstPath := map[inode]string{}
	tw := tar.NewWriter(w)

	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		id := identityOf(fi)
		mode := fi.Mode()
		hdr := &tar.Header{
			Name:    filepath.ToSlash(rel),
			Mode:    tarMode(mode),
			Uid:     id.uid,
			Gid:     id.gid,
			ModTime: fi.ModTime().Truncate(time.Second),
		}
		var skipDir bool
		switch {
		case mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			skipDir = id.available && id.dev != rootDev
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = target
		case mode.IsRegular():
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
			if id.available && id.nlink > 1 {
				key := inode{id.dev, id.ino}
				if first, ok := firstPath[key]; ok {
					hdr.Typeflag = tar.TypeLink
					hdr.Linkname = first
					hdr.Size = 0
				} else {
					firstPath[key] = hdr.Name
				}
			}
		case mode&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
		default:
			return nil // devices, sockets
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			if err := copyFileInto(tw, path, hdr.Size); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		if skipDir {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// copyFileInto copies exactly size bytes of path: the header promised
// that many, and a file that changed size meanwhile is an error rather
// than a corrupt archive.
func copyFileInto(w io.Writer, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(w, f, size)
	if err != nil {
		return fmt.Errorf("read %d of %d bytes: %w", n, size, err)
	}
	return nil
}

// tarMode is the Unix mode of a tar header: permissions plus the
// setuid, setgid and sticky bits, which fs.FileMode keeps elsewhere.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// progressCounter counts bytes and prints "label N MB" every so often.
type progressCounter struct {
	w     io.Writer
	every time.Duration
	now   func() time.Time
	label string
	mu    sync.Mutex
	n     int64
	last  time.Time
}

func (c *progressCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(len(p))
	if now := c.now(); c.last.IsZero() {
		c.last = now
	} else if now.Sub(c.last) >= c.every {
		c.last = now
		fmt.Fprintf(c.w, "%s %s\n", c.label, humanBytes(c.n))
	}
	return len(p), nil
}

func (c *progressCounter) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
