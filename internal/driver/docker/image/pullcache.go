package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// PullFailures remembers images that could not be pulled, in a small file,
// so that a machine without a registry does not try again on every `sbx
// run` (each attempt can cost a DNS time-out where the network drops
// packets). A failure is forgotten after TTL, or as soon as the image is
// present.
type PullFailures struct {
	// Path is the file; "" keeps failures in memory only, for the life of
	// this value.
	Path string
	// TTL is how long a failure stands; 0 is 15 minutes.
	TTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	mu  sync.Mutex
	mem map[string]pullFailure
}

type pullFailure struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// DefaultPullFailuresPath is $XDG_CACHE_HOME/sbx/pull-failures.json (or
// ~/.cache/…); "" when there is no home.
func DefaultPullFailuresPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "sbx", "pull-failures.json")
}

func (p *PullFailures) ttl() time.Duration {
	if p.TTL <= 0 {
		return 15 * time.Minute
	}
	return p.TTL
}

func (p *PullFailures) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// load reads the file; a missing or corrupt one is an empty record (it is
// only a cache).
func (p *PullFailures) load() map[string]pullFailure {
	if p.Path == "" {
		if p.mem == nil {
			p.mem = map[string]pullFailure{}
		}
		return p.mem
	}
	m := map[string]pullFailure{}
	if b, err := os.ReadFile(p.Path); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func (p *PullFailures) store(m map[string]pullFailure) {
	if p.Path == "" {
		p.mem = m
		return
	}
	now := p.now()
	for k, f := range m {
		if now.Sub(f.At) > p.ttl() {
			delete(m, k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p.Path), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.Path), ".pull-failures-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p.Path) != nil {
		os.Remove(tmp.Name())
	}
}

// Recent returns the reason ref failed to pull within TTL.
func (p *PullFailures) Recent(ref string) (reason string, at time.Time, ok bool) {
	if p == nil {
		return "", time.Time{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.load()[ref]
	if !ok || p.now().Sub(f.At) > p.ttl() {
		return "", time.Time{}, false
	}
	return f.Reason, f.At, true
}

// Record notes that ref could not be pulled.
func (p *PullFailures) Record(ref, reason string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.load()
	m[ref] = pullFailure{Reason: reason, At: p.now()}
	p.store(m)
}

// Forget drops ref's failure (it is present now).
func (p *PullFailures) Forget(ref string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.load()
	if _, ok := m[ref]; !ok {
		return
	}
	delete(m, ref)
	p.store(m)
}
