package server

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// authTTL is how long a checked key is trusted without asking the store
// again; a `keys revoke` takes effect within it. Pollers ask several times
// a second, and the store's read is most of such a request's cost.
const authTTL = 2 * time.Second

// authCache remembers keys the store accepted, by the secret's digest
// (the secret itself is not kept).
type authCache struct {
	mu sync.Mutex
	m  map[[32]byte]authEntry
}

type authEntry struct {
	key     store.Key
	expires time.Time
}

func (c *authCache) authenticate(ctx context.Context, st Store, secret string) (store.Key, error) {
	h := sha256.Sum256([]byte(secret))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[h]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	k, err := st.Authenticate(ctx, secret)
	if err != nil {
		return k, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[[32]byte]authEntry{}
	}
	c.m[h] = authEntry{key: k, expires: now.Add(authTTL)}
	c.mu.Unlock()
	return k, nil
}
