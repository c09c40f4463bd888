// Package dockerbench measures sandbox creation through the Docker driver
// against floors taken in the same run on the same engine:
//
//	go test ./bench/dockerbench -run XXX -bench . -benchtime 20x
//
// Figures (custom metrics): p50-ms/p99-ms for create → first `echo hi`,
// all-ready-ms for a burst of 20, wall-ms for `sbx run --rm -- echo hi`,
// MB/sandbox for 100 idle sandboxes. The image is SBX_BENCH_IMAGE
// (default sbx-test/debian:bookworm, built by scripts/mkimage-debian.sh).
package dockerbench

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
)

type env struct {
	api      *client.Client
	image    string
	floorImg string
	binDir   string // sbx and sandboxd, side by side as installed
}

var setupOnce sync.Once
var setupEnv *env
var setupErr error

func setup(b *testing.B) *env {
	b.Helper()
	setupOnce.Do(func() { setupEnv, setupErr = doSetup() })
	if setupErr != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") == "" && strings.Contains(setupErr.Error(), "ping") {
			b.Skip(setupErr)
		}
		b.Fatal(setupErr)
	}
	return setupEnv
}

func doSetup() (*env, error) {
	ctx := context.Background()
	api, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	if _, err := api.Ping(ctx, client.PingOptions{}); err != nil {
		return nil, fmt.Errorf("docker ping: %w", err)
	}
	e := &env{api: api, image: os.Getenv("SBX_BENCH_IMAGE")}
	if e.image == "" {
		e.image = "sbx-test/debian:bookworm"
	}
	dir, err := os.MkdirTemp("", "sbx-dockerbench-")
	if err != nil {
		return nil, err
	}
	e.binDir = dir
	for _, p := range []string{"sandboxd", "floorsrv"} {
		pkg := "github.com/sbx-dev/sbx/cmd/" + p
		if p == "floorsrv" {
			pkg = "github.com/sbx-dev/sbx/bench/dockerbench/floorsrv"
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, p), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", p, err, out)
		}
	}
	// The floor server as a FROM-scratch image, imported from a tar: the
	// smallest container the engine can run.
	bin, err := os.ReadFile(filepath.Join(dir, "floorsrv"))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "floorsrv", Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	tw.Close()
	// Tagged by content, so repeated runs reuse one image instead of
	// leaving the previous import behind untagged.
	sum := sha256.Sum256(bin)
	e.floorImg = "sbx-bench/floor:" + hex.EncodeToString(sum[:6])
	if _, err := api.ImageInspect(ctx, e.floorImg); err == nil {
		return e, nil
	}
	rc, err := api.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, e.floorImg,
		client.ImageImportOptions{Changes: []string{`CMD ["/floorsrv"]`, "LABEL dev.sbx.managed=true"}})
	if err != nil {
		return nil, fmt.Errorf("import floor image: %w", err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	return e, nil
}

func (e *env) runtime(b *testing.B) *sbx.Runtime {
	b.Helper()
	cfg, err := config.Load(config.Source{Environ: func() []string {
		return []string{"SANDBOX_BASE_CONTAINER_IMAGE=" + e.image, "SBX_SANDBOXD=" + filepath.Join(e.binDir, "sandboxd")}
	}, File: os.DevNull})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := sbx.Open(context.Background(), sbx.Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	return rt
}

func report(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	if len(d) == 0 {
		return
	}
	p := func(q float64) float64 {
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

var seq struct {
	sync.Mutex
	n int
}

func uniqueID(prefix string) string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.n)
}

// BenchmarkCreateToFirstEcho is the time from asking for a sandbox to the
// first observation of `echo hi`, as an SDK user meets it.
func BenchmarkCreateToFirstEcho(b *testing.B) { benchCreate(b, sbx.CreateOptions{}) }

// BenchmarkCreateToFirstEchoNoAppPorts is the same with only the server
// port published (CreateOptions.NoAppPorts, `sbx run --no-app-ports`).
func BenchmarkCreateToFirstEchoNoAppPorts(b *testing.B) {
	benchCreate(b, sbx.CreateOptions{NoAppPorts: true})
}

func benchCreate(b *testing.B, co sbx.CreateOptions) {
	e := setup(b)
	rt := e.runtime(b)
	ctx := context.Background()
	co.Remove = true
	var d []time.Duration
	for b.Loop() {
		o := co
		o.ID = uniqueID("bench")
		t0 := time.Now()
		sb, err := rt.Create(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		out, code, err := sb.Exec(ctx, "echo hi", 0)
		if err != nil || code != 0 || strings.TrimSpace(out) != "hi" {
			b.Fatalf("echo hi: %q %d %v", out, code, err)
		}
		d = append(d, time.Since(t0))
		b.StopTimer()
		sb.Close(ctx)
		e.waitGone(b, o.ID)
		b.StartTimer()
	}
	report(b, d)
}

// waitGone waits until the engine has finished removing a sandbox closed
// with Remove (which only asks for the removal), so that one iteration's
// clean-up does not load the engine during the next, as the floors'
// synchronous removals do not.
func (e *env) waitGone(b *testing.B, id string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := e.api.ContainerInspect(context.Background(), "sbx-"+id, client.ContainerInspectOptions{}); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("sandbox %s still there 30 s after close", id)
}

// floorOne is `docker run -d -p 127.0.0.1::8080` of the static server until
// its first HTTP answer.
func (e *env) floorOne(ctx context.Context, name string) (string, error) {
	port := network.MustParsePort("8080/tcp")
	res, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config:     &container.Config{Image: e.floorImg, ExposedPorts: network.PortSet{port: {}}, Labels: map[string]string{"dev.sbx.bench": "floor"}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{port: {{HostIP: mustAddr("127.0.0.1")}}}}})
	if err != nil {
		return "", err
	}
	if _, err := e.api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return res.ID, err
	}
	ins, err := e.api.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		return res.ID, err
	}
	url := "http://127.0.0.1:" + ins.Container.NetworkSettings.Ports[port][0].HostPort + "/"
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	delay := time.Millisecond
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			return res.ID, nil
		}
		if ctx.Err() != nil {
			return res.ID, ctx.Err()
		}
		time.Sleep(delay)
		if delay < 25*time.Millisecond {
			delay *= 2
		}
	}
}

