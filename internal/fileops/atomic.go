package fileops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sbx-dev/sbx/internal/staging"
)

// fileAttrs is the mode and owner a written file must end up with.
type fileAttrs struct {
	mode     uint32 // permission bits, setuid/setgid/sticky included
	uid, gid int    // -1 leaves that id as created (the server's)
}

// newFileMode is the mode OpenHands gives files it creates.
const newFileMode = 0o664

// attrsOf returns the attributes to preserve from an existing file.
func attrsOf(st fs.FileInfo) fileAttrs {
	a := fileAttrs{mode: uint32(st.Mode().Perm()), uid: -1, gid: -1}
	if st.Mode()&fs.ModeSetuid != 0 {
		a.mode |= syscall.S_ISUID
	}
	if st.Mode()&fs.ModeSetgid != 0 {
		a.mode |= syscall.S_ISGID
	}
	if st.Mode()&fs.ModeSticky != 0 {
		a.mode |= syscall.S_ISVTX
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		a.uid, a.gid = int(sys.Uid), int(sys.Gid)
	}
	return a
}

// chownFunc changes the owner of an open file; Files carries one so tests
// can simulate a server that lacks the privilege.
type chownFunc func(f *os.File, uid, gid int) error

func fchown(f *os.File, uid, gid int) error { return f.Chown(uid, gid) }

// writeAtomic replaces path with the bytes fill writes, so that readers see
// either the old file or the complete new one, never a prefix: the data
// goes to a hidden temporary file in the same directory, which gets its
// owner and then its mode (in that order, because chown clears setuid and
// setgid), is fsynced and renamed over path; the directory is fsynced
// after the rename.
//
// err means nothing changed. attrErr means the content is in place but the
// owner or mode could not be set; the file then has the server's owner
// and mode 0600 or whatever part succeeded.
//
// The temporary file is recorded in j before it exists, so that a server
// killed before the rename has it removed at its next start.
func writeAtomic(ctx context.Context, j *staging.Journal, path string, attrs fileAttrs, chown chownFunc, fill func(io.Writer) error) (attrErr, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The path is absolute for the journal, whose sweep must not depend
	// on the working directory.
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	name := filepath.Join(dir, staging.Name(".sbx-write-"))
	done, err := j.Record(name)
	if err != nil {
		return nil, err
	}
	defer done()
	tmp, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return nil, err
	}
	if needsChown(tmp, attrs) {
		if err := chown(tmp, attrs.uid, attrs.gid); err != nil {
			attrErr = err
		}
	}
	if err := fchmod(tmp, attrs.mode); err != nil && attrErr == nil {
		attrErr = err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	renamed = true
	syncDir(filepath.Dir(path))
	return attrErr, nil
}

// needsChown reports whether the new file's owner differs from the wanted
// one. A server that is not root can only "change" a file to its own ids,
// so skipping the call keeps that case from failing needlessly.
func needsChown(f *os.File, attrs fileAttrs) bool {
	if attrs.uid == -1 && attrs.gid == -1 {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return true
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return (attrs.uid != -1 && uint32(attrs.uid) != sys.Uid) || (attrs.gid != -1 && uint32(attrs.gid) != sys.Gid)
}

func fchmod(f *os.File, mode uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = syscall.Fchmod(int(fd), mode) }); err != nil {
		return err
	}
	if opErr != nil {
		return &fs.PathError{Op: "chmod", Path: f.Name(), Err: opErr}
	}
	return nil
}

// syncDir makes a rename durable. A failure only weakens durability, not
// atomicity, so it is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// maxSymlinkHops is Linux's limit on symbolic links followed in one lookup.
const maxSymlinkHops = 40

// resolveFinalSymlinks follows symbolic links in the last component of
// path, so that a write through a link replaces the link's target (as
// Python's open() does) instead of the link. A dangling link resolves to
// its missing target, which the write then creates.
func resolveFinalSymlinks(path string) (string, error) {
	for range maxSymlinkHops {
		st, err := os.Lstat(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return path, nil
			}
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			// No Clean: ".." must be resolved by the kernel, through
			// whatever links the directory path holds.
			target = filepath.Dir(path) + "/" + target
		}
		path = target
	}
	return "", &fs.PathError{Op: "open", Path: path, Err: syscall.ELOOP}
}
