// Package drivertest is the conformance suite every sandbox driver must
// pass: what internal/driver promises, checked through the driver and
// through sandboxd at the Endpoint it returns, the way sbx uses both.
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, func(t *testing.T) driver.Driver { return newDriver(t) }, drivertest.Options{})
//	}
//
// Each subtest makes its own sandboxes, with ids "dt-<random>", and
// removes them when it ends; they run in parallel.
package drivertest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	randid "github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/netpolicy"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// Options adapt the suite to a driver. Zero values suit a driver that
// needs nothing in the Spec beyond an ID.
type Options struct {
	// Name is the driver's name, which every Sandbox it returns must
	// carry in Sandbox.Driver.
	Name string
	// Image and Prebuilt go into every Spec (container drivers).
	Image    string
	Prebuilt bool
	// Prepare, when set, edits every Spec before Create: a working
	// directory, mounts, a user.
	Prepare func(t *testing.T, spec *driver.Spec)
	// SkipPause, when not empty, says why pause and resume are not tested
	// although the driver implements driver.Pauser (say, a cgroup v1 host
	// without the freezer).
	SkipPause string
	// Broken turns a Spec into one whose sandboxd exits during start-up.
	// nil asks for a plugin that does not exist, which sandboxd refuses
	// with "Plugin nonexistent not found" on every driver.
	Broken func(driver.Spec) driver.Spec
	// BrokenLog is text of sandboxd's output that the error of a broken
	// Create must quote; "" is "nonexistent".
	BrokenLog string
	// BrokenWithin bounds how long a broken Create may take to fail; 0 is
	// 30 seconds. A driver that waits for a timeout instead of noticing
	// the exit fails here.
	BrokenWithin time.Duration
	// Concurrent is how many sandboxes are created at once; 0 is 5.
	Concurrent int
	// Timeout bounds each subtest; 0 is three minutes.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Broken == nil {
		o.Broken = func(s driver.Spec) driver.Spec {
			s.Plugins = append(slices.Clone(s.Plugins), "nonexistent")
			return s
		}
		if o.BrokenLog == "" {
			o.BrokenLog = "nonexistent"
		}
	}
	if o.BrokenWithin <= 0 {
		o.BrokenWithin = 30 * time.Second
	}
	if o.Concurrent <= 0 {
		o.Concurrent = 5
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	return o
}

// labelSuite marks the sandboxes of one Run, so that List checks see only
// those, whatever else the driver manages.
const labelSuite = "dev.sbx.drivertest"

type suite struct {
	opts      Options
	newDriver func(t *testing.T) driver.Driver
	runID     string
}

// Run runs the suite. newDriver is called once per subtest.
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver, opts Options) {
	if opts.Name == "" {
		t.Fatal("drivertest: Options.Name is required")
	}
	s := &suite{opts: opts.withDefaults(), newDriver: newDriver, runID: "run-" + randid.New(6)}
	// A capability's cases run only where the driver declares it; where
	// it does not, they are reported as skipped with the reason.
	for _, tc := range []struct {
		name string
		// needs is the capability the case tests; "" is the core.
		needs string
		fn    func(*testing.T, context.Context, driver.Driver)
	}{
		{"Create", "", s.testCreate},
		{"Run", "", s.testRun},
		{"Files", "", s.testFiles},
		{"Env", "", s.testEnv},
		{"DuplicateID", "", s.testDuplicateID},
		{"InspectList", "", s.testInspectList},
		{"StopStart", "restart", s.testStopStart},
		{"PauseResume", "pause", s.testPauseResume},
		{"Kill", "kill", s.testKill},
		{"Remove", "", s.testRemove},
		{"NotFound", "", s.testNotFound},
		{"BrokenStart", "", s.testBrokenStart},
		{"Logs", "", s.testLogs},
		{"Concurrent", "", s.testConcurrent},
		// Core: a driver without the capability must refuse the request.
		{"SWEReX", "", s.testSWEReX},
		{"NetworkPolicy", "", s.testNetworkPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := s.newDriver(t)
			if tc.needs != "" && !slices.Contains(driver.CapabilitiesOf(d).Names(), tc.needs) {
				t.Skipf("%s does not declare the %q capability", s.opts.Name, tc.needs)
			}
			ctx, cancel := context.WithTimeout(t.Context(), s.opts.Timeout)
			defer cancel()
			tc.fn(t, ctx, d)
		})
	}
}

