package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/drivertest"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/sandboxapi"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a one-shot `sbx run -d`: it creates a
// sandbox in the given state dir and exits, so that a test can check the
// sandbox outlives the process that made it.
const helperEnv = "SBX_LOCAL_TEST_CREATE"

// sandboxdPath is the binary every test uses, built once for the run.
var sandboxdPath string

func TestMain(m *testing.M) {
	if arg := os.Getenv(helperEnv); arg != "" {
		os.Exit(helperCreate(arg))
	}
	cache, err := os.MkdirTemp("", "sbx-local-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bin, err := (&sandboxdbin.Locator{CacheDir: cache, Executable: func() (string, error) { return "", errors.New("tests build sandboxd") }}).Locate(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd:", err)
		os.RemoveAll(cache)
		os.Exit(2)
	}
	sandboxdPath = bin.Path
	code := m.Run()
	os.RemoveAll(cache)
	os.Exit(code)
}

func helperCreate(arg string) int {
	dir, id, _ := strings.Cut(arg, ":")
	d, err := New(Options{StateDir: dir, Sandboxd: locator()})
	if err == nil {
		_, err = d.Create(context.Background(), driver.Spec{ID: id})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// locator hands out the binary TestMain built (or SBX_SANDBOXD), without
// building again.
func locator() *sandboxdbin.Locator {
	return &sandboxdbin.Locator{Getenv: func(k string) string {
		if k == sandboxdbin.EnvPath {
			if p := os.Getenv(k); p != "" {
				return p
			}
			return sandboxdPath
		}
		return os.Getenv(k)
	}}
}

func newDriver(t *testing.T, stateDir string) *Driver {
	t.Helper()
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	d, err := New(Options{
		Sandboxd: locator(),
		StateDir: stateDir,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver { return newDriver(t, "") }, drivertest.Options{Name: Name})
}

// A local sandbox is the host: that is a trait, and it cannot be killed
// faster than removed, nor has it images.
func TestCapabilities(t *testing.T) {
	got := strings.Join(driver.CapabilitiesOf(newDriver(t, "")).Names(), ",")
	if want := "pause,restart,swerex,host-filesystem"; got != want {
		t.Errorf("capabilities = %s, want %s", got, want)
	}
}

// The SWE-ReX listener is Spec.SWEReX's: SBX_SWEREX_* in sbx's own
// environment start none; and one that is asked for comes back on a port
// of its own after a stop and start, with the same token.
func TestSWEReXOnlyFromSpec(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stray := l.Addr().String()
	l.Close()
	t.Setenv(launch.EnvSWEReXAddr, stray)
	t.Setenv(launch.EnvSWEReXToken, "stray")
	d := newDriver(t, "")
	sb := mustCreate(t, d, driver.Spec{ID: "swx-" + ids.New(4)})
	if sb.SWEReX.URL != "" {
		t.Errorf("SWEReX = %+v without Spec.SWEReX", sb.SWEReX)
	}
	if c, err := net.DialTimeout("tcp", stray, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s, the caller's %s", stray, launch.EnvSWEReXAddr)
	}

	sb = mustCreate(t, d, driver.Spec{ID: "swx-" + ids.New(4), SWEReX: &driver.SWEReX{}})
	if !strings.HasPrefix(sb.SWEReX.URL, "http://127.0.0.1:") || len(sb.SWEReX.Token) != 36 {
		t.Fatalf("SWEReX = %+v", sb.SWEReX)
	}
	if err := d.Stop(t.Context(), sb.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	again, err := d.Start(t.Context(), sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.SWEReX.URL == "" || again.SWEReX.Token != sb.SWEReX.Token {
		t.Fatalf("after Stop and Start: SWEReX %+v, want the token %s", again.SWEReX, sb.SWEReX.Token)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, again.SWEReX.URL+"/is_alive", nil)
	req.Header.Set("X-API-Key", again.SWEReX.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /is_alive after Start: %d", res.StatusCode)
	}
}

func mustCreate(t *testing.T, d *Driver, spec driver.Spec) driver.Sandbox {
	t.Helper()
	t.Cleanup(func() {
		if err := d.Remove(context.Background(), spec.ID); err != nil {
			t.Errorf("Remove(%s): %v", spec.ID, err)
		}
	})
	sb, err := d.Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return sb
}

func runIn(t *testing.T, sb driver.Sandbox, command string) string {
	t.Helper()
	obs, ex, err := sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token).Run(t.Context(), sandboxapi.NewRunAction(command, 30))
	if err != nil {
		t.Fatalf("run %q: %v", command, err)
	}
	if ex.Metadata.ExitCode != 0 {
		t.Fatalf("run %q: exit %d: %s", command, ex.Metadata.ExitCode, obs.Content)
	}
	return strings.TrimSpace(obs.Content)
}

// lastLine skips the job announcement ("[1] 1234") of the interactive
// shell.
func lastLine(s string) string { return s[strings.LastIndexByte(s, '\n')+1:] }

// TestOutlivesCreator creates a sandbox from another process, which then
// exits, as `sbx run -d` does; a Driver here must find it running and be
// able to stop, restart and remove it.
func TestOutlivesCreator(t *testing.T) {
	dir := t.TempDir()
	id := "outlive-" + ids.New(4)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir+":"+id, sandboxdbin.EnvPath+"="+sandboxdPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("creating process: %v\n%s", err, out)
	}
	d := newDriver(t, dir)
	t.Cleanup(func() { d.Remove(context.Background(), id) })
	sb, err := d.Inspect(t.Context(), id)
	if err != nil || sb.State != driver.StateRunning {
		t.Fatalf("Inspect = %+v, %v; want running", sb, err)
	}
	if out := runIn(t, sb, "echo $((6*7))"); out != "42" {
		t.Errorf("got %q", out)
	}
	// Not our child: Stop must see it go without being able to wait for it.
	if err := d.Stop(t.Context(), id, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if sb, err := d.Inspect(t.Context(), id); err != nil || sb.State != driver.StateStopped {
		t.Fatalf("after Stop: %q, %v", sb.State, err)
	}
	sb, err = d.Start(t.Context(), id)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	runIn(t, sb, "true")
	if err := d.Remove(t.Context(), id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
}

// TestSurvivesDriver drops the Driver that created a sandbox: a new one on
// the same state dir takes over.
func TestSurvivesDriver(t *testing.T) {
	dir := t.TempDir()
	id := "drop-" + ids.New(4)
	func() {
		d := newDriver(t, dir)
		if _, err := d.Create(t.Context(), driver.Spec{ID: id, Labels: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
	}()
	d := newDriver(t, dir)
	t.Cleanup(func() { d.Remove(context.Background(), id) })
	list, err := d.List(t.Context(), map[string]string{"k": "v"})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].State != driver.StateRunning {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if out := runIn(t, list[0], "echo ok"); out != "ok" {
		t.Errorf("got %q", out)
	}
}

// TestPIDReuse points a record at a live process that is not sandboxd
// (same pid, other start time): it must read as stopped, and neither
// Stop nor Remove may signal that process.
func TestPIDReuse(t *testing.T) {
	d := newDriver(t, "")
	id := "reuse-" + ids.New(4)
	mustCreate(t, d, driver.Spec{ID: id})
	if err := d.Stop(t.Context(), id, time.Second); err != nil {
		t.Fatal(err)
	}
	bystander := exec.Command("sleep", "60")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })
	info, err := readStat(bystander.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.readState(id)
	if err != nil {
		t.Fatal(err)
	}
	st.Proc = procID{PID: info.PID, Start: info.Start + 1}
	if err := d.writeState(st); err != nil {
		t.Fatal(err)
	}
	if sb, err := d.Inspect(t.Context(), id); err != nil || sb.State != driver.StateStopped {
		t.Errorf("Inspect = %q, %v; want stopped", sb.State, err)
	}
	if err := d.Pause(t.Context(), id); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Pause: %v, want ErrConflict", err)
	}
	if err := d.Stop(t.Context(), id, time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := d.Remove(t.Context(), id); err != nil {
		t.Errorf("Remove: %v", err)
	}
	if p, err := readStat(info.PID); err != nil || p.Start != info.Start || p.dead() || p.stopped() {
		t.Fatalf("the bystander was touched: %+v, %v", p, err)
	}
}

func TestWorkspace(t *testing.T) {
	d := newDriver(t, "")
	t.Run("temporary", func(t *testing.T) {
		id := "tmpws-" + ids.New(4)
		sb := mustCreate(t, d, driver.Spec{ID: id})
		wd := runIn(t, sb, "pwd")
		if !strings.HasPrefix(filepath.Base(wd), "sbx-workspace-"+id+"-") {
			t.Fatalf("working dir %s is not a temporary workspace", wd)
		}
		runIn(t, sb, "echo x > f && mkdir -p a/b && chmod 0500 a")
		if err := d.Remove(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(wd); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("workspace %s survived Remove: %v", wd, err)
		}
	})
	t.Run("given", func(t *testing.T) {
		id := "givenws-" + ids.New(4)
		wd := filepath.Join(t.TempDir(), "new", "dir")
		sb := mustCreate(t, d, driver.Spec{ID: id, WorkDir: wd})
		if got := runIn(t, sb, "pwd"); got != wd {
			t.Errorf("working dir %s, want %s", got, wd)
		}
		runIn(t, sb, "echo kept > f")
		if err := d.Remove(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(wd, "f")); err != nil || string(b) != "kept\n" {
			t.Errorf("a given working dir lost its files on Remove: %q, %v", b, err)
		}
	})
	t.Run("failed create", func(t *testing.T) {
		id := "failws-" + ids.New(4)
		_, err := d.Create(t.Context(), driver.Spec{ID: id, Plugins: []string{"nonexistent"}})
		if err == nil {
			d.Remove(t.Context(), id)
			t.Fatal("Create succeeded")
		}
		if !strings.Contains(err.Error(), "exited during start-up (exit status 2): sandboxd: Plugin nonexistent not found") {
			t.Errorf("error: %v", err)
		}
		if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "sbx-workspace-"+id+"-*")); len(m) > 0 {
			t.Errorf("left behind: %v", m)
		}
		if ents, _ := os.ReadDir(d.StateDir()); len(ents) > 0 {
			t.Errorf("state dir not empty: %v", ents)
		}
	})
}

// TestStopKillsEscapees starts a process in a session of its own, beyond
// the reach of sandboxd's shell clean-up; Stop must still end it, as
// stopping a container would.
func TestStopKillsEscapees(t *testing.T) {
	d := newDriver(t, "")
	id := "escape-" + ids.New(4)
	sb := mustCreate(t, d, driver.Spec{ID: id})
	// setsid forks when run as a job (a group leader), so the pid comes
	// from inside the new session.
	wd := runIn(t, sb, "pwd")
	runIn(t, sb, `setsid sh -c 'echo $$ > escapee.pid; exec sleep 1000' >/dev/null 2>&1 &`)
	var pid int
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, err := os.ReadFile(filepath.Join(wd, "escapee.pid"))
		if pid, _ = strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no escapee pid: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	info, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Fatalf("pid %d is in session %d, not one of its own", pid, sid)
	}
	// And one that keeps starting more, to race the list Stop makes.
	marker := fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
	runIn(t, sb, `setsid sh -c 'while :; do sleep `+marker+` & sleep 0.005; done' >/dev/null 2>&1 &`)
	time.Sleep(100 * time.Millisecond)
	if n := countCmdline(t, "sleep "+marker); n == 0 {
		t.Fatal("the spawner spawned nothing")
	}
	if err := d.Stop(t.Context(), id, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := lookup(info.procID)
		n := countCmdline(t, "sleep "+marker)
		if errors.Is(err, errNoProc) && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outlived Stop: the escapee (%v), %d of the spawner's children", err == nil, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countCmdline counts live processes whose command line is cmd.
func countCmdline(t *testing.T, cmd string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(cmd, " ", "\x00") + "\x00"
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(b) != want {
			continue
		}
		if p, err := readStat(pid); err == nil && !p.dead() {
			n++
		}
	}
	return n
}

// TestPauseLeavesStoppedJobs checks that Resume continues only what Pause
// stopped: a job the agent stopped itself stays stopped.
func TestPauseLeavesStoppedJobs(t *testing.T) {
	d := newDriver(t, "")
	id := "jobs-" + ids.New(4)
	sb := mustCreate(t, d, driver.Spec{ID: id})
	pid, err := strconv.Atoi(lastLine(runIn(t, sb, "sleep 1000 >/dev/null 2>&1 & echo $!")))
	if err != nil {
		t.Fatal(err)
	}
	runIn(t, sb, fmt.Sprintf("kill -STOP %d", pid))
	for deadline := time.Now().Add(5 * time.Second); ; {
		if p, err := readStat(pid); err == nil && p.stopped() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not stop", pid)
		}
		time.Sleep(time.Millisecond)
	}
	if err := d.Pause(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resume(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	p, err := readStat(pid)
	if err != nil || !p.stopped() {
		t.Errorf("the job the agent stopped: %+v, %v; want still stopped", p, err)
	}
	runIn(t, sb, fmt.Sprintf("kill -CONT %d; kill %d", pid, pid))
}

func TestClaim(t *testing.T) {
	d := newDriver(t, "")
	// The remains of a Create that crashed before writing its state.
	id := "stale-" + ids.New(4)
	if err := os.MkdirAll(d.sandboxDir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, d, driver.Spec{ID: id})

	// A Create in progress elsewhere holds the lock.
	busy := "busy-" + ids.New(4)
	if err := os.MkdirAll(d.sandboxDir(busy), 0o700); err != nil {
		t.Fatal(err)
	}
	lk, err := lock(t.Context(), d.sandboxDir(busy), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(t.Context(), driver.Spec{ID: busy}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Create while another holds the lock: %v, want ErrAlreadyExists", err)
	}
	if _, err := d.Inspect(t.Context(), busy); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect of a sandbox being created, before its record: %v, want ErrNotFound", err)
	}
	// Remove waits for the lock, then deletes.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	if err := d.Remove(ctx, busy); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Remove while locked: %v, want a timeout", err)
	}
	cancel()
	lk.Close()
	if err := d.Remove(t.Context(), busy); err != nil {
		t.Errorf("Remove: %v", err)
	}
	if _, err := os.Stat(d.sandboxDir(busy)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left: %v", err)
	}
}

func TestInvalidID(t *testing.T) {
	d := newDriver(t, "")
	for _, id := range []string{"../x", "a/b", ".hidden", "-x", strings.Repeat("a", 129)} {
		if _, err := d.Create(t.Context(), driver.Spec{ID: id}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Create(%q): %v, want ErrInvalidArgument", id, err)
		}
		if err := d.Remove(t.Context(), id); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Remove(%q): %v, want ErrInvalidArgument", id, err)
		}
	}
}

func TestAutoRemove(t *testing.T) {
	d := newDriver(t, "")
	id := "autorm-" + ids.New(4)
	sb := mustCreate(t, d, driver.Spec{ID: id, AutoRemove: true})
	wd := runIn(t, sb, "pwd")
	if err := d.Stop(t.Context(), id, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(t.Context(), id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after Stop: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(wd); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace left: %v", err)
	}

	// sandboxd dying on its own: removed at the next look.
	id = "autorm2-" + ids.New(4)
	mustCreate(t, d, driver.Spec{ID: id, AutoRemove: true})
	st, err := d.readState(id)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(st.Proc.PID, syscall.SIGKILL)
	d.reap(st)
	if list, err := d.List(t.Context(), map[string]string{driver.LabelSession: id}); err != nil || len(list) != 0 {
		t.Errorf("List after the exit: %v, %v; want none", list, err)
	}
	if _, err := os.Stat(d.sandboxDir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left: %v", err)
	}
}

func TestStateFile(t *testing.T) {
	d := newDriver(t, "")
	id := "state-" + ids.New(4)
	sb := mustCreate(t, d, driver.Spec{ID: id, Env: map[string]string{"SECRET": "x"}})
	fi, err := os.Stat(filepath.Join(d.sandboxDir(id), stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state.json mode %v: it holds the session key", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(filepath.Join(d.sandboxDir(id), stateFile))
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "proc", "port", "token", "workdir", "own_workdir", "created", "labels", "spec"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("state.json lacks %q", k)
		}
	}
	if !strings.HasSuffix(sb.Endpoint.URL, ":"+strconv.Itoa(int(raw["port"].(float64)))) || sb.Endpoint.Token != raw["token"] {
		t.Errorf("endpoint %+v does not match the record", sb.Endpoint)
	}
	if len(sb.Endpoint.Token) != 32 {
		t.Errorf("token %q: want 32 hex digits", sb.Endpoint.Token)
	}
	if sb.Labels[driver.LabelManaged] != "true" || sb.Labels[driver.LabelSession] != id {
		t.Errorf("labels %v lack sbx's own", sb.Labels)
	}
	// The key and the socket are sandboxd's alone.
	if out := runIn(t, sb, `echo "${SESSION_API_KEY-unset} ${SBX_LISTEN_FD-unset} $USER"`); !strings.HasPrefix(out, "unset unset ") {
		t.Errorf("the shell sees %q", out)
	}
}

func TestParseStat(t *testing.T) {
	line := []byte("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615")
	p, err := parseStat(4242, line)
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != 4242 || p.PPID != 1 || p.State != 'S' || p.Start != 987654 {
		t.Errorf("parsed %+v", p)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19"} {
		if _, err := parseStat(1, []byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted it", bad)
		}
	}
}

func TestTailOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc\n", 5, "a\nb\nc\n"},
		{"\n\n", 1, "\n"},
		{strings.Repeat("x", 70000) + "\nlast\n", 1, "last\n"},
		{"only", 1, "only"},
	} {
		r := bytes.NewReader([]byte(tc.in))
		off, err := tailOffset(r, int64(len(tc.in)), tc.n)
		if err != nil || tc.in[off:] != tc.want {
			t.Errorf("tail %d of %.20q = %q, %v; want %q", tc.n, tc.in, tc.in[off:], err, tc.want)
		}
	}
}

// Without the guard capability a guarded mount is refused, not ignored:
// ignoring it would let the agent write the folder it was to be kept from.
func TestRefusesGuardedMount(t *testing.T) {
	d := newDriver(t, "")
	_, err := d.Create(context.Background(), driver.Spec{ID: "guard1", Mounts: []driver.Mount{{Source: t.TempDir(), Target: "/workspace", Guard: true}}})
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("create with a guarded mount: %v", err)
	}
}
