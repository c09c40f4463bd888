package egress

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// MaxConnsPerSource bounds the connections one source holds open to the
// proxy at once. A proxy serves every sandbox of its policy: without a
// bound, one sandbox holding idle connections would take the descriptors
// and memory its neighbours need (their egress and the host's relay to
// them live in the same process).
const MaxConnsPerSource = 256

// Denials are logged at most denyRate a second per source after a burst
// of denyBurst; the next line logged says how many were left out. A flood
// of refused names must not fill the engine's disk with log lines.
const (
	denyRate  = 10
	denyBurst = 50
	// maxTracked bounds both tables below; a source beyond it is
	// tracked again from zero once the tables are emptied.
	maxTracked = 4096
)

type limits struct {
	mu    sync.Mutex
	conns map[netip.Addr]int
	logs  map[netip.Addr]*bucket
}

type bucket struct {
	tokens     float64
	last       time.Time
	suppressed int
}

func newLimits() *limits {
	return &limits{conns: map[netip.Addr]int{}, logs: map[netip.Addr]*bucket{}}
}

// take counts a connection from src, or says it is one too many.
func (l *limits) take(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[src] >= MaxConnsPerSource {
		return false
	}
	l.conns[src]++
	return true
}

func (l *limits) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[src] <= 1 {
		delete(l.conns, src)
		return
	}
	l.conns[src]--
}

// logOK says whether a denial from src may be logged now, and how many
// before it were not.
func (l *limits) logOK(src netip.Addr, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.logs[src]
	if b == nil {
		if len(l.logs) >= maxTracked {
			clear(l.logs)
		}
		b = &bucket{tokens: denyBurst, last: now}
		l.logs[src] = b
	}
	b.tokens = min(denyBurst, b.tokens+now.Sub(b.last).Seconds()*denyRate)
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		return false, 0
	}
	b.tokens--
	n := b.suppressed
	b.suppressed = 0
	return true, n
}

// limitListener refuses a source's connections beyond MaxConnsPerSource.
type limitListener struct {
	net.Listener
	s   *Server
	via string
}

func (l limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr != nil {
			return c, nil
		}
		src := ap.Addr().Unmap()
		if !l.s.limits.take(src) {
			sandbox, _, _ := l.s.who(c.RemoteAddr())
			_ = l.s.deny(sandbox, src, c.LocalAddr().String(), l.via, "too many connections open to the proxy")
			c.Close()
			continue
		}
		return counted(c, func() { l.s.limits.release(src) }), nil
	}
}

// countedConn releases its count once, on Close. It embeds the
// *net.TCPConn itself, not a net.Conn, so ReadFrom, WriteTo, CloseWrite
// and CloseRead are the TCP connection's own: io.Copy still splices.
type countedConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

type countedOther struct {
	net.Conn
	once    sync.Once
	release func()
}

func counted(c net.Conn, release func()) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &countedConn{TCPConn: tc, release: release}
	}
	return &countedOther{Conn: c, release: release}
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.TCPConn.Close()
}

func (c *countedOther) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
