//go:build linux

package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// watchMask is what every directory is watched for. IN_EXCL_UNLINK: a file
// already removed but still open (a build's temporary) must not keep
// reporting writes under a name that no longer exists. IN_ONLYDIR makes
// "is it still a directory" part of the add, with no window after a stat.
const watchMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_DELETE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_EXCL_UNLINK

// moveWait is how long an IN_MOVED_FROM waits for its IN_MOVED_TO once the
// queue is empty. The kernel queues the two in one rename(2), but a read
// can fall between them; only after this does the move count as "out of
// the tree" (a remove).
const moveWait = 5 * time.Millisecond

// readBuf holds many records per read(2); a record is at most 16+256 bytes.
const readBuf = 64 << 10

// Watcher reports the changes under one directory. Events is closed when
// the watch ends: on Close, when the context passed to Watch ends, or on a
// failure, which Err then returns.
type Watcher struct {
	root      string
	recursive bool
	log       *slog.Logger

	f  *os.File
	rc syscall.RawConn
	q  *queue

	out        chan Event
	stop       chan struct{} // closed by shutdown (Close, end of ctx)
	readerDone chan struct{}
	fileClosed chan struct{} // closed by shutdown once the descriptor is
	delivered  chan struct{} // closed with out
	unregister func() bool

	stopOnce  sync.Once
	mu        sync.Mutex
	stopCause error // guarded by mu
	err       error // guarded by mu: the reader's failure

	dropped atomic.Int64 // events dropped for a slow consumer, in all

	// Owned by the reader goroutine (by Watch before it starts it).
	rootWd   int32
	wds      map[int32]string
	paths    map[string]int32
	scanned  map[string]struct{} // reported by a scan; their IN_CREATE is a duplicate
	from     *record             // an IN_MOVED_FROM waiting for its pair
	fromPath string
	fromTime time.Time
	inGap    bool // the last push was dropped: the gap has been logged
}

// Watch starts watching opts.Path. Once it returns, every later change is
// reported (the watches are in place), so a client may announce readiness.
func Watch(ctx context.Context, opts Options) (*Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.Path == "" || !filepath.IsAbs(opts.Path) {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("watch: path %q is not absolute", opts.Path))
	}
	root := filepath.Clean(opts.Path)
	st, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("watch %s: no such directory", root), err)
	case errors.Is(err, fs.ErrPermission):
		return nil, errdefs.Wrap(errdefs.ErrPermission, fmt.Sprintf("watch %s: permission denied", root), err)
	case err != nil:
		return nil, fmt.Errorf("watch %s: %w", root, err)
	case !st.IsDir():
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("watch %s: not a directory", root))
	}

	// IN_NONBLOCK is what makes os.NewFile hand the descriptor to the
	// poller: a reader parked there costs no thread, and closing the file
	// wakes it, which a read(2) blocked in the kernel would not.
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.EMFILE) {
			return nil, errdefs.Wrap(errdefs.ErrUnavailable, "watch: too many inotify instances (raise fs.inotify.max_user_instances)", err)
		}
		return nil, fmt.Errorf("watch: inotify_init1: %w: %w", err, errdefs.ErrUnavailable)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("watch: inotify descriptor: %w: %w", err, errdefs.ErrInternal)
	}
	w := &Watcher{
		root:       root,
		recursive:  opts.Recursive,
		log:        opts.Logger,
		f:          f,
		rc:         rc,
		q:          newQueue(opts.Buffer, root),
		out:        make(chan Event),
		stop:       make(chan struct{}),
		readerDone: make(chan struct{}),
		fileClosed: make(chan struct{}),
		delivered:  make(chan struct{}),
		wds:        map[int32]string{},
		paths:      map[string]int32{},
		scanned:    map[string]struct{}{},
	}
	// The root may be a symbolic link to the directory (the client named
	// it); below it links are not followed, so a loop cannot be walked.
	wd, _, err := w.add(root, 0)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.rootWd = wd
	if w.recursive {
		if err := w.walk(root, false, time.Now()); err != nil {
			f.Close()
			return nil, err
		}
	}
	w.unregister = context.AfterFunc(ctx, func() { w.shutdown(ctx.Err()) })
	go w.read()
	go w.deliver()
	return w, nil
}

