package fileops

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

const (
	implSourceACI     = "oh_aci"
	implSourceDefault = "default"
	errorBinaryFile   = "ERROR_BINARY_FILE"
)

// isClosed reports whether Close has run.
func (f *Files) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hist == nil
}

// Read performs the read action (spec §4.1).
func (f *Files) Read(ctx context.Context, r ReadRequest) ReadResult {
	if err := checkCtx(ctx); err != nil {
		return ReadResult{Err: err}
	}
	if f.isClosed() {
		return ReadResult{Err: f.closedErr()}
	}
	// The binary sniff looks at the path exactly as sent, relative to the
	// server's own working directory, before anything is resolved.
	if isBinaryPath(r.Path) {
		return ReadResult{ErrorText: errorBinaryFile}
	}
	if r.ImplSource == implSourceACI {
		vr, err := pyValueOf(r.ViewRange)
		if err != nil {
			return ReadResult{Err: fmt.Errorf("view_range: %w", err)}
		}
		out, err := f.runEditor(ctx, editorCall{command: "view", path: r.Path, viewRange: vr})
		if err != nil {
			return ReadResult{Err: err}
		}
		return ReadResult{Content: out.content, Path: r.Path, ImplSource: implSourceACI}
	}
	cwd := r.Cwd
	if cwd == "" {
		cwd = f.root
	}
	path := pyJoin(cwd, r.Path)
	res, err := f.readDefault(ctx, path, cwd, r.Start, r.End)
	if err != nil {
		return ReadResult{Err: err}
	}
	res.Path, res.ImplSource = path, implSourceDefault
	return res
}

// mediaMIME returns the data-URL type for the files the read action
// returns whole: OpenHands picks them by lower-cased suffix and asks
// Python's mimetypes (with the image's /etc/mime.types) for the type.
func mediaMIME(path string) (string, bool) {
	lower := strings.ToLower(path)
	for _, m := range []struct{ suffix, mime string }{
		{".png", "image/png"}, {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
		{".bmp", "image/bmp"}, {".gif", "image/gif"},
		{".pdf", "application/pdf"},
		{".mp4", "video/mp4"}, {".webm", "video/webm"}, {".ogg", "audio/ogg"},
	} {
		if strings.HasSuffix(lower, m.suffix) {
			return m.mime, true
		}
	}
	return "", false
}

func (f *Files) readDefault(ctx context.Context, path, cwd string, start, end int) (ReadResult, error) {
	file, err := openRegular(path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return ReadResult{ErrorText: fmt.Sprintf("File not found: %s. Your current working directory is %s.", path, cwd)}, nil
		case errors.Is(err, syscall.EISDIR):
			return ReadResult{ErrorText: fmt.Sprintf("Path is a directory: %s. You can only read files", path)}, nil
		}
		return ReadResult{}, pyError(err, path)
	}
	defer file.Close()
	if st, err := file.Stat(); err == nil && f.maxRead > 0 && st.Size() > f.maxRead {
		// sbx's own limit (OpenHands has none): the whole file would be
		// held, base64-encoded for media, in the server's memory.
		return ReadResult{ErrorText: fmt.Sprintf("File is too large (%.1fMB) to read: %s. Maximum allowed size is %s.",
			float64(st.Size())/1024/1024, path, sizeText(f.maxRead))}, nil
	}
	if mime, ok := mediaMIME(path); ok {
		var sb strings.Builder
		if st, err := file.Stat(); err == nil {
			sb.Grow(len("data:;base64,") + len(mime) + base64.StdEncoding.EncodedLen(int(st.Size())))
		}
		sb.WriteString("data:" + mime + ";base64,")
		enc := base64.NewEncoder(base64.StdEncoding, &sb)
		if _, err := io.Copy(enc, &ctxReader{ctx: ctx, r: file}); err != nil {
			return ReadResult{}, pyError(err, path)
		}
		enc.Close()
		return ReadResult{Content: sb.String()}, nil
	}

	// Two streaming passes: the line window needs the line count first.
	n, err := countLinesIn(ctx, file, encUTF8)
	if err != nil {
		var de *decodeError
		if errors.As(err, &de) {
			return ReadResult{ErrorText: fmt.Sprintf("File could not be decoded as utf-8: %s.", path)}, nil
		}
		return ReadResult{}, pyError(err, path)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return ReadResult{}, pyError(err, path)
	}
	lo, hi := readWindow(n, start, end)
	var sb strings.Builder
	lr := newLineReader(&ctxReader{ctx: ctx, r: file}, encUTF8)
	for i := 0; i < hi; i++ {
		line, err := lr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return ReadResult{}, pyError(err, path)
		}
		if i >= lo {
			sb.Write(line)
		}
	}
	return ReadResult{Content: sb.String()}, nil
}

