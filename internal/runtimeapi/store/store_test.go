package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store/storetest"
)

// backends opens one empty store per database this machine has: SQLite
// always; PostgreSQL when SBX_TEST_POSTGRES names a server where the user
// may create databases (.ci/run starts one). Each PostgreSQL test gets a
// database of its own, dropped at the end.
func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "sbx.db") },
		"postgres": func(t *testing.T) string { return storetest.Postgres(t) },
	}
}

// TestStore is the conformance suite: every case on every database.
func TestStore(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, dsn string)
	}{
		{"Keys", testKeys},
		{"KeyNames", testKeyNames},
		{"Runtimes", testRuntimes},
		{"TenantIsolation", testTenantIsolation},
		{"OneLiveRuntimePerSession", testOneLive},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Transitions", testTransitions},
		{"ListAndBatch", testList},
		{"DeleteStopped", testDeleteStopped},
		{"Reopen", testReopen},
	}
	for name, dsn := range backends(t) {
		t.Run(name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, dsn(t)) })
			}
		})
	}
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustKey(t *testing.T, s *Store, name string) (Key, string) {
	t.Helper()
	k, secret, err := s.CreateKey(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return k, secret
}

func testKeys(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	k, secret := mustKey(t, s, "alice")
	if !strings.HasPrefix(secret, "sbxk_"+k.ID+"_") || len(secret) < 40 {
		t.Fatalf("secret %q", secret)
	}
	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.ID != k.ID || got.Name != "alice" || !got.Active() {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	if !got.Created.Equal(k.Created) {
		t.Errorf("created %v, stored %v", k.Created, got.Created)
	}
	// The hash is stored, never the secret.
	var hash string
	if err := s.db.QueryRow(s.q(`SELECT hash FROM keys WHERE id = ?`), k.ID).Scan(&hash); err != nil || strings.Contains(hash, secret[len(secret)-10:]) || len(hash) != 64 {
		t.Errorf("stored %q (%v)", hash, err)
	}
	for _, bad := range []string{"", "sbxk_", secret + "x", secret[:len(secret)-1], "sbxk_" + k.ID, strings.Replace(secret, k.ID, "0000000000000000", 1), "Bearer " + secret, "\x00"} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, errdefs.ErrUnauthorized) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthorized", bad, err)
		}
	}
	if _, _, err := s.CreateKey(ctx, "alice"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second alice: %v", err)
	}
	b, _ := mustKey(t, s, "bob")
	keys, err := s.Keys(ctx)
	if err != nil || len(keys) != 2 || keys[0].Name != "alice" || keys[1].Name != "bob" {
		t.Fatalf("Keys = %+v, %v", keys, err)
	}
	r, err := s.RevokeKey(ctx, "alice")
	if err != nil || r.ID != k.ID || r.Active() {
		t.Fatalf("RevokeKey = %+v, %v", r, err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("revoked key: %v", err)
	}
	if _, err := s.RevokeKey(ctx, "alice"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("revoking twice: %v", err)
	}
	if _, err := s.RevokeKey(ctx, b.ID); err != nil {
		t.Errorf("revoke by id: %v", err)
	}
	// A revoked name can be given to a new key.
	mustKey(t, s, "alice")
	keys, _ = s.Keys(ctx)
	if len(keys) != 3 {
		t.Errorf("%d keys", len(keys))
	}
}

func testKeyNames(t *testing.T, dsn string) {
	s := open(t, dsn)
	for _, bad := range []string{"", strings.Repeat("a", 65), "a b", "a;drop", "ä\x00", "x/y", "'"} {
		if _, _, err := s.CreateKey(context.Background(), bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("CreateKey(%q) = %v", bad, err)
		}
	}
	for _, good := range []string{"ci", "team-a.eval_1", "me@example.org", "ünï"} {
		if _, _, err := s.CreateKey(context.Background(), good); err != nil {
			t.Errorf("CreateKey(%q) = %v", good, err)
		}
	}
}