// Root is the watched directory, cleaned.
func (w *Watcher) Root() string { return w.root }

// Events delivers the changes in order. It is closed when the watch ends.
func (w *Watcher) Events() <-chan Event { return w.out }

// Err is why the watch ended, once Events is closed: nil after Close, the
// context's error after it ended, else the failure (the watched directory
// removed is errdefs.ErrNotFound; a watch limit, errdefs.ErrUnavailable).
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.stopCause
}

// Close ends the watch and releases the inotify descriptor; when it
// returns, no goroutine of the watch is left.
func (w *Watcher) Close() error {
	w.unregister()
	w.shutdown(nil)
	<-w.readerDone
	<-w.delivered
	return nil
}

func (w *Watcher) shutdown(cause error) {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopCause = cause
		w.mu.Unlock()
		close(w.stop)
		// Closing the file wakes the reader parked in the poller; it
		// returns once the descriptor is really closed.
		w.f.Close()
		close(w.fileClosed)
	})
}

func (w *Watcher) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// read is the reader goroutine: it decodes inotify records into events
// and never waits for the consumer.
func (w *Watcher) read() {
	defer close(w.readerDone)
	buf := make([]byte, readBuf)
	deadline := false
	var deadlineFor *record // the IN_MOVED_FROM the deadline waits for
	for {
		if deadline && w.from != deadlineFor {
			_ = w.f.SetReadDeadline(time.Time{})
			deadline = false
		}
		var n int
		var rerr error
		waitMove := false
		err := w.rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			if rerr == unix.EAGAIN {
				// The queue is empty: every event of the kernel's that
				// precedes the scans done so far has been read, so their
				// duplicates can no longer come. A new map, not clear:
				// after a large tree was scanned its buckets should go.
				if len(w.scanned) > 0 {
					w.scanned = map[string]struct{}{}
				}
				if w.from != nil && !deadline {
					waitMove = true
					return true
				}
				return false
			}
			return true
		})
		if w.stopped() {
			return
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.flushFrom(time.Now())
			continue
		case err != nil:
			w.fail(fmt.Errorf("watch %s: read inotify: %w: %w", w.root, err, errdefs.ErrInternal))
			return
		case waitMove:
			_ = w.f.SetReadDeadline(time.Now().Add(moveWait))
			deadline, deadlineFor = true, w.from
			continue
		case rerr == unix.EINTR:
			continue
		case rerr != nil:
			w.fail(fmt.Errorf("watch %s: read inotify: %w: %w", w.root, rerr, errdefs.ErrInternal))
			return
		}
		now := time.Now()
		if err := decodeRecords(buf[:n], func(r record) error { return w.handle(r, now) }); err != nil {
			w.fail(err)
			return
		}
	}
}