// readWindow returns the half-open range of line indexes the default read
// returns for n lines. It follows the rule as the spec (§4.1) states it:
// start clamped to [0, n]; end == -1 means lines[start:]; otherwise
// begin = max(0, min(start, n-2)) and the stop is -1 (Python: "all but the
// last line") when end > n, else max(begin+1, end).
//
// OpenHands' read_lines clamps end to n before that comparison, so there an
// end beyond the file returns everything from begin and the "drop the last
// line" case cannot happen. The spec's wording is followed on purpose (see
// the package documentation); this function is the one place to change.
func readWindow(n, start, end int) (lo, hi int) {
	start = min(max(start, 0), n)
	if end != -1 {
		end = max(end, 0)
	}
	// OpenHands clamps end to the line count before anything else, so the
	// "end > n" branch that follows it in read_lines can never fire (the
	// spec's §4.1 note about dropping the last line describes dead code).
	end = min(end, n)
	if end == -1 {
		return start, n
	}
	begin := max(0, min(start, n-2))
	stop := min(max(begin+1, end), n)
	if stop < begin {
		return begin, begin
	}
	return begin, stop
}

// sizeText prints a limit in MB when it is a whole number of them.
func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%dMB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// openRegular opens a file for reading without blocking on FIFOs, and
// refuses anything that is neither a regular file nor a directory (a
// directory is reported as EISDIR, as Python's open() does).
func openRegular(path string) (*os.File, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.EINVAL}
	}
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	switch {
	case st.IsDir():
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.EISDIR}
	case !st.Mode().IsRegular():
		file.Close()
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%s is not a regular file", path))
	}
	return file, nil
}

// countLinesIn counts lines as iterating a Python text file does, decoding
// (and so validating) everything.
func countLinesIn(ctx context.Context, r io.Reader, enc textEncoding) (int, error) {
	d := newTextDecoder(&ctxReader{ctx: ctx, r: r}, enc)
	n := 0
	last := byte('\n')
	for {
		chunk, err := d.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		n += bytes.Count(chunk, []byte{'\n'})
		last = chunk[len(chunk)-1]
	}
	if last != '\n' {
		n++
	}
	return n, nil
}

// pyError classifies an OS error and words it as Python's OSError, which
// is the text OpenHands' HTTP 500 would carry.
func pyError(err error, path string) error {
	for _, class := range []error{errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrPermission,
		errdefs.ErrInternal, errdefs.ErrUnavailable, errdefs.ErrTooLarge, errdefs.ErrInsufficientStorage} {
		if errors.Is(err, class) {
			return err
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("file operation: %w", err)
	}
	class := errdefs.ErrInternal
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		class = errdefs.ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		class = errdefs.ErrPermission
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENAMETOOLONG):
		class = errdefs.ErrInvalidArgument
	case isNoSpace(err):
		class = errdefs.ErrInsufficientStorage
	}
	return errdefs.Wrap(class, pyOSError(err, path), err)
}

// isNoSpace reports a write that failed for want of disk space or quota,
// which the HTTP edge answers 507 on every route.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// ctxReader makes long reads give up when the request is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
