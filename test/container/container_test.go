// Package container_test runs the real sandboxd binary as PID 1 of a Docker
// container built from the local Debian images that scripts/mkimage-debian.sh
// makes, and talks to it over HTTP the way a host does.
//
// It drives Docker through the docker CLI, publishes only on 127.0.0.1 and
// removes every container it starts. Without a Docker daemon, or without the
// images, the tests skip, unless SBX_REQUIRE_DOCKER is set (as .ci/run does),
// in which case they fail. SBX_CTEST_SANDBOXD=/abs/path runs that static
// binary instead of building ./cmd/sandboxd.
package container_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	baseImage      = "sbx-test/debian:bookworm"
	noUseraddImage = "sbx-test/debian-nouseradd:bookworm"

	serverPort    = "8000"
	containerBin  = "/sbx/sandboxd"
	workspace     = "/workspace"
	dockerTimeout = 2 * time.Minute  // bound on any single docker CLI call
	aliveTimeout  = 90 * time.Second // bound on waiting for GET /alive
	buildTimeout  = 5 * time.Minute  // bound on building sandboxd
)

// requireDocker reports whether missing Docker or images must fail the tests
// rather than skip them.
func requireDocker() bool {
	v := strings.TrimSpace(os.Getenv("SBX_REQUIRE_DOCKER"))
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

var binDir string // temporary directory holding the built sandboxd

func TestMain(m *testing.M) {
	removeStaleContainers()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Every container is labelled with the host and PID of the test process that
// started it. t.Cleanup removes it, but a test binary killed by -timeout runs
// no cleanups; the next run removes such orphans (only those whose test
// process is gone, so concurrent runs on one machine do not interfere).
const (
	labelTest = "sbx.test"
	labelHost = "sbx.test.host"
	labelPID  = "sbx.test.pid"
)

func ownerLabels() []string {
	host, _ := os.Hostname()
	return []string{"--label", labelTest + "=1", "--label", labelHost + "=" + host,
		"--label", labelPID + "=" + strconv.Itoa(os.Getpid())}
}

func removeStaleContainers() {
	ctx := context.Background()
	out, err := command(ctx, 20*time.Second, "", nil, "docker", "ps", "-a", "--filter", "label="+labelTest+"=1",
		"--format", `{{.ID}} {{.Label "`+labelHost+`"}} {{.Label "`+labelPID+`"}}`)
	if err != nil || out == "" {
		return // no daemon (reported by the tests themselves) or nothing to do
	}
	host, _ := os.Hostname()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[1] != host {
			continue
		}
		pid, err := strconv.Atoi(f[2])
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			if _, err := command(ctx, 30*time.Second, "", nil, "docker", "rm", "-f", "-v", f[0]); err == nil {
				fmt.Fprintf(os.Stderr, "container_test: removed container %s left by test process %d\n", f[0], pid)
			}
		}
	}
}

