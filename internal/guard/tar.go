package guard

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
			if gone(err) {
				return nil // removed since the listing
			}
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
			}
			var err error
			if f, err = os.Open(full); gone(err) {
				return nil // removed since the listing
			} else if err != nil {
				return err
			}
			defer f.Close()
			if st != nil && st.Nlink > 1 {
				// Only a name that was copied can be a later name's link.
				links[[2]uint64{uint64(st.Dev), st.Ino}] = rel
			}
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

// CopyFolder copies the folder src into the empty directory dst (a copy
// volume's data on this host) and returns the manifest of what it
// copied, from the same walk: modes, owners, nanosecond mtimes, symbolic
// links (never followed) and hard links are kept, fifos made again,
// devices and sockets left out. It is TarFolder's faster twin for when
// this process can reach the volume itself. Directories are made as the
// walk meets them; files are copied by a few workers (creating inodes is
// the cost, and the kernel serialises it per directory only), then the
// second names of hard links, then directory modes and times.
func CopyFolder(ctx context.Context, src, dst string) (*Manifest, error) {
	m := &Manifest{entries: map[string]Entry{}}
	var mu sync.Mutex // m.entries, while the workers run
	links := map[[2]uint64]string{}
	var dirs []Entry
	type job struct {
		rel string
		fi  fs.FileInfo
	}
	var second []job // hard links to names being copied
	jobs := make(chan job, 256)
	errc := make(chan error, copyWorkers)
	var wg sync.WaitGroup
	for range copyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			var first error
			for j := range jobs {
				if first != nil || ctx.Err() != nil {
					continue // drain
				}
				fi, err := copyFile(filepath.Join(src, filepath.FromSlash(j.rel)), filepath.Join(dst, filepath.FromSlash(j.rel)), buf)
				if errors.Is(err, errSourceGone) {
					continue // removed since the listing: not copied, not in the manifest
				}
				if err == nil {
					err = finish(filepath.Join(dst, filepath.FromSlash(j.rel)), fi)
				}
				if err != nil {
					first = fmt.Errorf("%s: %w", j.rel, err)
					continue
				}
				mu.Lock()
				m.entries[j.rel] = EntryOf(j.rel, fi, "")
				mu.Unlock()
			}
			errc <- first
		}()
	}
	err := walk(ctx, src, "", func(rel string, fi fs.FileInfo) error {
		from, to := filepath.Join(src, filepath.FromSlash(rel)), filepath.Join(dst, filepath.FromSlash(rel))
		st, _ := fi.Sys().(*syscall.Stat_t)
		var link string
		switch {
		case fi.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
			if err := chownLike(to, st); err != nil {
				return err
			}
			e := EntryOf(rel, fi, "")
			dirs = append(dirs, e) // its mode and mtime once its children are in
			mu.Lock()
			m.entries[rel] = e
			mu.Unlock()
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(from)
			if gone(err) {
				return nil // removed since the listing
			}
			if err != nil {
				return err
			}
			link = l
			if err := os.Symlink(l, to); err != nil {
				return err
			}
			if err := chownLike(to, st); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if _, ok := links[key]; ok {
					second = append(second, job{rel, fi})
					return nil
				}
				links[key] = rel
			}
			jobs <- job{rel, fi}
			return nil
		case fi.Mode()&fs.ModeNamedPipe != 0:
			if err := unix.Mkfifo(to, 0o600); err != nil {
				return err
			}
			if err := finish(to, fi); err != nil {
				return err
			}
		default:
			return nil
		}
		mu.Lock()
		m.entries[rel] = EntryOf(rel, fi, link)
		mu.Unlock()
		return nil
	})
	close(jobs)
	wg.Wait()
	for range copyWorkers {
		if werr := <-errc; err == nil {
			err = werr
		}
	}
	for _, j := range second {
		if err != nil {
			break
		}
		st := j.fi.Sys().(*syscall.Stat_t)
		first := links[[2]uint64{uint64(st.Dev), st.Ino}]
		if _, copied := m.entries[first]; !copied {
			// The first name was gone when its copy began: copy this
			// one on its own, if it is still there.
			buf := make([]byte, 256<<10)
			fi, cerr := copyFile(filepath.Join(src, filepath.FromSlash(j.rel)), filepath.Join(dst, filepath.FromSlash(j.rel)), buf)
			switch {
			case errors.Is(cerr, errSourceGone):
			case cerr != nil:
				err = fmt.Errorf("%s: %w", j.rel, cerr)
			default:
				if err = finish(filepath.Join(dst, filepath.FromSlash(j.rel)), fi); err == nil {
					m.entries[j.rel] = EntryOf(j.rel, fi, "")
				}
			}
			continue
		}
		if err = os.Link(filepath.Join(dst, filepath.FromSlash(first)), filepath.Join(dst, filepath.FromSlash(j.rel))); err == nil {
			m.entries[j.rel] = EntryOf(j.rel, j.fi, "")
		}
	}
	for i := len(dirs) - 1; err == nil && i >= 0; i-- {
		to := filepath.Join(dst, filepath.FromSlash(dirs[i].Path))
		if err = os.Chmod(to, dirs[i].Mode&modeBits); err == nil {
			t := time.Unix(0, dirs[i].MtimeNs)
			err = os.Chtimes(to, t, t)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("copy of %s: %w", src, err)
	}
	return m, nil
}

// copyWorkers copy files at once.
const copyWorkers = 4

func chownLike(p string, st *syscall.Stat_t) error {
	if st == nil {
		return nil
	}
	if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil && os.Geteuid() == 0 {
		return err
	}
	return nil
}

// finish gives a copied file its source's owner, mode and mtime.
func finish(p string, fi fs.FileInfo) error {
	st, _ := fi.Sys().(*syscall.Stat_t)
	if err := chownLike(p, st); err != nil {
		return err
	}
	if err := os.Chmod(p, fi.Mode()&modeBits); err != nil {
		return err
	}
	t := fi.ModTime()
	return os.Chtimes(p, t, t)
}

// copyFile copies one file's content and returns its stat as read.
// errSourceGone is copyFile's answer for a source removed since the
// walk listed it.
var errSourceGone = errors.New("removed since the listing")

func copyFile(from, to string, buf []byte) (fs.FileInfo, error) {
	in, err := os.Open(from)
	if gone(err) {
		return nil, errSourceGone
	}
	if err != nil {
		return nil, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = io.CopyBuffer(out, in, buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return fi, err
}