func newRuntime(tenant, session string) Runtime {
	return Runtime{ID: "rt-" + ids.New(6), Tenant: tenant, SessionID: session, SessionAPIKey: ids.Token(),
		Spec: json.RawMessage(`{"image":"x","command":["a","b"]}`), Backend: "docker", BackendID: "sbx-api-1"}
}

func testRuntimes(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	k, _ := mustKey(t, s, "t")
	in := newRuntime(k.ID, "sess-1")
	created, err := s.CreateRuntime(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if created.State != Starting || created.PodStatus != "pending" || created.Generation != 1 || created.Created.IsZero() {
		t.Errorf("created %+v", created)
	}
	got, err := s.Runtime(ctx, k.ID, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SessionAPIKey != in.SessionAPIKey || string(got.Spec) != string(in.Spec) || got.BackendID != "sbx-api-1" || !got.Created.Equal(created.Created) {
		t.Errorf("read back %+v, wrote %+v", got, created)
	}
	if _, err := s.Runtime(ctx, k.ID, "rt-missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing runtime: %v", err)
	}
	if _, err := s.BySession(ctx, k.ID, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing session: %v", err)
	}
	for _, bad := range []Runtime{{}, {ID: "a", Tenant: k.ID}, {ID: "a", SessionID: "s"}, {ID: "a", Tenant: k.ID, SessionID: "s", State: Running},
		{ID: "a", Tenant: k.ID, SessionID: "s", Spec: json.RawMessage("{")}} {
		if _, err := s.CreateRuntime(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("CreateRuntime(%+v) = %v", bad, err)
		}
	}
	// A tenant that is not a key is refused by the database.
	if _, err := s.CreateRuntime(ctx, newRuntime("nokey", "s")); err == nil {
		t.Error("a runtime of an unknown tenant was stored")
	}
	// Stopped, then a new runtime for the same session: BySession finds the new one.
	if _, err := s.Update(ctx, in.ID, func(r *Runtime) error { r.State = Stopped; r.PodStatus = Stopped.PodStatus(); return nil }); err != nil {
		t.Fatal(err)
	}
	second := newRuntime(k.ID, "sess-1")
	if _, err := s.CreateRuntime(ctx, second); err != nil {
		t.Fatalf("a new runtime for a session whose runtime stopped: %v", err)
	}
	latest, err := s.BySession(ctx, k.ID, "sess-1")
	if err != nil || latest.ID != second.ID {
		t.Errorf("BySession = %s, %v; want %s", latest.ID, err, second.ID)
	}
	// Same runtime id twice.
	dup := newRuntime(k.ID, "sess-2")
	dup.ID = second.ID
	if _, err := s.CreateRuntime(ctx, dup); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("duplicate id: %v", err)
	}
}

func testTenantIsolation(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a, _ := mustKey(t, s, "a")
	b, _ := mustKey(t, s, "b")
	ra, err := s.CreateRuntime(ctx, newRuntime(a.ID, "shared-session"))
	if err != nil {
		t.Fatal(err)
	}
	// b may use the same session id: sessions are per tenant.
	rb, err := s.CreateRuntime(ctx, newRuntime(b.ID, "shared-session"))
	if err != nil {
		t.Fatalf("same session id, other tenant: %v", err)
	}
	if _, err := s.Runtime(ctx, b.ID, ra.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("b reads a's runtime: %v", err)
	}
	if got, err := s.BySession(ctx, b.ID, "shared-session"); err != nil || got.ID != rb.ID {
		t.Errorf("b's session gives %s, %v", got.ID, err)
	}
	list, err := s.List(ctx, Filter{Tenant: a.ID})
	if err != nil || len(list) != 1 || list[0].ID != ra.ID {
		t.Errorf("a's list: %+v %v", list, err)
	}
	if got, err := s.Runtime(ctx, "", rb.ID); err != nil || got.Tenant != b.ID {
		t.Errorf("service read: %+v %v", got, err)
	}
}