func (w *Watcher) fail(err error) {
	if w.stopped() {
		return
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		// The watched directory went away: the client's doing, not ours.
		w.log.Info("watch ended", "path", w.root, "err", err)
	} else {
		w.log.Warn("watch ended", "path", w.root, "err", err)
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	// The descriptor goes now; the consumer still gets what was queued.
	w.f.Close()
}

// deliver hands queued events to the consumer.
func (w *Watcher) deliver() {
	defer close(w.delivered)
	defer func() {
		// A closed Events promises a released descriptor, so that a
		// server counting its descriptors after a client left sees none.
		if w.stopped() {
			<-w.fileClosed
		}
		<-w.readerDone
		close(w.out)
	}()
	send := func(e Event) bool {
		select {
		case w.out <- e:
			return true
		case <-w.stop:
			return false
		}
	}
	for {
		if e, ok := w.q.pop(); ok {
			if !send(e) {
				return
			}
			continue
		}
		select {
		case <-w.q.wake:
		case <-w.stop:
			return
		case <-w.readerDone:
			for {
				e, ok := w.q.pop()
				if !ok || !send(e) {
					return
				}
			}
		}
	}
}

func (w *Watcher) emit(e Event) {
	if w.q.push(e) {
		w.dropped.Add(1)
		if !w.inGap {
			w.inGap = true
			w.log.Warn("watch consumer too slow: dropping events", "path", w.root)
		}
		return
	}
	w.inGap = false
}

// handle turns one record into events; an error ends the watch.
func (w *Watcher) handle(r record, now time.Time) error {
	if r.mask&unix.IN_Q_OVERFLOW != 0 {
		w.flushFrom(now)
		w.emit(Event{Op: Overflow, Path: w.root, Time: now})
		if w.recursive {
			// Directories created in the lost stretch have no watch yet.
			return w.walk(w.root, false, now)
		}
		return nil
	}
	if w.from != nil && (r.mask&unix.IN_MOVED_TO == 0 || r.cookie != w.from.cookie) {
		w.flushFrom(now)
	}
	dir, ok := w.wds[r.wd]
	if !ok {
		return nil // a late event of a watch already dropped
	}
	if r.mask&unix.IN_IGNORED != 0 {
		delete(w.wds, r.wd)
		if w.paths[dir] == r.wd {
			delete(w.paths, dir)
		}
		if r.wd == w.rootWd {
			return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("watch %s: the directory was removed or unmounted", w.root))
		}
		return nil
	}
	if r.name == "" {
		// An event on a watched directory itself. A subdirectory's are
		// reported through its parent, under its name there; only the
		// root has no parent watched.
		if r.wd != w.rootWd {
			return nil
		}
		switch {
		case r.mask&unix.IN_DELETE_SELF != 0:
			w.emit(Event{Op: Remove, Path: w.root, IsDir: true, Time: now})
			return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("watch %s: the directory was removed", w.root))
		case r.mask&unix.IN_MOVE_SELF != 0:
			return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("watch %s: the directory was moved away", w.root))
		case r.mask&unix.IN_ATTRIB != 0:
			w.emit(Event{Op: Chmod, Path: w.root, IsDir: true, Time: now})
		}
		return nil
	}
	p := join(dir, r.name)
	isDir := r.mask&unix.IN_ISDIR != 0
	switch {
	case r.mask&unix.IN_CREATE != 0:
		if _, dup := w.scanned[p]; dup {
			delete(w.scanned, p)
			return nil
		}
		w.emit(Event{Op: Create, Path: p, IsDir: isDir, Time: now})
		if isDir && w.recursive {
			return w.watchNew(p, now)
		}
	case r.mask&unix.IN_MODIFY != 0:
		w.emit(Event{Op: Write, Path: p, IsDir: isDir, Time: now})
	case r.mask&unix.IN_ATTRIB != 0:
		w.emit(Event{Op: Chmod, Path: p, IsDir: isDir, Time: now})
	case r.mask&unix.IN_DELETE != 0:
		delete(w.scanned, p)
		w.emit(Event{Op: Remove, Path: p, IsDir: isDir, Time: now})
	case r.mask&unix.IN_MOVED_FROM != 0:
		delete(w.scanned, p)
		rr := r
		w.from, w.fromPath, w.fromTime = &rr, p, now
	case r.mask&unix.IN_MOVED_TO != 0:
		if w.from != nil { // paired by cookie above
			old := w.fromPath
			w.from = nil
			w.emit(Event{Op: Rename, Path: p, OldPath: old, IsDir: isDir, Time: now})
			if isDir && w.recursive {
				w.renameWatches(old, p)
			}
			return nil
		}
		if _, dup := w.scanned[p]; dup {
			delete(w.scanned, p)
			return nil
		}
		w.emit(Event{Op: Create, Path: p, IsDir: isDir, Time: now})
		if isDir && w.recursive {
			return w.watchNew(p, now)
		}
	}
	return nil
}

// flushFrom reports an unpaired IN_MOVED_FROM: the name left the tree.
func (w *Watcher) flushFrom(now time.Time) {
	if w.from == nil {
		return
	}
	isDir := w.from.mask&unix.IN_ISDIR != 0
	p := w.fromPath
	w.from = nil
	w.emit(Event{Op: Remove, Path: p, IsDir: isDir, Time: w.fromTime})
	if isDir && w.recursive {
		// The directory still exists elsewhere, so the kernel keeps its
		// watches (and would keep reporting under names not ours).
		for wd, q := range w.wds {
			if q == p || strings.HasPrefix(q, p+"/") {
				_ = w.rc.Control(func(fd uintptr) { _, _ = unix.InotifyRmWatch(int(fd), uint32(wd)) })
				delete(w.wds, wd)
				delete(w.paths, q)
			}
		}
	}
}

