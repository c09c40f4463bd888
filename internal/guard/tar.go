package guard

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// TarFolder writes the folder dir as a tar stream (the copy fallback
// sends it to the engine) and returns the manifest of what it wrote: the
// same walk, so the manifest and the copy agree even when the folder
// changes meanwhile. Modification times keep their nanoseconds (PAX), so
// a file the sandbox leaves alone compares equal; hard links stay links;
// devices and sockets are left out.
func TarFolder(ctx context.Context, dir string, w io.Writer) (*Manifest, error) {
	m := &Manifest{entries: map[string]Entry{}}
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	buf := make([]byte, 256<<10)
	err := walk(ctx, dir, "", func(rel string, fi fs.FileInfo) error {
		full := filepath.Join(dir, filepath.FromSlash(rel))
		var link string
		hdr := &tar.Header{Name: rel, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		if fi.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		}
		var f *os.File
		switch {
		case fi.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(full)
			if err != nil {
				return err
			}
			link = l
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, l
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
					break
				}
				links[key] = rel
			}
			var err error
			if f, err = os.Open(full); err != nil {
				return err
			}
			defer f.Close()
			// The size written is the size read now: a file growing
			// during the walk is recorded as copied.
			if fi, err = f.Stat(); err != nil {
				return err
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		case fi.Mode()&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
		default:
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if f != nil {
			if _, err := io.CopyBuffer(tw, io.LimitReader(f, hdr.Size), buf); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		m.entries[rel] = EntryOf(rel, fi, link)
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("copy of %s: %w", dir, err)
	}
	return m, nil
}