func newID() string { return "dt-" + randid.New(5) }

// spec is a Spec for a new sandbox of this suite.
func (s *suite) spec(t *testing.T, id string) driver.Spec {
	spec := driver.Spec{
		ID:       id,
		Image:    s.opts.Image,
		Prebuilt: s.opts.Prebuilt,
		Labels:   map[string]string{labelSuite: s.runID},
	}
	if s.opts.Prepare != nil {
		s.opts.Prepare(t, &spec)
	}
	return spec
}

// cleanup removes id when the test ends, whatever happened to it.
func cleanup(t *testing.T, d driver.Driver, id string) {
	t.Cleanup(func() {
		// t.Context is already cancelled here.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.Remove(ctx, id); err != nil {
			t.Errorf("clean-up: Remove(%s): %v", id, err)
		}
	})
}

// create makes a sandbox that the test's end removes, and checks what
// Create returned.
func create(t *testing.T, ctx context.Context, d driver.Driver, spec driver.Spec) driver.Sandbox {
	t.Helper()
	cleanup(t, d, spec.ID)
	start := time.Now()
	sb, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create(%s): %v", spec.ID, err)
	}
	t.Logf("Create(%s): %v", spec.ID, time.Since(start).Round(time.Millisecond))
	if sb.ID != spec.ID || sb.State != driver.StateRunning || sb.Endpoint.URL == "" {
		t.Fatalf("Create(%s) = id %q, state %q, endpoint %q; want the id, running, an endpoint", spec.ID, sb.ID, sb.State, sb.Endpoint.URL)
	}
	return sb
}

func client(sb driver.Sandbox) *sandboxapi.Client {
	return sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token)
}

// run runs command in the sandbox's shell and returns its trimmed output
// and exit code.
func run(t *testing.T, ctx context.Context, c *sandboxapi.Client, command string) (string, int) {
	t.Helper()
	obs, ex, err := c.Run(ctx, sandboxapi.NewRunAction(command, 60))
	if err != nil {
		t.Fatalf("run %q: %v", command, err)
	}
	return strings.TrimSpace(obs.Content), ex.Metadata.ExitCode
}

// mustRun runs command and fails the test unless it exits 0.
func mustRun(t *testing.T, ctx context.Context, c *sandboxapi.Client, command string) string {
	t.Helper()
	out, code := run(t, ctx, c, command)
	if code != 0 {
		t.Fatalf("run %q: exit code %d: %s", command, code, out)
	}
	return out
}

func alive(ctx context.Context, sb driver.Sandbox) error {
	status, err := client(sb).Alive(ctx)
	if err == nil && status != "ok" {
		err = fmt.Errorf("/alive status %q", status)
	}
	return err
}

// answersNot checks that nothing answers at url any more.
func answersNot(t *testing.T, ctx context.Context, sb driver.Sandbox) {
	t.Helper()
	if sb.Endpoint.URL == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := alive(ctx, sb); err == nil {
		t.Errorf("%s still answers /alive", sb.Endpoint.URL)
	}
}

