// Package runtimeapibench measures sandbox-api as operators run it: the
// real static binary (with sandboxd beside it) as a process, a SQLite
// store, the real Docker engine, clients over loopback HTTP. Floors are
// measured in the same run.
//
//	go test ./bench/runtimeapibench -run XXX -bench . -benchtime 20x
//	SBX_HEAVY=1 go test ./bench/runtimeapibench -run TestLoad -v   # 5 keys × 20 runtimes × 100 actions
package runtimeapibench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/backend"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/ids"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sbx-apibench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "github.com/sbx-dev/sbx/cmd/sandbox-api", "github.com/sbx-dev/sbx/cmd/sandboxd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func image() string {
	if s := os.Getenv("SBX_TEST_IMAGE"); s != "" {
		return s
	}
	return "sbx-test/debian:bookworm"
}

type service struct {
	url, instance string
	keys          []string
	cmd           *exec.Cmd
	log           bytes.Buffer
}

func requireDocker(tb testing.TB) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			tb.Fatalf("docker required: %v", err)
		}
		tb.Skipf("no docker: %v", err)
	}
}

// startService runs sandbox-api with nkeys tenants.
func startService(tb testing.TB, nkeys int) *service {
	tb.Helper()
	requireDocker(tb)
	dir := tb.TempDir()
	db := filepath.Join(dir, "api.db")
	s := &service{instance: "bench-" + ids.New(6)}
	for i := range nkeys {
		out, err := exec.Command(filepath.Join(binDir, "sandbox-api"), "keys", "create", fmt.Sprintf("k%d", i), "--db", db).Output()
		if err != nil {
			tb.Fatal(err)
		}
		s.keys = append(s.keys, strings.TrimSpace(string(out)))
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	s.url = "http://" + addr
	s.cmd = exec.Command(filepath.Join(binDir, "sandbox-api"), "serve", "--addr", addr, "--db", db, "--instance", s.instance, "--log-level", "warn")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		s.cmd.Wait()
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=dev.sbx.runtimeapi="+s.instance).Output()
		if f := strings.Fields(string(out)); len(f) > 0 {
			exec.Command("docker", append([]string{"rm", "-f", "-v"}, f...)...).Run()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sandbox-api did not come up:\n%s", s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

type rt struct {
	RuntimeID     string `json:"runtime_id"`
	URL           string `json:"url"`
	SessionAPIKey string `json:"session_api_key"`
	Status        string `json:"status"`
	PodStatus     string `json:"pod_status"`
	Reason        string `json:"reason"`
}

var hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func call(tb testing.TB, method, url, key string, body any, out any) int {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

func v0(session string) map[string]any {
	return map[string]any{"image": image(), "session_id": session, "working_dir": "/openhands/code/",
		"command": []string{"python", "-u", "-m", "openhands.runtime.action_execution_server", "60000", "--working-dir", "/workspace", "--username", "root", "--user-id", "0"}}
}

// startReady is what a V0 client waits for: /start, polling until
// pod_status ready, then /alive answering through the proxy.
func (s *service) startReady(tb testing.TB, key, session string) rt {
	var o rt
	if code := call(tb, "POST", s.url+"/start", key, v0(session), &o); code != 200 {
		tb.Fatalf("/start: %d", code)
	}
	for {
		call(tb, "GET", s.url+"/sessions/"+session, key, nil, &o)
		if o.PodStatus == "ready" {
			break
		}
		if o.Status == "error" {
			tb.Fatalf("start failed: %s", o.Reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", o.URL+"/alive", nil)
	req.Header.Set("X-Session-API-Key", o.SessionAPIKey)
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("/alive: %v %v", resp, err)
	}
	resp.Body.Close()
	return o
}

func (s *service) stop(tb testing.TB, key, id string) {
	call(tb, "POST", s.url+"/stop", key, map[string]string{"runtime_id": id}, nil)
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkStartReady: /start → pod_status ready and /alive answered
// through the proxy, against the floor measured in the same run and
// interleaved with it: the Docker driver's own create of the same image
// (ContainerCreate + Start + Inspect + the first /alive answer, i.e.
// `docker run -d` and its first HTTP answer), and its removal.
func BenchmarkStartReady(b *testing.B) {
	s := startService(b, 1)
	cfg := config.Default()
	cfg.Runtime = "docker"
	be, err := backend.Open(context.Background(), cfg, backend.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	// One warm-up of each: the sandboxd volume, the image inspect.
	warm := s.startReady(b, s.keys[0], "warm")
	s.stop(b, s.keys[0], warm.RuntimeID)
	var api, floor []time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		o := s.startReady(b, s.keys[0], fmt.Sprintf("s%d", i))
		api = append(api, time.Since(t0))
		s.stop(b, s.keys[0], o.RuntimeID)

		id := "floor-" + ids.New(4)
		t0 = time.Now()
		if _, err := be.Driver.Create(ctx, driver.Spec{ID: id, Image: image(), Labels: map[string]string{"dev.sbx.runtimeapi": s.instance}, Network: driver.Network{NoAppPorts: true}}); err != nil {
			b.Fatal(err)
		}
		floor = append(floor, time.Since(t0))
		be.Driver.Remove(ctx, id)
	}
	b.StopTimer()
	b.ReportMetric(float64(pct(api, 0.5).Microseconds())/1000, "api-p50-ms")
	b.ReportMetric(float64(pct(floor, 0.5).Microseconds())/1000, "docker-p50-ms")
	b.ReportMetric(float64(pct(api, 0.5))/float64(pct(floor, 0.5)), "ratio")
	b.ReportMetric(float64(pct(api, 0.99).Microseconds())/1000, "api-p99-ms")
}

// BenchmarkProxyOverhead: /alive and a `true` run action through the
// proxy against the same requests straight to sandboxd's published port
// (the floor), interleaved.
func BenchmarkProxyOverhead(b *testing.B) {
	s := startService(b, 1)
	o := s.startReady(b, s.keys[0], "p")
	direct := directURL(b, s.instance, o.RuntimeID)
	send := func(base, path string, body []byte) time.Duration {
		var rd io.Reader
		method := "GET"
		if body != nil {
			rd, method = bytes.NewReader(body), "POST"
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("X-Session-API-Key", o.SessionAPIKey)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s%s: %d", base, path, resp.StatusCode)
		}
		return time.Since(t0)
	}
	action := []byte(`{"action":{"action":"run","args":{"command":"true","blocking":true,"timeout":10}}}`)
	for range 50 { // warm both connections
		send(o.URL, "/alive", nil)
		send(direct, "/alive", nil)
	}
	var pa, da, pr, dr []time.Duration
	b.ResetTimer()
	for range b.N {
		pa = append(pa, send(o.URL, "/alive", nil))
		da = append(da, send(direct, "/alive", nil))
		pr = append(pr, send(o.URL, "/execute_action", action))
		dr = append(dr, send(direct, "/execute_action", action))
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	b.ReportMetric(us(pct(da, 0.5)), "alive-direct-p50-µs")
	b.ReportMetric(us(pct(pa, 0.5)), "alive-proxy-p50-µs")
	b.ReportMetric(us(pct(pa, 0.5)-pct(da, 0.5)), "alive-overhead-µs")
	b.ReportMetric(us(pct(dr, 0.5)), "run-direct-p50-µs")
	b.ReportMetric(us(pct(pr, 0.5)), "run-proxy-p50-µs")
	b.ReportMetric(us(pct(pr, 0.5)-pct(dr, 0.5)), "run-overhead-µs")
}

// directURL is sandboxd's published port of a runtime's container.
func directURL(tb testing.TB, instance, runtimeID string) string {
	out, err := exec.Command("docker", "port", "sbx-"+runtimeID, "30000/tcp").Output()
	if err != nil {
		tb.Fatalf("docker port: %v", err)
	}
	return "http://" + strings.TrimSpace(strings.Split(string(out), "\n")[0])
}

// BenchmarkSessionsPoll30: GET /sessions/{id} from 30 pollers at once
// (the app server's and SDK's readiness and status polls), req/s and p99,
// against 30 runtimes that have finished starting: the starts (container
// creates, sandboxd boots, health probes) would otherwise share the two
// cores with the measured polls, and each round of b.N would start 30
// more. Setup is once; "ready" measures saturation, "at-5000" the goal's rate.
func BenchmarkSessionsPoll30(b *testing.B) {
	s := startService(b, 1)
	for i := range 30 {
		var o rt
		if code := call(b, "POST", s.url+"/start", s.keys[0], v0(fmt.Sprintf("poll%d", i)), &o); code != 200 {
			b.Fatalf("/start: %d", code)
		}
	}
	for i := range 30 {
		for deadline := time.Now().Add(2 * time.Minute); ; {
			var o rt
			call(b, "GET", s.url+"/sessions/poll"+strconv.Itoa(i), s.keys[0], nil, &o)
			if o.PodStatus == "ready" {
				break
			}
			if o.Status == "error" || time.Now().After(deadline) {
				b.Fatalf("poll%d did not start: %s %s", i, o.Status, o.Reason)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// poll runs 30 pollers, each making b.N/30 requests, every interval
	// apart (0: back to back, the service's saturation).
	poll := func(b *testing.B, interval time.Duration) {
		var mu sync.Mutex
		var lat []time.Duration
		per := max(1, b.N/30)
		b.ResetTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for g := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := make([]time.Duration, 0, per)
				next := time.Now().Add(time.Duration(g) * interval / 30)
				for range per {
					if interval > 0 {
						time.Sleep(time.Until(next))
						next = next.Add(interval)
					}
					req, _ := http.NewRequest("GET", s.url+"/sessions/poll"+strconv.Itoa(g), nil)
					req.Header.Set("X-API-Key", s.keys[0])
					t := time.Now()
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		el := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
		b.ReportMetric(float64(pct(lat, 0.99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(pct(lat, 0.5).Microseconds())/1000, "p50-ms")
	}
	// ready: as fast as 30 pollers can go (about 4-5x the goal's
	// throughput on 2 cores, the client sharing them).
	b.Run("ready", func(b *testing.B) { poll(b, 0) })
	// at-5000: the goal's throughput, 30 pollers at 167/s each; its p99
	// is the latency a poller sees when the service serves 5 000/s.
	b.Run("at-5000", func(b *testing.B) { poll(b, 30*time.Second/5000) })
}

func rss(tb testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkServiceRSS: the service's resident memory idle (after a
// request of each kind) and with 100 running runtimes.
func BenchmarkServiceRSS(b *testing.B) {
	for range b.N {
		s := startService(b, 1)
		o := s.startReady(b, s.keys[0], "idle")
		s.stop(b, s.keys[0], o.RuntimeID)
		time.Sleep(500 * time.Millisecond)
		idle := rss(b, s.cmd.Process.Pid)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				s.startReady(b, s.keys[0], fmt.Sprintf("r%d", i))
			}()
		}
		wg.Wait()
		time.Sleep(500 * time.Millisecond)
		full := rss(b, s.cmd.Process.Pid)
		b.ReportMetric(idle, "idle-MiB")
		b.ReportMetric(full, "100-runtimes-MiB")
		b.ReportMetric((full-idle)*1024/100, "KiB/runtime")
	}
}
