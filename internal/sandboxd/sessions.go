package sandboxd

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/shell"
	"github.com/sbx-dev/sbx/internal/term"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// DefaultSession is the name of the OpenHands shell: the one /execute_action
// runs in unless an action names another.
const DefaultSession = "default"

// Shell is what the server needs of a shell session.
type Shell interface {
	Run(ctx context.Context, req shell.Request) (shell.Result, error)
	Cwd() string
	// Preempt delivers a signal key ahead of the request holding the
	// shell; Interrupt sends C-c to the running command.
	Preempt(command string) bool
	Interrupt() bool
	Busy() bool
	// Terminal is the shell's current terminal, for attach.
	Terminal() *term.Term
	Close() error
}

// ShellOptions say where a new shell starts.
type ShellOptions struct {
	Dir string
	Env []string // added to the sandbox's environment
}

// ShellFactory starts a shell: a named session, or the throw-away shell of
// an is_static command.
type ShellFactory func(ctx context.Context, o ShellOptions) (Shell, error)

// session is one named shell with the recent runs streamed from it.
type session struct {
	name    string
	sh      Shell
	created time.Time

	mu     sync.Mutex
	runs   []*runRecord // the most recent last
	nextID int
}

// keptRuns is how many finished runs a session remembers for clients that
// reconnect to their stream.
const keptRuns = 16

func (ss *session) newRun() *runRecord {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.nextID++
	rec := &runRecord{id: strconv.Itoa(ss.nextID), session: ss.name, started: make(chan struct{}), done: make(chan struct{})}
	ss.runs = append(ss.runs, rec)
	if len(ss.runs) > keptRuns {
		// Only finished runs are forgotten; a running one stays findable.
		kept := ss.runs[:0]
		for i, r := range ss.runs {
			if len(ss.runs)-i <= keptRuns || !r.finished() {
				kept = append(kept, r)
			}
		}
		ss.runs = kept
	}
	return rec
}

func (ss *session) run(id string) *runRecord {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, r := range ss.runs {
		if r.id == id {
			return r
		}
	}
	return nil
}

// registry holds the server's shells: the named sessions and the
// throw-away shells of is_static commands, so that shutdown ends them all.
type registry struct {
	mu       sync.Mutex
	sessions map[string]*session
	statics  map[Shell]bool
	next     int
	max      int
	closed   bool
}

func newRegistry(max int) *registry {
	if max <= 0 {
		max = 128
	}
	return &registry{sessions: map[string]*session{}, statics: map[Shell]bool{}, max: max}
}

var sessionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// add registers sh under name, or under a fresh name when name is empty.
func (g *registry) add(name string, sh Shell, now time.Time) (*session, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if name == "" {
		for {
			g.next++
			name = "s" + strconv.Itoa(g.next)
			if g.sessions[name] == nil {
				break
			}
		}
	}
	if err := g.check(name); err != nil {
		return nil, err
	}
	ss := &session{name: name, sh: sh, created: now}
	g.sessions[name] = ss
	return ss, nil
}

// reserve checks that a session of that name ("" for a fresh one) could
// be added, before the caller spends a shell start on it.
func (g *registry) reserve(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.check(name)
}

// check is add's refusals. Called with g.mu held.
func (g *registry) check(name string) error {
	switch {
	case g.closed:
		return errdefs.New(errdefs.ErrUnavailable, "sandboxd is shutting down")
	case name != "" && !sessionName.MatchString(name):
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("session name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name))
	case name != "" && g.sessions[name] != nil:
		return errdefs.New(errdefs.ErrAlreadyExists, fmt.Sprintf("session %q already exists", name))
	case len(g.sessions) >= g.max:
		return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("sandboxd already has %d sessions, its limit; close one first", g.max))
	}
	return nil
}

func (g *registry) get(name string) (*session, error) {
	if name == "" {
		name = DefaultSession
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ss := g.sessions[name]
	if ss == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no session %q", name))
	}
	return ss, nil
}

func (g *registry) list() []*session {
	g.mu.Lock()
	defer g.mu.Unlock()
	all := make([]*session, 0, len(g.sessions))
	for _, ss := range g.sessions {
		all = append(all, ss)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].created.Equal(all[j].created) {
			return all[i].name < all[j].name
		}
		return all[i].created.Before(all[j].created)
	})
	return all
}

// remove forgets a session and closes its shell. The OpenHands session
// stays for the server's life.
func (g *registry) remove(name string) error {
	if name == DefaultSession {
		return errdefs.New(errdefs.ErrConflict, "the default session is the OpenHands shell and lives as long as sandboxd")
	}
	g.mu.Lock()
	ss := g.sessions[name]
	delete(g.sessions, name)
	g.mu.Unlock()
	if ss == nil {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no session %q", name))
	}
	return ss.sh.Close()
}

func (g *registry) addStatic(sh Shell) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.statics[sh] = true
	return true
}

func (g *registry) dropStatic(sh Shell) {
	g.mu.Lock()
	delete(g.statics, sh)
	g.mu.Unlock()
}

// closeAll ends every shell; later adds fail.
func (g *registry) closeAll() {
	g.mu.Lock()
	g.closed = true
	var all []func()
	for _, ss := range g.sessions {
		all = append(all, func() { ss.sh.Close() })
	}
	for sh := range g.statics {
		all = append(all, func() { sh.Close() })
	}
	g.mu.Unlock()
	closeEach(all)
}

// closeEach runs the closers at once and waits for them all: each may
// wait out a terminal's SIGHUP grace, and they need not do it in turn.
func closeEach(closers []func()) {
	var wg sync.WaitGroup
	for _, c := range closers {
		wg.Go(c)
	}
	wg.Wait()
}

// runRecord is one run whose output is streamed: where its output lies in
// the terminal's ring, and its observation once it has one. A client that
// disconnects can come back for the rest while the record is kept.
type runRecord struct {
	id      string
	session string

	mu      sync.Mutex
	ring    *term.Ring
	start   int64
	limit   func() int64 // how far the output is known to be this run's
	started chan struct{}
	obs     sandboxapi.Observation
	end     int64 // -1: up to the ring's end (the shell died)
	done    chan struct{}
}

func (r *runRecord) setStarted(ring *term.Ring, start int64, limit func() int64) {
	r.mu.Lock()
	r.ring, r.start, r.limit = ring, start, limit
	r.mu.Unlock()
	close(r.started)
}

func (r *runRecord) finish(obs sandboxapi.Observation, end int64) {
	r.mu.Lock()
	r.obs, r.end = obs, end
	r.mu.Unlock()
	select {
	case <-r.started:
	default:
		close(r.started) // nothing was typed: no output to stream
	}
	close(r.done)
}

func (r *runRecord) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}
