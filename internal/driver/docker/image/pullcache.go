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
	// Engine names the engine the pulls go through (its DOCKER_HOST), so
	// that a failure on one engine does not stop pulls on another.
	Engine string
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
	if m == nil { // the file held null
		m = map[string]pullFailure{}
	}
	return m
}

func (p *PullFailures) store(m map[string]pullFailure) {
	if p.Path == "" {
		p.mem = m
		return
	}
	for k, f := range m {
		if p.expired(f) {
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

// expired: older than TTL, or from the future (a clock set back), which
// would otherwise stand for ever.
func (p *PullFailures) expired(f pullFailure) bool {
	age := p.now().Sub(f.At)
	return age < 0 || age > p.ttl()
}

func (p *PullFailures) key(ref string) string { return p.Engine + "|" + ref }

// Recent returns the reason ref failed to pull within TTL, and until when
// it stands.
func (p *PullFailures) Recent(ref string) (reason string, until time.Time, ok bool) {
	if p == nil {
		return "", time.Time{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.load()[p.key(ref)]
	if !ok || p.expired(f) {
		return "", time.Time{}, false
	}
	return f.Reason, f.At.Add(p.ttl()), true
}

// Where says where failures are kept, for messages.
func (p *PullFailures) Where() string {
	if p == nil || p.Path == "" {
		return "memory"
	}
	return p.Path
}

// Record notes that ref could not be pulled.
func (p *PullFailures) Record(ref, reason string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.load()
	m[p.key(ref)] = pullFailure{Reason: reason, At: p.now()}
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
	if _, ok := m[p.key(ref)]; !ok {
		return
	}
	delete(m, p.key(ref))
	p.store(m)
}
