// Package guard reads the change layer of a guarded workspace (the upper
// directory of an overlay whose lower is the user's folder, or a copy of
// the folder compared with the manifest taken when the copy was made)
// into a list of changes, renders it for people and programs, and applies
// it to the user's folder only where the folder is still as it was at the
// start. It knows nothing of engines or sandboxes: the driver says where
// the layer, the folder and the manifest are.
package guard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Entry is what the manifest remembers of one path of the folder: enough
// to notice that the user changed it (a stat, not a hash: 50 000 files
// take half a second, hashing them four times that).
type Entry struct {
	// Path is slash-separated and relative to the folder, never "." or
	// with a ".." element.
	Path    string
	Mode    fs.FileMode
	Size    int64
	MtimeNs int64
	Ino     uint64
	Nlink   uint64
	UID     uint32
	GID     uint32
	// Link is a symbolic link's target.
	Link string
}

// Manifest is the folder as it was when the sandbox started.
type Manifest struct {
	entries map[string]Entry
}

// NewManifest makes a manifest of the given entries; a duplicate path is
// an error.
func NewManifest(es []Entry) (*Manifest, error) {
	m := &Manifest{entries: make(map[string]Entry, len(es))}
	for _, e := range es {
		if _, dup := m.entries[e.Path]; dup {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("manifest: %q twice", e.Path))
		}
		m.entries[e.Path] = e
	}
	return m, nil
}

// Get returns the entry of p.
func (m *Manifest) Get(p string) (Entry, bool) {
	e, ok := m.entries[p]
	return e, ok
}

// Len is the number of entries.
func (m *Manifest) Len() int { return len(m.entries) }

