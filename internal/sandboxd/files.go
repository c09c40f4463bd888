package sandboxd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/transfer"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// parseBool accepts what FastAPI accepts for a bool query parameter.
func parseBool(name, v string) (bool, error) {
	switch trimmedLower(v) {
	case "1", "true", "t", "yes", "y", "on":
		return true, nil
	case "0", "false", "f", "no", "n", "off":
		return false, nil
	}
	return false, validationError(fmt.Sprintf("[{'type': 'bool_parsing', 'loc': ('query', '%s'), 'msg': 'Input should be a valid boolean, unable to interpret input', 'input': %s}]", name, pyRepr(v)))
}

// uploadFile streams the multipart part "file" straight to the transfer
// code: nothing of the body is held in memory.
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	dest := "/"
	if v, ok := q["destination"]; ok && len(v) > 0 {
		dest = v[0]
	}
	recursive := false
	if v := q.Get("recursive"); q.Has("recursive") {
		b, err := parseBool("recursive", v)
		if err != nil {
			return err
		}
		recursive = b
	}
	missing := validationError("[{'type': 'missing', 'loc': ('body', 'file'), 'msg': 'Field required', 'input': None}]")
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return missing
	}
	if b := params["boundary"]; len(b) > 70 || strings.ContainsAny(b, "\r\n") {
		// RFC 2046 caps boundaries at 70 characters.
		return &requestError{status: 400, detail: "There was an error parsing the body"}
	}
	fr := newFormReader(r.Body, params["boundary"], 512<<10)
	var part *formPart
	for {
		part, err = fr.next(part)
		if err == io.EOF {
			return missing
		}
		if err != nil {
			return &requestError{status: 400, detail: "There was an error parsing the body"}
		}
		if part.Name != "file" || part.FileName == "" {
			continue
		}
		name := part.FileName
		if err := transfer.Upload(r.Context(), dest, name, recursive, part, s.opts.Upload); err != nil {
			return uploadError(err)
		}
		writeJSON(w, http.StatusOK, sandboxapi.UploadResult{Filename: name, Destination: dest, Recursive: recursive})
		return nil
	}
}

// uploadError renders transfer errors as OpenHands does: every failure is a
// 500 whose detail is the error text, with "400: " before the two checks
// OpenHands raises as HTTPException(400) (other invalid uploads are plain
// 500s there, so the class alone would not do).
func uploadError(err error) error {
	switch {
	case errors.Is(err, transfer.ErrDestinationNotAbsolute), errors.Is(err, transfer.ErrRecursiveNotZip):
		return &requestError{status: 500, detail: "400: " + err.Error()}
	case errors.Is(err, errdefs.ErrInsufficientStorage):
		return &requestError{status: errdefs.HTTPStatus(errdefs.ErrInsufficientStorage), detail: err.Error()}
	case errors.Is(err, errdefs.ErrTooLarge):
		return &requestError{status: errdefs.HTTPStatus(errdefs.ErrTooLarge), detail: err.Error()}
	}
	return &requestError{status: 500, detail: err.Error()}
}

func (s *Server) downloadFiles(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if !q.Has("path") {
		return validationError("[{'type': 'missing', 'loc': ('query', 'path'), 'msg': 'Field required', 'input': None}]")
	}
	p := q.Get("path")
	// Validation happens before the first byte, so the status can still
	// say what went wrong; after that, a failure can only cut the stream.
	cw := &lazyHeaders{w: w, name: transfer.ArchiveName(p)}
	err := transfer.Download(r.Context(), cw, p)
	if err != nil && !cw.started {
		switch {
		case errors.Is(err, errdefs.ErrInvalidArgument):
			return &requestError{status: 500, detail: "400: " + err.Error()}
		case errors.Is(err, errdefs.ErrNotFound):
			return &requestError{status: 500, detail: "404: " + err.Error()}
		}
		return &requestError{status: 500, detail: err.Error()}
	}
	if err != nil {
		s.log.Warn("download cut short", "path", p, "err", err)
		// Abort the connection so the client sees a truncated transfer
		// instead of a well-formed but incomplete zip.
		panic(http.ErrAbortHandler)
	}
	if !cw.started {
		cw.start()
	}
	return nil
}

// lazyHeaders writes the zip headers on the first byte of the body.
type lazyHeaders struct {
	w       http.ResponseWriter
	name    string
	started bool
}

func (l *lazyHeaders) start() {
	l.started = true
	h := l.w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": l.name}))
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyHeaders) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) error {
	var body any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		return &requestError{status: 500, detail: "An unexpected error occurred. Please try again later."}
	}
	m, ok := body.(map[string]any)
	if !ok {
		return &requestError{status: 500, detail: "An unexpected error occurred. Please try again later."}
	}
	path := ""
	switch v := m["path"].(type) {
	case nil:
	case string:
		path = v
		if path == "" {
			path = "."
		}
	default:
		writeJSON(w, http.StatusOK, []string{})
		return nil
	}
	names := transfer.ListFiles(s.opts.WorkDir, path)
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, names)
	return nil
}
