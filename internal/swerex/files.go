package swerex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/internal/transfer"
)

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Server) abs(p string) string {
	if filepath.IsAbs(p) || s.cfg.Dir == "" {
		return p
	}
	return filepath.Join(s.cfg.Dir, p)
}

func (s *Server) readFile(_ context.Context, _ *http.Request, body []byte) (any, error) {
	o, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	p := o.str("path", "", true)
	enc, handler := o.optStr("encoding"), o.optStr("errors")
	if err := o.err(); err != nil {
		return nil, err
	}
	codec := "utf-8"
	if enc != nil {
		codec = *enc
	}
	mode := "strict"
	if handler != nil {
		mode = *handler
	}
	dec, err := decoderFor(codec, mode)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.abs(p))
	if err != nil {
		return nil, osError(err, p)
	}
	text, err := dec(b)
	if err != nil {
		return nil, err
	}
	return map[string]string{"content": universalNewlines(text)}, nil
}

// universalNewlines is Python's text mode on reading: \r\n and a lone \r
// both become \n.
func universalNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// decoderFor is the subset of Python's codecs agents use: UTF-8, ASCII
// and Latin-1 under their common names, with the strict, ignore, replace
// and backslashreplace error handlers.
func decoderFor(codec, mode string) (func([]byte) (string, error), error) {
	norm := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(codec)), "_", "-")
	switch mode {
	case "strict", "ignore", "replace", "backslashreplace", "surrogateescape":
	default:
		return nil, exc("builtins.LookupError", "unknown error handler name '"+mode+"'")
	}
	switch norm {
	case "utf-8", "utf8", "u8", "utf", "cp65001", "utf-8-sig":
		sig := norm == "utf-8-sig"
		return func(b []byte) (string, error) {
			if sig {
				b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
			}
			return decodeWith(b, "utf-8", mode, func(b []byte) (rune, int) { return utf8.DecodeRune(b) })
		}, nil
	case "ascii", "us-ascii", "646":
		return func(b []byte) (string, error) {
			return decodeWith(b, "ascii", mode, func(b []byte) (rune, int) {
				if b[0] < 0x80 {
					return rune(b[0]), 1
				}
				return utf8.RuneError, 1
			})
		}, nil
	case "latin-1", "latin1", "iso-8859-1", "iso8859-1", "8859", "cp819", "l1", "latin":
		return func(b []byte) (string, error) {
			var sb strings.Builder
			for _, c := range b {
				sb.WriteRune(rune(c))
			}
			return sb.String(), nil
		}, nil
	}
	return nil, exc("builtins.LookupError", "unknown encoding: "+codec)
}

func decodeWith(b []byte, name, mode string, next func([]byte) (rune, int)) (string, error) {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); {
		r, n := next(b[i:])
		if r == utf8.RuneError && n <= 1 {
			switch mode {
			case "strict":
				reason := "invalid start byte"
				if name == "ascii" {
					reason = "ordinal not in range(128)"
				} else if b[i] >= 0xc2 && b[i] <= 0xf4 {
					reason = "invalid continuation byte"
					if i+utf8.RuneLen(0x10000)-1 >= len(b) && !utf8.FullRune(b[i:]) {
						reason = "unexpected end of data"
					}
				}
				return "", exc("builtins.UnicodeDecodeError", fmt.Sprintf("'%s' codec can't decode byte 0x%02x in position %d: %s", name, b[i], i, reason))
			case "replace":
				sb.WriteRune('\ufffd')
			case "backslashreplace":
				fmt.Fprintf(&sb, `\x%02x`, b[i])
			case "surrogateescape":
				// Not representable in JSON text; the replacement
				// character is the closest an agent can read.
				sb.WriteRune('\ufffd')
			}
			i++
			continue
		}
		sb.WriteRune(r)
		i += n
	}
	return sb.String(), nil
}

func (s *Server) writeFile(_ context.Context, _ *http.Request, body []byte) (any, error) {
	o, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	content := o.str("content", "", true)
	p := o.str("path", "", true)
	if err := o.err(); err != nil {
		return nil, err
	}
	full := s.abs(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o777); err != nil {
		return nil, osError(err, filepath.Dir(p))
	}
	if err := writeAtomic(full, []byte(content)); err != nil {
		return nil, osError(err, p)
	}
	return struct{}{}, nil
}

