package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SWE-ReX mode (issue 12). SWE-ReX's client opens one TCP connection per
// request (aiohttp with force_close), so these clients do too. Upstream's
// Python server is measured beside these in the same run by
// scripts/swerex-oracle.sh --bench.

const swxKey = "benchkey"

type swxServer struct {
	cmd  *exec.Cmd
	url  string
	http *http.Client
}

func startSwx(tb testing.TB) *swxServer {
	tb.Helper()
	port := freePort(tb)
	cmd := exec.Command(sandboxdBin, "swerex", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--auth-token", swxKey)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Dir = tb.TempDir()
	// A home without this machine's ~/.bashrc (pyenv's hooks fork at
	// every prompt): the figures are sbx's, not the rc file's.
	cmd.Env = append(os.Environ(), "HOME="+cmd.Dir)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s := &swxServer{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port),
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	tb.Cleanup(s.stop)
	return s
}

func (s *swxServer) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd.Process = nil
}

func (s *swxServer) alive() bool {
	req, _ := http.NewRequest("GET", s.url+"/is_alive", nil)
	req.Header.Set("X-API-Key", swxKey)
	resp, err := s.http.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

func (s *swxServer) waitAlive(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.alive() {
		if time.Now().After(deadline) {
			tb.Fatal("swerex-remote did not come up")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (s *swxServer) post(tb testing.TB, path string, body any) map[string]any {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", swxKey)
	resp, err := s.http.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		tb.Fatalf("%s: %d %v %v", path, resp.StatusCode, m, err)
	}
	return m
}

func swxSession(tb testing.TB, s *swxServer, name string) {
	s.post(tb, "/create_session", map[string]any{"session": name, "startup_source": []string{}, "session_type": "bash", "startup_timeout": 1.0})
}

func swxEcho(tb testing.TB, s *swxServer, name string) {
	m := s.post(tb, "/run_in_session", map[string]any{"command": "echo hi", "session": name, "timeout": 10.0, "check": "raise",
		"is_interactive_command": false, "is_interactive_quit": false, "error_msg": "", "expect": []string{}, "action_type": "bash"})
	if m["output"] != "hi\n" {
		tb.Fatalf("echo hi: %v", m)
	}
}

// BenchmarkSwerexStartToAlive: from exec to the first answered /is_alive.
func BenchmarkSwerexStartToAlive(b *testing.B) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		s := startSwx(b)
		s.waitAlive(b)
		lat = append(lat, time.Since(t0))
		s.stop()
	}
	reportPercentiles(b, lat)
}

// BenchmarkSwerexRunEcho: run_in_session `echo hi`, check="raise" (the
// exit code is read), one connection per request.
func BenchmarkSwerexRunEcho(b *testing.B) {
	s := startSwx(b)
	s.waitAlive(b)
	swxSession(b, s, "default")
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		swxEcho(b, s, "default")
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// BenchmarkSwerexIdleRSS: the server's resident memory, idle, after one
// session ran one command (bash itself is not counted: upstream's figure
// is its Python process).
func BenchmarkSwerexIdleRSS(b *testing.B) {
	var rss int64
	for b.Loop() {
		s := startSwx(b)
		s.waitAlive(b)
		swxSession(b, s, "default")
		swxEcho(b, s, "default")
		time.Sleep(500 * time.Millisecond)
		rss = procStatus(b, s.cmd.Process.Pid, "VmRSS")
		s.stop()
	}
	b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
}

// BenchmarkSwerex50Sessions: 50 sessions in one server, created and used
// by 50 clients at once; the server's RSS after.
func BenchmarkSwerex50Sessions(b *testing.B) {
	var rss int64
	for b.Loop() {
		s := startSwx(b)
		s.waitAlive(b)
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				name := fmt.Sprint("s", i)
				swxSession(b, s, name)
				swxEcho(b, s, name)
			})
		}
		wg.Wait()
		for i := range 50 {
			swxEcho(b, s, fmt.Sprint("s", i))
		}
		rss = procStatus(b, s.cmd.Process.Pid, "VmRSS")
		s.stop()
	}
	b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
}
