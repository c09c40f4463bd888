// Package watch reports changes under a directory as a stream of events
// (E2B envd's WatchDir vocabulary: create, write, remove, rename, chmod),
// for agents that follow build outputs. On Linux it reads inotify through a
// non-blocking descriptor served by Go's poller; it has no HTTP.
//
// Nothing is lost silently: when the kernel's queue overflows or the
// consumer falls behind the bounded queue, the stream carries an Overflow
// event at the point where events went missing.
package watch

import (
	"log/slog"
	"sync"
	"time"
)

// Op is what happened to a path.
type Op string

// The operations, named as E2B's EventType is (EVENT_TYPE_CREATE, …) so an
// adapter maps them one to one. Overflow is sbx's own: events were lost.
const (
	Create   Op = "create"
	Write    Op = "write"
	Remove   Op = "remove"
	Rename   Op = "rename"
	Chmod    Op = "chmod"
	Overflow Op = "overflow"
)

// Event is one change. Path is absolute. A Rename within the watched tree
// carries both names (OldPath → Path); a move in from outside is a Create
// and a move out is a Remove, because the other name is not the client's.
type Event struct {
	Op      Op
	Path    string
	OldPath string // Rename only
	IsDir   bool
	Time    time.Time
	// Dropped counts the events sbx discarded because the consumer was
	// slow (Overflow only); 0 when the kernel's queue overflowed, whose
	// losses are not counted.
	Dropped int
}

// DefaultBuffer bounds the events queued for a slow consumer.
const DefaultBuffer = 4096

// Options configure a watch.
type Options struct {
	// Path is the absolute path of the directory to watch.
	Path string
	// Recursive watches every subdirectory too, including those created
	// (or moved in) while watching.
	Recursive bool
	Logger    *slog.Logger
	// Buffer bounds the events held for a consumer that is not reading;
	// past it, events are dropped and one Overflow event says how many.
	// 0 means DefaultBuffer.
	Buffer int
}

// queue is the bounded FIFO between the inotify reader and the consumer.
// The reader must never wait for the consumer (the kernel's queue would
// overflow behind it instead, losing events without a count), so a push
// to a full queue drops the event and records the loss in one Overflow
// marker at the tail, at the point where the stream has its gap.
type queue struct {
	mu   sync.Mutex
	buf  []Event
	head int
	max  int
	root string
	wake chan struct{} // cap 1: "there is something to pop"
}

func newQueue(max int, root string) *queue {
	return &queue{buf: make([]Event, 0, min(max, 64)), max: max, root: root, wake: make(chan struct{}, 1)}
}

// push queues e, or drops it when the queue is full; it reports whether e
// was dropped. The queue holds at most max events plus one marker.
func (q *queue) push(e Event) bool {
	q.mu.Lock()
	dropped := false
	if n := len(q.buf) - q.head; n >= q.max {
		if last := &q.buf[len(q.buf)-1]; last.Op == Overflow {
			last.Dropped++
		} else {
			q.buf = append(q.buf, Event{Op: Overflow, Path: q.root, Time: e.Time, Dropped: 1})
		}
		dropped = true
	} else {
		if e.Op == Overflow && n > 0 && q.buf[len(q.buf)-1].Op == Overflow {
			// Two gaps with nothing between them are one gap.
			q.mu.Unlock()
			return false
		}
		if q.head > 0 && len(q.buf) == cap(q.buf) {
			// Reuse the popped prefix rather than growing: memory stays
			// bounded by max however long the watch runs.
			m := copy(q.buf, q.buf[q.head:])
			clear(q.buf[m:])
			q.buf, q.head = q.buf[:m], 0
		}
		q.buf = append(q.buf, e)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return dropped
}

func (q *queue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.buf) {
		return Event{}, false
	}
	e := q.buf[q.head]
	q.buf[q.head] = Event{}
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	}
	return e, true
}
