package term

import (
	"context"
	"io"
	"sync"
)

// Ring keeps the most recent bytes of a terminal's output for any number
// of readers, each at its own offset. Writing never waits for a reader:
// a reader that falls behind by more than the ring holds loses its place,
// and Read tells it how many bytes it missed. Offsets are absolute: the
// count of bytes written before, so a client that reconnects can ask for
// the offset it last saw.
type Ring struct {
	mu     sync.Mutex
	buf    []byte // grows to size before it wraps: an idle shell costs little
	size   int
	end    int64 // bytes written in all
	closed bool
	wake   chan struct{} // closed and replaced on every write
}

// NewRing keeps the last size bytes.
func NewRing(size int) *Ring {
	if size <= 0 {
		size = 1 << 20
	}
	return &Ring{buf: make([]byte, min(size, 4<<10)), size: size, wake: make(chan struct{})}
}

// grow makes room for n more bytes while the ring has not wrapped yet (its
// bytes are then buf[:end] in order). Called with r.mu held.
func (r *Ring) grow(n int) {
	if len(r.buf) == r.size || r.end+int64(n) <= int64(len(r.buf)) {
		return
	}
	nb := make([]byte, min(r.size, max(2*len(r.buf), int(r.end)+n)))
	copy(nb, r.buf[:r.end])
	r.buf = nb
}

// Write appends b, overwriting the oldest bytes. It never blocks.
func (r *Ring) Write(b []byte) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.grow(len(b))
	if len(b) > len(r.buf) {
		r.end += int64(len(b) - len(r.buf))
		b = b[len(b)-len(r.buf):]
	}
	for len(b) > 0 {
		i := int(r.end % int64(len(r.buf)))
		n := copy(r.buf[i:], b)
		b = b[n:]
		r.end += int64(n)
	}
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

// Close ends the stream: readers get io.EOF once they have read the rest.
func (r *Ring) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.wake)
	}
	r.mu.Unlock()
}

// End is the offset just past the last byte written.
func (r *Ring) End() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.end
}

// Start is the oldest offset still held.
func (r *Ring) Start() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.start()
}

func (r *Ring) start() int64 { return max(0, r.end-int64(len(r.buf))) }

// Read copies bytes at offset off into p, waiting until there are some,
// the ring is closed or ctx ends. It returns the offset the bytes start
// at: later than off when those bytes were overwritten (the difference is
// what the reader lost). After Close, with nothing more, it returns io.EOF.
func (r *Ring) Read(ctx context.Context, off int64, p []byte) (n int, from int64, err error) {
	for {
		n, from, wake, closed := r.TryRead(off, -1, p)
		if n > 0 {
			return n, from, nil
		}
		if closed {
			return 0, from, io.EOF
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, from, ctx.Err()
		}
	}
}

// TryRead is Read without waiting, and bounded by limit (< 0: none): with
// nothing to read it returns n == 0 and a channel closed by the next write,
// for a caller that also waits on other things.
func (r *Ring) TryRead(off, limit int64, p []byte) (n int, from int64, wake <-chan struct{}, closed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	off = max(off, r.start())
	off = min(off, r.end)
	stop := r.end
	if limit >= 0 {
		stop = min(stop, limit)
	}
	if off >= stop {
		return 0, off, r.wake, r.closed
	}
	want := min(int64(len(p)), stop-off)
	i := int(off % int64(len(r.buf)))
	n = copy(p[:want], r.buf[i:])
	if int64(n) < want {
		n += copy(p[n:want], r.buf[:want-int64(n)])
	}
	return n, off, r.wake, r.closed
}

// Wait returns a channel that is closed by the next Write or Close.
func (r *Ring) Wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wake
}
