package runtimeapibench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad is the bounded load test: 5 keys × 20 runtimes × 100 actions
// through the proxy, with 0 errors allowed. Heavy (100 sandboxes on this
// machine), so it runs only with SBX_HEAVY=1 (scripts/sandbox-api-heavy.sh).
func TestLoad(t *testing.T) {
	if os.Getenv("SBX_HEAVY") != "1" {
		t.Skip("heavy: set SBX_HEAVY=1 (scripts/sandbox-api-heavy.sh runs it)")
	}
	const keys, perKey, actions = 5, 20, 100
	s := startService(t, keys)
	t0 := time.Now()
	var mu sync.Mutex
	var rts []struct {
		key string
		o   rt
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	for k := range keys {
		for i := range perKey {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				o := s.startReady(t, s.keys[k], fmt.Sprintf("load-%d-%d", k, i))
				mu.Lock()
				rts = append(rts, struct {
					key string
					o   rt
				}{s.keys[k], o})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	started := time.Since(t0)
	var errs, done atomic.Int64
	var firstErr atomic.Value
	t1 := time.Now()
	for _, r := range rts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range actions {
				body := fmt.Sprintf(`{"action":{"action":"run","args":{"command":"echo %d","blocking":true,"timeout":30}}}`, i)
				req, _ := http.NewRequest("POST", r.o.URL+"/execute_action", bytes.NewReader([]byte(body)))
				req.Header.Set("X-Session-API-Key", r.o.SessionAPIKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf(`"content":"%d"`, i)) {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %.200s", resp.StatusCode, b))
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t1)
	t.Logf("%d runtimes started in %v; %d actions in %v (%.0f/s), %d errors", len(rts), started, done.Load(), el, float64(done.Load())/el.Seconds(), errs.Load())
	if errs.Load() != 0 {
		t.Errorf("%d errors; first: %v", errs.Load(), firstErr.Load())
	}
	if done.Load() != keys*perKey*actions {
		t.Errorf("%d actions done, want %d", done.Load(), keys*perKey*actions)
	}
	// Tenancy under load: each key lists exactly its 20.
	for _, k := range s.keys {
		var l struct{ Runtimes []rt }
		call(t, "GET", s.url+"/list", k, nil, &l)
		if len(l.Runtimes) != perKey {
			t.Errorf("a key lists %d runtimes, want %d", len(l.Runtimes), perKey)
		}
	}
}
