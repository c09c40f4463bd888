package image_test

// These tests build the stand-in image with the real Docker engine and run
// containers from it with the docker CLI, published on 127.0.0.1 only and
// labelled dev.sbx.test.owner=<pid>; each test removes its own containers.
// Without Docker they skip, unless SBX_REQUIRE_DOCKER is set. The image is
// FROM scratch, so they need no other image.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/test/runtimeapi/agentserver/image"
	"github.com/sbx-dev/sbx/test/runtimeapi/clients"
)

func requireDocker() bool {
	v := strings.TrimSpace(os.Getenv("SBX_REQUIRE_DOCKER"))
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

func engine(t *testing.T) *client.Client {
	t.Helper()
	skip := t.Skipf
	if requireDocker() {
		skip = t.Fatalf
	}
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		skip("docker client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		skip("docker engine: %v", err)
	}
	return c
}

func ensure(t *testing.T) image.Result {
	t.Helper()
	c := engine(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	res, err := image.Ensure(ctx, c, image.Options{})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return res
}

func TestEnsureBuildsThenReuses(t *testing.T) {
	first := ensure(t)
	c := engine(t)
	second, err := image.Ensure(t.Context(), c, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !second.Reused || second.ID != first.ID || second.Inputs != first.Inputs {
		t.Errorf("second Ensure = %+v, want the first image (%+v) reused", second, first)
	}
	if first.Ref != image.Tag+"-"+first.Inputs {
		t.Errorf("Ref = %q, want %s-<inputs>", first.Ref, image.Tag)
	}
	ins, err := c.ImageInspect(t.Context(), first.Ref)
	if err != nil {
		t.Fatal(err)
	}
	// FROM scratch: only the layers of its three COPY steps.
	if n := len(ins.RootFS.Layers); n != 3 {
		t.Errorf("image has %d layers, want the 3 COPY layers of a FROM scratch image", n)
	}
	cfg := ins.Config
	if cfg.User != "10001" || cfg.WorkingDir != "/" || cfg.Labels[image.LabelTest] != image.LabelValue || cfg.Labels[image.LabelInputs] != first.Inputs {
		t.Errorf("image config: user %q, workdir %q, labels %v", cfg.User, cfg.WorkingDir, cfg.Labels)
	}
	if _, ok := cfg.ExposedPorts["8000/tcp"]; !ok {
		t.Errorf("exposed ports %v lack 8000/tcp", cfg.ExposedPorts)
	}
	if len(cfg.Entrypoint) != 0 || len(cfg.Cmd) == 0 || cfg.Cmd[0] != image.BinaryPath {
		t.Errorf("entrypoint %q, cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
}

// dockerLogs returns the container's stderr, where the stand-in logs.
func dockerLogs(ctx context.Context, id string) string {
	out, _ := exec.CommandContext(ctx, "docker", "logs", id).CombinedOutput()
	return string(out)
}

func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// runContainer starts the image ref with env and argv, publishing port on
// 127.0.0.1, and returns the host base URL and the container id.
func runContainer(t *testing.T, ref string, env []string, port int, argv ...string) (string, string) {
	t.Helper()
	args := []string{"run", "-d", "--label", "dev.sbx.test.owner=" + strconv.Itoa(os.Getpid()),
		"-p", fmt.Sprintf("127.0.0.1::%d", port)}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	args = append(append(args, ref), argv...)
	id, err := docker(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := docker(context.Background(), "rm", "-f", id); err != nil {
			t.Errorf("removing container: %v", err)
		}
	})
	hp, err := docker(t.Context(), "port", id, fmt.Sprintf("%d/tcp", port))
	if err != nil {
		t.Fatal(err)
	}
	hp = strings.Fields(hp)[0]
	return "http://" + hp, id
}

// waitLog waits for the stand-in's "listening" log line and returns the
// address it bound.
func waitLog(t *testing.T, id string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		logs := dockerLogs(t.Context(), id)
		for line := range strings.SplitSeq(logs, "\n") {
			var m struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "listening" {
				return m.Addr
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs := dockerLogs(t.Context(), id)
	t.Fatalf("no listening line in 30s; logs:\n%s", logs)
	return ""
}

func get(ctx context.Context, url, key string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	if key != "" {
		req.Header.Set("X-Session-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestWithoutKeyBindsLoopbackOnly(t *testing.T) {
	res := ensure(t)
	base, id := runContainer(t, res.Ref, nil, 8000)
	if addr := waitLog(t, id); addr != "127.0.0.1:8000" {
		t.Fatalf("bound %s, want 127.0.0.1:8000", addr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if code, _, err := get(ctx, base+"/health", ""); err == nil {
		t.Errorf("GET /health through the published port answered %d; a keyless stand-in must not be reachable", code)
	}
}

func TestWithKeyInContainer(t *testing.T) {
	res := ensure(t)
	// The app server's argv (runtime-api.md §4.1) and the key as sandbox-api
	// injects it (§8.1).
	base, id := runContainer(t, res.Ref, []string{"OH_SESSION_API_KEYS_0=sk-1", "SESSION_API_KEY=sk-1"}, 60000,
		image.BinaryPath, "--port", "60000")
	if addr := waitLog(t, id); addr != "0.0.0.0:60000" {
		t.Fatalf("bound %s, want 0.0.0.0:60000", addr)
	}
	if code, body, err := get(t.Context(), base+"/health", ""); err != nil || code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/health = %d %q %v", code, body, err)
	}
	for _, key := range []string{"", "sk-2"} {
		if code, _, err := get(t.Context(), base+"/api/conversations/x", key); err != nil || code != 401 {
			t.Errorf("/api with key %q = %d %v, want 401", key, code, err)
		}
	}
	ag := &clients.AgentServer{URL: base, SessionAPIKey: "sk-1"}
	if who, err := ag.Whoami(t.Context()); err != nil || who.UID != image.UID || who.Cwd != "/" || !who.Writable["/workspace"] || !who.Writable["/tmp"] {
		t.Errorf("whoami = %+v, %v; want uid %d in / with /workspace and /tmp writable", who, err, image.UID)
	}
	// FROM scratch: nothing but the stand-in is in the image.
	if out, err := docker(t.Context(), "exec", id, "sh", "-c", "true"); err == nil {
		t.Errorf("docker exec sh worked (%q): the image has a shell", out)
	}
	if code, body := post(t, base+"/api/bash/execute_bash_command", "sk-1", `{"command":"true"}`); code != 501 || !strings.Contains(body, "no shell") {
		t.Errorf("execute_bash_command = %d %s, want 501 saying there is no shell", code, body)
	}

	// SSE: events arrive one by one, about 100 ms apart.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/api/stream?count=4", nil)
	req.Header.Set("X-Session-API-Key", "sk-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			at = append(at, time.Now())
		}
	}
	resp.Body.Close()
	if len(at) != 4 || at[3].Sub(at[0]) < 200*time.Millisecond {
		t.Errorf("SSE: %d events over %v", len(at), at)
	}

	// WebSocket echo.
	ws, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/sockets/events/c1?session_api_key=sk-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.Write(t.Context(), websocket.MessageText, []byte("ping"))
	if _, m, err := ws.Read(t.Context()); err != nil || string(m) != "ping" {
		t.Errorf("ws echo = %q %v", m, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// The in-process counter stops while the container is frozen and goes
	// on after docker unpause: the probe sandbox-api's pause/resume tests
	// use.
	if err := ag.StartCounter(t.Context()); err != nil {
		t.Fatal(err)
	}
	read := func() int {
		n, err := ag.ReadCounter(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := read()
	if _, err := docker(t.Context(), "pause", id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if _, err := docker(t.Context(), "unpause", id); err != nil {
		t.Fatal(err)
	}
	// Read at once: a counter that had kept running through the 2 s
	// freeze would be ~20 ahead; the docker CLI round trips allow a few.
	thawed := read()
	time.Sleep(400 * time.Millisecond)
	after := read()
	t.Logf("counter across a 2 s pause: %d before, %d at unpause, %d 400 ms later", before, thawed, after)
	if thawed-before > 12 {
		t.Errorf("counter %d → %d across a 2 s pause: it counted while frozen", before, thawed)
	}
	if after <= thawed || thawed < before {
		t.Errorf("counter %d → %d → %d across pause/unpause: the process did not survive or stopped counting", before, thawed, after)
	}
}

func post(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	req.Header.Set("X-Session-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClientsAgentServerAgainstStandin checks the workload half of
// test/runtimeapi/clients against the real stand-in, so the lifecycles'
// agent-server calls are known to match it.
func TestClientsAgentServerAgainstStandin(t *testing.T) {
	res := ensure(t)
	base, id := runContainer(t, res.Ref, []string{"SESSION_API_KEY=sk-9"}, 60000, image.BinaryPath, "--port", "60000")
	waitLog(t, id)
	ag := &clients.AgentServer{URL: base + "/", SessionAPIKey: "sk-9"}
	if err := ag.Conversation(t.Context()); err != nil {
		t.Fatal(err)
	}
	at, err := ag.Stream(t.Context(), 5)
	if err != nil || len(at) != 5 || at[4].Sub(at[0]) < 300*time.Millisecond {
		t.Errorf("Stream: %d events over %v, %v", len(at), at, err)
	}
	if got, err := ag.Echo(t.Context(), "conv", "hi"); err != nil || got != "hi" {
		t.Errorf("Echo = %q, %v", got, err)
	}
	if err := ag.StartCounter(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, err := ag.ReadCounter(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if b, err := ag.ReadCounter(t.Context()); err != nil || b <= a {
		t.Errorf("counter %d then %d, %v", a, b, err)
	}
	bad := &clients.AgentServer{URL: base, SessionAPIKey: "nope"}
	if err := bad.Conversation(t.Context()); clients.StatusOf(err) != 401 {
		t.Errorf("wrong key: %v, want HTTP 401", err)
	}
}
