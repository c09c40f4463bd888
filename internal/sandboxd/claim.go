package sandboxd

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/shell"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// PathClaim is the warm-pool claim route.
const PathClaim = "/sbx/v1/claim"

// HeaderPoolSecret carries the pool secret of a claim.
const HeaderPoolSecret = "X-Sbx-Pool-Secret"

// maxClaimBytes bounds a claim body: a session key and an environment,
// never a file.
const maxClaimBytes = 1 << 20

// Environ is the environment a claim adds to every child started after
// it. The shell factory, the process manager and the terminals read it
// when they start a child, so that a claim reaches what comes later
// without restarting anything.
type Environ struct {
	mu   sync.Mutex
	vars []string // NAME=value, sorted by name
}

// NewEnviron is an empty holder.
func NewEnviron() *Environ { return &Environ{} }

// Apply is base with the claimed variables after it (the last of a name
// wins, for exec and for the shells alike).
func (e *Environ) Apply(base []string) []string {
	if e == nil {
		return base
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append(slices.Clip(base), e.vars...)
}

func (e *Environ) set(env map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range sortedKeys(env) {
		e.vars = append(e.vars, k+"="+env[k])
	}
}

// ClaimRequest is the body of POST /sbx/v1/claim.
type ClaimRequest struct {
	SessionAPIKey string            `json:"session_api_key"`
	Env           map[string]string `json:"env"`
}

// ClaimResponse answers a successful claim.
type ClaimResponse struct {
	Claimed  bool `json:"claimed"`
	Sessions int  `json:"sessions"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// decodeClaim reads and checks a claim body. Every error is of class
// errdefs.ErrInvalidArgument.
func decodeClaim(body []byte) (ClaimRequest, error) {
	var req ClaimRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, errdefs.Wrap(errdefs.ErrInvalidArgument, "invalid claim body: "+err.Error(), err)
	}
	if dec.More() {
		return req, errdefs.New(errdefs.ErrInvalidArgument, "invalid claim body: trailing data")
	}
	for _, k := range sortedKeys(req.Env) {
		if !envName.MatchString(k) {
			return req, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid environment variable name %q", k))
		}
		// sbx's own launch variables configure sandboxd, and a claimed
		// SBX_POOL_SECRET or SESSION_API_KEY in the shell would hand the
		// agent what the claim protects.
		if k == launch.EnvSessionAPIKey || strings.HasPrefix(k, "SBX_") || launch.IsLaunchVar(k) {
			return req, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("environment variable %s is reserved", k))
		}
		if strings.ContainsRune(req.Env[k], 0) {
			return req, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("environment variable %s holds a NUL byte", k))
		}
	}
	return req, nil
}

// shellQuote makes s one word for bash whatever it holds: inside single
// quotes nothing is special but the quote itself.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// claim is POST /sbx/v1/claim. It is served outside the session key
// check (serveHTTP) because a warm sandbox has no tenant key yet.
func (s *Server) claim(w http.ResponseWriter, r *http.Request) error {
	got := r.Header.Get(HeaderPoolSecret)
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.PoolSecret)) != 1 {
		writeJSON(w, http.StatusForbidden, sandboxapi.ErrorBody{Detail: "Invalid pool secret"})
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxClaimBytes))
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, "read claim body: "+err.Error(), err)
	}
	req, err := decodeClaim(body)
	if err != nil {
		return err
	}
	if !s.ready.Load() {
		return errdefs.New(errdefs.ErrUnavailable, "sandboxd is not ready")
	}
	n, err := s.applyClaim(r.Context(), req)
	if err != nil {
		return err
	}
	s.log.Info("claimed", "sessions", n, "env", len(req.Env))
	writeJSON(w, http.StatusOK, ClaimResponse{Claimed: true, Sessions: n})
	return nil
}

func (s *Server) applyClaim(ctx context.Context, req ClaimRequest) (int, error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if s.claimed {
		return 0, errdefs.New(errdefs.ErrConflict, "already claimed")
	}
	// The default session's actions hold actionMu for their whole run:
	// failing to take it means that session is busy, and holding it keeps
	// an action from starting between the check and the exports.
	if !s.actionMu.TryLock() {
		return 0, errdefs.New(errdefs.ErrConflict, "session "+DefaultSession+" is busy")
	}
	defer s.actionMu.Unlock()
	sessions := s.reg.list()
	// All are checked before any is changed: a claim half applied would
	// leave some shells without the tenant's variables.
	for _, ss := range sessions {
		if ss.sh.Busy() {
			return 0, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("session %s is busy", ss.name))
		}
	}
	var cmd strings.Builder
	for i, k := range sortedKeys(req.Env) {
		if i > 0 {
			cmd.WriteString("; ")
		}
		cmd.WriteString("export " + k + "=" + shellQuote(req.Env[k]))
	}
	if cmd.Len() > 0 {
		for _, ss := range sessions {
			if _, err := ss.sh.Run(ctx, shell.Request{Command: cmd.String(), Hidden: true, Blocking: true, Timeout: 30}); err != nil {
				return 0, fmt.Errorf("claim: export in session %s: %w", ss.name, err)
			}
		}
		s.env.set(req.Env)
	}
	if req.SessionAPIKey != "" {
		key := req.SessionAPIKey
		s.key.Store(&key)
	}
	s.claimed = true
	return len(sessions), nil
}
