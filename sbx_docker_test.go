package sbx_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/owner"
)

// These tests drive the Docker driver through the SDK against the real
// engine. They skip without one, unless SBX_REQUIRE_DOCKER is set (.ci/run
// sets it), and then they fail.

func testImage() string {
	if s := os.Getenv("SBX_TEST_IMAGE"); s != "" {
		return s
	}
	return "sbx-test/debian:bookworm"
}

func needDocker(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Ping(ctx, client.PingOptions{})
	}
	if err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			t.Fatalf("docker engine required: %v", err)
		}
		t.Skipf("no docker engine: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randID(t *testing.T, prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// openRuntime opens a docker runtime configured only by env (plus the test
// image), so the machine's environment cannot leak in.
func openRuntime(t *testing.T, env ...string) *sbx.Runtime {
	t.Helper()
	return openScoped(t, nil, env...)
}

// openScoped is openRuntime confined to the sandboxes carrying scope.
func openScoped(t *testing.T, scope map[string]string, env ...string) *sbx.Runtime {
	t.Helper()
	needDocker(t)
	env = append([]string{"SANDBOX_BASE_CONTAINER_IMAGE=" + testImage()}, env...)
	if p := os.Getenv("SBX_SANDBOXD"); p != "" {
		env = append(env, "SBX_SANDBOXD="+p)
	}
	cfg, err := config.Load(config.Source{Environ: func() []string { return env }, File: os.DevNull})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := sbx.Open(context.Background(), sbx.Options{Config: cfg, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func create(t *testing.T, rt *sbx.Runtime, co sbx.CreateOptions) *sbx.Sandbox {
	t.Helper()
	if co.ID == "" {
		co.ID = randID(t, "sdk")
	}
	sb, err := rt.Create(context.Background(), co)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Remove(context.Background(), co.ID) })
	return sb
}

func exec(t *testing.T, sb *sbx.Sandbox, cmd string) string {
	t.Helper()
	out, code, err := sb.Exec(context.Background(), cmd, 30*time.Second)
	if err != nil || code != 0 {
		t.Fatalf("%s: exit %d, %v: %s", cmd, code, err, out)
	}
	return strings.TrimSpace(out)
}

func TestDockerWorkspaceOwnedByUserID(t *testing.T) {
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	pre := filepath.Join(ws, "pre-existing")
	if err := os.WriteFile(pre, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := openRuntime(t, "WORKSPACE_BASE="+ws, "SANDBOX_USER_ID=4321")
	sb := create(t, rt, sbx.CreateOptions{})
	if got := exec(t, sb, "id -u && touch /workspace/made-by-agent && mkdir /workspace/dir && pwd"); got != "4321\n/workspace" {
		t.Fatalf("id/pwd: %q", got)
	}
	for _, name := range []string{"made-by-agent", "dir"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(ws, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 4321 {
			t.Errorf("%s owned by uid %d on the host, want 4321", name, st.Uid)
		}
	}
	var st syscall.Stat_t
	syscall.Stat(pre, &st)
	if int(st.Uid) != os.Getuid() {
		t.Errorf("a host file's owner changed to %d", st.Uid)
	}
}

// A mounted workspace keeps the mode and owner its owner gave it
// (defect 3: sandboxd used to add g+rw, 755 becoming 775).
func TestDockerWorkspaceKeepsMode(t *testing.T) {
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(ws, &before); err != nil {
		t.Fatal(err)
	}
	rt := openRuntime(t, "WORKSPACE_BASE="+ws, "SANDBOX_USER_ID=4321")
	sb := create(t, rt, sbx.CreateOptions{})
	if got := exec(t, sb, "stat -c %a /workspace"); got != "755" {
		t.Errorf("mode in the sandbox: %s, want 755", got)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(ws, &after); err != nil {
		t.Fatal(err)
	}
	if after.Mode != before.Mode || after.Uid != before.Uid || after.Gid != before.Gid {
		t.Errorf("host workspace: mode %#o uid %d gid %d before, mode %#o uid %d gid %d after",
			before.Mode, before.Uid, before.Gid, after.Mode, after.Uid, after.Gid)
	}
}

func TestDockerEnvSetup(t *testing.T) {
	rt := openRuntime(t, "SANDBOX_ENV_FROM_HOST=fh", `SANDBOX_RUNTIME_STARTUP_ENV_VARS={'TRICKY': "a'b $HOME"}`)
	sb := create(t, rt, sbx.CreateOptions{Env: map[string]string{"CALLER": "c"}})
	if got := exec(t, sb, `echo "$FROM_HOST|$TRICKY|$CALLER|$OPENHANDS_SESSION_ID"`); got != "fh|a'b $HOME|c|"+sb.ID() {
		t.Fatalf("env: %q", got)
	}
	if got := exec(t, sb, `grep -c '^export TRICKY=' ~/.bashrc; git config --global user.name; bash -ic 'echo "$TRICKY"' 2>/dev/null`); got != "1\nopenhands\na'b $HOME" {
		t.Fatalf("bashrc/git: %q", got)
	}
}

func TestDockerPortsOnLoopback(t *testing.T) {
	rt := openRuntime(t)
	sb := create(t, rt, sbx.CreateOptions{})
	in := sb.Info()
	if !strings.HasPrefix(in.URL, "http://127.0.0.1:") {
		t.Fatalf("server URL %q", in.URL)
	}
	if len(in.AppPorts) != 2 || in.AppPorts[0].Sandbox != 50000 || in.AppPorts[1].Sandbox != 55000 {
		t.Fatalf("app ports %+v", in.AppPorts)
	}
	// An app the agent starts on APP_PORT_1 is reachable from the host.
	exec(t, sb, `cd /tmp && (python3 -m http.server "$APP_PORT_1" >/dev/null 2>&1 &) ; for i in $(seq 50); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$APP_PORT_1/')" 2>/dev/null && break; sleep 0.1; done`)
	resp, err := httpGet(in.AppPorts[0].URL)
	if err != nil {
		t.Fatalf("app port 1 from the host: %v", err)
	}
	if resp != 200 {
		t.Fatalf("app port status %d", resp)
	}
}

func TestDockerKeepAliveAndAttach(t *testing.T) {
	id := randID(t, "keep")
	rt := openRuntime(t, "SANDBOX_KEEP_RUNTIME_ALIVE=true")
	sb := create(t, rt, sbx.CreateOptions{ID: id})
	exec(t, sb, "export KEPT=yes; sleep 600 & echo $! > /tmp/bgpid")
	if err := sb.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	in, err := rt.Get(context.Background(), id)
	if err != nil || in.State != "running" || !in.Keep {
		t.Fatalf("after close: %+v %v", in, err)
	}
	// A later start with the same session id attaches: same shell, same
	// background process, no set-up run again.
	rt2 := openRuntime(t, "SANDBOX_KEEP_RUNTIME_ALIVE=true")
	sb2, err := rt2.Create(context.Background(), sbx.CreateOptions{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := exec(t, sb2, `echo $KEPT; kill -0 $(cat /tmp/bgpid) && echo alive`); got != "yes\nalive" {
		t.Fatalf("attached shell: %q", got)
	}
	// attach_to_existing with no such sandbox is NotFound.
	if _, err := rt2.Attach(context.Background(), randID(t, "none")); !errors.Is(err, sbx.ErrNotFound) {
		t.Fatalf("attach to a missing sandbox: %v", err)
	}
}

func TestDockerDuplicateID(t *testing.T) {
	rt := openRuntime(t)
	sb := create(t, rt, sbx.CreateOptions{})
	_, err := rt.Create(context.Background(), sbx.CreateOptions{ID: sb.ID()})
	if !errors.Is(err, sbx.ErrAlreadyExists) {
		t.Fatalf("second create: %v", err)
	}
	exec(t, sb, "true")
}

func TestDockerStartupFailureQuotesLogs(t *testing.T) {
	rt := openRuntime(t)
	// With Remove the engine deletes the container as it exits, so the
	// log tail must have been read while it ran.
	for _, remove := range []bool{false, true} {
		id := randID(t, "broken")
		t0 := time.Now()
		_, err := rt.Create(context.Background(), sbx.CreateOptions{ID: id, Plugins: []string{"no-such-plugin"}, Remove: remove})
		if err == nil || !strings.Contains(err.Error(), "no-such-plugin") || !strings.Contains(err.Error(), "exited during start-up") {
			t.Fatalf("remove=%v: err = %v", remove, err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("remove=%v: failure took %v to report", remove, d)
		}
		if _, err := rt.Get(context.Background(), id); !errors.Is(err, sbx.ErrNotFound) {
			t.Fatalf("remove=%v: the failed sandbox was left behind: %v", remove, err)
		}
	}
}

func TestDockerLeavesForeignContainersAlone(t *testing.T) {
	c := needDocker(t)
	rt := openRuntime(t)
	ctx := context.Background()
	id := randID(t, "foreign")
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "sbx-" + id,
		Config: &container.Config{Image: testImage(), Entrypoint: []string{"sleep", "300"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true}) })
	if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Get(ctx, id); !errors.Is(err, sbx.ErrNotFound) {
		t.Fatalf("Get of a foreign container: %v", err)
	}
	if err := rt.Stop(ctx, id, time.Second); !errors.Is(err, sbx.ErrNotFound) {
		t.Fatalf("Stop of a foreign container: %v", err)
	}
	if err := rt.Pause(ctx, id); !errors.Is(err, sbx.ErrNotFound) {
		t.Fatalf("Pause of a foreign container: %v", err)
	}
	if err := rt.Remove(ctx, id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	ins, err := c.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil || !ins.Container.State.Running {
		t.Fatalf("the foreign container was touched: %v", err)
	}
	for _, in := range must(rt.List(ctx)) {
		if in.ID == id || in.ID == "" {
			t.Fatalf("List shows %+v", in)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestDockerExecWaitsForQuietCommandsAndTimesOut(t *testing.T) {
	rt := openRuntime(t, `SANDBOX_RUNTIME_STARTUP_ENV_VARS={'NO_CHANGE_TIMEOUT_SECONDS': '1'}`)
	sb := create(t, rt, sbx.CreateOptions{})
	ctx := context.Background()
	// Quiet for longer than the no-change timeout: still waited for.
	out, code, err := sb.Exec(ctx, "sleep 2; echo done", 30*time.Second)
	if err != nil || code != 0 || strings.TrimSpace(out) != "done" {
		t.Fatalf("quiet command: %q %d %v", out, code, err)
	}
	_, code, err = sb.Exec(ctx, "sleep 30", time.Second)
	if !errors.Is(err, sbx.ErrTimeout) || code != -1 {
		t.Fatalf("timed-out command: %d %v", code, err)
	}
}

func TestDockerPauseResumeKeepsProcesses(t *testing.T) {
	rt := openRuntime(t)
	sb := create(t, rt, sbx.CreateOptions{})
	exec(t, sb, "export BEFORE=1; (while :; do date +%s%N >> /tmp/tick; sleep 0.02; done) & echo $! > /tmp/loop")
	ctx := context.Background()
	if err := sb.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if in, _ := rt.Get(ctx, sb.ID()); in.State != "paused" {
		t.Fatalf("state %q", in.State)
	}
	if err := sb.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	n1 := exec(t, sb, "wc -l < /tmp/tick")
	time.Sleep(200 * time.Millisecond)
	if got := exec(t, sb, `kill -0 $(cat /tmp/loop) && echo "$BEFORE" && wc -l < /tmp/tick`); !strings.HasPrefix(got, "1\n") || strings.HasSuffix(got, "\n"+n1) {
		t.Fatalf("after resume: %q (ticks before: %s)", got, n1)
	}
}

func TestDockerGC(t *testing.T) {
	rt := openRuntime(t)
	ctx := context.Background()
	// Only this test's sandboxes are collected: other tests share the
	// engine, and a zero grace period would take theirs too.
	run := map[string]string{"dev.sbx.test-run": randID(t, "gc")}
	stopped := create(t, rt, sbx.CreateOptions{Labels: run})
	if err := stopped.Close(ctx); err != nil { // stops, keeps files
		t.Fatal(err)
	}
	kept := create(t, rt, sbx.CreateOptions{Keep: true, Labels: run})
	live := create(t, rt, sbx.CreateOptions{Labels: run})
	// A creator that has exited: a real process, gone.
	p := osexec.Command("sleep", "0")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	dead := owner.Of(p.Process.Pid)
	p.Wait()
	orphanLabels := map[string]string{"dev.sbx.owner": dead}
	for k, v := range run {
		orphanLabels[k] = v
	}
	orphan := create(t, rt, sbx.CreateOptions{Labels: orphanLabels})

	// Within the grace period nothing is taken.
	got, err := rt.GC(ctx, sbx.GCOptions{Grace: time.Hour, DryRun: true, Match: run})
	if err != nil || len(got) != 0 {
		t.Fatalf("gc within the grace period: %+v %v", got, err)
	}
	got, err = rt.GC(ctx, sbx.GCOptions{DryRun: true, Match: run})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{stopped.ID(): true, orphan.ID(): true}
	seen := map[string]bool{}
	for _, in := range got {
		seen[in.ID] = true
	}
	if len(seen) != 2 || !seen[stopped.ID()] || !seen[orphan.ID()] {
		t.Fatalf("gc dry run = %+v, want exactly %s and %s", got, stopped.ID(), orphan.ID())
	}
	if _, err := rt.Get(ctx, stopped.ID()); err != nil {
		t.Fatal("dry run removed something")
	}
	if _, err := rt.GC(ctx, sbx.GCOptions{Match: run}); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if _, err := rt.Get(ctx, id); !errors.Is(err, sbx.ErrNotFound) {
			t.Fatalf("%s survived gc: %v", id, err)
		}
	}
	for _, id := range []string{kept.ID(), live.ID()} {
		if _, err := rt.Get(ctx, id); err != nil {
			t.Fatalf("gc removed held sandbox %s: %v", id, err)
		}
	}
}

func TestDockerTwentyConcurrent(t *testing.T) {
	rt := openRuntime(t)
	const n = 20
	var wg sync.WaitGroup
	urls := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := randID(t, "conc")
			t.Cleanup(func() { rt.Remove(context.Background(), id) })
			sb, err := rt.Create(context.Background(), sbx.CreateOptions{ID: id, Remove: true})
			if err != nil {
				errs[i] = err
				return
			}
			out, code, err := sb.Exec(context.Background(), "echo $OPENHANDS_SESSION_ID", 30*time.Second)
			if err == nil && (code != 0 || strings.TrimSpace(out) != id) {
				err = errors.New("wrong answer " + out)
			}
			urls[i], errs[i] = sb.Info().URL, err
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("sandbox %d: %v", i, errs[i])
		}
		if seen[urls[i]] {
			t.Fatalf("two sandboxes share %s", urls[i])
		}
		seen[urls[i]] = true
	}
}

func TestDockerNewBaseImageNeedsNoBuild(t *testing.T) {
	c := needDocker(t)
	ctx := context.Background()
	tag := "sbx-test/fresh-base:" + randID(t, "t")
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: testImage(), Target: tag}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ImageRemove(ctx, tag, client.ImageRemoveOptions{}) })
	// Only an image built from this base counts: other tests build images
	// of their own at the same time.
	fromTag := client.ImageListOptions{All: true, Filters: client.Filters{}.Add("label", "dev.sbx.base="+tag)}
	rt := openRuntime(t, "SANDBOX_BASE_CONTAINER_IMAGE="+tag)
	sb := create(t, rt, sbx.CreateOptions{})
	exec(t, sb, "test -x /opt/sbx/sandboxd")
	if built, err := c.ImageList(ctx, fromTag); err != nil || len(built.Items) != 0 {
		t.Fatalf("an image was built from the new base: %d (%v)", len(built.Items), err)
	}
	if sb.Info().Image != tag {
		t.Fatalf("image %q", sb.Info().Image)
	}
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestDockerRuntimeExtraDepsBuildsOnce(t *testing.T) {
	c := needDocker(t)
	ctx := context.Background()
	marker := randID(t, "extra")
	deps := "echo " + marker + " > /opt/extra-marker"
	rt := openRuntime(t, "SANDBOX_RUNTIME_EXTRA_DEPS="+deps)
	sb := create(t, rt, sbx.CreateOptions{})
	img := sb.Info().Image
	var users []string // sandboxes to remove before the image can go
	t.Cleanup(func() {
		for _, id := range users {
			rt.Remove(context.Background(), id)
		}
		c.ImageRemove(context.Background(), img, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	users = append(users, sb.ID())
	if !strings.HasPrefix(img, "sbx-runtime:") {
		t.Fatalf("image %q, want a built sbx-runtime image", img)
	}
	if got := exec(t, sb, "cat /opt/extra-marker"); got != marker {
		t.Fatalf("marker %q", got)
	}
	// A second runtime with the same inputs reuses the image.
	rt2 := openRuntime(t, "SANDBOX_RUNTIME_EXTRA_DEPS="+deps)
	sb2 := create(t, rt2, sbx.CreateOptions{})
	users = append(users, sb2.ID())
	if sb2.Info().Image != img {
		t.Fatalf("second sandbox runs %q, want the same image %q", sb2.Info().Image, img)
	}
	_ = ctx
}

func TestDockerInitGitInEmptyWorkspace(t *testing.T) {
	ws := t.TempDir()
	os.Chmod(ws, 0o777)
	rt := openRuntime(t, "WORKSPACE_BASE="+ws, "INIT_GIT_IN_EMPTY_WORKSPACE=true")
	sb := create(t, rt, sbx.CreateOptions{})
	exec(t, sb, "test -d /workspace/.git")
	if _, err := os.Stat(filepath.Join(ws, ".git")); err != nil {
		t.Fatal(err)
	}
}

func TestDockerHostNetwork(t *testing.T) {
	rt := openRuntime(t, "SANDBOX_USE_HOST_NETWORK=true")
	sb := create(t, rt, sbx.CreateOptions{})
	in := sb.Info()
	if !strings.HasPrefix(in.URL, "http://127.0.0.1:") || len(in.AppPorts) != 0 {
		t.Fatalf("info %+v", in)
	}
	// sandboxd shares the host's network and listens on the binding
	// address only: not on the host's other addresses (the docker0
	// bridge's, say).
	port := in.URL[strings.LastIndexByte(in.URL, ':')+1:]
	if got := exec(t, sb, "echo $port"); got != port {
		t.Fatalf("port inside %q, URL %s", got, in.URL)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLoopback() || ip.IP.To4() == nil {
			continue
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.IP.String(), port), time.Second); err == nil {
			c.Close()
			t.Fatalf("sandboxd answers on %s:%s, not only on loopback", ip.IP, port)
		}
	}
}

func TestDockerAdditionalNetworks(t *testing.T) {
	c := needDocker(t)
	ctx := context.Background()
	name := randID(t, "sbx-test-net")
	if _, err := c.NetworkCreate(ctx, name, client.NetworkCreateOptions{Labels: map[string]string{"sbx.test": "1"}}); err != nil {
		t.Fatal(err)
	}
	rt := openRuntime(t, `SANDBOX_ADDITIONAL_NETWORKS=['`+name+`']`)
	sb := create(t, rt, sbx.CreateOptions{})
	t.Cleanup(func() {
		rt.Remove(context.Background(), sb.ID())
		c.NetworkRemove(context.Background(), name, client.NetworkRemoveOptions{})
	})
	ins, err := c.ContainerInspect(ctx, "sbx-"+sb.ID(), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ins.Container.NetworkSettings.Networks[name]; !ok {
		t.Fatalf("not on %s: %v", name, ins.Container.NetworkSettings.Networks)
	}
	exec(t, sb, "true")
}

// DOCKER_HOST_ADDR with a matching binding address is how sbx in a
// container on the default bridge reaches its siblings: through the
// bridge's gateway, never through 0.0.0.0.
func TestDockerHostAddr(t *testing.T) {
	needDocker(t)
	// The default bridge's gateway is the host's docker0 address (20.10
	// does not list it in the network's IPAM config).
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Skipf("no docker0 bridge on this host (rootless or custom engine): %v", err)
	}
	addrs, _ := ifc.Addrs()
	gw := ""
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil {
			gw = ip.IP.String()
		}
	}
	if gw == "" {
		t.Skip("docker0 has no IPv4 address")
	}
	rt := openRuntime(t, "DOCKER_HOST_ADDR="+gw, "SANDBOX_RUNTIME_BINDING_ADDRESS="+gw)
	sb := create(t, rt, sbx.CreateOptions{})
	if in := sb.Info(); !strings.HasPrefix(in.URL, "http://"+gw+":") {
		t.Fatalf("URL %s, want the gateway %s", in.URL, gw)
	}
	exec(t, sb, "true")
}

// Defect: after Close of a Remove sandbox (`sbx run --rm`) the same id was
// refused with "already exists" until the engine finished deleting it.
func TestDockerRemoveThenSameIDAtOnce(t *testing.T) {
	rt := openRuntime(t)
	id := randID(t, "again")
	t.Cleanup(func() { rt.Remove(context.Background(), id) })
	for round := range 3 {
		sb, err := rt.Create(context.Background(), sbx.CreateOptions{ID: id, Remove: true, NoAppPorts: true})
		if err != nil {
			t.Fatalf("round %d: Create: %v", round, err)
		}
		if got := exec(t, sb, "echo $OPENHANDS_SESSION_ID"); got != id {
			t.Fatalf("round %d: %q", round, got)
		}
		if err := sb.Close(context.Background()); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
	}
	// Remove (not Kill) is complete when it returns as well.
	sb := create(t, rt, sbx.CreateOptions{ID: id})
	_ = sb
	if err := rt.Remove(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Get(context.Background(), id); !errors.Is(err, sbx.ErrNotFound) {
		t.Fatalf("Get right after Remove: %v, want ErrNotFound", err)
	}
}

// rm_all_containers stops every sbx sandbox by its nature, and gc removes
// every collectable one: a run confined to a Scope (as a test suite or an
// evaluation is) must do both to its own sandboxes only, never to a
// developer's on the same engine.
func TestDockerScopeSparesOthers(t *testing.T) {
	ctx := context.Background()
	dev := openRuntime(t)
	devRunning := create(t, dev, sbx.CreateOptions{})
	devStopped := create(t, dev, sbx.CreateOptions{})
	if err := devStopped.Close(ctx); err != nil {
		t.Fatal(err)
	}

	scope := map[string]string{"sbx.test.run": randID(t, "scope")}
	rt := openScoped(t, scope, "SANDBOX_RM_ALL_CONTAINERS=true")
	other := create(t, rt, sbx.CreateOptions{})
	mine := create(t, rt, sbx.CreateOptions{})
	if in := must(rt.Get(ctx, mine.ID())); in.Labels["sbx.test.run"] != scope["sbx.test.run"] {
		t.Fatalf("a sandbox of the scope lacks its label: %v", in.Labels)
	}
	for _, in := range must(rt.List(ctx)) {
		if in.ID != mine.ID() && in.ID != other.ID() {
			t.Errorf("List of the scope shows %s", in.ID)
		}
	}
	if err := mine.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if in := must(rt.Get(ctx, other.ID())); in.State != sbx.StateStopped {
		t.Errorf("rm_all_containers left the scope's %s %s", other.ID(), in.State)
	}
	if in := must(dev.Get(ctx, devRunning.ID())); in.State != sbx.StateRunning {
		t.Errorf("rm_all_containers stopped the developer's %s: %s", devRunning.ID(), in.State)
	}

	got, err := rt.GC(ctx, sbx.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("gc of the scope took %+v, want %s and %s", got, mine.ID(), other.ID())
	}
	if _, err := dev.Get(ctx, devStopped.ID()); err != nil {
		t.Errorf("gc of the scope removed the developer's stopped %s: %v", devStopped.ID(), err)
	}
}