// Entries returns the entries in path order.
func (m *Manifest) Entries() []Entry {
	out := make([]Entry, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Set replaces or adds an entry; Delete removes p and everything under it.
func (m *Manifest) Set(e Entry) { m.entries[e.Path] = e }

// Delete removes p and, when it was a directory, every entry under it.
func (m *Manifest) Delete(p string) {
	e, ok := m.entries[p]
	if !ok {
		return
	}
	delete(m.entries, p)
	if !e.Mode.IsDir() {
		return
	}
	pre := p + "/"
	for k := range m.entries {
		if strings.HasPrefix(k, pre) {
			delete(m.entries, k)
		}
	}
}

// EntryOf describes fi (from Lstat) as a manifest entry of path p.
func EntryOf(p string, fi fs.FileInfo, link string) Entry {
	e := Entry{Path: p, Mode: fi.Mode(), Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano(), Link: link}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Ino, e.Nlink, e.UID, e.GID = st.Ino, uint64(st.Nlink), st.Uid, st.Gid
	}
	if fi.IsDir() {
		e.Size = 0
	}
	return e
}

// Take walks the folder dir and records every path under it (not dir
// itself). Symbolic links are recorded, never followed.
func Take(ctx context.Context, dir string) (*Manifest, error) {
	m := &Manifest{entries: map[string]Entry{}}
	err := walk(ctx, dir, "", func(rel string, fi fs.FileInfo) error {
		var link string
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, err := os.Readlink(filepath.Join(dir, rel))
			if err != nil {
				return err
			}
			link = l
		}
		m.entries[rel] = EntryOf(rel, fi, link)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", dir, err)
	}
	return m, nil
}

// walk calls fn for every path under base/rel in lexical order, parents
// first, without following symbolic links.
func walk(ctx context.Context, base, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(base, rel))
	if err != nil {
		if rel != "" && gone(err) {
			return nil // removed while walking: as if it had been empty
		}
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		if rel != "" && gone(err) {
			return nil
		}
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		p := join(rel, n)
		fi, err := os.Lstat(filepath.Join(base, p))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while walking
			}
			return err
		}
		if err := fn(p, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walk(ctx, base, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// gone says whether err means a name disappeared (or its directory did)
// between the listing and the use: the folder changed during the walk.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

const manifestHeader = "sbx-guard-manifest 1"

// Encode writes the manifest as text: a header line, then one line per
// entry: octal mode bits, size, mtime in ns, inode, link count, uid, gid,
// the quoted path and the quoted link target.
func (m *Manifest) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(manifestHeader + "\n")
	var b []byte
	for _, e := range m.Entries() {
		b = b[:0]
		b = strconv.AppendUint(b, uint64(e.Mode), 8)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.MtimeNs, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, e.Ino, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, e.Nlink, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(e.UID), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(e.GID), 10)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Path)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Link)
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// DecodeManifest reads what Encode wrote. Anything else is
// ErrInvalidArgument with the line it stopped at; a path that is not
// clean and relative is refused, since apply would act on it.
func DecodeManifest(r io.Reader) (*Manifest, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bad := func(line int, why string) error {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("manifest line %d: %s", line, why))
	}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		return nil, bad(1, "empty")
	}
	if sc.Text() != manifestHeader {
		return nil, bad(1, "not an sbx guard manifest")
	}
	m := &Manifest{entries: map[string]Entry{}}
	for n := 2; sc.Scan(); n++ {
		line := sc.Bytes()
		var nums [7]uint64
		for i := range nums {
			sp := bytes.IndexByte(line, ' ')
			if sp <= 0 {
				return nil, bad(n, "too few fields")
			}
			base := 10
			if i == 0 {
				base = 8
			}
			v, err := strconv.ParseUint(string(line[:sp]), base, 64)
			if err != nil {
				return nil, bad(n, fmt.Sprintf("field %d: %v", i+1, err))
			}
			nums[i] = v
			line = line[sp+1:]
		}
		p, rest, err := unquotePrefix(line)
		if err != nil {
			return nil, bad(n, "path: "+err.Error())
		}
		if len(rest) == 0 || rest[0] != ' ' {
			return nil, bad(n, "no link field")
		}
		link, rest, err := unquotePrefix(rest[1:])
		if err != nil {
			return nil, bad(n, "link: "+err.Error())
		}
		if len(rest) != 0 {
			return nil, bad(n, "trailing bytes")
		}
		if !ValidPath(p) {
			return nil, bad(n, fmt.Sprintf("path %q is not clean and relative", p))
		}
		if nums[0] > uint64(^uint32(0)) || nums[5] > uint64(^uint32(0)) || nums[6] > uint64(^uint32(0)) || nums[1] > 1<<62 || nums[2] > 1<<63-1 {
			return nil, bad(n, "value out of range")
		}
		if _, dup := m.entries[p]; dup {
			return nil, bad(n, fmt.Sprintf("%q twice", p))
		}
		m.entries[p] = Entry{Path: p, Mode: fs.FileMode(nums[0]), Size: int64(nums[1]), MtimeNs: int64(nums[2]),
			Ino: nums[3], Nlink: nums[4], UID: uint32(nums[5]), GID: uint32(nums[6]), Link: link}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

func unquotePrefix(b []byte) (string, []byte, error) {
	q, err := strconv.QuotedPrefix(string(b))
	if err != nil {
		return "", nil, err
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		return "", nil, err
	}
	return s, b[len(q):], nil
}

// ValidPath reports whether p is a clean, slash-separated relative path
// naming something below a folder.
func ValidPath(p string) bool {
	return p != "" && p != "." && !strings.HasPrefix(p, "/") && path.Clean(p) == p &&
		p != ".." && !strings.HasPrefix(p, "../") && !strings.ContainsRune(p, 0)
}

// ReadManifest and WriteManifest keep a manifest in a file; the write is
// atomic (temporary file, rename).
func ReadManifest(file string) (*Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.Wrap(errdefs.ErrNotFound, "the guard's start manifest is missing: "+file, err)
		}
		return nil, err
	}
	defer f.Close()
	return DecodeManifest(bufio.NewReaderSize(f, 256<<10))
}

// WriteManifest stores m in file atomically.
func WriteManifest(file string, m *Manifest) error {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	err = m.Encode(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}