// command runs a short-lived command with a bounded lifetime and returns its
// trimmed stdout, or an error carrying stderr.
func command(ctx context.Context, timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func docker(ctx context.Context, args ...string) (string, error) {
	return command(ctx, dockerTimeout, "", nil, "docker", args...)
}

var (
	dockerOnce sync.Once
	dockerErr  error
)

// needDocker skips (or, with SBX_REQUIRE_DOCKER, fails) the test when the
// Docker daemon does not answer or the image is missing.
func needDocker(t *testing.T, image string) {
	t.Helper()
	dockerOnce.Do(func() {
		var v string
		v, dockerErr = command(context.Background(), 30*time.Second, "", nil, "docker", "version", "--format", "{{.Server.Version}}")
		if dockerErr == nil && v == "" {
			dockerErr = errors.New("docker version printed no server version")
		}
	})
	if dockerErr != nil {
		if requireDocker() {
			t.Fatalf("SBX_REQUIRE_DOCKER is set but the Docker daemon does not answer: %v", dockerErr)
		}
		t.Skipf("Docker daemon does not answer (set SBX_REQUIRE_DOCKER=1 to make this a failure): %v", dockerErr)
	}
	if _, err := docker(t.Context(), "image", "inspect", "--format", "{{.Id}}", image); err != nil {
		msg := fmt.Sprintf("image %s is missing; build it with scripts/mkimage-debian.sh (%v)", image, err)
		if requireDocker() {
			t.Fatal("SBX_REQUIRE_DOCKER is set but " + msg)
		}
		t.Skip(msg)
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// sandboxdBinary builds ./cmd/sandboxd once, statically, for the container.
// SBX_CTEST_SANDBOXD=/abs/path uses that (static) binary instead.
func sandboxdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("SBX_CTEST_SANDBOXD"); p != "" {
			if !filepath.IsAbs(p) {
				buildErr = fmt.Errorf("SBX_CTEST_SANDBOXD=%q is not an absolute path", p)
			} else if _, buildErr = os.Stat(p); buildErr == nil {
				buildPath = p
			}
			return
		}
		ctx := context.Background()
		gomod, err := command(ctx, time.Minute, "", nil, "go", "env", "GOMOD")
		if err != nil {
			buildErr = err
			return
		}
		if gomod == "" || gomod == os.DevNull {
			buildErr = errors.New("go env GOMOD: not inside the sbx module")
			return
		}
		dir, err := os.MkdirTemp("", "sbx-ctest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		out := filepath.Join(dir, "sandboxd")
		start := time.Now()
		_, buildErr = command(ctx, buildTimeout, filepath.Dir(gomod), []string{"CGO_ENABLED=0"},
			"go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/sandboxd")
		if buildErr == nil {
			buildPath = out
			fmt.Fprintf(os.Stderr, "container_test: built sandboxd in %v\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if buildErr != nil {
		t.Fatalf("building ./cmd/sandboxd: %v", buildErr)
	}
	return buildPath
}

// sandbox is one running sandboxd container.
type sandbox struct {
	name   string
	base   string // http://127.0.0.1:<port>
	apiKey string // sent as X-Session-API-Key when non-empty
	client *http.Client
}

type sandboxOpts struct {
	image    string
	username string
	userID   int
	env      []string // KEY=VALUE passed with -e
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// startSandbox runs sandboxd as PID 1 in a new container, waits for it to be
// alive and returns it. The container is removed when the test ends.
func startSandbox(t *testing.T, o sandboxOpts) *sandbox {
	t.Helper()
	needDocker(t, o.image)
	bin := sandboxdBinary(t)

	name := "sbx-ctest-" + randomHex(6)
	// Registered before `docker run` so that a half-created container goes too.
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			if logs, err := command(ctx, 30*time.Second, "", nil, "sh", "-c", "docker logs --tail 200 "+name+" 2>&1"); err == nil && logs != "" {
				t.Logf("docker logs %s (last 200 lines):\n%s", name, logs)
			}
		}
		if _, err := docker(ctx, "rm", "-f", "-v", name); err != nil && !strings.Contains(err.Error(), "No such container") {
			t.Errorf("removing container %s: %v", name, err)
		}
	})

	args := []string{"run", "-d", "--rm=false", "--name", name}
	args = append(args, ownerLabels()...)
	args = append(args, "-v", bin+":"+containerBin+":ro",
		"-p", "127.0.0.1::"+serverPort,
		"--entrypoint", containerBin)
	for _, e := range o.env {
		args = append(args, "-e", e)
	}
	args = append(args, o.image, serverPort, "--working-dir", workspace,
		"--username", o.username, "--user-id", strconv.Itoa(o.userID))
	if _, err := docker(t.Context(), args...); err != nil {
		t.Fatalf("starting container: %v", err)
	}

	hostPort, err := docker(t.Context(), "port", name, serverPort+"/tcp")
	if err != nil {
		t.Fatalf("docker port: %v", err)
	}
	hostPort = strings.SplitN(hostPort, "\n", 2)[0]
	host, port, err := net.SplitHostPort(strings.TrimSpace(hostPort))
	if err != nil {
		t.Fatalf("docker port printed %q: %v", hostPort, err)
	}
	if host != "127.0.0.1" {
		t.Fatalf("container publishes on %s, want 127.0.0.1 only", host)
	}
	sb := &sandbox{
		name:   name,
		base:   "http://127.0.0.1:" + port,
		client: &http.Client{Timeout: 2 * time.Minute},
	}
	sb.waitAlive(t)
	return sb
}

// waitAlive polls GET /alive with a short, growing delay until it answers
// {"status":"ok"}, the container exits, or aliveTimeout passes.
func (sb *sandbox) waitAlive(t *testing.T) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(aliveTimeout)
	delay := 20 * time.Millisecond
	probe := &http.Client{Timeout: 5 * time.Second}
	var last string
	for attempt := 1; ; attempt++ {
		resp, err := probe.Get(sb.base + "/alive")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			var st struct {
				Status string `json:"status"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &st) == nil && st.Status == "ok" {
				t.Logf("%s alive after %v (%d polls)", sb.name, time.Since(start).Round(time.Millisecond), attempt)
				return
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if attempt%10 == 0 {
			// Fail fast if the server died instead of waiting out the deadline.
			if state, err := docker(t.Context(), "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", sb.name); err == nil && !strings.HasPrefix(state, "running") {
				t.Fatalf("container %s is not running (status, exit code: %s); last /alive answer: %s", sb.name, state, last)
			}
		}
		if time.Now().Add(delay).After(deadline) {
			t.Fatalf("GET /alive did not answer {\"status\":\"ok\"} within %v; last answer: %s", aliveTimeout, last)
		}
		time.Sleep(delay)
		delay = min(delay*3/2, 500*time.Millisecond)
	}
}

// post sends a JSON body and returns the status and the raw response body.
func (sb *sandbox) post(t *testing.T, path string, body any, header http.Header) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sb.base+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	if sb.apiKey != "" && req.Header.Get("X-Session-API-Key") == "" {
		req.Header.Set("X-Session-API-Key", sb.apiKey)
	}
	resp, err := sb.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s %s: %v", path, b, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatalf("POST %s %s: reading the response: %v", path, b, err)
	}
	return resp.StatusCode, rb
}

// observation is the part of a serialized observation the tests read.
type observation struct {
	Observation string          `json:"observation"`
	Content     string          `json:"content"`
	Message     string          `json:"message"`
	Extras      json.RawMessage `json:"extras"`
	Success     *bool           `json:"success"`
}

type cmdExtras struct {
	Command  string `json:"command"`
	Metadata struct {
		ExitCode   int     `json:"exit_code"`
		PID        int     `json:"pid"`
		Username   *string `json:"username"`
		Hostname   *string `json:"hostname"`
		WorkingDir *string `json:"working_dir"`
		Prefix     string  `json:"prefix"`
		Suffix     string  `json:"suffix"`
	} `json:"metadata"`
	Hidden bool `json:"hidden"`
}

type runResult struct {
	observation
	extras cmdExtras
}

// execute POSTs one action to /execute_action and decodes the observation,
// failing the test on anything but HTTP 200.
func (sb *sandbox) execute(t *testing.T, action map[string]any) observation {
	t.Helper()
	body := map[string]any{"action": action}
	status, rb := sb.post(t, "/execute_action", body, nil)
	req, _ := json.Marshal(body)
	if status != http.StatusOK {
		t.Fatalf("POST /execute_action %s: HTTP %d, want 200; body: %s", req, status, rb)
	}
	var obs observation
	if err := json.Unmarshal(rb, &obs); err != nil {
		t.Fatalf("POST /execute_action %s: response is not an observation: %v; body: %s", req, err, rb)
	}
	return obs
}

// run executes a bash command and returns the run observation. The action is
// blocking, so only the hard timeout applies (not the 10 s no-output
// timeout, which a loaded machine can hit on a slow command).
func (sb *sandbox) run(t *testing.T, cmd string, timeout int) runResult {
	t.Helper()
	obs := sb.execute(t, map[string]any{
		"action":  "run",
		"args":    map[string]any{"command": cmd, "blocking": true},
		"timeout": timeout,
	})
	if obs.Observation != "run" {
		t.Fatalf("run %q: observation %q, want \"run\"; content: %q", cmd, obs.Observation, obs.Content)
	}
	r := runResult{observation: obs}
	if err := json.Unmarshal(obs.Extras, &r.extras); err != nil {
		t.Fatalf("run %q: extras %s: %v", cmd, obs.Extras, err)
	}
	return r
}

// mustRun executes cmd, requires exit code 0 with the completion suffix, and
// returns the output.
func (sb *sandbox) mustRun(t *testing.T, cmd string) string {
	t.Helper()
	r := sb.run(t, cmd, 60)
	md := r.extras.Metadata
	if md.ExitCode != 0 {
		t.Fatalf("run %q: exit code %d, want 0; content: %q; suffix: %q", cmd, md.ExitCode, r.Content, md.Suffix)
	}
	if want := "\n[The command completed with exit code 0.]"; md.Suffix != want {
		t.Errorf("run %q: suffix %q, want %q", cmd, md.Suffix, want)
	}
	if r.Success == nil || !*r.Success {
		t.Errorf("run %q: success = %v, want true", cmd, r.Success)
	}
	return r.Content
}

func expectOutput(t *testing.T, sb *sandbox, cmd, want string) {
	t.Helper()
	if got := sb.mustRun(t, cmd); got != want {
		t.Errorf("run %q: content %q, want %q", cmd, got, want)
	}
}

// (a) as root: the shell works and sandboxd is PID 1.
func TestRunAsRoot(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, sandboxOpts{image: baseImage, username: "root", userID: 0})

	r := sb.run(t, "echo hi", 30)
	if r.Content != "hi" {
		t.Errorf("echo hi: content %q, want %q", r.Content, "hi")
	}
	md := r.extras.Metadata
	if md.ExitCode != 0 {
		t.Errorf("echo hi: exit_code %d, want 0", md.ExitCode)
	}
	if want := "\n[The command completed with exit code 0.]"; md.Suffix != want {
		t.Errorf("echo hi: suffix %q, want %q", md.Suffix, want)
	}
	if md.Prefix != "" {
		t.Errorf("echo hi: prefix %q, want empty", md.Prefix)
	}
	if r.extras.Command != "echo hi" {
		t.Errorf("echo hi: extras.command %q, want %q", r.extras.Command, "echo hi")
	}
	if want := "Command `echo hi` executed with exit code 0."; r.Message != want {
		t.Errorf("echo hi: message %q, want %q", r.Message, want)
	}
	if r.Success == nil || !*r.Success {
		t.Errorf("echo hi: success %v, want true", r.Success)
	}
	if md.Username == nil || *md.Username != "root" {
		t.Errorf("echo hi: metadata.username %v, want root", md.Username)
	}

	expectOutput(t, sb, "cat /proc/1/comm", "sandboxd")
	expectOutput(t, sb, "ps -o pid= -p 1", "1")
	expectOutput(t, sb, "ps -o comm= -p 1", "sandboxd")
	expectOutput(t, sb, "id -u", "0")

	// A failing command reports its exit code.
	r = sb.run(t, "false", 30)
	if r.extras.Metadata.ExitCode != 1 || r.Success == nil || *r.Success {
		t.Errorf("false: exit_code %d success %v, want 1 false", r.extras.Metadata.ExitCode, r.Success)
	}
	if want := "\n[The command completed with exit code 1.]"; r.extras.Metadata.Suffix != want {
		t.Errorf("false: suffix %q, want %q", r.extras.Metadata.Suffix, want)
	}
}

// checkCreatedUser covers (b) and (c): sandboxd created user openhands with
// uid 1000, the shell runs as it, and files it writes belong to it.
func checkCreatedUser(t *testing.T, image string) {
	sb := startSandbox(t, sandboxOpts{image: image, username: "openhands", userID: 1000})

	if image == noUseraddImage {
		// Guard against a mis-built image: the fallback path must be the one taken.
		expectOutput(t, sb, "command -v useradd adduser usermod groupadd || echo none", "none")
	}
	expectOutput(t, sb, "id -u", "1000")
	expectOutput(t, sb, "whoami", "openhands")
	expectOutput(t, sb, "getent passwd openhands | cut -d: -f3", "1000")
	expectOutput(t, sb, "stat -c %u "+workspace, "1000")

	r := sb.run(t, "pwd", 30)
	if r.Content != workspace {
		t.Errorf("pwd: content %q, want %q (a non-root shell starts in the working dir)", r.Content, workspace)
	}
	if wd := r.extras.Metadata.WorkingDir; wd == nil || *wd != workspace {
		t.Errorf("pwd: metadata.working_dir %v, want %s", wd, workspace)
	}
	if u := r.extras.Metadata.Username; u == nil || *u != "openhands" {
		t.Errorf("pwd: metadata.username %v, want openhands", u)
	}

	// The shell can write to the working dir it was given.
	expectOutput(t, sb, "touch "+workspace+"/by-shell && stat -c %u "+workspace+"/by-shell", "1000")

	// A file written by the server (running as root) is chowned to the user.
	path := workspace + "/sub/written.txt"
	obs := sb.execute(t, map[string]any{
		"action": "write",
		"args":   map[string]any{"path": path, "content": "hello\nworld"},
	})
	if obs.Observation != "write" {
		t.Fatalf("write %s: observation %q, want \"write\"; content %q", path, obs.Observation, obs.Content)
	}
	expectOutput(t, sb, "stat -c %u "+path, "1000")
	expectOutput(t, sb, "cat "+path, "hello\nworld")
}

// (b) a non-root user created by sandboxd with useradd.
func TestRunAsCreatedUser(t *testing.T) {
	t.Parallel()
	checkCreatedUser(t, baseImage)
}

// (c) the same without useradd & co. in the image: sandboxd must create the
// user itself.
func TestRunAsCreatedUserWithoutUseradd(t *testing.T) {
	t.Parallel()
	checkCreatedUser(t, noUseraddImage)
}

// (d) PID 1 reaps orphans: a thousand double-forked sleeps leave no zombie.
func TestOrphansReaped(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, sandboxOpts{image: baseImage, username: "root", userID: 0})

	// Each subshell exits at once, orphaning its sleep, which is re-parented
	// to PID 1. Count zombies after a second; allow up to 5 s more for the
	// last ones to be reaped.
	cmd := `for i in $(seq 1000); do (sleep 0.001 &) ; done; sleep 1; ` +
		`for j in $(seq 50); do z=$(ps -eo stat= | grep -c '^Z'); [ "$z" -eq 0 ] && break; sleep 0.1; done; ` +
		`echo "zombies=$z"`
	r := sb.run(t, cmd, 120)
	if r.extras.Metadata.ExitCode != 0 {
		t.Fatalf("zombie check: exit code %d, content %q, suffix %q", r.extras.Metadata.ExitCode, r.Content, r.extras.Metadata.Suffix)
	}
	if r.Content != "zombies=0" {
		out, _ := docker(t.Context(), "exec", sb.name, "ps", "-eo", "pid,ppid,stat,comm")
		if lines := strings.Split(out, "\n"); len(lines) > 20 {
			out = strings.Join(lines[:20], "\n") + fmt.Sprintf("\n... (%d more)", len(lines)-20)
		}
		t.Errorf("zombie check: content %q, want %q\nprocesses:\n%s", r.Content, "zombies=0", out)
	}
}

// (e) sandboxd handles SIGTERM: docker stop returns well before its 10 s
// grace period would force a SIGKILL.
func TestStopHandlesSIGTERM(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t, sandboxOpts{image: baseImage, username: "root", userID: 0})
	sb.mustRun(t, "echo ready")

	start := time.Now()
	if _, err := docker(t.Context(), "stop", "-t", "10", sb.name); err != nil {
		t.Fatalf("docker stop: %v", err)
	}
	took := time.Since(start)
	state, err := docker(t.Context(), "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}", sb.name)
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	f := strings.Fields(state)
	if len(f) != 3 {
		t.Fatalf("docker inspect printed %q", state)
	}
	t.Logf("docker stop -t 10 took %v; container status %s, exit code %s", took.Round(time.Millisecond), f[0], f[1])
	if f[0] != "exited" {
		t.Errorf("after docker stop the container is %q, want exited", f[0])
	}
	if f[1] == "137" {
		t.Errorf("exit code 137: sandboxd was SIGKILLed, it did not exit on SIGTERM")
	}
	if took > 5*time.Second {
		t.Errorf("docker stop -t 10 took %v, want well under 10 s (sandboxd must exit on SIGTERM)", took)
	}
}

// (f) SESSION_API_KEY: requests without the right X-Session-API-Key get 403;
// /alive stays open.
func TestSessionAPIKey(t *testing.T) {
	t.Parallel()
	key := "k-" + randomHex(16)
	sb := startSandbox(t, sandboxOpts{image: baseImage, username: "root", userID: 0,
		env: []string{"SESSION_API_KEY=" + key}})

	action := map[string]any{"action": map[string]any{
		"action": "run", "args": map[string]any{"command": "echo hi"}, "timeout": 30}}

	check403 := func(what string, h http.Header) {
		t.Helper()
		status, body := sb.post(t, "/execute_action", action, h)
		if status != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403; body %s", what, status, body)
			return
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 || got["detail"] != "Invalid API Key" {
			t.Errorf("%s: body %s, want {\"detail\":\"Invalid API Key\"}", what, body)
		}
	}
	check403("no X-Session-API-Key header", nil)
	check403("wrong X-Session-API-Key", http.Header{"X-Session-Api-Key": {key + "x"}})

	sb.apiKey = key
	status, body := sb.post(t, "/execute_action", action, nil)
	if status != http.StatusOK {
		t.Fatalf("with the right X-Session-API-Key: HTTP %d, want 200; body %s", status, body)
	}
	var obs observation
	if err := json.Unmarshal(body, &obs); err != nil || obs.Content != "hi" {
		t.Errorf("with the right key: body %s, want a run observation with content \"hi\"", body)
	}
}