func (s *suite) testCreate(t *testing.T, ctx context.Context, d driver.Driver) {
	sb := create(t, ctx, d, s.spec(t, newID()))
	if sb.Driver != s.opts.Name {
		t.Errorf("Sandbox.Driver = %q, want %q", sb.Driver, s.opts.Name)
	}
	if sb.Created.IsZero() {
		t.Error("Sandbox.Created is zero")
	}
	if err := alive(ctx, sb); err != nil {
		t.Fatalf("the endpoint Create returned does not answer: %v", err)
	}
	// A key is not required, but when there is one it must be enforced:
	// the endpoint is all that stands between the port and a shell.
	if sb.Endpoint.Token != "" {
		_, err := sandboxapi.NewClient(sb.Endpoint.URL, "wrong").Execute(ctx, sandboxapi.NewRunAction("true", 10))
		if !sandboxapi.IsStatus(err, 401) && !sandboxapi.IsStatus(err, 403) {
			t.Errorf("a wrong session key got %v, want HTTP 401 or 403", err)
		}
	}
}

func (s *suite) testRun(t *testing.T, ctx context.Context, d driver.Driver) {
	c := client(create(t, ctx, d, s.spec(t, newID())))
	if out := mustRun(t, ctx, c, "echo hi"); out != "hi" {
		t.Errorf("echo hi printed %q", out)
	}
	if _, code := run(t, ctx, c, "sh -c 'exit 3'"); code != 3 {
		t.Errorf("exit 3 gave exit code %d", code)
	}
}