func (e *env) rm(id string) {
	e.api.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
}

// BenchmarkFloorDockerRun is the floor of BenchmarkCreateToFirstEcho.
func BenchmarkFloorDockerRun(b *testing.B) {
	e := setup(b)
	ctx := context.Background()
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		id, err := e.floorOne(ctx, uniqueID("floor"))
		if err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
		b.StopTimer()
		e.rm(id)
		b.StartTimer()
	}
	report(b, d)
}

const burst = 20

// BenchmarkBurst20 creates 20 sandboxes at once and reports when all of
// them answered `echo hi`.
func BenchmarkBurst20(b *testing.B) { benchBurst(b, sbx.CreateOptions{}) }

// BenchmarkBurst20NoAppPorts is BenchmarkBurst20 for evaluation runs:
// only the server port published.
func BenchmarkBurst20NoAppPorts(b *testing.B) { benchBurst(b, sbx.CreateOptions{NoAppPorts: true}) }

func benchBurst(b *testing.B, co sbx.CreateOptions) {
	e := setup(b)
	rt := e.runtime(b)
	ctx := context.Background()
	co.Remove = true
	var d []time.Duration
	for b.Loop() {
		sbs := make([]*sbx.Sandbox, burst)
		errs := make([]error, burst)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range burst {
			wg.Go(func() {
				o := co
				o.ID = uniqueID("burst")
				sb, err := rt.Create(ctx, o)
				if err == nil {
					_, _, err = sb.Exec(ctx, "echo hi", 0)
				}
				sbs[i], errs[i] = sb, err
			})
		}
		wg.Wait()
		d = append(d, time.Since(t0))
		b.StopTimer()
		for i, sb := range sbs {
			if errs[i] != nil {
				b.Error(errs[i])
			}
			if sb != nil {
				sb.Close(ctx)
				e.waitGone(b, sb.ID())
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(slices.Max(d).Milliseconds()), "all-ready-ms")
	report(b, d)
}

// BenchmarkFloorBurst20 is 20 concurrent `docker run -d` of the static
// server, until all answer.
func BenchmarkFloorBurst20(b *testing.B) {
	e := setup(b)
	ctx := context.Background()
	var d []time.Duration
	for b.Loop() {
		ids := make([]string, burst)
		errs := make([]error, burst)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range burst {
			wg.Go(func() { ids[i], errs[i] = e.floorOne(ctx, uniqueID("floorburst")) })
		}
		wg.Wait()
		d = append(d, time.Since(t0))
		b.StopTimer()
		for i := range ids {
			if errs[i] != nil {
				b.Error(errs[i])
			}
			if ids[i] != "" {
				e.rm(ids[i])
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(slices.Max(d).Milliseconds()), "all-ready-ms")
	report(b, d)
}

// BenchmarkSbxRunRm is the whole `sbx run --rm -- echo hi` command, the
// installed binary (sbx with sandboxd beside it) started as a process.
func BenchmarkSbxRunRm(b *testing.B) {
	e := setup(b)
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(e.binDir, "sbx"), "github.com/sbx-dev/sbx/cmd/sbx")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build sbx: %v\n%s", err, out)
	}
	var d []time.Duration
	for b.Loop() {
		id := uniqueID("runrm")
		cmd := exec.Command(filepath.Join(e.binDir, "sbx"), "run", "--rm", "--name", id, "--", "echo", "hi")
		cmd.Env = append(os.Environ(), "SANDBOX_BASE_CONTAINER_IMAGE="+e.image, "SBX_CONFIG="+os.DevNull)
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		d = append(d, time.Since(t0))
		if err != nil || strings.TrimSpace(string(out)) != "hi" {
			b.Fatalf("sbx run: %v: %s", err, out)
		}
		b.StopTimer()
		e.waitGone(b, id)
		b.StartTimer()
	}
	report(b, d)
}

// BenchmarkFloorDockerCLIRunRm is `docker run --rm IMAGE echo hi`, the
// CLI floor of BenchmarkSbxRunRm.
func BenchmarkFloorDockerCLIRunRm(b *testing.B) {
	e := setup(b)
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		out, err := exec.Command("docker", "run", "--rm", e.image, "echo", "hi").CombinedOutput()
		d = append(d, time.Since(t0))
		if err != nil {
			b.Fatalf("docker run: %v: %s", err, out)
		}
	}
	report(b, d)
}

// BenchmarkIdleMemory100 starts 100 sandboxes, lets them idle, and reports
// the host memory they cost: the drop in MemAvailable divided by 100, and
// the summed PSS of every process they added (sandboxd, bash, the engine's
// shim, proxy and overlay processes).
func BenchmarkIdleMemory100(b *testing.B) {
	e := setup(b)
	rt := e.runtime(b)
	ctx := context.Background()
	n := 100
	if s := os.Getenv("SBX_BENCH_IDLE_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for b.Loop() {
		before := pids()
		availBefore := memAvailable()
		sbs := make([]*sbx.Sandbox, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		var mu sync.Mutex
		var firstErr error
		for i := range n {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				sb, err := rt.Create(ctx, sbx.CreateOptions{ID: uniqueID("idle"), Remove: true})
				if err == nil {
					_, _, err = sb.Exec(ctx, "true", 0)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				sbs[i] = sb
			})
		}
		wg.Wait()
		time.Sleep(3 * time.Second) // let start-up garbage be collected
		availAfter := memAvailable()
		var pss int64
		for pid := range pids() {
			if _, ok := before[pid]; !ok {
				pss += pssKB(pid)
			}
		}
		b.StopTimer()
		for _, sb := range sbs {
			if sb != nil {
				sb.Close(ctx)
				e.waitGone(b, sb.ID())
			}
		}
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		b.ReportMetric(float64(availBefore-availAfter)/1024/float64(n), "MB-avail/sandbox")
		b.ReportMetric(float64(pss)/1024/float64(n), "MB-pss/sandbox")
		b.ReportMetric(0, "ns/op")
		b.StartTimer()
	}
}

func pids() map[int]struct{} {
	out := map[int]struct{}{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out[pid] = struct{}{}
		}
	}
	return out
}

func pssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

func memAvailable() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
