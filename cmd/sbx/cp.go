package main

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/sandboxapi"
)

const cpAbout = `
Copy a file or directory between the host and a running sandbox; one of
SRC and DST is ID:/absolute/path, as with docker cp. Copying a directory to
a directory that exists puts it inside (SRC/. copies its contents
instead); to one that does not, creates it. File modes are kept; symbolic
links and special files in a copied directory are skipped with a warning.`

// cpOptions are the two operands of `sbx cp`; exactly one names a sandbox.
type cpOptions struct {
	Src cpPath
	Dst cpPath
}

// cpPath is a host path (ID empty) or a path in a sandbox.
type cpPath struct {
	ID   string
	Path string
}

func (p cpPath) String() string {
	if p.ID == "" {
		return p.Path
	}
	return p.ID + ":" + p.Path
}

func (a *app) cpCmd() *cobra.Command {
	c := newCommand("cp SRC DST", "Copy files between the host and a sandbox", cpAbout, func(c *cobra.Command, args []string) error {
		if len(args) != 2 {
			return usageErrorf("cp", "want SRC and DST, one of them ID:/path")
		}
		o := cpOptions{Src: parseCpPath(args[0]), Dst: parseCpPath(args[1])}
		switch {
		case (o.Src.ID == "") == (o.Dst.ID == ""):
			return usageErrorf("cp", "exactly one of SRC and DST must be in a sandbox (ID:/path)")
		case o.Src.ID != "" && !path.IsAbs(o.Src.Path), o.Dst.ID != "" && !path.IsAbs(o.Dst.Path):
			return usageErrorf("cp", "a path in a sandbox must be absolute (ID:/path)")
		case o.Src.Path == "" || o.Dst.Path == "":
			return usageErrorf("cp", "empty path")
		case o.Src.Path == "-" || o.Dst.Path == "-":
			return usageErrorf("cp", "copying from or to a tar stream (-) is not supported; give a path")
		}
		return a.copy(c.Context(), o)
	})
	c.ValidArgsFunction = a.completeCp
	return c
}

// completeCp offers host files and "ID:" for each sandbox.
func (a *app) completeCp(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) >= 2 || strings.ContainsRune(toComplete, ':') {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids, _ := a.completeIDs(0)(c, args, toComplete)
	for i, id := range ids {
		id, _, _ = strings.Cut(id, "\t")
		ids[i] = id + ":"
	}
	return ids, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveDefault
}

// parseCpPath splits ID:/path. As with docker cp, a host path containing
// a colon can be written ./a:b or /abs/a:b.
func parseCpPath(s string) cpPath {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return cpPath{Path: s}
	}
	id, p, ok := strings.Cut(s, ":")
	if !ok || !plausibleID(id) {
		return cpPath{Path: s}
	}
	return cpPath{ID: id, Path: p}
}

func plausibleID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

func (a *app) copy(ctx context.Context, o cpOptions) error {
	id := o.Src.ID + o.Dst.ID
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	info, err := rt.Get(ctx, id)
	if err != nil {
		return withHint(err, id)
	}
	if info.State != "running" {
		return fmt.Errorf("sandbox %s is %s; files are copied through its server, so start it first (`sbx start %s` or `sbx resume %s`)", id, info.State, id, id)
	}
	sb, err := rt.Attach(ctx, id)
	if err != nil {
		return withHint(err, id)
	}
	defer sb.Close(context.WithoutCancel(ctx))
	if o.Src.ID != "" {
		err = download(ctx, sb, o.Src.Path, o.Dst.Path)
	} else {
		err = upload(ctx, sb.Client, o.Src.Path, o.Dst.Path, func(msg string) { fmt.Fprintf(a.stderr, "sbx: %s\n", msg) })
	}
	return err
}

// kind of a path in a sandbox.
type kind int

const (
	missing kind = iota
	isFile
	isDir
)

// statInSandbox finds out what p is in the sandbox through the listing of
// its parent: sandboxd has no stat, and a download alone cannot tell a
// directory holding one file from that file.
func statInSandbox(ctx context.Context, c *sandboxapi.Client, p string) (kind, error) {
	p = path.Clean(p)
	if p == "/" {
		return isDir, nil
	}
	names, err := c.ListFiles(ctx, path.Dir(p))
	if err != nil {
		return missing, fmt.Errorf("listing %s: %w", path.Dir(p), err)
	}
	base := path.Base(p)
	for _, n := range names {
		switch n {
		case base + "/":
			return isDir, nil
		case base:
			return isFile, nil
		}
	}
	return missing, nil
}

// upload copies host path src to dst in the sandbox as a zip that sandboxd
// unpacks, for files too: a plain upload would unpack a file that happens
// to be called *.zip, and would not keep its mode.
func upload(ctx context.Context, c *sandboxapi.Client, src, dst string, warn func(string)) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	dk, err := statInSandbox(ctx, c, dst)
	if err != nil {
		return err
	}
	dstDir := strings.HasSuffix(dst, "/")
	dst = path.Clean(dst)
	var into, name string // unpack into directory into, under name ("" for the contents)
	switch {
	case fi.IsDir():
		switch {
		case dk == isFile:
			return fmt.Errorf("cannot copy directory %s onto file %s", src, dst)
		case dk == isDir && !contentsOnly(src):
			into, name = dst, filepath.Base(filepath.Clean(src))
		default:
			into = dst
		}
	case fi.Mode().IsRegular():
		if dk == isDir || dstDir {
			into, name = dst, filepath.Base(src)
		} else {
			into, name = path.Dir(dst), path.Base(dst)
		}
	default:
		return fmt.Errorf("%s is not a regular file or a directory", src)
	}

	pr, pw := io.Pipe()
	zipErr := make(chan error, 1)
	go func() {
		err := writeZip(pw, src, fi, name, warn)
		pw.CloseWithError(err)
		zipErr <- err
	}()
	_, err = c.Upload(ctx, into, "sbx-cp.zip", pr, true)
	// The request may end before the archive does (an error); unblock the
	// writer so it can finish.
	pr.CloseWithError(io.ErrClosedPipe)
	if zerr := <-zipErr; zerr != nil && !errors.Is(zerr, io.ErrClosedPipe) {
		return fmt.Errorf("reading %s: %w", src, zerr)
	}
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}