func (w *Watcher) renameWatches(old, p string) {
	for wd, q := range w.wds {
		if q == old || strings.HasPrefix(q, old+"/") {
			np := p + q[len(old):]
			w.wds[wd] = np
			if w.paths[q] == wd {
				delete(w.paths, q)
			}
			w.paths[np] = wd
		}
	}
}

// watchNew watches a directory that appeared in the tree, then reports
// what was created in it before its watch existed (mkdir -p a/b/c &&
// touch a/b/c/f reports f although its IN_CREATE was never queued).
func (w *Watcher) watchNew(p string, now time.Time) error {
	_, isNew, err := w.add(p, unix.IN_DONT_FOLLOW)
	if err != nil {
		return w.skip(p, err)
	}
	if !isNew {
		return nil // already watched, so already scanned
	}
	return w.walk(p, true, now)
}

// walk watches the directories below dir; with report it also emits a
// Create for each entry, remembering it so that the kernel's IN_CREATE
// for the same entry (if it was created after the watch) is dropped.
func (w *Watcher) walk(dir string, report bool, now time.Time) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		// Gone or unreadable: its own remove (or nothing) is reported.
		w.log.Debug("watch: cannot list directory", "path", dir, "err", err)
		return nil
	}
	for _, e := range ents {
		p := join(dir, e.Name())
		isDir := e.IsDir()
		if report {
			w.scanned[p] = struct{}{}
			w.emit(Event{Op: Create, Path: p, IsDir: isDir, Time: now})
		}
		if !isDir || !w.recursive {
			continue
		}
		_, isNew, err := w.add(p, unix.IN_DONT_FOLLOW)
		if err != nil {
			if err := w.skip(p, err); err != nil {
				return err
			}
			continue
		}
		if report && !isNew {
			continue
		}
		if err := w.walk(p, report, now); err != nil {
			return err
		}
	}
	return nil
}

// skip decides whether a directory that could not be watched ends the
// watch: reaching the watch limit does (a silent hole in a recursive watch
// would look like "nothing changed"); a directory that vanished or cannot
// be read does not.
func (w *Watcher) skip(p string, err error) error {
	if errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrInternal) {
		return err
	}
	if errors.Is(err, errdefs.ErrPermission) {
		w.log.Warn("watch: subdirectory not watched", "path", p, "err", err)
	}
	return nil
}

// add watches dir and records its path; isNew is false when the directory
// (the same inode) was watched already.
func (w *Watcher) add(dir string, flags uint32) (wd int32, isNew bool, err error) {
	var n int
	var aerr error
	if cerr := w.rc.Control(func(fd uintptr) { n, aerr = unix.InotifyAddWatch(int(fd), dir, watchMask|flags) }); cerr != nil {
		return 0, false, fmt.Errorf("watch %s: %w: %w", dir, cerr, errdefs.ErrInternal)
	}
	if aerr != nil {
		return 0, false, addWatchError(dir, aerr)
	}
	wd = int32(n)
	_, had := w.wds[wd]
	w.wds[wd] = dir
	w.paths[dir] = wd
	return wd, !had, nil
}

// addWatchError classifies inotify_add_watch's errors.
func addWatchError(dir string, err error) error {
	switch {
	case errors.Is(err, unix.ENOSPC):
		limit := "?"
		if b, rerr := os.ReadFile("/proc/sys/fs/inotify/max_user_watches"); rerr == nil {
			limit = strings.TrimSpace(string(b))
		}
		return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("watch %s: the inotify watch limit is reached (fs.inotify.max_user_watches = %s; raise it with sysctl, or watch a smaller tree)", dir, limit), err)
	case errors.Is(err, unix.ENOENT):
		return errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("watch %s: no such directory", dir), err)
	case errors.Is(err, unix.ENOTDIR):
		return errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("watch %s: not a directory", dir), err)
	case errors.Is(err, unix.EACCES):
		return errdefs.Wrap(errdefs.ErrPermission, fmt.Sprintf("watch %s: permission denied", dir), err)
	case errors.Is(err, unix.ENOMEM):
		return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("watch %s: out of kernel memory", dir), err)
	}
	return fmt.Errorf("watch %s: inotify_add_watch: %w: %w", dir, err, errdefs.ErrInternal)
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}
