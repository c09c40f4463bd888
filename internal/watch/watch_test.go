//go:build linux

package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

const waitLimit = 10 * time.Second

func start(t *testing.T, opts Options) *Watcher {
	t.Helper()
	w, err := Watch(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// recorder reads a watcher's events and remembers them, so that a test
// can wait for one event and then look at everything that came before it.
type recorder struct {
	t    *testing.T
	w    *Watcher
	seen []Event
}

func (r *recorder) next() (Event, bool) {
	r.t.Helper()
	select {
	case e, ok := <-r.w.Events():
		if ok {
			r.seen = append(r.seen, e)
		}
		return e, ok
	case <-time.After(waitLimit):
		r.t.Fatalf("no event within %v; seen: %v", waitLimit, r.seen)
		return Event{}, false
	}
}

// until reads events until one matches, and fails on the deadline or on
// the end of the stream.
func (r *recorder) until(what string, match func(Event) bool) Event {
	r.t.Helper()
	for {
		e, ok := r.next()
		if !ok {
			r.t.Fatalf("stream ended (err %v) before %s; seen: %v", r.w.Err(), what, r.seen)
		}
		if match(e) {
			return e
		}
	}
}

func is(op Op, path string) func(Event) bool {
	return func(e Event) bool { return e.Op == op && e.Path == path }
}

// sentinel creates a file and waits for its event: inotify keeps order,
// so every event of a change made before it has then been seen.
func (r *recorder) sentinel(dir string) {
	r.t.Helper()
	p := filepath.Join(dir, fmt.Sprintf(".sentinel-%d", len(r.seen)))
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.until("the sentinel "+p, is(Create, p))
}

func (r *recorder) count(op Op, path string) int {
	n := 0
	for _, e := range r.seen {
		if e.Op == op && e.Path == path {
			n++
		}
	}
	return n
}

func TestFileOperations(t *testing.T) {
	dir := t.TempDir()
	w := start(t, Options{Path: dir})
	r := &recorder{t: t, w: w}
	f, g := filepath.Join(dir, "f"), filepath.Join(dir, "g")

	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if e := r.until("create f", is(Create, f)); e.IsDir || e.Time.IsZero() {
		t.Errorf("create event %+v: want a file with a time", e)
	}
	r.until("write f", is(Write, f))

	fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("more"); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	r.until("write f (append)", is(Write, f))

	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	r.until("chmod f", is(Chmod, f))

	if err := os.Rename(f, g); err != nil {
		t.Fatal(err)
	}
	if e := r.until("rename f→g", is(Rename, g)); e.OldPath != f {
		t.Errorf("rename event %+v: want old path %s", e, f)
	}

	if err := os.Remove(g); err != nil {
		t.Fatal(err)
	}
	r.until("remove g", is(Remove, g))

	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if e := r.until("mkdir sub", is(Create, sub)); !e.IsDir {
		t.Errorf("mkdir event %+v: want IsDir", e)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if e := r.until("rmdir sub", is(Remove, sub)); !e.IsDir {
		t.Errorf("rmdir event %+v: want IsDir", e)
	}
	for _, e := range r.seen {
		if e.Op == Rename && e.Path != g {
			t.Errorf("unexpected rename %+v", e)
		}
		if e.Op == Remove && e.Path == f {
			t.Errorf("a rename inside the tree was reported as a remove: %+v", e)
		}
	}
}

func TestMoveInAndOut(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	w := start(t, Options{Path: dir})
	r := &recorder{t: t, w: w}
	src, in := filepath.Join(outside, "x"), filepath.Join(dir, "x")
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, in); err != nil {
		t.Fatal(err)
	}
	r.until("move in = create", is(Create, in))
	if err := os.Rename(in, filepath.Join(outside, "y")); err != nil {
		t.Fatal(err)
	}
	r.until("move out = remove", is(Remove, in))
	for _, e := range r.seen {
		if e.Op == Rename {
			t.Errorf("a move across the tree's edge was reported as a rename: %+v", e)
		}
	}
}

func TestRecursiveNewNestedDirectory(t *testing.T) {
	dir := t.TempDir()
	pre := filepath.Join(dir, "pre", "x")
	if err := os.MkdirAll(pre, 0o755); err != nil {
		t.Fatal(err)
	}
	w := start(t, Options{Path: dir, Recursive: true})
	r := &recorder{t: t, w: w}

	// A directory present at the start is watched.
	y := filepath.Join(pre, "y")
	if err := os.WriteFile(y, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.until("create in an existing subdirectory", is(Create, y))

	// f's directory is created and filled faster than a watch can be added.
	cmd := exec.CommandContext(t.Context(), "sh", "-c", "mkdir -p a/b/c && touch a/b/c/f")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := filepath.Join(dir, "a/b/c/f")
	r.until("create a/b/c/f", is(Create, f))
	r.sentinel(dir)
	for _, p := range []string{"a", "a/b", "a/b/c", "a/b/c/f"} {
		if n := r.count(Create, filepath.Join(dir, p)); n != 1 {
			t.Errorf("%s: %d create events, want exactly 1; seen %v", p, n, r.seen)
		}
	}

	// A tree moved in whole has no IN_CREATE for what is inside it: only
	// the scan after adding its watches reports (and watches) it.
	outside := filepath.Join(t.TempDir(), "m")
	if err := os.MkdirAll(filepath.Join(outside, "n/o"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "n/o/p"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(outside, filepath.Join(dir, "m")); err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, "m/n/o/p")
	r.until("create m/n/o/p (moved in)", is(Create, mp))
	if err := os.WriteFile(mp, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.until("write m/n/o/p", is(Write, mp))
	if err := os.RemoveAll(filepath.Join(dir, "m")); err != nil {
		t.Fatal(err)
	}
	r.until("remove m", is(Remove, filepath.Join(dir, "m")))

	// The new directories are watched from now on.
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.until("write a/b/c/f", is(Write, f))

	// A directory renamed inside the tree keeps its watches under the new name.
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "A")); err != nil {
		t.Fatal(err)
	}
	r.until("rename a→A", is(Rename, filepath.Join(dir, "A")))
	g := filepath.Join(dir, "A/b/c/g")
	if err := os.WriteFile(g, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.until("create under the renamed directory", is(Create, g))

	// Removed directories lose their watches; only root and pre, pre/x stay.
	before := watchCount(t, w)
	if before != 6 {
		t.Errorf("%d watches, want 6 (root, pre, pre/x, A, A/b, A/b/c)", before)
	}
	if err := os.RemoveAll(filepath.Join(dir, "A")); err != nil {
		t.Fatal(err)
	}
	r.until("remove A", is(Remove, filepath.Join(dir, "A")))
	r.sentinel(dir)
	if n := watchCount(t, w); n != 3 {
		t.Errorf("%d watches after removing A, want 3", n)
	}

	// A directory moved out of the tree is no longer reported.
	if err := os.Rename(filepath.Join(dir, "pre"), filepath.Join(t.TempDir(), "pre")); err != nil {
		t.Fatal(err)
	}
	r.until("move pre out", is(Remove, filepath.Join(dir, "pre")))
	r.sentinel(dir)
	if n := watchCount(t, w); n != 1 {
		t.Errorf("%d watches after moving pre out, want 1", n)
	}
}

func TestNonRecursiveIgnoresSubdirectories(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	w := start(t, Options{Path: dir})
	r := &recorder{t: t, w: w}
	inner := filepath.Join(sub, "inner")
	if err := os.WriteFile(inner, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(dir, "new")
	if err := os.MkdirAll(filepath.Join(newDir, "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.until("mkdir new", is(Create, newDir))
	r.sentinel(dir)
	for _, e := range r.seen {
		if strings.HasPrefix(e.Path, sub+"/") || strings.HasPrefix(e.Path, newDir+"/") {
			t.Errorf("non-recursive watch reported %+v", e)
		}
	}
	if n := watchCount(t, w); n != 1 {
		t.Errorf("%d watches, want 1", n)
	}
}

func TestOverflowSlowConsumer(t *testing.T) {
	dir := t.TempDir()
	const buffer = 4
	w := start(t, Options{Path: dir, Buffer: buffer})
	// Nobody reads: make changes until the watcher has had to drop some.
	deadline := time.Now().Add(waitLimit)
	made := 0
	for w.dropped.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("no event dropped after %d files", made)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("f", made)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		made++
	}
	r := &recorder{t: t, w: w}
	ov := r.until("overflow", func(e Event) bool { return e.Op == Overflow })
	if ov.Dropped < 10 || ov.Path != dir {
		t.Errorf("overflow %+v: want path %s and at least 10 dropped", ov, dir)
	}
	// The queue held at most its bound before the gap (one more is in the
	// deliverer's hand).
	if n := len(r.seen) - 1; n > buffer+1 {
		t.Errorf("%d events before the overflow, want at most %d", n, buffer+1)
	}
	// The stream goes on after the gap.
	after := filepath.Join(dir, "after")
	if err := os.WriteFile(after, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.until("create after the overflow", is(Create, after))
	if got := int(w.dropped.Load()); got < ov.Dropped {
		t.Errorf("dropped counter %d < overflow's %d", got, ov.Dropped)
	}
}

func TestQueueBound(t *testing.T) {
	q := newQueue(3, "/r")
	for i := range 10 {
		q.push(Event{Op: Create, Path: fmt.Sprint(i)})
	}
	var got []string
	for {
		e, ok := q.pop()
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%s:%s:%d", e.Op, e.Path, e.Dropped))
	}
	want := "create:0:0 create:1:0 create:2:0 overflow:/r:7"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	// Space again: the stream resumes after the marker.
	q.push(Event{Op: Write, Path: "x"})
	if e, _ := q.pop(); e.Op != Write {
		t.Errorf("after draining: %+v", e)
	}
	// Memory stays bounded over a long run of push/pop.
	for i := range 100000 {
		q.push(Event{Op: Create, Path: fmt.Sprint(i)})
		q.push(Event{Op: Create, Path: fmt.Sprint(i)})
		q.pop()
	}
	if c := cap(q.buf); c > 8 {
		t.Errorf("queue capacity grew to %d for a bound of 3", c)
	}
}

// handleAll runs records through the decoding logic of a watcher that has
// no descriptor (non-recursive, so nothing needs one) and returns its queue.
func handleAll(t *testing.T, recs ...record) []Event {
	t.Helper()
	w := &Watcher{root: "/r", q: newQueue(100, "/r"), rootWd: 1, wds: map[int32]string{1: "/r", 2: "/r/d"}, paths: map[string]int32{}, scanned: map[string]struct{}{}}
	var buf []byte
	for _, r := range recs {
		buf = encodeRecord(buf, r)
	}
	if err := decodeRecords(buf, func(r record) error { return w.handle(r, time.Unix(1, 0)) }); err != nil {
		t.Fatal(err)
	}
	w.flushFrom(time.Unix(2, 0))
	var out []Event
	for {
		e, ok := w.q.pop()
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

func TestRecordHandling(t *testing.T) {
	show := func(es []Event) string {
		var s []string
		for _, e := range es {
			x := string(e.Op) + " " + e.Path
			if e.OldPath != "" {
				x += " from " + e.OldPath
			}
			s = append(s, x)
		}
		return strings.Join(s, "; ")
	}
	cases := []struct {
		name string
		recs []record
		want string
	}{
		{"kernel overflow", []record{{wd: -1, mask: unix.IN_Q_OVERFLOW}}, "overflow /r"},
		{"paired rename across directories", []record{
			{wd: 1, mask: unix.IN_MOVED_FROM, cookie: 7, name: "a"},
			{wd: 2, mask: unix.IN_MOVED_TO, cookie: 7, name: "b"},
		}, "rename /r/d/b from /r/a"},
		{"cookies that do not pair", []record{
			{wd: 1, mask: unix.IN_MOVED_FROM, cookie: 7, name: "a"},
			{wd: 1, mask: unix.IN_MOVED_TO, cookie: 8, name: "b"},
		}, "remove /r/a; create /r/b"},
		{"moved out, then another event", []record{
			{wd: 1, mask: unix.IN_MOVED_FROM, cookie: 7, name: "a"},
			{wd: 1, mask: unix.IN_MODIFY, name: "c"},
		}, "remove /r/a; write /r/c"},
		{"moved out at the end of the queue", []record{
			{wd: 1, mask: unix.IN_MOVED_FROM, cookie: 7, name: "a"},
		}, "remove /r/a"},
		{"unknown watch", []record{{wd: 9, mask: unix.IN_CREATE, name: "z"}}, ""},
		{"a subdirectory's own events come through its parent", []record{{wd: 2, mask: unix.IN_ATTRIB | unix.IN_ISDIR}}, ""},
		{"root chmod", []record{{wd: 1, mask: unix.IN_ATTRIB | unix.IN_ISDIR}}, "chmod /r"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := show(handleAll(t, c.recs...)); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestRootRemovedEndsWatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := start(t, Options{Path: dir})
	r := &recorder{t: t, w: w}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	r.until("remove of the root", is(Remove, dir))
	for {
		if _, ok := r.next(); !ok {
			break
		}
	}
	if err := w.Err(); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Err() = %v, want ErrNotFound", err)
	}
}

func TestBadPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		class error
	}{
		{filepath.Join(dir, "missing"), errdefs.ErrNotFound},
		{file, errdefs.ErrInvalidArgument},
		{"relative/dir", errdefs.ErrInvalidArgument},
		{"", errdefs.ErrInvalidArgument},
	}
	for _, c := range cases {
		w, err := Watch(t.Context(), Options{Path: c.path})
		if err == nil {
			w.Close()
			t.Errorf("Watch(%q) succeeded", c.path)
			continue
		}
		if !errors.Is(err, c.class) {
			t.Errorf("Watch(%q) = %v, want class %v", c.path, err, c.class)
		}
	}
	if n := inotifyFDs(t); n != 0 {
		t.Errorf("%d inotify descriptors left by failed watches", n)
	}
}

func TestWatchLimitError(t *testing.T) {
	err := addWatchError("/w/sub", unix.ENOSPC)
	if !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, unix.ENOSPC) {
		t.Errorf("ENOSPC: %v is not ErrUnavailable wrapping ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "fs.inotify.max_user_watches") || !strings.Contains(err.Error(), "/w/sub") {
		t.Errorf("ENOSPC message %q does not name the sysctl and the path", err)
	}
	if err := addWatchError("/x", unix.EACCES); !errors.Is(err, errdefs.ErrPermission) {
		t.Errorf("EACCES: %v", err)
	}
}

func TestCloseReleasesDescriptor(t *testing.T) {
	base := inotifyFDs(t)
	w, err := Watch(t.Context(), Options{Path: t.TempDir(), Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := inotifyFDs(t); n != base+1 {
		t.Fatalf("%d inotify descriptors while watching, want %d", n, base+1)
	}
	w.Close()
	if n := inotifyFDs(t); n != base {
		t.Errorf("%d inotify descriptors after Close, want %d", n, base)
	}
	if _, ok := <-w.Events(); ok {
		t.Error("Events still open after Close")
	}
	if err := w.Err(); err != nil {
		t.Errorf("Err() after Close = %v", err)
	}
	w.Close() // idempotent
}

func TestContextEndClosesWatch(t *testing.T) {
	base := inotifyFDs(t)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := Watch(ctx, Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-w.Events():
		if ok {
			t.Fatal("an event after cancel on an idle directory")
		}
	case <-time.After(waitLimit):
		t.Fatal("Events not closed after the context ended")
	}
	// A closed Events promises the descriptor is gone.
	if n := inotifyFDs(t); n != base {
		t.Errorf("%d inotify descriptors after the context ended, want %d", n, base)
	}
	if err := w.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
	w.Close()
}

// inotifyFDs counts this process's inotify descriptors.
func inotifyFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// watchCount is the number of watches the kernel holds for w.
func watchCount(t *testing.T, w *Watcher) int {
	t.Helper()
	var fd int
	if err := w.rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "inotify wd:")
}
