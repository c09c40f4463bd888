package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/ids"
)

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// build makes static sandbox-api and sandboxd side by side, as operators
// install them.
func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/sbx-dev/sbx/cmd/sandbox-api", "github.com/sbx-dev/sbx/cmd/sandboxd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func requireDocker(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			t.Fatalf("docker required: %v", err)
		}
		t.Skipf("no docker: %v", err)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type service struct {
	t        *testing.T
	bin, db  string
	instance string
	addr     string
	cmd      *exec.Cmd
	log      bytes.Buffer
}

func (s *service) start() {
	s.t.Helper()
	s.cmd = exec.Command(filepath.Join(s.bin, "sandbox-api"), "serve", "--addr", s.addr, "--db", s.db, "--instance", s.instance, "--log-level", "debug", "--sweep-interval", "1s")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sandbox-api did not answer /healthz: %v\n%s", err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *service) kill9() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
}

func (s *service) stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		s.kill9()
	}
}

// containers lists this instance's containers: name, state, runtime id.
func (s *service) containers() map[string]string {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label="+LabelInstance+"="+s.instance,
		"--format", `{{.Label "dev.sbx.runtimeapi.runtime"}} {{.State}}`).Output()
	if err != nil {
		s.t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

func (s *service) cleanup() {
	s.stop()
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+LabelInstance+"="+s.instance).Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		exec.Command("docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
	}
}

type runtimeObj struct {
	RuntimeID string `json:"runtime_id"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
}

func getJSON(t *testing.T, url, key string, v any) int {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %d %q", url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

// newService builds sandbox-api, makes a key and starts the service on a
// SQLite store and an instance name of the test's own; the image is the
// test image its runtimes use.
func newService(t *testing.T) (s *service, key, image string) {
	t.Helper()
	requireDocker(t)
	image = os.Getenv("SBX_TEST_IMAGE")
	if image == "" {
		image = "sbx-test/debian:bookworm"
	}
	s = &service{t: t, bin: build(t), db: filepath.Join(t.TempDir(), "api.db"), instance: "test-" + ids.New(6),
		addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	t.Cleanup(s.cleanup)
	out, err := exec.Command(filepath.Join(s.bin, "sandbox-api"), "keys", "create", "k", "--db", s.db).Output()
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(string(out))
	s.start()
	return s, key, image
}

// TestKill9DuringCreates: sandbox-api is killed with SIGKILL while 50
// /start calls are in flight; after a restart no container lacks a live
// record, and every live record has its running container (or it is
// marked error with a reason).
func TestKill9DuringCreates(t *testing.T) {
	s, key, image := newService(t)

	const n = 50
	body := func(i int) []byte {
		b, _ := json.Marshal(map[string]any{"image": image, "session_id": fmt.Sprintf("s%d", i), "working_dir": "/openhands/code/",
			"command": []string{"python", "-u", "-m", "openhands.runtime.action_execution_server", "60000", "--working-dir", "/workspace", "--username", "root", "--user-id", "0"}})
		return b
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://"+s.addr+"/start", bytes.NewReader(body(i)))
			req.Header.Set("X-API-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}()
	}
	delay := time.Duration(300+rand.IntN(2500)) * time.Millisecond
	time.Sleep(delay)
	before := len(s.containers())
	s.kill9()
	wg.Wait()
	t.Logf("killed after %v: %d of %d /start answered, %d containers existed", delay, answered, n, before)

	s.log.Reset()
	s.start()
	// Wait for the adopted starts to settle.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var list struct{ Runtimes []runtimeObj }
	for {
		list.Runtimes = nil
		getJSON(t, "http://"+s.addr+"/list", key, &list)
		starting := 0
		for _, r := range list.Runtimes {
			if r.Status == "starting" {
				starting++
			}
		}
		if starting == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d runtimes still starting after the restart\n%s", starting, s.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Creates the killed service had asked for may still land; the
	// sweeper removes them within its interval (1 s here), and the engine
	// gives up on a create after 30 s at most.
	var cs map[string]string
	live := map[string]bool{}
	for deadline := time.Now().Add(45 * time.Second); ; {
		cs = s.containers()
		stray := 0
		for _, r := range list.Runtimes {
			live[r.RuntimeID] = r.Status == "running" || r.Status == "paused"
		}
		for id := range cs {
			if !live[id] {
				stray++
			}
		}
		if stray == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	live = map[string]bool{}
	for _, r := range list.Runtimes {
		switch r.Status {
		case "running", "paused":
			live[r.RuntimeID] = true
			if st := cs[r.RuntimeID]; st != "running" && st != "paused" {
				t.Errorf("runtime %s is %s but its container is %q", r.RuntimeID, r.Status, st)
			}
		case "error":
			if r.Reason == "" {
				t.Errorf("runtime %s is error without a reason", r.RuntimeID)
			}
		default:
			t.Errorf("runtime %s is %s", r.RuntimeID, r.Status)
		}
	}
	for id, st := range cs {
		if !live[id] {
			t.Errorf("container of runtime %s (%s) has no live record", id, st)
		}
	}
	t.Logf("after the restart: %d runtimes listed, %d running with their containers, %d containers", len(list.Runtimes), len(live), len(cs))
	if t.Failed() {
		t.Logf("service log:\n%s", s.log.String())
	}
}

// SIGTERM drains: an action in flight through the proxy gets its answer,
// then the service exits 0; the runtime keeps running for the next one.
func TestSIGTERMDrains(t *testing.T) {
	s, key, image := newService(t)
	b, _ := json.Marshal(map[string]any{"image": image, "session_id": "drain", "working_dir": "/openhands/code/",
		"command": []string{"python", "-u", "-m", "openhands.runtime.action_execution_server", "60000", "--working-dir", "/workspace", "--username", "root", "--user-id", "0"}})
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/start", bytes.NewReader(b))
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		RuntimeID     string `json:"runtime_id"`
		URL           string `json:"url"`
		SessionAPIKey string `json:"session_api_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil || o.RuntimeID == "" {
		t.Fatalf("/start: %v %+v", err, o)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(60 * time.Second); ; {
		var r runtimeObj
		getJSON(t, "http://"+s.addr+"/runtime/"+o.RuntimeID, key, &r)
		if r.Status == "running" {
			break
		}
		if r.Status == "error" || time.Now().After(deadline) {
			t.Fatalf("runtime %s: %s", r.Status, r.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		body := `{"action":{"action":"run","args":{"command":"sleep 2; echo drained","blocking":true,"timeout":20}}}`
		req, _ := http.NewRequest("POST", o.URL+"/execute_action", strings.NewReader(body))
		req.Header.Set("X-Session-API-Key", o.SessionAPIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{code: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
	r := <-got
	if r.err != nil || r.code != 200 || !strings.Contains(r.body, "drained") {
		t.Errorf("the action in flight at SIGTERM: %d %q %v", r.code, r.body, r.err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("sandbox-api exited with %v\n%s", err, s.log.String())
	}
	if st := s.containers()[o.RuntimeID]; st != "running" {
		t.Errorf("the runtime's container is %q after the service stopped", st)
	}
	// A new connection is refused once it stopped.
	if _, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
		t.Error("the stopped service still answers")
	}
}
