package fileops

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// Write performs the write action (spec §4.2).
func (f *Files) Write(ctx context.Context, r WriteRequest) WriteResult {
	if err := checkCtx(ctx); err != nil {
		return WriteResult{Err: err}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hist == nil {
		return WriteResult{Err: f.closedErr()}
	}
	cwd := r.Cwd
	if cwd == "" {
		cwd = f.root
	}
	path := pyJoin(cwd, r.Path)
	res, err := f.write(ctx, path, r)
	if err != nil {
		return WriteResult{Err: err}
	}
	res.Path = path
	return res
}

func (f *Files) write(ctx context.Context, path string, r WriteRequest) (WriteResult, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return WriteResult{}, pyError(&fs.PathError{Op: "open", Path: path, Err: syscall.EINVAL}, path)
	}
	if err := f.makeParents(pyDirname(path)); err != nil {
		return WriteResult{}, pyError(err, pyDirname(path))
	}
	target, err := resolveFinalSymlinks(path)
	if err != nil {
		return WriteResult{}, pyError(err, path)
	}
	st, err := os.Stat(target)
	exists := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return WriteResult{}, pyError(err, path)
	case exists && st.IsDir():
		return WriteResult{ErrorText: fmt.Sprintf("Path is a directory: %s. You can only write to files", path)}, nil
	case exists && !st.Mode().IsRegular():
		return WriteResult{}, pyError(fmt.Errorf("%s is not a regular file: %w", path, syscall.EINVAL), path)
	}

	// OpenHands writes every piece of content.split("\n") followed by a
	// newline, which is the content and one newline more; writing it so
	// keeps a 64 MiB content from being split into a second copy's worth
	// of line headers.
	insert := func(bw *bufio.Writer) {
		bw.WriteString(r.Content)
		bw.WriteByte('\n')
	}
	attrs := fileAttrs{mode: newFileMode, uid: f.uid, gid: f.gid}
	fill := func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		insert(bw)
		return bw.Flush()
	}
	if exists {
		attrs = attrsOf(st)
		// The old lines are streamed from the file rather than held: one
		// pass counts them (Python's negative slice bounds need the count)
		// and checks that the file is UTF-8; the splice then reads the kept
		// prefix and suffix again.
		n, err := countLines(ctx, target, encUTF8)
		if err != nil {
			var de *decodeError
			if errors.As(err, &de) {
				return WriteResult{ErrorText: fmt.Sprintf("File could not be decoded as utf-8: %s", path)}, nil
			}
			return WriteResult{}, pyError(err, path)
		}
		headEnd, tailStart := spliceBounds(n, r.Start, r.End)
		fill = func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 64<<10)
			if err := copyLines(ctx, target, bw, 0, headEnd); err != nil {
				return err
			}
			insert(bw)
			if err := copyLines(ctx, target, bw, tailStart, n); err != nil {
				return err
			}
			return bw.Flush()
		}
	}
	attrErr, err := writeAtomic(ctx, f.journal, target, attrs, f.chown, fill)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return WriteResult{ErrorText: fmt.Sprintf("File not found: %s", path)}, nil
		case errors.Is(err, syscall.EISDIR):
			return WriteResult{ErrorText: fmt.Sprintf("Path is a directory: %s. You can only write to files", path)}, nil
		}
		return WriteResult{}, pyError(err, path)
	}
	if attrErr != nil {
		if errors.Is(attrErr, syscall.EPERM) || errors.Is(attrErr, syscall.EACCES) {
			return WriteResult{ErrorText: fmt.Sprintf("File %s written, but failed to change ownership and permissions: %s",
				path, pyOSError(attrErr, path))}, nil
		}
		return WriteResult{}, pyError(attrErr, path)
	}
	return WriteResult{}, nil
}

// spliceBounds turns the write action's start and end into line ranges of
// the old file: lines [0, headEnd) are kept before the new text and lines
// [tailStart, n) after it. OpenHands builds
// ([""] if start == 0 else old[:start]) + new + ([""] if end == -1 else old[end:])
// with Python slicing, so negative bounds count from the end and the two
// ranges may overlap (then the overlapping lines appear twice).
func spliceBounds(n, start, end int) (headEnd, tailStart int) {
	headEnd = 0
	if start != 0 {
		headEnd = pySliceIndex(start, n)
	}
	tailStart = n
	if end != -1 {
		tailStart = pySliceIndex(end, n)
	}
	return headEnd, tailStart
}

// pySliceIndex normalises a slice bound the way Python does.
func pySliceIndex(i, n int) int {
	if i < 0 {
		return max(i+n, 0)
	}
	return min(i, n)
}

// copyLines copies lines [from, to) of a UTF-8 file, newlines translated.
func copyLines(ctx context.Context, path string, w *bufio.Writer, from, to int) error {
	if from >= to {
		return nil
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	lr := newLineReader(&ctxReader{ctx: ctx, r: file}, encUTF8)
	for i := 0; i < to; i++ {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if i >= from {
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
	}
	return nil
}

// pyDirname is os.path.dirname.
func pyDirname(p string) string {
	i := strings.LastIndexByte(p, '/') + 1
	head := p[:i]
	if head != "" && strings.Trim(head, "/") != "" {
		head = strings.TrimRight(head, "/")
	}
	return head
}

// makeParents creates the missing directories of dir (os.makedirs) and
// gives the new ones to the sandbox user, so the agent's shell can use
// them; OpenHands leaves them owned by the server.
func (f *Files) makeParents(dir string) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var missing []string
	for d := dir; ; {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		parent := pyDirname(d)
		if parent == d || parent == "" {
			break
		}
		d = parent
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if f.uid == -1 && f.gid == -1 {
		return nil
	}
	for _, d := range missing {
		if err := os.Lchown(d, f.uid, f.gid); err != nil {
			f.log.Warn("could not give a new directory to the sandbox user", "dir", d, "err", err)
		}
	}
	return nil
}
