// Package fileviewer is OpenHands' file viewer side server (spec §2.7): a
// loopback-only HTTP server that renders a file of the sandbox as an HTML
// page, so that the agent's browser can look at PDFs and images. Its URL
// is written to the file its caller names: /tmp/oh-server-url inside a
// container, where the browser tool reads it (launch.DefaultURLFile).
package fileviewer

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxViewBytes bounds what one page embeds.
const maxViewBytes = 64 << 20

// Server is a running file viewer.
type Server struct {
	URL string
	hs  *http.Server
}

// Start listens on the first free loopback port in [port+1, port+1024]
// (any free port when port is 0), serves, and records the URL in urlFile
// ("" skips that).
func Start(port int, urlFile string, log *slog.Logger) (*Server, error) {
	ln, err := listen(port)
	if err != nil {
		return nil, err
	}
	p := ln.Addr().(*net.TCPAddr).Port
	s := &Server{URL: "http://localhost:" + strconv.Itoa(p)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"File viewer server is running"}`)
	})
	mux.HandleFunc("GET /view", view)
	s.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go s.hs.Serve(ln)
	if urlFile != "" {
		if err := writeAtomic(urlFile, s.URL); err != nil {
			log.Warn("cannot record the file viewer URL", "file", urlFile, "err", err)
		}
	}
	return s, nil
}

// Close stops the server.
func (s *Server) Close(ctx context.Context) error { return s.hs.Shutdown(ctx) }

func listen(port int) (net.Listener, error) {
	if port == 0 {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	last := min(port+1024, 65535)
	for p := port + 1; p <= last; p++ {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("file viewer: no free port in [%d, %d]", port+1, last)
}

func writeAtomic(path, content string) error {
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func htmlError(w http.ResponseWriter, status int, msg, detail string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><body><h1>Error: %s</h1><p>%s</p></body></html>", html.EscapeString(msg), html.EscapeString(detail))
}

func view(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		htmlError(w, http.StatusForbidden, "Access denied", "The file viewer only serves the sandbox itself.")
		return
	}
	p := r.URL.Query().Get("path")
	if !filepath.IsAbs(p) {
		htmlError(w, http.StatusBadRequest, "Path must be absolute", p)
		return
	}
	st, err := os.Stat(p)
	if err != nil {
		htmlError(w, http.StatusNotFound, "File not found", p)
		return
	}
	if st.IsDir() {
		htmlError(w, http.StatusBadRequest, "Path is a directory", p)
		return
	}
	if st.Size() > maxViewBytes {
		htmlError(w, http.StatusInternalServerError, "File is too large to view", fmt.Sprintf("%s (%d bytes)", p, st.Size()))
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		htmlError(w, http.StatusInternalServerError, "Error reading file", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, page(filepath.Base(p), b))
}

// page embeds the file in a page: PDFs and media as data URLs the browser
// renders itself, anything else as text.
func page(name string, b []byte) string {
	typ := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	if i := strings.IndexByte(typ, ';'); i >= 0 {
		typ = typ[:i]
	}
	data := "data:" + typ + ";base64," + base64.StdEncoding.EncodeToString(b)
	var body string
	switch {
	case typ == "application/pdf":
		body = `<embed src="` + data + `" type="application/pdf" width="100%" height="100%">`
	case strings.HasPrefix(typ, "image/"):
		body = `<img src="` + data + `" style="max-width:100%">`
	case strings.HasPrefix(typ, "video/"):
		body = `<video controls src="` + data + `" style="max-width:100%"></video>`
	case strings.HasPrefix(typ, "audio/"):
		body = `<audio controls src="` + data + `"></audio>`
	default:
		body = "<pre>" + html.EscapeString(string(b)) + "</pre>"
	}
	return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(name) +
		"</title></head><body style=\"margin:0\">" + body + "</body></html>"
}