// contentsOnly is docker cp's SRC/. : the directory's contents, not the
// directory itself.
func contentsOnly(p string) bool {
	return p == "." || strings.HasSuffix(p, "/.")
}

// writeZip archives src under name (a file) or into name/ (a directory;
// "" puts its contents at the top). Entries are stored: the archive
// crosses loopback, where compressing costs more than it saves.
func writeZip(w io.Writer, src string, fi fs.FileInfo, name string, warn func(string)) error {
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
			warn(fmt.Sprintf("skipped symbolic link %s", p))
		default:
			warn(fmt.Sprintf("skipped %s: not a regular file", p))
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

// download copies src from the sandbox to host path dst. sandboxd sends a
// zip, which needs random access to read, so it is spooled to a temporary
// file first.
func download(ctx context.Context, sb *sbx.Sandbox, src, dst string) error {
	sk, err := statInSandbox(ctx, sb.Client, src)
	if err != nil {
		return err
	}
	if sk == missing {
		return fmt.Errorf("%s:%s: no such file or directory in the sandbox", sb.ID(), src)
	}
	tmp, err := os.CreateTemp("", "sbx-cp-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := sb.Download(ctx, path.Clean(src), tmp); err != nil {
		return fmt.Errorf("copying %s:%s: %w", sb.ID(), src, err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(tmp, size)
	if err != nil {
		return fmt.Errorf("reading the archive of %s:%s: %w", sb.ID(), src, err)
	}
	if err := checkEntries(zr); err != nil {
		return fmt.Errorf("the archive of %s:%s: %w", sb.ID(), src, err)
	}
	dfi, derr := os.Stat(dst)
	if derr != nil && !errors.Is(derr, fs.ErrNotExist) {
		return derr
	}
	dstExists := derr == nil
	if sk == isFile {
		if len(zr.File) != 1 || zr.File[0].FileInfo().IsDir() {
			return fmt.Errorf("%s:%s: expected one file in the archive, got %d entries", sb.ID(), src, len(zr.File))
		}
		target := dst
		switch {
		case dstExists && dfi.IsDir():
			target = filepath.Join(dst, path.Base(path.Clean(src)))
		case strings.HasSuffix(dst, "/"):
			return fmt.Errorf("directory %s does not exist", dst)
		}
		root, err := os.OpenRoot(filepath.Dir(target))
		if err != nil {
			return err
		}
		defer root.Close()
		return extractFile(root, zr.File[0], filepath.Base(target))
	}
	target := dst
	if dstExists {
		if !dfi.IsDir() {
			return fmt.Errorf("cannot copy directory %s:%s onto file %s", sb.ID(), src, dst)
		}
		if !contentsOnly(src) {
			target = filepath.Join(dst, path.Base(path.Clean(src)))
		}
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return extractAll(zr, target)
}

// checkEntries refuses an archive with any entry that could land outside
// the destination or is not a plain file or directory, before anything is
// written: the sandbox's files are not to be trusted.
func checkEntries(zr *zip.Reader) error {
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, "/")
		if !filepath.IsLocal(name) || strings.ContainsRune(name, '\\') {
			return fmt.Errorf("entry %q would land outside the destination; nothing was copied", f.Name)
		}
		if m := f.Mode(); !m.IsRegular() && !m.IsDir() {
			return fmt.Errorf("entry %q is not a regular file or directory; nothing was copied", f.Name)
		}
	}
	return nil
}

// extractAll unpacks zr into dir. All writes go through an os.Root, so
// neither a name nor a symbolic link already in dir can lead outside it.
func extractAll(zr *zip.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range zr.File {
		name := filepath.FromSlash(strings.TrimSuffix(f.Name, "/"))
		if f.Mode().IsDir() {
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			if err := root.Chmod(name, f.Mode().Perm()); err != nil {
				return err
			}
			continue
		}
		if d := filepath.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := extractFile(root, f, name); err != nil {
			return err
		}
	}
	return nil
}

// extractFile writes one entry to name in root through a temporary file
// and a rename, so that an existing file (or link) there is replaced,
// never written through, and no half-written file is left on failure.
func extractFile(root *os.Root, f *zip.File, name string) error {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(name), ".sbx-cp-"+hex.EncodeToString(b[:]))
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			out.Close()
			root.Remove(tmp)
		}
	}()
	in, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	_, err = io.Copy(out, in)
	in.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	// Chmod after creation: the umask must not change what was copied.
	if err := out.Chmod(f.Mode().Perm()); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := root.Rename(tmp, name); err != nil {
		root.Remove(tmp)
		done = true
		return err
	}
	done = true
	if mt := f.Modified; !mt.IsZero() {
		_ = root.Chtimes(name, mt, mt)
	}
	return nil
}
