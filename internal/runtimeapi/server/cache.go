package server

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// cachedStore keeps the runtimes this service wrote or read, so the
// pollers' reads (GET /sessions/{id}, /runtime/{id}: many per second per
// client) touch no database. It is exact because every runtime write goes
// through it: one service per store is the deployment (the keys command
// writes keys only, which are not cached here).
type cachedStore struct {
	Store
	mu        sync.RWMutex
	byID      map[string]store.Runtime
	bySession map[sessionKey]string // newest runtime id of a tenant's session
}

type sessionKey struct{ tenant, session string }

// maxCached bounds the cache (stopped runtimes stay in the store).
const maxCached = 100_000

func newCachedStore(s Store) *cachedStore {
	return &cachedStore{Store: s, byID: map[string]store.Runtime{}, bySession: map[sessionKey]string{}}
}

func clone(r store.Runtime) store.Runtime {
	r.Spec = append(json.RawMessage(nil), r.Spec...)
	return r
}

func (c *cachedStore) remember(r store.Runtime) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[r.ID]; ok && old.Generation > r.Generation {
		return // a newer write is already here
	}
	if len(c.byID) >= maxCached {
		// Forget all rather than track age: misses only cost a read.
		c.byID, c.bySession = map[string]store.Runtime{}, map[sessionKey]string{}
	}
	c.byID[r.ID] = clone(r)
	k := sessionKey{r.Tenant, r.SessionID}
	if cur, ok := c.byID[c.bySession[k]]; !ok || !cur.Created.After(r.Created) {
		c.bySession[k] = r.ID
	}
}

func (c *cachedStore) CreateRuntime(ctx context.Context, r store.Runtime) (store.Runtime, error) {
	r, err := c.Store.CreateRuntime(ctx, r)
	if err == nil {
		c.remember(r)
	}
	return r, err
}

func (c *cachedStore) Update(ctx context.Context, id string, change func(*store.Runtime) error) (store.Runtime, error) {
	r, err := c.Store.Update(ctx, id, change)
	if err == nil {
		c.remember(r)
	}
	return r, err
}

func (c *cachedStore) Runtime(ctx context.Context, tenant, id string) (store.Runtime, error) {
	c.mu.RLock()
	r, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		if tenant != "" && r.Tenant != tenant {
			return c.Store.Runtime(ctx, tenant, id) // the store words the miss
		}
		return clone(r), nil
	}
	r, err := c.Store.Runtime(ctx, tenant, id)
	if err == nil {
		c.remember(r)
	}
	return r, err
}

func (c *cachedStore) BySession(ctx context.Context, tenant, sessionID string) (store.Runtime, error) {
	c.mu.RLock()
	r, ok := c.byID[c.bySession[sessionKey{tenant, sessionID}]]
	c.mu.RUnlock()
	if ok {
		return clone(r), nil
	}
	r, err := c.Store.BySession(ctx, tenant, sessionID)
	if err == nil {
		c.remember(r)
	}
	return r, err
}
