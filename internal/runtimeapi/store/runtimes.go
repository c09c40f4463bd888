package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Runtime is one runtime's record. Spec is the start request as the
// service normalised it (JSON, opaque here), so a restart of the service
// can start the same workload again.
type Runtime struct {
	ID            string
	Tenant        string // Key.ID
	SessionID     string
	State         State
	PodStatus     string
	Reason        string // why it is in Error (or was stopped by the service)
	SessionAPIKey string
	Spec          json.RawMessage
	Backend       string // which backend runs it ("docker")
	BackendID     string // the backend's name for it (container name)
	RestartCount  int
	// Generation counts writes; Update compares it, so two writers never
	// both win.
	Generation int64
	Created    time.Time
	Updated    time.Time
}

const runtimeColumns = `id, tenant, session_id, state, pod_status, reason, session_api_key, spec, backend, backend_id, restart_count, generation, created_at, updated_at`

func scanRuntime(sc interface{ Scan(...any) error }) (Runtime, error) {
	var r Runtime
	var state, spec string
	var created, updated int64
	err := sc.Scan(&r.ID, &r.Tenant, &r.SessionID, &state, &r.PodStatus, &r.Reason, &r.SessionAPIKey, &spec,
		&r.Backend, &r.BackendID, &r.RestartCount, &r.Generation, &created, &updated)
	if err != nil {
		return Runtime{}, err
	}
	r.State = State(state)
	r.Spec = json.RawMessage(spec)
	r.Created, r.Updated = fromNanos(created), fromNanos(updated)
	return r, nil
}