func (s *suite) testFiles(t *testing.T, ctx context.Context, d driver.Driver) {
	c := client(create(t, ctx, d, s.spec(t, newID())))
	dir := mustRun(t, ctx, c, "pwd")

	// write and read actions.
	path := dir + "/dt-write.txt"
	// No final newline: OpenHands' write action adds one to what it is
	// given, and reading it back is not this suite's business.
	const text = "line one\nline two ✓"
	w, err := sandboxapi.NewAction(sandboxapi.ActionWrite, sandboxapi.FileWriteArgs{Path: path, Content: text, End: -1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := c.Execute(ctx, w)
	if err != nil || obs.Observation != sandboxapi.ObservationWrite {
		t.Fatalf("write %s: %v, observation %q: %s", path, err, obs.Observation, obs.Content)
	}
	r, err := sandboxapi.NewAction(sandboxapi.ActionRead, sandboxapi.FileReadArgs{Path: path, End: -1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	obs, err = c.Execute(ctx, r)
	if err != nil || obs.Observation != sandboxapi.ObservationRead {
		t.Fatalf("read %s: %v, observation %q: %s", path, err, obs.Observation, obs.Content)
	}
	if strings.TrimRight(obs.Content, "\n") != text {
		t.Errorf("read %s = %q, want %q", path, obs.Content, text)
	}
	if out := mustRun(t, ctx, c, "cat dt-write.txt"); out != text {
		t.Errorf("the shell sees %q in the written file", out)
	}

	// Upload, seen by the shell, and Download.
	payload := []byte("uploaded " + randid.New(8))
	if _, err := c.Upload(ctx, dir, "dt-upload.bin", bytes.NewReader(payload), false); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if out := mustRun(t, ctx, c, "cat dt-upload.bin"); out != string(payload) {
		t.Errorf("the shell sees %q in the uploaded file, want %q", out, payload)
	}
	var zbuf bytes.Buffer
	if err := c.Download(ctx, dir+"/dt-upload.bin", &zbuf); err != nil {
		t.Fatalf("download: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zbuf.Bytes()), int64(zbuf.Len()))
	if err != nil {
		t.Fatalf("download is not a zip: %v", err)
	}
	found := false
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, "dt-upload.bin") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("downloaded %q (%v), want %q", got, err, payload)
		}
		found = true
	}
	if !found {
		t.Errorf("the download holds no dt-upload.bin")
	}
}

func (s *suite) testEnv(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	const value = "a b=c 'd' $HOME ✓"
	spec.Env = map[string]string{"DT_ENV": value, "DT_EMPTY": ""}
	c := client(create(t, ctx, d, spec))
	if out := mustRun(t, ctx, c, `printf '[%s]\n' "$DT_ENV"`); out != "["+value+"]" {
		t.Errorf("DT_ENV = %s, want [%s]", out, value)
	}
	if out := mustRun(t, ctx, c, `echo "${DT_EMPTY-unset}."`); out != "." {
		t.Errorf("DT_EMPTY: %q, want it set and empty", out)
	}
}

func (s *suite) testDuplicateID(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	sb := create(t, ctx, d, spec)
	_, err := d.Create(ctx, spec)
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Create(%s): %v, want ErrAlreadyExists", spec.ID, err)
	}
	if out := mustRun(t, ctx, client(sb), "echo still here"); out != "still here" {
		t.Errorf("the first sandbox printed %q after the second Create", out)
	}
	got, err := d.Inspect(ctx, spec.ID)
	if err != nil || got.State != driver.StateRunning || got.Endpoint.URL != sb.Endpoint.URL {
		t.Errorf("after the second Create: Inspect = %+v, %v; want the first, running", got, err)
	}
}

func (s *suite) testInspectList(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	mine := "mine-" + randid.New(6)
	spec.Labels["dev.sbx.drivertest.case"] = mine
	spec.Labels["dev.sbx.drivertest.note"] = "a value with spaces"
	sb := create(t, ctx, d, spec)

	got, err := d.Inspect(ctx, spec.ID)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if got.ID != spec.ID || got.State != driver.StateRunning || got.Endpoint != sb.Endpoint || got.Name == "" {
		t.Errorf("Inspect = %+v; want id %s, running, endpoint %+v, a name", got, spec.ID, sb.Endpoint)
	}
	for k, v := range spec.Labels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}

	list, err := d.List(ctx, map[string]string{"dev.sbx.drivertest.case": mine, labelSuite: s.runID})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 1 || list[0].ID != spec.ID || list[0].State != driver.StateRunning {
		t.Errorf("List by our labels = %v, want exactly %s, running", ids(list), spec.ID)
	}
	list, err = d.List(ctx, map[string]string{"dev.sbx.drivertest.case": "other-" + randid.New(6)})
	if err != nil || len(list) != 0 {
		t.Errorf("List by a label nobody has = %v, %v; want none", ids(list), err)
	}
	list, err = d.List(ctx, map[string]string{"dev.sbx.drivertest.case": mine, "dev.sbx.drivertest.absent": "x"})
	if err != nil || len(list) != 0 {
		t.Errorf("List by our label and one we lack = %v, %v; want none", ids(list), err)
	}
	list, err = d.List(ctx, nil)
	if err != nil || !slices.Contains(ids(list), spec.ID) {
		t.Errorf("List(nil) = %v, %v; want it to include %s", ids(list), err, spec.ID)
	}
}

func ids(l []driver.Sandbox) []string {
	out := make([]string, 0, len(l))
	for _, sb := range l {
		out = append(out, sb.ID)
	}
	return out
}

func (s *suite) testStopStart(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	sb := create(t, ctx, d, spec)
	mustRun(t, ctx, client(sb), "echo kept > dt-persist")

	start := time.Now()
	r := driver.CapabilitiesOf(d).Restart
	if err := r.Stop(ctx, spec.ID, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop: %v", time.Since(start).Round(time.Millisecond))
	got, err := d.Inspect(ctx, spec.ID)
	if err != nil || got.State != driver.StateStopped {
		t.Fatalf("after Stop: Inspect = %q, %v; want stopped", got.State, err)
	}
	if got.Endpoint.URL != "" {
		t.Errorf("a stopped sandbox has endpoint %q", got.Endpoint.URL)
	}
	answersNot(t, ctx, sb)

	start = time.Now()
	sb2, err := r.Start(ctx, spec.ID)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start: %v", time.Since(start).Round(time.Millisecond))
	if sb2.State != driver.StateRunning || sb2.Endpoint.URL == "" {
		t.Fatalf("Start = state %q, endpoint %q; want running with an endpoint", sb2.State, sb2.Endpoint.URL)
	}
	if err := alive(ctx, sb2); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	if out := mustRun(t, ctx, client(sb2), "cat dt-persist"); out != "kept" {
		t.Errorf("a file written before Stop reads %q after Start", out)
	}
	got, err = d.Inspect(ctx, spec.ID)
	if err != nil || got.State != driver.StateRunning || got.Endpoint != sb2.Endpoint {
		t.Errorf("after Start: Inspect = %+v, %v; want running at %+v", got, err, sb2.Endpoint)
	}
}

func (s *suite) testPauseResume(t *testing.T, ctx context.Context, d driver.Driver) {
	p := driver.CapabilitiesOf(d).Pause
	if s.opts.SkipPause != "" {
		t.Skip(s.opts.SkipPause)
	}
	spec := s.spec(t, newID())
	sb := create(t, ctx, d, spec)
	c := client(sb)
	token := randid.New(6)
	mustRun(t, ctx, c, "export DT_PAUSE="+token)
	// A ticker in the background, writing the sandbox's clock, which is
	// the host's: after the pause, no tick may fall inside it. nohup and a
	// redirect keep it out of the shell's way.
	pid := lastField(mustRun(t, ctx, c, `nohup sh -c 'while :; do date +%s%N >> dt-tick; sleep 0.05; done' >/dev/null 2>&1 & echo $!`))
	if _, err := strconv.Atoi(pid); err != nil {
		t.Fatalf("ticker pid: %q", pid)
	}
	waitTicks(t, ctx, c, 0, 3)

	if err := p.Pause(ctx, spec.ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	t0 := time.Now()
	got, err := d.Inspect(ctx, spec.ID)
	if err != nil || got.State != driver.StatePaused {
		t.Errorf("after Pause: Inspect = %q, %v; want paused", got.State, err)
	}
	time.Sleep(400 * time.Millisecond)
	t1 := time.Now()
	if _, err := p.Resume(ctx, spec.ID); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got, err = d.Inspect(ctx, spec.ID)
	if err != nil || got.State != driver.StateRunning || got.Endpoint != sb.Endpoint {
		t.Errorf("after Resume: Inspect = %+v, %v; want running at %+v", got, err, sb.Endpoint)
	}

	ticks := waitTicks(t, ctx, c, t1.UnixNano(), 1)
	for _, tick := range ticks {
		if tick > t0.UnixNano() && tick < t1.UnixNano() {
			t.Errorf("a tick at %v, %v into a pause of %v: the sandbox was not frozen",
				time.Unix(0, tick).Format(time.RFC3339Nano), time.Duration(tick-t0.UnixNano()), t1.Sub(t0))
			break
		}
	}
	if out := mustRun(t, ctx, c, "kill -0 "+pid+" && echo alive"); lastField(out) != "alive" {
		t.Errorf("the ticker started before the pause: %q", out)
	}
	if out := mustRun(t, ctx, c, "echo $DT_PAUSE"); lastField(out) != token {
		t.Errorf("the shell's variable after resume is %q, want %q: the shell was restarted", out, token)
	}

	// A paused sandbox can be stopped (where sandboxes can be stopped).
	r := driver.CapabilitiesOf(d).Restart
	if r == nil {
		return
	}
	if err := p.Pause(ctx, spec.ID); err != nil {
		t.Fatalf("second Pause: %v", err)
	}
	if err := r.Stop(ctx, spec.ID, 5*time.Second); err != nil {
		t.Fatalf("Stop while paused: %v", err)
	}
	if got, err := d.Inspect(ctx, spec.ID); err != nil || got.State != driver.StateStopped {
		t.Errorf("after Stop while paused: Inspect = %q, %v; want stopped", got.State, err)
	}
}

// lastField is the last word of out: an interactive shell announces a
// background job ("[1] 1234") before the command's own output.
func lastField(out string) string {
	f := strings.Fields(out)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// waitTicks waits until the ticker file holds at least n ticks after
// since (ns), and returns all ticks.
func waitTicks(t *testing.T, ctx context.Context, c *sandboxapi.Client, since int64, n int) []int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := run(t, ctx, c, "cat dt-tick 2>/dev/null")
		var ticks []int64
		after := 0
		for _, f := range strings.Fields(out) {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil || v < 1e18 {
				t.Fatalf("the ticker wrote %q: the sandbox's date lacks %%N", f)
			}
			ticks = append(ticks, v)
			if v > since {
				after++
			}
		}
		if after >= n {
			return ticks
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ticker wrote %d ticks after %d in 20s, want %d", after, since, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *suite) testRemove(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	sb := create(t, ctx, d, spec)
	if err := d.Remove(ctx, spec.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := d.Remove(ctx, spec.ID); err != nil {
		t.Errorf("second Remove: %v, want nil", err)
	}
	if _, err := d.Inspect(ctx, spec.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after Remove: %v, want ErrNotFound", err)
	}
	answersNot(t, ctx, sb)
	if list, err := d.List(ctx, map[string]string{driver.LabelSession: spec.ID}); err != nil || len(list) != 0 {
		t.Errorf("List after Remove = %v, %v; want none", ids(list), err)
	}
	// The id is free again.
	sb = create(t, ctx, d, spec)
	if err := alive(ctx, sb); err != nil {
		t.Errorf("a sandbox created again with a removed id: %v", err)
	}
}

// testKill: a sandbox made for auto-removal is ended by Kill and goes by
// itself, and its id can be used again at once (`sbx run --rm` twice with one name).
func (s *suite) testKill(t *testing.T, ctx context.Context, d driver.Driver) {
	k := driver.CapabilitiesOf(d).Kill
	spec := s.spec(t, newID())
	spec.AutoRemove = true
	for round := range 3 {
		create(t, ctx, d, spec)
		start := time.Now()
		if err := k.Kill(ctx, spec.ID); err != nil {
			t.Fatalf("round %d: Kill: %v", round, err)
		}
		t.Logf("Kill: %v", time.Since(start).Round(time.Millisecond))
	}
	// The last one is gone by itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := d.Inspect(ctx, spec.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a killed auto-removed sandbox is still there after 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Kill of a sandbox without AutoRemove removes it all the same.
	spec.AutoRemove = false
	create(t, ctx, d, spec)
	if err := k.Kill(ctx, spec.ID); err != nil {
		t.Fatalf("Kill without AutoRemove: %v", err)
	}
	if _, err := d.Inspect(ctx, spec.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Inspect after Kill without AutoRemove: %v, want ErrNotFound", err)
	}
}

func (s *suite) testNotFound(t *testing.T, ctx context.Context, d driver.Driver) {
	id := newID()
	if err := d.Remove(ctx, id); err != nil {
		t.Errorf("Remove of an id never created: %v, want nil", err)
	}
	if _, err := d.Inspect(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect: %v, want ErrNotFound", err)
	}
	caps := driver.CapabilitiesOf(d)
	if r := caps.Restart; r != nil {
		if _, err := r.Start(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Start: %v, want ErrNotFound", err)
		}
		if err := r.Stop(ctx, id, time.Second); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Stop: %v, want ErrNotFound", err)
		}
	}
	if k := caps.Kill; k != nil {
		if err := k.Kill(ctx, id); err != nil {
			t.Errorf("Kill of an id never created: %v, want nil", err)
		}
	}
	if err := d.Logs(ctx, id, io.Discard, 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Logs: %v, want ErrNotFound", err)
	}
	if p := caps.Pause; p != nil {
		if err := p.Pause(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Pause: %v, want ErrNotFound", err)
		}
		if _, err := p.Resume(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Resume: %v, want ErrNotFound", err)
		}
	}
}

func (s *suite) testBrokenStart(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	cleanup(t, d, spec.ID)
	start := time.Now()
	sb, err := d.Create(ctx, s.opts.Broken(spec))
	took := time.Since(start)
	t.Logf("broken Create failed in %v: %v", took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatalf("Create of a sandbox whose sandboxd exits succeeded: %+v", sb)
	}
	if took > s.opts.BrokenWithin {
		t.Errorf("the failure took %v, more than %v: the exit was not noticed", took, s.opts.BrokenWithin)
	}
	if !strings.Contains(err.Error(), s.opts.BrokenLog) {
		t.Errorf("the error does not quote sandboxd's output (%q): %v", s.opts.BrokenLog, err)
	}
	if _, err := d.Inspect(ctx, spec.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after the failure: %v, want ErrNotFound (nothing left behind)", err)
	}
	if list, err := d.List(ctx, map[string]string{driver.LabelSession: spec.ID}); err != nil || len(list) != 0 {
		t.Errorf("List after the failure = %v, %v; want none", ids(list), err)
	}
	if list, err := d.List(ctx, nil); err != nil || slices.Contains(ids(list), spec.ID) {
		t.Errorf("List(nil) after the failure = %v, %v; want no %s", ids(list), err, spec.ID)
	}
	// Nothing left behind also means the id is free.
	create(t, ctx, d, spec)
}

func (s *suite) testLogs(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	create(t, ctx, d, spec)
	// The tail first: sandboxd may still log after it answers /alive,
	// and the full log read second then holds the tail's line.
	var one bytes.Buffer
	if err := d.Logs(ctx, spec.ID, &one, 1); err != nil {
		t.Fatalf("Logs(tail 1): %v", err)
	}
	var all bytes.Buffer
	if err := d.Logs(ctx, spec.ID, &all, 0); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if !strings.Contains(all.String(), "sandboxd") {
		t.Errorf("Logs has no line of sandboxd's:\n%s", all.String())
	}
	lines := strings.Split(strings.TrimRight(one.String(), "\n"), "\n")
	allLines := strings.Split(strings.TrimRight(all.String(), "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" || !slices.Contains(allLines, lines[0]) {
		t.Errorf("Logs(tail 1) = %q; want one line of the log", one.String())
	}
}

func (s *suite) testConcurrent(t *testing.T, ctx context.Context, d driver.Driver) {
	n := s.opts.Concurrent
	specs := make([]driver.Spec, n)
	for i := range specs {
		specs[i] = s.spec(t, newID())
		specs[i].Env = map[string]string{"DT_N": strconv.Itoa(i)}
		cleanup(t, d, specs[i].ID)
	}
	sbs := make([]driver.Sandbox, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range specs {
		wg.Go(func() { sbs[i], errs[i] = d.Create(ctx, specs[i]) })
	}
	wg.Wait()
	t.Logf("%d concurrent creates: %v", n, time.Since(start).Round(time.Millisecond))
	urls := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Create(%s): %v", specs[i].ID, err)
			continue
		}
		if urls[sbs[i].Endpoint.URL] {
			t.Errorf("two sandboxes share the endpoint %s", sbs[i].Endpoint.URL)
		}
		urls[sbs[i].Endpoint.URL] = true
	}
	if t.Failed() {
		return
	}
	for i, sb := range sbs {
		if out := mustRun(t, ctx, client(sb), "echo $DT_N"); out != strconv.Itoa(i) {
			t.Errorf("sandbox %d answers as sandbox %q", i, out)
		}
	}
	list, err := d.List(ctx, map[string]string{labelSuite: s.runID})
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range specs {
		if !slices.Contains(ids(list), spec.ID) {
			t.Errorf("List lacks %s", spec.ID)
		}
	}
}

// testNetworkPolicy: a driver without the network-policy capability
// refuses an enforced policy with ErrNotImplemented and makes nothing (no
// silent downgrade); one with it starts a sandbox of policy none that
// works and reports its policy. Policy open is every driver's network.
func (s *suite) testNetworkPolicy(t *testing.T, ctx context.Context, d driver.Driver) {
	none := netpolicy.MustParse("none")
	spec := s.spec(t, newID())
	spec.Network.Policy = &none
	caps := driver.CapabilitiesOf(d)
	if caps.Network == nil {
		cleanup(t, d, spec.ID)
		_, err := d.Create(ctx, spec)
		if !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Fatalf("Create with policy none on a driver without the capability: %v, want ErrNotImplemented", err)
		}
		if _, err := d.Inspect(ctx, spec.ID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Inspect after a refused Create: %v, want ErrNotFound", err)
		}
		open := netpolicy.MustParse("open")
		spec = s.spec(t, newID())
		spec.Network.Policy = &open
		sb := create(t, ctx, d, spec)
		mustRun(t, ctx, client(sb), "true")
		return
	}
	sb := create(t, ctx, d, spec)
	if out := mustRun(t, ctx, client(sb), "echo ok"); out != "ok" {
		t.Errorf("a sandbox of policy none: %q", out)
	}
	p, err := caps.Network.NetworkPolicy(ctx, spec.ID)
	if err != nil || !p.Equal(none) {
		t.Errorf("NetworkPolicy = %s, %v; want none", p, err)
	}
}

// testSWEReX: with the swerex capability, Spec.SWEReX gives a second
// listener speaking SWE-ReX's protocol with the given token, reported by
// Create and Inspect, beside a working OpenHands endpoint; without it,
// Create refuses the spec with ErrNotImplemented and makes nothing.
func (s *suite) testSWEReX(t *testing.T, ctx context.Context, d driver.Driver) {
	spec := s.spec(t, newID())
	token := randid.UUID()
	spec.SWEReX = &driver.SWEReX{Token: token}
	if !driver.CapabilitiesOf(d).SWEReX {
		cleanup(t, d, spec.ID)
		_, err := d.Create(ctx, spec)
		if !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Fatalf("Create with SWEReX on a driver without the capability: %v, want ErrNotImplemented", err)
		}
		if _, err := d.Inspect(ctx, spec.ID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Inspect after a refused Create: %v, want ErrNotFound", err)
		}
		return
	}
	sb := create(t, ctx, d, spec)
	if sb.SWEReX.URL == "" || sb.SWEReX.Token != token {
		t.Fatalf("Sandbox.SWEReX = %+v, want a URL and the token", sb.SWEReX)
	}
	if out := mustRun(t, ctx, client(sb), "echo hi"); out != "hi" {
		t.Errorf("OpenHands side: echo hi printed %q", out)
	}
	again, err := d.Inspect(ctx, spec.ID)
	if err != nil || again.SWEReX != sb.SWEReX {
		t.Errorf("Inspect: SWEReX %+v, %v; want %+v", again.SWEReX, err, sb.SWEReX)
	}
	isAlive := func(key string) (int, string) {
		t.Helper()
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, sb.SWEReX.URL+"/is_alive", nil)
			if err != nil {
				t.Fatal(err)
			}
			if key != "" {
				req.Header.Set("X-API-Key", key)
			}
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				return res.StatusCode, string(b)
			}
			if ctx.Err() != nil {
				t.Fatalf("GET %s/is_alive: %v", sb.SWEReX.URL, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if code, body := isAlive(token); code != http.StatusOK || !strings.Contains(body, `"is_alive":true`) {
		t.Errorf("GET /is_alive with the token: %d %s", code, body)
	}
	if code, body := isAlive(""); code != http.StatusForbidden {
		t.Errorf("GET /is_alive without a token: %d %s, want 403", code, body)
	}
}
