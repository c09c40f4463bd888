package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
)

// V0's image routes (spec §4.7): /registry_prefix, /image_exists, /build
// and /build_status. Builds are the engine's own, of the context the
// client posts, bounded (size, time, how many at once) and cached by the
// context's digest: the same context again is tagged, not rebuilt.

const (
	maxBuildContext  = 1 << 30 // decoded bytes
	maxBuildsRunning = 2
	maxBuildsQueued  = 8 // more is 429: V0 waits 30 s and tries again
	buildTimeout     = 30 * time.Minute
	labelContext     = "dev.sbx.runtimeapi.context"
	keepBuilds       = time.Hour
)

type buildState struct {
	tenant string
	status string // PENDING, RUNNING, SUCCESS, FAILURE, TIMEOUT
	image  string
	err    string
	done   time.Time
}

type builds struct {
	mu      sync.Mutex
	m       map[string]*buildState
	running chan struct{}
	queued  int
	// byContext maps a context's digest to the image ID it built, so the
	// same context again is only tagged.
	byContext map[string]string
}

// registryPrefix is where a tenant's builds are tagged: the engine's
// local images, one namespace per tenant, so that no build can take
// another tenant's (or anyone's) tag.
func registryPrefix(tenant string) string { return "sbx.local/" + tenant }

func (s *Server) registryPrefixRoute(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Caps.ContextBuild == nil {
		writeError(w, errdefs.New(errdefs.ErrNotImplemented, "this backend builds no images"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"registry_prefix": registryPrefix(tenantOf(r))})
}

func (s *Server) imageExists(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Caps.ContextBuild == nil {
		writeError(w, errdefs.New(errdefs.ErrNotImplemented, "this backend builds no images"))
		return
	}
	ref := r.URL.Query().Get("image")
	if ref == "" {
		writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "image is required"))
		return
	}
	img, ok, err := s.cfg.Caps.ContextBuild.ImageExists(r.Context(), ref)
	if err != nil {
		writeError(w, err)
		return
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"exists": false, "image": nil})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"exists": true, "image": map[string]any{
		"upload_time": img.Created.UTC().Format(time.RFC3339), "image_size_bytes": img.Size}})
}

// build reads V0's multipart body: part context (context.tar.gz, whose
// content is the base64 text of a gzip tar), target_image, and tags.
func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Caps.ContextBuild == nil {
		writeError(w, errdefs.New(errdefs.ErrNotImplemented, "this backend builds no images"))
		return
	}
	tenant := tenantOf(r)
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "/build takes multipart/form-data"))
		return
	}
	s.bld.mu.Lock()
	if s.bld.queued >= maxBuildsQueued {
		s.bld.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"detail": "too many builds in progress; try again"})
		return
	}
	s.bld.queued++
	s.bld.mu.Unlock()
	queued := true
	defer func() {
		if queued {
			s.bld.mu.Lock()
			s.bld.queued--
			s.bld.mu.Unlock()
		}
	}()

	f, err := os.CreateTemp("", "sbx-build-*.tar.gz")
	if err != nil {
		writeError(w, err)
		return
	}
	keepFile := false
	defer func() {
		if !keepFile {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var tags []string
	digest := sha256.New()
	gotContext := false
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, maxBuildContext*4/3+1<<20), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "reading the multipart body: "+err.Error()))
			return
		}
		switch p.FormName() {
		case "context":
			dec := base64.NewDecoder(base64.StdEncoding, newlineStripper{p})
			n, err := io.Copy(io.MultiWriter(f, digest), io.LimitReader(dec, maxBuildContext+1))
			if err != nil {
				writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "context: not base64 text of a tar.gz: "+err.Error()))
				return
			}
			if n > maxBuildContext {
				writeError(w, errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("context: larger than %d bytes", maxBuildContext)))
				return
			}
			gotContext = n > 0
		case "target_image", "tags":
			b, err := io.ReadAll(io.LimitReader(p, 1024))
			if err != nil {
				writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "reading "+p.FormName()+": "+err.Error()))
				return
			}
			if t := strings.TrimSpace(string(b)); t != "" {
				if p.FormName() == "target_image" {
					tags = append([]string{t}, tags...)
				} else {
					tags = append(tags, t)
				}
			}
		}
		p.Close()
	}
	if !gotContext || len(tags) == 0 {
		writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "/build needs a context part and a target_image"))
		return
	}
	prefix := registryPrefix(tenant) + "/"
	for _, t := range tags {
		named, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			writeError(w, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("tag %q: %v", t, err)))
			return
		}
		if !strings.HasPrefix(named.Name(), prefix) {
			writeError(w, errdefs.New(errdefs.ErrPermission, fmt.Sprintf("tag %q: builds go under %s (GET /registry_prefix)", t, strings.TrimSuffix(prefix, "/"))))
			return
		}
	}
	id := "b-" + ids.New(10)
	st := &buildState{tenant: tenant, status: "PENDING"}
	s.bld.mu.Lock()
	if s.bld.m == nil {
		s.bld.m = map[string]*buildState{}
	}
	for k, b := range s.bld.m {
		if !b.done.IsZero() && time.Since(b.done) > keepBuilds {
			delete(s.bld.m, k)
		}
	}
	s.bld.m[id] = st
	s.bld.mu.Unlock()
	keepFile, queued = true, false
	sum := hex.EncodeToString(digest.Sum(nil))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			f.Close()
			os.Remove(f.Name())
			s.bld.mu.Lock()
			s.bld.queued--
			s.bld.mu.Unlock()
		}()
		s.runBuild(id, st, f, sum, tags)
	}()
	writeJSON(w, http.StatusOK, map[string]string{"build_id": id})
}