func testOneLive(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	k, _ := mustKey(t, s, "t")
	const n = 12
	var wg sync.WaitGroup
	var ok, exists atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CreateRuntime(ctx, newRuntime(k.ID, "race"))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, errdefs.ErrAlreadyExists):
				exists.Add(1)
			default:
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || exists.Load() != n-1 {
		t.Errorf("%d created, %d refused; want 1 and %d", ok.Load(), exists.Load(), n-1)
	}
	// Paused and error: paused is live, error is not.
	r, _ := s.BySession(ctx, k.ID, "race")
	if _, err := s.Update(ctx, r.ID, func(r *Runtime) error { r.State = Running; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, r.ID, func(r *Runtime) error { r.State = Paused; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRuntime(ctx, newRuntime(k.ID, "race")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second runtime beside a paused one: %v", err)
	}
	if _, err := s.Update(ctx, r.ID, func(r *Runtime) error { r.State = Error; r.Reason = "died"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRuntime(ctx, newRuntime(k.ID, "race")); err != nil {
		t.Errorf("a new runtime beside an errored one: %v", err)
	}
}

func testConcurrentUpdates(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	k, _ := mustKey(t, s, "t")
	r, err := s.CreateRuntime(ctx, newRuntime(k.ID, "s"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Update(ctx, r.ID, func(r *Runtime) error { r.RestartCount++; return nil }); err != nil {
				t.Errorf("update: %v", err)
			}
		}()
	}
	wg.Wait()
	got, err := s.Runtime(ctx, k.ID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RestartCount != n || got.Generation != n+1 {
		t.Errorf("restart_count %d generation %d after %d updates: a write was lost", got.RestartCount, got.Generation, n)
	}
	// Immutable fields stay.
	got, err = s.Update(ctx, r.ID, func(x *Runtime) error { x.Tenant = "other"; x.SessionID = "other"; x.ID = "other"; return nil })
	if err != nil || got.Tenant != k.ID || got.SessionID != "s" || got.ID != r.ID {
		t.Errorf("immutable fields changed: %+v %v", got, err)
	}
	// change's error writes nothing.
	boom := errors.New("boom")
	if _, err := s.Update(ctx, r.ID, func(x *Runtime) error { x.RestartCount = 999; return boom }); !errors.Is(err, boom) {
		t.Errorf("change error: %v", err)
	}
	if got, _ := s.Runtime(ctx, "", r.ID); got.RestartCount == 999 {
		t.Error("a failed change was written")
	}
	if _, err := s.Update(ctx, "rt-missing", func(*Runtime) error { return nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("update missing: %v", err)
	}
}

func testTransitions(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	k, _ := mustKey(t, s, "t")
	// Walk every pair from a fresh runtime brought to the from-state along
	// allowed moves; the store must agree with the table.
	path := map[State][]State{
		Starting: nil,
		Running:  {Running},
		Paused:   {Running, Paused},
		Error:    {Error},
		Stopped:  {Stopped},
	}
	i := 0
	for _, from := range States() {
		for _, to := range States() {
			if to == from {
				continue
			}
			i++
			r, err := s.CreateRuntime(ctx, newRuntime(k.ID, fmt.Sprintf("s%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range path[from] {
				if _, err := s.Update(ctx, r.ID, func(x *Runtime) error { x.State = st; return nil }); err != nil {
					t.Fatalf("bringing to %s: %v", from, err)
				}
			}
			_, err = s.Update(ctx, r.ID, func(x *Runtime) error { x.State = to; x.Reason = "moved"; return nil })
			got, _ := s.Runtime(ctx, "", r.ID)
			if Allowed(from, to) {
				if err != nil || got.State != to {
					t.Errorf("%s → %s refused: %v", from, to, err)
				}
			} else {
				var te *TransitionError
				if !errors.As(err, &te) || !errors.Is(err, errdefs.ErrConflict) || got.State != from || got.Reason == "moved" {
					t.Errorf("%s → %s: err %v, state now %s", from, to, err, got.State)
				}
			}
		}
	}
	r, _ := s.CreateRuntime(ctx, newRuntime(k.ID, "bogus"))
	if _, err := s.Update(ctx, r.ID, func(x *Runtime) error { x.State = "bogus"; return nil }); err == nil {
		t.Error("a bogus state was written")
	}
}

func testList(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	a, _ := mustKey(t, s, "a")
	b, _ := mustKey(t, s, "b")
	var ids []string
	for i := range 5 {
		r, err := s.CreateRuntime(ctx, newRuntime(a.ID, fmt.Sprintf("s%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	s.CreateRuntime(ctx, newRuntime(b.ID, "s0"))
	s.Update(ctx, ids[1], func(r *Runtime) error { r.State = Running; return nil })
	s.Update(ctx, ids[2], func(r *Runtime) error { r.State = Stopped; return nil })
	second, _ := s.CreateRuntime(ctx, newRuntime(a.ID, "s2")) // s2 again, after its stop

	all, err := s.List(ctx, Filter{Tenant: a.ID})
	if err != nil || len(all) != 6 {
		t.Fatalf("all: %d %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Created.Before(all[i-1].Created) {
			t.Error("not oldest first")
		}
	}
	live, _ := s.List(ctx, Filter{Tenant: a.ID, States: []State{Starting, Running, Paused}})
	if len(live) != 5 {
		t.Errorf("live: %d", len(live))
	}
	running, _ := s.List(ctx, Filter{Tenant: a.ID, States: []State{Running}})
	if len(running) != 1 || running[0].ID != ids[1] {
		t.Errorf("running: %+v", running)
	}
	batch, _ := s.List(ctx, Filter{Tenant: a.ID, SessionIDs: []string{"s2", "s4", "missing"}})
	// Oldest first: s4's runtime is older than s2's second one.
	if len(batch) != 2 || batch[0].SessionID != "s4" || batch[1].SessionID != "s2" || batch[1].ID != second.ID {
		t.Errorf("batch: %+v", batch)
	}
	everyone, _ := s.List(ctx, Filter{})
	if len(everyone) != 7 {
		t.Errorf("everyone: %d", len(everyone))
	}
	// Many session ids in one query (a batch view of a busy app server).
	many := make([]string, 500)
	for i := range many {
		many[i] = fmt.Sprintf("s%d", i)
	}
	if got, err := s.List(ctx, Filter{Tenant: a.ID, SessionIDs: many}); err != nil || len(got) != 5 {
		t.Errorf("500 ids: %d %v", len(got), err)
	}
}

func testDeleteStopped(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	k, _ := mustKey(t, s, "t")
	old, _ := s.CreateRuntime(ctx, newRuntime(k.ID, "old"))
	s.Update(ctx, old.ID, func(r *Runtime) error { r.State = Stopped; return nil })
	live, _ := s.CreateRuntime(ctx, newRuntime(k.ID, "live"))
	n, err := s.DeleteStopped(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 0 {
		t.Errorf("delete before an hour ago: %d %v", n, err)
	}
	n, err = s.DeleteStopped(ctx, time.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Errorf("delete: %d %v", n, err)
	}
	if _, err := s.Runtime(ctx, "", old.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted runtime still there: %v", err)
	}
	if _, err := s.Runtime(ctx, "", live.ID); err != nil {
		t.Errorf("live runtime deleted: %v", err)
	}
}

func testReopen(t *testing.T, dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	k, secret, _ := s.CreateKey(ctx, "persist")
	r, _ := s.CreateRuntime(ctx, newRuntime(k.ID, "p"))
	s.Close()
	s = open(t, dsn)
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Errorf("key lost across reopen: %v", err)
	}
	if _, err := s.Runtime(ctx, k.ID, r.ID); err != nil {
		t.Errorf("runtime lost across reopen: %v", err)
	}
	// A database from a newer sandbox-api is refused, not downgraded.
	if _, err := s.db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dsn); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("newer schema: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty: %v", err)
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")); err == nil {
		t.Error("a SQLite file in a missing directory opened")
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "x.db?mode=memory")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("query in path: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := Open(cctx, "postgres://nobody:secret@127.0.0.1:1/x?connect_timeout=2")
	if !errors.Is(err, errdefs.ErrUnavailable) || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable server: %v", err)
	}
}
