package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// objectCache keeps the JSON answer of each runtime polled (GET
// /sessions/{id}, /runtime/{id}), as of the generation it was made from:
// pollers ask many times a second and the record changes a few times in
// a runtime's life, so most answers are bytes already made. A record's
// generation counts its writes, and the answer depends on the record
// alone (and the fixed public URL), so a cached answer of the same
// generation is the answer.
type objectCache struct {
	mu sync.RWMutex
	m  map[string]encodedObject
}

type encodedObject struct {
	gen  int64
	body []byte
}

// maxObjects bounds the cache: past it, it starts again (misses only cost
// an encoding).
const maxObjects = 10_000

// write answers rec as writeJSON(w, 200, s.object(rec)) does.
func (c *objectCache) write(w http.ResponseWriter, s *Server, rec store.Runtime) {
	c.mu.RLock()
	e, ok := c.m[rec.ID]
	c.mu.RUnlock()
	if !ok || e.gen != rec.Generation {
		var buf bytes.Buffer
		_ = json.NewEncoder(&buf).Encode(s.object(rec))
		e = encodedObject{gen: rec.Generation, body: buf.Bytes()}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxObjects {
			c.m = map[string]encodedObject{}
		}
		if cur, ok := c.m[rec.ID]; !ok || cur.gen < e.gen {
			c.m[rec.ID] = e
		}
		c.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}