func (s *Server) runBuild(id string, st *buildState, f *os.File, sum string, tags []string) {
	ctx, cancel := context.WithTimeout(s.ctx, buildTimeout)
	defer cancel()
	set := func(status, image, msg string) {
		s.bld.mu.Lock()
		st.status, st.image, st.err = status, image, msg
		if status != "RUNNING" {
			st.done = time.Now()
		}
		s.bld.mu.Unlock()
	}
	select {
	case s.bld.running <- struct{}{}:
		defer func() { <-s.bld.running }()
	case <-ctx.Done():
		set("TIMEOUT", "", "waited too long for a build slot")
		return
	}
	set("RUNNING", "", "")
	s.bld.mu.Lock()
	cached := s.bld.byContext[sum]
	s.bld.mu.Unlock()
	if cached != "" {
		var terr error
		for _, t := range tags {
			if terr = s.cfg.Caps.ContextBuild.TagImage(ctx, cached, t); terr != nil {
				break
			}
		}
		if terr == nil {
			s.log.Info("image built from cache", "build", id, "image", tags[0], "id", cached)
			set("SUCCESS", tags[0], "")
			return
		}
		// The image went away (pruned): build it again.
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		set("INTERNAL_ERROR", "", err.Error())
		return
	}
	img, err := s.cfg.Caps.ContextBuild.BuildContext(ctx, f, tags, map[string]string{labelContext: sum})
	switch {
	case err == nil:
		s.log.Info("image built", "build", id, "image", tags[0], "id", img.ID)
		s.bld.mu.Lock()
		if s.bld.byContext == nil || len(s.bld.byContext) > 1000 {
			s.bld.byContext = map[string]string{}
		}
		s.bld.byContext[sum] = img.ID
		s.bld.mu.Unlock()
		set("SUCCESS", tags[0], "")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		set("TIMEOUT", "", err.Error())
	case errors.Is(err, errdefs.ErrInvalidArgument):
		set("FAILURE", "", err.Error())
	default:
		s.log.Error("build failed", "build", id, "err", err)
		set("INTERNAL_ERROR", "", err.Error())
	}
}

func (s *Server) buildStatus(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("build_id")
	s.bld.mu.Lock()
	st, ok := s.bld.m[id]
	var out map[string]any
	if ok && st.tenant == tenantOf(r) {
		out = map[string]any{"build_id": id, "status": st.status}
		if st.image != "" {
			out["image"] = st.image
		}
		if st.err != "" {
			out["error"] = st.err
		}
	}
	s.bld.mu.Unlock()
	if out == nil {
		writeError(w, errdefs.New(errdefs.ErrNotFound, "build "+id+" not found"))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// newlineStripper drops the line breaks a base64 encoder may have put in.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != '\n' && c != '\r' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
