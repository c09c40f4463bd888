package sandboxd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Defaults of the server-wide bound on request bodies held in memory.
const (
	DefaultMaxInFlightBytes int64 = 256 << 20
	DefaultBusyWait               = 2 * time.Second
)

// budget bounds the bytes of request bodies that all requests together
// hold in memory. MaxActionBytes bounds one request, but ten concurrent
// 60 MiB writes held ten bodies at once (2.48 GB of RSS with the copies).
type budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	freed chan struct{} // closed and replaced by every release
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting up to wait for other requests to release
// theirs; past that the server is busy (ErrUnavailable, answered 503 with
// Retry-After). A request larger than the whole budget waits for all of
// it, so that it is not refused for ever.
func (b *budget) acquire(ctx context.Context, n int64, wait time.Duration) error {
	n = min(n, b.limit)
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf(
				"Server busy: request bodies in progress hold the server's %d bytes for them; retry shortly", b.limit))
		case <-ctx.Done():
			return fmt.Errorf("waiting for memory for the request body: %w", ctx.Err())
		}
	}
}

func (b *budget) release(n int64) {
	n = min(n, b.limit)
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// chunkBytes is how much of a body of unknown length (chunked) is taken
// from the budget at a time.
const chunkBytes = 1 << 20

// readBody reads a body of at most max bytes into one buffer of exactly
// its size, taking its bytes from the budget first; release gives them
// back and must be called once nothing refers to the buffer any more
// (the decoded action's strings do). A body over max is answered 413.
func (s *Server) readBody(r *http.Request, max int64) (body []byte, release func(), err error) {
	ctx := r.Context()
	errTooBig := &requestError{status: http.StatusRequestEntityTooLarge,
		detail: fmt.Sprintf("Request body too large: %s accepts at most %d bytes", r.URL.Path, max)}
	if n := r.ContentLength; n >= 0 {
		if n > max {
			return nil, nil, errTooBig
		}
		if err := s.budget.acquire(ctx, n, s.opts.BusyWait); err != nil {
			return nil, nil, err
		}
		release = func() { s.releaseBody(n) }
		body = make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			release()
			return nil, nil, err
		}
		return body, release, nil
	}
	// Chunked: the length is learnt while reading, so the budget is taken
	// a chunk at a time, for the chunks and for the one buffer they are
	// joined into (twice the bytes until the chunks are dropped).
	var held int64
	take := func(n int64) error {
		if err := s.budget.acquire(ctx, n, s.opts.BusyWait); err != nil {
			s.budget.release(held)
			return err
		}
		held += n
		return nil
	}
	var chunks [][]byte
	var total int64
	for {
		if err := take(2 * chunkBytes); err != nil {
			return nil, nil, err
		}
		c := make([]byte, chunkBytes)
		n, err := io.ReadFull(r.Body, c)
		total += int64(n)
		chunks = append(chunks, c[:n])
		if total > max {
			s.budget.release(held)
			return nil, nil, errTooBig
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			s.budget.release(held)
			return nil, nil, err
		}
	}
	body = make([]byte, 0, total)
	for _, c := range chunks {
		body = append(body, c...)
	}
	// The chunks are garbage now: keep only the joined buffer's share.
	s.budget.release(held - total)
	return body, func() { s.releaseBody(total) }, nil
}

// collectFromBytes is the size of a body whose release starts a
// collection first.
const collectFromBytes = 8 << 20

// releaseBody gives a body's bytes back to the budget. A large body is
// collected first: the budget bounds the bodies alive, but left to GOGC
// the garbage of finished ones stays resident until the heap doubles, and
// the next body is then allocated beside it (ten parallel 60 MiB writes:
// 459 MB of RSS under a 256 MiB budget). A collection is cheap here, since
// body buffers hold no pointers to scan. The caller must no longer refer
// to the body (nor to strings decoded from it).
func (s *Server) releaseBody(n int64) {
	if n >= collectFromBytes {
		runtime.GC()
	}
	s.budget.release(n)
}