// CreateRuntime records a new runtime in state Starting. A tenant has at
// most one live runtime per session id: a second is ErrAlreadyExists.
func (s *Store) CreateRuntime(ctx context.Context, r Runtime) (Runtime, error) {
	if r.ID == "" || r.Tenant == "" || r.SessionID == "" {
		return Runtime{}, fmt.Errorf("store: a runtime needs an id, a tenant and a session id: %w", errdefs.ErrInvalidArgument)
	}
	if r.State == "" {
		r.State = Starting
	}
	if r.State != Starting {
		return Runtime{}, fmt.Errorf("store: a new runtime is %s, not %s: %w", Starting, r.State, errdefs.ErrInvalidArgument)
	}
	if r.PodStatus == "" {
		r.PodStatus = r.State.PodStatus()
	}
	if len(r.Spec) == 0 {
		r.Spec = json.RawMessage("{}")
	}
	if !json.Valid(r.Spec) {
		return Runtime{}, fmt.Errorf("store: runtime spec is not JSON: %w", errdefs.ErrInvalidArgument)
	}
	r.Generation = 1
	r.Created = s.now().UTC().Truncate(time.Microsecond)
	r.Updated = r.Created
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO runtimes (`+runtimeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Tenant, r.SessionID, string(r.State), r.PodStatus, r.Reason, r.SessionAPIKey, string(r.Spec),
		r.Backend, r.BackendID, r.RestartCount, r.Generation, nanos(r.Created), nanos(r.Updated))
	if isUnique(err) {
		return Runtime{}, fmt.Errorf("store: session %q has a live runtime (or runtime id %s is taken): %w", r.SessionID, r.ID, errdefs.ErrAlreadyExists)
	}
	if err != nil {
		return Runtime{}, fmt.Errorf("store: create runtime: %w", err)
	}
	return r, nil
}

// Runtime reads a runtime of tenant. Another tenant's runtime is
// ErrNotFound, exactly as a missing one: a key learns nothing of others.
// tenant "" reads any tenant's (the service's own proxy and reconciler).
func (s *Store) Runtime(ctx context.Context, tenant, id string) (Runtime, error) {
	q := `SELECT ` + runtimeColumns + ` FROM runtimes WHERE id = ?`
	args := []any{id}
	if tenant != "" {
		q += ` AND tenant = ?`
		args = append(args, tenant)
	}
	r, err := scanRuntime(s.db.QueryRowContext(ctx, s.q(q), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Runtime{}, fmt.Errorf("store: runtime %s not found: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Runtime{}, fmt.Errorf("store: read runtime: %w", err)
	}
	return r, nil
}

// BySession reads the tenant's newest runtime for a session id.
func (s *Store) BySession(ctx context.Context, tenant, sessionID string) (Runtime, error) {
	r, err := scanRuntime(s.db.QueryRowContext(ctx, s.q(`SELECT `+runtimeColumns+` FROM runtimes WHERE tenant = ? AND session_id = ? ORDER BY created_at DESC, generation DESC LIMIT 1`), tenant, sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return Runtime{}, fmt.Errorf("store: no runtime for session %q: %w", sessionID, errdefs.ErrNotFound)
	}
	if err != nil {
		return Runtime{}, fmt.Errorf("store: read runtime: %w", err)
	}
	return r, nil
}

// Filter selects runtimes for List. Zero fields select everything.
type Filter struct {
	Tenant     string
	States     []State
	SessionIDs []string
}

// List returns the runtimes the filter selects, oldest first. With
// SessionIDs only the newest runtime of each session is returned.
func (s *Store) List(ctx context.Context, f Filter) ([]Runtime, error) {
	var where []string
	var args []any
	if f.Tenant != "" {
		where = append(where, `tenant = ?`)
		args = append(args, f.Tenant)
	}
	if len(f.States) > 0 {
		where = append(where, `state IN (`+placeholders(len(f.States))+`)`)
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if len(f.SessionIDs) > 0 {
		where = append(where, `session_id IN (`+placeholders(len(f.SessionIDs))+`)`)
		for _, id := range f.SessionIDs {
			args = append(args, id)
		}
	}
	q := `SELECT ` + runtimeColumns + ` FROM runtimes`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at, id`
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list runtimes: %w", err)
	}
	defer rows.Close()
	var out []Runtime
	for rows.Next() {
		r, err := scanRuntime(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list runtimes: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list runtimes: %w", err)
	}
	if len(f.SessionIDs) > 0 {
		out = newestPerSession(out)
	}
	return out, nil
}

func newestPerSession(rs []Runtime) []Runtime {
	type key struct{ tenant, session string }
	newest := make(map[key]int, len(rs))
	for i, r := range rs {
		newest[key{r.Tenant, r.SessionID}] = i // rs is oldest first
	}
	out := rs[:0:0]
	for i, r := range rs {
		if newest[key{r.Tenant, r.SessionID}] == i {
			out = append(out, r)
		}
	}
	return out
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// maxUpdateRetries bounds Update's optimistic retries; each retry means
// another writer changed the runtime in between, so this many in a row is
// a writer gone wild, not contention.
const maxUpdateRetries = 20

// Update reads runtime id, lets change edit it and writes it back if
// nobody wrote in between (else reads again and retries). change may set
// State: a move the lifecycle table does not allow is a *TransitionError
// (ErrConflict) and nothing is written. change returning an error writes
// nothing and returns it. ID, Tenant, SessionID, Created and Generation
// are not changeable.
func (s *Store) Update(ctx context.Context, id string, change func(*Runtime) error) (Runtime, error) {
	for range maxUpdateRetries {
		old, err := s.Runtime(ctx, "", id)
		if err != nil {
			return Runtime{}, err
		}
		r := old
		r.Spec = append(json.RawMessage(nil), old.Spec...)
		if err := change(&r); err != nil {
			return Runtime{}, err
		}
		if r.State != old.State && !Allowed(old.State, r.State) {
			return Runtime{}, &TransitionError{ID: id, From: old.State, To: r.State}
		}
		if !r.State.Valid() {
			return Runtime{}, fmt.Errorf("store: unknown state %q: %w", r.State, errdefs.ErrInvalidArgument)
		}
		if !json.Valid(r.Spec) {
			return Runtime{}, fmt.Errorf("store: runtime spec is not JSON: %w", errdefs.ErrInvalidArgument)
		}
		r.ID, r.Tenant, r.SessionID, r.Created = old.ID, old.Tenant, old.SessionID, old.Created
		r.Generation = old.Generation + 1
		r.Updated = s.now().UTC().Truncate(time.Microsecond)
		res, err := s.db.ExecContext(ctx, s.q(`UPDATE runtimes SET state = ?, pod_status = ?, reason = ?, session_api_key = ?, spec = ?,
			backend = ?, backend_id = ?, restart_count = ?, generation = ?, updated_at = ? WHERE id = ? AND generation = ?`),
			string(r.State), r.PodStatus, r.Reason, r.SessionAPIKey, string(r.Spec), r.Backend, r.BackendID, r.RestartCount,
			r.Generation, nanos(r.Updated), id, old.Generation)
		if err != nil {
			return Runtime{}, fmt.Errorf("store: update runtime %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Runtime{}, fmt.Errorf("store: update runtime %s: %w", id, err)
		} else if n == 1 {
			return r, nil
		}
		if err := ctx.Err(); err != nil {
			return Runtime{}, err
		}
	}
	return Runtime{}, fmt.Errorf("store: runtime %s changed %d times while being updated: %w", id, maxUpdateRetries, errdefs.ErrConflict)
}

// DeleteStopped forgets stopped runtimes last written before t (history a
// client no longer finds by session id) and returns how many.
func (s *Store) DeleteStopped(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM runtimes WHERE state = ? AND updated_at < ?`), string(Stopped), nanos(before))
	if err != nil {
		return 0, fmt.Errorf("store: delete stopped runtimes: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete stopped runtimes: %w", err)
	}
	return int(n), nil
}
