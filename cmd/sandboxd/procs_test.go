package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// envServe makes the test binary a tiny HTTP server (see TestMain): the
// background server of the process tests, with no dependency on what the
// machine has installed.
const envServe = "SBX_TEST_HTTP_SERVE"

func TestMain(m *testing.M) {
	if addr := os.Getenv(envServe); addr != "" {
		serveHello(addr)
		return
	}
	os.Exit(m.Run())
}

func serveHello(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, "served %s\n", r.URL.Path)
		fmt.Fprintf(w, "hello from the background server, path %s\n", r.URL.Path)
	}))
}

// sandboxdProc is a running sandboxd built from this package.
type sandboxdProc struct {
	url, key string
	pid      int
	c        *sandboxapi.Client
}

// startKeyed runs sandboxd as startSandboxd does, with a session key,
// and a client for it.
func startKeyed(t *testing.T) *sandboxdProc {
	t.Helper()
	const key = "0123456789abcdef0123456789abcdef"
	c := startSandboxd(t, buildSandboxd(t), filepath.Join(t.TempDir(), "work"), "SESSION_API_KEY="+key, "SBX_STATE_DIR="+t.TempDir())
	return &sandboxdProc{url: c.url, key: key, pid: c.cmd.Process.Pid, c: sandboxapi.NewClient(c.url, key)}
}

func (s *sandboxdProc) request(t *testing.T, method, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(sandboxapi.HeaderSessionAPIKey, s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (s *sandboxdProc) call(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	resp := s.request(t, method, path, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
}

type procInfo struct {
	ID        int       `json:"id"`
	PID       int       `json:"pid"`
	State     string    `json:"state"`
	ExitCode  *int      `json:"exit_code"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
}

// TestBackgroundServerSurvivesDisconnect: a background server started
// through the process API survives its client's disconnect and is
// reachable from a later run action.
func TestBackgroundServerSurvivesDisconnect(t *testing.T) {
	s := startKeyed(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"argv": []string{self}, "env": map[string]string{envServe: "127.0.0.1:0"}})
	var info procInfo
	s.call(t, "POST", "/sbx/v1/processes", string(body), 201, &info)

	resp := s.request(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d/output?follow=1", info.ID), "")
	var addr string
	sc := bufio.NewScanner(resp.Body)
	for addr == "" && sc.Scan() {
		var ev struct{ Type, Stream, Data string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		if ev.Type != "output" {
			t.Fatalf("event %s before the server listened", sc.Text())
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(ev.Data), "listening on "); ok {
			addr = a
		}
	}
	if addr == "" {
		t.Fatalf("no address: %v", sc.Err())
	}
	resp.Body.Close() // the client goes away mid-stream

	host, port, _ := net.SplitHostPort(addr)
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%s && printf 'GET /from-run HTTP/1.0\r\n\r\n' >&3 && cat <&3`, host, port)
	obs, ex, err := s.c.Run(t.Context(), sandboxapi.NewRunAction(script, 30))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Metadata.ExitCode != 0 || !strings.Contains(obs.Content, "hello from the background server, path /from-run") {
		t.Fatalf("run action: exit %d\n%s", ex.Metadata.ExitCode, obs.Content)
	}
	var now procInfo
	s.call(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d", info.ID), "", 200, &now)
	if now.State != "running" {
		t.Fatalf("after the disconnect: %+v", now)
	}
	var out struct {
		Chunks []struct{ Stream, Data string }
	}
	s.call(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d/output", info.ID), "", 200, &out)
	if len(out.Chunks) != 2 || out.Chunks[1].Stream != "stderr" || out.Chunks[1].Data != "served /from-run\n" {
		t.Fatalf("log: %+v", out.Chunks)
	}
	s.call(t, "DELETE", fmt.Sprintf("/sbx/v1/processes/%d?kill=1", info.ID), "", 204, nil)
	if err := syscall.Kill(info.PID, 0); err == nil {
		t.Fatalf("pid %d alive after DELETE ?kill=1", info.PID)
	}
}

// rssSampler records the peak resident set of pid while it runs.
type rssSampler struct {
	stop chan struct{}
	done chan int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, rss(pid))
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) peak() int64 { close(s.stop); return <-s.done }

// rss is VmRSS of pid in bytes.
func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestSlowFollowerBoundedMemory streams 100 MB of output from a process
// while a client follows it slowly: sandboxd's RSS must grow by at most
// 16 MiB, and the producer must not be slowed.
func TestSlowFollowerBoundedMemory(t *testing.T) {
	s := startKeyed(t)
	const total = 100 << 20
	spec := fmt.Sprintf(`{"command":"yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c %d"}`, total)
	produce := func(slow bool) (time.Duration, int64, int64) {
		var info procInfo
		s.call(t, "POST", "/sbx/v1/processes", spec, 201, &info)
		var read, lost int64
		followerDone := make(chan struct{})
		stopFollow := make(chan struct{})
		if slow {
			resp := s.request(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d/output?follow=1", info.ID), "")
			go func() {
				defer close(followerDone)
				defer resp.Body.Close()
				br := bufio.NewReaderSize(resp.Body, 64<<10)
				buf := make([]byte, 16<<10)
				for {
					select {
					case <-stopFollow:
						return
					case <-time.After(2 * time.Millisecond): // ~8 MB/s: slower than the producer
					}
					n, err := br.Read(buf)
					read += int64(n)
					if err != nil {
						return
					}
				}
			}()
		} else {
			close(followerDone)
		}
		var end procInfo
		s.call(t, "POST", fmt.Sprintf("/sbx/v1/processes/%d/wait?timeout=120", info.ID), "", 200, &end)
		close(stopFollow)
		<-followerDone
		var out struct{ Lost int64 }
		s.call(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d/output?offset=0&max=1", info.ID), "", 200, &out)
		lost = out.Lost
		s.call(t, "DELETE", fmt.Sprintf("/sbx/v1/processes/%d", info.ID), "", 204, nil)
		return end.EndedAt.Sub(end.StartedAt), read, lost
	}
	// A first run warms up sandboxd (heap, page cache) so that the
	// baseline is its steady state.
	warm, _, _ := produce(false)
	base := rss(s.pid)
	sampler := sampleRSS(s.pid)
	slowT, read, lost := produce(true)
	peak := sampler.peak()
	growth := peak - base
	after, _, _ := produce(false)
	plain := min(warm, after)
	mbps := func(d time.Duration) float64 { return float64(total) / (1 << 20) / d.Seconds() }
	t.Logf("producer alone: %v (%.0f MiB/s); with a slow follower: %v (%.0f MiB/s); follower read %d bytes of stream, the log dropped %d bytes (it keeps 32 to 64 MiB)",
		plain, mbps(plain), slowT, mbps(slowT), read, lost)
	t.Logf("sandboxd RSS: baseline %.1f MiB, peak %.1f MiB, growth %.1f MiB", float64(base)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Errorf("RSS grew by %d bytes with a slow follower, over 16 MiB", growth)
	}
	// Generous: timing on a shared machine is noisy; a writer that waited
	// for the follower would take 100 MB / 8 MB/s, over 10 s.
	if slowT > 3*plain+time.Second {
		t.Errorf("the producer took %v with a slow follower, %v without", slowT, plain)
	}
}
