package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/reaper"
)

// The test binary plays sandboxd: one reaper, the only waiter for children.
var testReaper *reaper.Reaper

func TestMain(m *testing.M) {
	testReaper = reaper.New(nil)
	code := m.Run()
	testReaper.Close()
	os.Exit(code)
}

func newManager(t *testing.T, mod func(*Options)) *Manager {
	t.Helper()
	opts := Options{
		Dir:     filepath.Join(t.TempDir(), "procs"),
		Starter: testReaper,
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"},
		WorkDir: t.TempDir(),
	}
	if mod != nil {
		mod(&opts)
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, m *Manager, spec Spec) Info {
	t.Helper()
	info, err := m.Start(ctxT(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func wait(t *testing.T, m *Manager, id int) Info {
	t.Helper()
	info, err := m.Wait(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// readAll reads the whole retained output of an exited process.
func readAll(t *testing.T, m *Manager, id int) ([]Chunk, int64) {
	t.Helper()
	var all []Chunk
	var off, lost int64
	for {
		out, err := m.Read(id, off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		lost += out.Lost
		all = append(all, out.Chunks...)
		off = out.Next
		if out.Done {
			return all, lost
		}
		if len(out.Chunks) == 0 && out.Lost == 0 {
			t.Fatalf("read at %d: nothing, and not done", off)
		}
	}
}

func text(cs []Chunk, st Stream) string {
	var b strings.Builder
	for _, c := range cs {
		if st == 0 || c.Stream == st {
			b.Write(c.Data)
		}
	}
	return b.String()
}

// follower runs Follow in the background and hands each Output over.
func follower(t *testing.T, m *Manager, id int, off int64) (<-chan Output, <-chan error) {
	outs := make(chan Output, 1024)
	errc := make(chan error, 1)
	go func() { errc <- m.Follow(ctxT(t), id, off, func(o Output) error { outs <- o; return nil }) }()
	return outs, errc
}

// next waits for the follower's next Output that carries data or the end.
func next(t *testing.T, outs <-chan Output) Output {
	t.Helper()
	select {
	case o := <-outs:
		return o
	case <-time.After(20 * time.Second):
		t.Fatal("follower got nothing")
	}
	return Output{}
}

func TestStdoutStderrOrder(t *testing.T) {
	m := newManager(t, nil)
	// Each line waits for the test to have seen the previous one, so the
	// order in the log is the order of the writes, whatever the timing.
	info := start(t, m, Spec{Command: `echo out1; read; echo err1 >&2; read; echo out2; read; printf 'err2\n' >&2`, Stdin: true})
	outs, errc := follower(t, m, info.ID, 0)
	var seen []Chunk
	var o Output
	for _, want := range []string{"out1\n", "err1\n", "out2\n", "err2\n"} {
		o = next(t, outs)
		seen = append(seen, o.Chunks...)
		if got := text(o.Chunks, 0); got != want {
			t.Fatalf("followed %q, want %q", got, want)
		}
		if want != "err2\n" {
			if err := m.Write(ctxT(t), info.ID, []byte("\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The end may come with the last chunk, if the exit was seen first.
	if !o.Done {
		o = next(t, outs)
	}
	if !o.Done || *o.Info.ExitCode != 0 {
		t.Fatalf("last output %+v", o)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, m, info.ID)
	want := []Chunk{{Stdout, 0, []byte("out1\n")}, {Stderr, 5, []byte("err1\n")}, {Stdout, 10, []byte("out2\n")}, {Stderr, 15, []byte("err2\n")}}
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("read %v\nfollowed %v\nwant %v", got, seen, want)
	}
}

// TestManyLinesPerStreamOrder: free-running writes to both streams keep
// each stream's order and bytes, and offsets are contiguous.
func TestManyLinesPerStreamOrder(t *testing.T) {
	m := newManager(t, nil)
	info := start(t, m, Spec{Command: `for i in $(seq 1 3000); do echo "o$i"; echo "e$i" >&2; done`})
	wait(t, m, info.ID)
	got, lost := readAll(t, m, info.ID)
	if lost != 0 {
		t.Fatalf("lost %d", lost)
	}
	var wo, we strings.Builder
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&wo, "o%d\n", i)
		fmt.Fprintf(&we, "e%d\n", i)
	}
	if text(got, Stdout) != wo.String() || text(got, Stderr) != we.String() {
		t.Fatal("a stream's bytes or order differ")
	}
	var off int64
	for _, c := range got {
		if c.Offset != off {
			t.Fatalf("chunk at %d, want %d", c.Offset, off)
		}
		off += int64(len(c.Data))
	}
}

func TestRotationReportsLostBytes(t *testing.T) {
	const maxLog = 64 << 10
	m := newManager(t, func(o *Options) { o.MaxLogBytes = maxLog })
	info := start(t, m, Spec{Command: `seq 1 200000`})
	// A follower that starts at 0 and is slower than the writer only by
	// scheduling; whatever it loses it must be told.
	outs, errc := follower(t, m, info.ID, 0)
	var want strings.Builder
	for i := 1; i <= 200000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	all := want.String()
	var followedLost, followedData int64
	off := int64(0)
	for done := false; !done; {
		o := next(t, outs)
		if o.Lost > 0 {
			followedLost += o.Lost
			off += o.Lost
		}
		for _, c := range o.Chunks {
			if c.Offset != off {
				t.Fatalf("chunk at %d, want %d", c.Offset, off)
			}
			if string(c.Data) != all[off:off+int64(len(c.Data))] {
				t.Fatalf("wrong bytes at %d", off)
			}
			off += int64(len(c.Data))
			followedData += int64(len(c.Data))
		}
		done = o.Done
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if followedLost+followedData != int64(len(all)) {
		t.Fatalf("followed %d + lost %d != %d", followedData, followedLost, len(all))
	}
	out, err := m.Read(info.ID, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if out.Lost == 0 || out.Lost > int64(len(all))-maxLog/2 {
		t.Fatalf("lost %d of %d with a %d-byte log", out.Lost, len(all), maxLog)
	}
	got, lost := readAll(t, m, info.ID)
	if kept := text(got, 0); lost+int64(len(kept)) != int64(len(all)) || kept != all[lost:] {
		t.Fatalf("kept %d bytes after %d lost; want the last %d", len(kept), lost, int64(len(all))-lost)
	}
	var disk int64
	ents, _ := os.ReadDir(m.opts.Dir)
	for _, e := range ents {
		fi, _ := e.Info()
		disk += fi.Size()
	}
	if disk > maxLog {
		t.Fatalf("%d bytes on disk, over %d", disk, maxLog)
	}
	t.Logf("output %d bytes, kept %d (%d on disk), follower lost %d", len(all), int64(len(all))-lost, disk, followedLost)
}

func TestFollowWakesOnOutputAndExit(t *testing.T) {
	m := newManager(t, nil)
	info := start(t, m, Spec{Argv: []string{"cat"}, Stdin: true})
	outs, errc := follower(t, m, info.ID, 0)
	for _, s := range []string{"hello\n", "héllo wörld ✓\n"} {
		if err := m.Write(ctxT(t), info.ID, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if o := next(t, outs); text(o.Chunks, Stdout) != s || o.Done {
			t.Fatalf("followed %+v, want %q", o, s)
		}
	}
	if got, _ := m.Get(info.ID); got.State != Running {
		t.Fatalf("state %s while cat reads", got.State)
	}
	if err := m.CloseStdin(info.ID); err != nil {
		t.Fatal(err)
	}
	o := next(t, outs)
	if !o.Done || o.Info.State != Exited || *o.Info.ExitCode != 0 {
		t.Fatalf("after close: %+v", o)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := m.Write(ctxT(t), info.ID, []byte("x")); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("write after exit: %v", err)
	}
}

func TestFollowStopsWithContextProcessLives(t *testing.T) {
	m := newManager(t, nil)
	info := start(t, m, Spec{Argv: []string{"cat"}, Stdin: true})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	got := make(chan struct{}, 1)
	go func() {
		errc <- m.Follow(ctx, info.ID, 0, func(Output) error { got <- struct{}{}; return nil })
	}()
	if err := m.Write(ctxT(t), info.ID, []byte("a\n")); err != nil {
		t.Fatal(err)
	}
	<-got
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow: %v", err)
	}
	if err := m.Write(ctxT(t), info.ID, []byte("b\n")); err != nil {
		t.Fatal(err)
	}
	m.CloseStdin(info.ID)
	wait(t, m, info.ID)
	if got, _ := readAll(t, m, info.ID); text(got, Stdout) != "a\nb\n" {
		t.Fatalf("output %q", text(got, Stdout))
	}
}

func TestSignalReachesChild(t *testing.T) {
	m := newManager(t, nil)
	info := start(t, m, Spec{Command: `sleep 100 & echo $!; wait`})
	outs, _ := follower(t, m, info.ID, 0)
	o := next(t, outs)
	child, err := strconv.Atoi(strings.TrimSpace(text(o.Chunks, Stdout)))
	if err != nil {
		t.Fatalf("child pid: %v (%q)", err, text(o.Chunks, 0))
	}
	if err := m.Signal(info.ID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := wait(t, m, info.ID)
	if got.Signal != "SIGTERM" || *got.ExitCode != 128+15 {
		t.Fatalf("ended %+v", got)
	}
	// The sleep held the stdout pipe: if it had survived, Wait would
	// have returned only after the grace with it still sleeping. A child
	// that got the signal is gone, a zombie, or still in do_exit (past
	// closing its files, so flagged PF_EXITING).
	if st, flags := procStat(child); st != "" && st != "Z" && flags&pfExiting == 0 {
		t.Fatalf("child %d survived the signal (state %s, flags %#x)", child, st, flags)
	}
	if err := m.Signal(info.ID, syscall.SIGTERM); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("signal after exit: %v", err)
	}
}

// pfExiting is the kernel's PF_EXITING task flag: do_exit has begun.
const pfExiting = 0x4

// procStat is the state letter and the flags of pid in /proc; "" if it is
// gone.
func procStat(pid int) (string, uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return "", 0
	}
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	return f[0], flags
}

func procState(pid int) string { st, _ := procStat(pid); return st }

func TestExitCodeKeptThenExpires(t *testing.T) {
	expired := make(chan int, 4)
	m := newManager(t, func(o *Options) {
		o.KeepExited = 500 * time.Millisecond
		o.onExpire = func(id int) { expired <- id }
	})
	info := start(t, m, Spec{Command: "echo bye; exit 3"})
	got := wait(t, m, info.ID)
	if got.State != Exited || *got.ExitCode != 3 || got.Signal != "" || got.EndedAt == nil {
		t.Fatalf("wait: %+v", got)
	}
	if later, err := m.Get(info.ID); err != nil || *later.ExitCode != 3 {
		t.Fatalf("get after exit: %+v %v", later, err)
	}
	if out, err := m.Read(info.ID, 0, 100); err != nil || !out.Done || *out.Info.ExitCode != 3 || text(out.Chunks, 0) != "bye\n" {
		t.Fatalf("read after exit: %+v %v", out, err)
	}
	select {
	case id := <-expired:
		if id != info.ID {
			t.Fatalf("expired %d", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("never expired")
	}
	if _, err := m.Get(info.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get after expiry: %v", err)
	}
	if ents, _ := os.ReadDir(m.opts.Dir); len(ents) != 0 {
		t.Fatalf("log left after expiry: %v", ents)
	}
}

func TestMaxExitedAndRemove(t *testing.T) {
	m := newManager(t, func(o *Options) { o.MaxExited = 2 })
	var ids []int
	for i := range 3 {
		info := start(t, m, Spec{Command: fmt.Sprintf("exit %d", i)})
		wait(t, m, info.ID)
		ids = append(ids, info.ID)
	}
	if _, err := m.Get(ids[0]); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("oldest exited kept beyond MaxExited: %v", err)
	}
	if l := m.List(); len(l) != 2 || l[0].ID != ids[1] || l[1].ID != ids[2] {
		t.Fatalf("list %+v", l)
	}
	running := start(t, m, Spec{Argv: []string{"sleep", "100"}})
	if err := m.Remove(running.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove running: %v", err)
	}
	if err := m.Remove(ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ids[1]); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	m := newManager(t, nil)
	for _, tc := range []struct {
		spec  Spec
		class error
	}{
		{Spec{}, errdefs.ErrInvalidArgument},
		{Spec{Argv: []string{"true"}, Command: "true"}, errdefs.ErrInvalidArgument},
		{Spec{Argv: []string{"no-such-program-sbx"}}, errdefs.ErrNotFound},
		{Spec{Argv: []string{"/no/such/program"}}, errdefs.ErrNotFound},
		{Spec{Command: "true", Cwd: "/no/such/dir"}, errdefs.ErrNotFound},
		{Spec{Command: "true", Env: []string{"NOEQUALS"}}, errdefs.ErrInvalidArgument},
	} {
		if _, err := m.Start(ctxT(t), tc.spec); !errors.Is(err, tc.class) {
			t.Errorf("%+v: %v, want %v", tc.spec, err, tc.class)
		}
	}
	info := start(t, m, Spec{Command: `echo "$FOO $PWD"`, Env: []string{"FOO=bar"}, Cwd: "."})
	wait(t, m, info.ID)
	if got, _ := readAll(t, m, info.ID); text(got, 0) != "bar "+m.opts.WorkDir+"\n" {
		t.Fatalf("output %q", text(got, 0))
	}
	if _, err := m.Read(info.ID, 1000, 10); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("read beyond end: %v", err)
	}
}

// TestUTF8Boundaries: a rune split across two writes, or by max, is never
// split between chunks, yet offsets count bytes.
func TestUTF8Boundaries(t *testing.T) {
	m := newManager(t, nil)
	// "é" is c3 a9: its two bytes come in two writes.
	info := start(t, m, Spec{Command: `printf 'a\xc3'; read; printf '\xa9b'`, Stdin: true})
	outs, _ := follower(t, m, info.ID, 0)
	if o := next(t, outs); text(o.Chunks, 0) != "a" {
		t.Fatalf("first chunk %q", text(o.Chunks, 0))
	}
	m.Write(ctxT(t), info.ID, []byte("\n"))
	if o := next(t, outs); text(o.Chunks, 0) != "éb" || o.Chunks[0].Offset != 1 {
		t.Fatalf("second chunk %+v", o.Chunks)
	}
	wait(t, m, info.ID)
	out, err := m.Read(info.ID, 0, 2) // "a" + half of "é"
	if err != nil || text(out.Chunks, 0) != "a" || out.Next != 1 {
		t.Fatalf("max 2: %+v %v", out, err)
	}
	out, err = m.Read(info.ID, 1, 1) // less than one rune: the whole rune
	if err != nil || text(out.Chunks, 0) != "é" || out.Next != 3 {
		t.Fatalf("max 1: %+v %v", out, err)
	}
}

func TestCloseLeavesNoProcess(t *testing.T) {
	m := newManager(t, func(o *Options) { o.KillGrace = 300 * time.Millisecond })
	var pgids []int
	for _, c := range []string{
		`sleep 100 & sleep 100 & wait`,
		`trap '' TERM; sleep 100 & wait; sleep 100`, // ignores SIGTERM: needs the SIGKILL
		`(trap '' TERM; exec sleep 100) & exit 0`,   // exits at once; its child holds the pipes
	} {
		pgids = append(pgids, start(t, m, Spec{Command: c}).PID)
	}
	info := start(t, m, Spec{Argv: []string{"cat"}, Stdin: true})
	pgids = append(pgids, info.PID)
	// A follower is waiting when Close comes: Close must end it.
	errc := make(chan error, 1)
	go func() { errc <- m.Follow(t.Context(), info.ID, 0, func(Output) error { return nil }) }()
	t0 := time.Now()
	m.Close()
	t.Logf("Close took %v", time.Since(t0))
	if err := <-errc; !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("follow after close: %v", err)
	}
	for _, pid := range inGroups(t, pgids) {
		t.Errorf("pid %d (state %s) of one of the groups %v is left after Close", pid, procState(pid), pgids)
	}
	if ents, _ := os.ReadDir(m.opts.Dir); len(ents) != 0 {
		t.Errorf("logs left after Close: %v", ents)
	}
	if _, err := m.Start(ctxT(t), Spec{Command: "true"}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("start after close: %v", err)
	}
}

// inGroups lists the processes in /proc whose group is one of pgids.
func inGroups(t *testing.T, pgids []int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		pg, _ := strconv.Atoi(f[2])
		for _, g := range pgids {
			if pg == g {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestWriteHonoursContext: a process that never reads its stdin fills the
// pipe; the writer's context ends the wait, and the process is untouched.
func TestWriteHonoursContext(t *testing.T) {
	m := newManager(t, nil)
	info := start(t, m, Spec{Argv: []string{"sleep", "100"}, Stdin: true})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := m.Write(ctx, info.ID, make([]byte, 4<<20))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write to a full pipe: %v", err)
	}
	if got, _ := m.Get(info.ID); got.State != Running {
		t.Fatalf("state %s", got.State)
	}
	// The expired deadline does not stick to the pipe: a later write
	// (zero bytes: the pipe is still full) succeeds.
	if err := m.Write(ctxT(t), info.ID, nil); err != nil {
		t.Fatalf("later write: %v", err)
	}
}

func TestStateDirMustBeOurs(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Dir: link, Starter: testReaper}); !errors.Is(err, errdefs.ErrPermission) {
		t.Fatalf("symlinked state dir: %v", err)
	}
	m, err := New(Options{Dir: filepath.Join(dir, "a", "b"), Starter: testReaper})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if st, err := os.Stat(filepath.Join(dir, "a", "b")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", st.Mode(), err)
	}
}

// TestFollowStopsWhileOutputWaits: a cancelled follower stops even when
// there is always more output to give it.
func TestFollowStopsWhileOutputWaits(t *testing.T) {
	m := newManager(t, nil)
	info := start(t, m, Spec{Command: "seq 1 1000000"})
	wait(t, m, info.ID)
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := m.Follow(ctx, info.ID, 0, func(Output) error { calls++; cancel(); return nil })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("follow: %v after %d calls", err, calls)
	}
}