// writeAtomic replaces path's content so that a reader (or a crash) sees
// the old file or the new one, never half of it. An existing file keeps
// its mode and owner, and a symlink is written through, as Python's
// write_text; a file with other hard links is written in place, so the
// links keep sharing it.
func writeAtomic(path string, data []byte) error {
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	} else if l, lerr := os.Readlink(path); lerr == nil {
		// A dangling symlink: create what it points at.
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(path), l)
		}
		target = l
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return &os.PathError{Op: "open", Path: path, Err: syscall.EISDIR}
	case err == nil && fi.Sys().(*syscall.Stat_t).Nlink > 1:
		return os.WriteFile(target, data, 0o666)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".swerex-write-*")
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			// A directory we cannot create in, but perhaps a file we may
			// write: do what Python does.
			return os.WriteFile(target, data, 0o666)
		}
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	mode := os.FileMode(0o666) &^ umask()
	if fi != nil {
		mode = fi.Mode().Perm()
		st := fi.Sys().(*syscall.Stat_t)
		_ = tmp.Chown(int(st.Uid), int(st.Gid))
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, target); err != nil {
		return err
	}
	ok = true
	return nil
}

func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

// upload is /upload: a multipart form with the file, target_path and
// unzip (spec §2.4).
func (s *Server) upload(ctx context.Context, r *http.Request, _ []byte) (any, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, &validationError{[]fieldError{
			{Type: "missing", Loc: []any{"body", "file"}, Msg: "Field required", Input: nil},
			{Type: "missing", Loc: []any{"body", "target_path"}, Msg: "Field required", Input: nil},
		}}
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var spool *os.File
	defer func() {
		if spool != nil {
			spool.Close()
			os.Remove(spool.Name())
		}
	}()
	var target *string
	unzip := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &validationError{[]fieldError{{Type: "value_error", Loc: []any{"body"}, Msg: "malformed multipart body: " + err.Error(), Input: nil}}}
		}
		switch part.FormName() {
		case "file":
			if spool != nil {
				break
			}
			spool, err = os.CreateTemp("", "swerex-upload-*")
			if err != nil {
				return nil, err
			}
			if _, err := io.Copy(spool, part); err != nil {
				return nil, fmt.Errorf("receiving the upload: %w", err)
			}
		case "target_path":
			b, err := io.ReadAll(io.LimitReader(part, 1<<16))
			if err != nil {
				return nil, err
			}
			t := string(b)
			target = &t
		case "unzip":
			b, _ := io.ReadAll(io.LimitReader(part, 64))
			v, ok := parseBool(string(b))
			if !ok {
				return nil, &validationError{[]fieldError{{Type: "bool_parsing", Loc: []any{"body", "unzip"}, Msg: "Input should be a valid boolean, unable to interpret input", Input: string(b)}}}
			}
			unzip = v
		}
		part.Close()
	}
	var missing []fieldError
	if spool == nil {
		missing = append(missing, fieldError{Type: "missing", Loc: []any{"body", "file"}, Msg: "Field required", Input: nil})
	}
	if target == nil {
		missing = append(missing, fieldError{Type: "missing", Loc: []any{"body", "target_path"}, Msg: "Field required", Input: nil})
	}
	if missing != nil {
		return nil, &validationError{missing}
	}
	dest := s.abs(*target)
	if err := os.MkdirAll(filepath.Dir(dest), 0o777); err != nil {
		return nil, osError(err, filepath.Dir(*target))
	}
	if unzip {
		if err := os.MkdirAll(dest, 0o777); err != nil {
			return nil, osError(err, *target)
		}
		fi, err := spool.Stat()
		if err != nil {
			return nil, err
		}
		if err := transfer.Extract(ctx, spool, fi.Size(), dest, transfer.Options{}); err != nil {
			return nil, exc("zipfile.BadZipFile", err.Error())
		}
		return struct{}{}, nil
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		// shutil.move into an existing directory keeps the source's name.
		dest = filepath.Join(dest, "temp_file_transfer")
	}
	if err := spool.Chmod(0o666 &^ umask()); err != nil {
		return nil, err
	}
	if err := moveFile(spool, dest); err != nil {
		return nil, osError(err, *target)
	}
	return struct{}{}, nil
}

// moveFile puts the spooled upload at dest: a rename when both are on one
// file system, else a copy next to dest and a rename, so dest is never
// half written.
func moveFile(spool *os.File, dest string) error {
	if err := os.Rename(spool.Name(), dest); err == nil {
		return nil
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".swerex-upload-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, spool); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o666 &^ umask()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func decodeBytes(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&sb, `\x%02x`, b[0])
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}
