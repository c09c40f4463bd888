// Package conformance_test is a black-box conformance suite for sandboxd's
// OpenHands action-execution protocol (see shared/spec/openhands-runtime.md).
//
// Every test starts its own sandboxd subprocess on a loopback port and drives
// it over HTTP exactly as OpenHands' ActionExecutionClient would: POST
// {"action": <serialized action>} to /execute_action and decode the
// observation generically. The expectations come from OpenHands' own runtime
// tests (tests/runtime/test_bash.py, test_aci_edit.py, …) and, where those are
// loose, from the exact strings of the spec (§4, §5.6, §6).
//
// Environment:
//
//	SANDBOXD_BIN   use this binary instead of building ./cmd/sandboxd
package conformance_test

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
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	sandboxdBin string // path of the binary under test
	buildErr    error  // set when the binary could not be built
	hostFlag    string // listen-address flag supported by the binary ("" if none)
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "sbx-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance: mkdtemp:", err)
		os.Exit(2)
	}
	if bin := os.Getenv("SANDBOXD_BIN"); bin != "" {
		sandboxdBin = bin
	} else {
		sandboxdBin = filepath.Join(tmp, "sandboxd")
		buildErr = buildSandboxd(sandboxdBin)
		if buildErr != nil {
			fmt.Fprintln(os.Stderr, "conformance: building ./cmd/sandboxd failed:\n"+buildErr.Error())
		}
	}
	if buildErr == nil {
		hostFlag = detectHostFlag(sandboxdBin)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

func buildSandboxd(out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/sandboxd")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, b)
	}
	return nil
}

// detectHostFlag looks for a listen-address flag in `sandboxd --help` so the
// servers started here bind loopback only. The spec's default is 0.0.0.0.
func detectHostFlag(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	help := string(out)
	for _, f := range []string{"--host", "--listen-host", "--bind"} {
		if strings.Contains(help, f+" ") || strings.Contains(help, f+"=") || strings.Contains(help, f+"\n") {
			return f
		}
	}
	return ""
}

// ---------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------

type server struct {
	t       *testing.T
	url     string
	port    int
	workdir string
	apiKey  string
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	httpc   *http.Client
}

type serverConfig struct {
	env       map[string]string
	apiKey    string
	workdir   string
	ignoreInt bool
}

type serverOpt func(*serverConfig)

// withNoChange sets NO_CHANGE_TIMEOUT_SECONDS for the server (OpenHands'
// tests pass it as runtime_startup_env_vars).
func withNoChange(sec int) serverOpt {
	return func(c *serverConfig) { c.env["NO_CHANGE_TIMEOUT_SECONDS"] = strconv.Itoa(sec) }
}

func withAPIKey(key string) serverOpt {
	return func(c *serverConfig) { c.apiKey = key; c.env["SESSION_API_KEY"] = key }
}

func withWorkdir(dir string) serverOpt { return func(c *serverConfig) { c.workdir = dir } }

func withEnv(k, v string) serverOpt { return func(c *serverConfig) { c.env[k] = v } }

// withIgnoredSigint starts sandboxd with SIGINT and SIGQUIT ignored, as a
// process started with `&` from a non-interactive script is (spec §5.10).
func withIgnoredSigint() serverOpt { return func(c *serverConfig) { c.ignoreInt = true } }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep memory bounded
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

func currentUser(t *testing.T) (name, uid, home string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatalf("user.Current: %v", err)
	}
	return u.Username, u.Uid, u.HomeDir
}

// startServer launches sandboxd exactly like OpenHands launches its action
// execution server: `<port> --working-dir <dir> --username <u> --user-id <uid>
// --no-enable-browser`, then waits for GET /alive to answer {"status":"ok"}.
func startServer(t *testing.T, opts ...serverOpt) *server {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("sandboxd could not be built: %v", firstLine(buildErr.Error()))
	}
	cfg := &serverConfig{env: map[string]string{}}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.workdir == "" {
		cfg.workdir = t.TempDir()
	}
	name, uid, _ := currentUser(t)
	port := freePort(t)
	args := []string{strconv.Itoa(port), "--working-dir", cfg.workdir,
		"--username", name, "--user-id", uid, "--no-enable-browser"}
	if hostFlag != "" {
		args = append(args, hostFlag, "127.0.0.1")
	}
	cmd := exec.Command(sandboxdBin, args...)
	if cfg.ignoreInt {
		// `trap "" INT QUIT` sets SIG_IGN, which exec preserves.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `trap "" INT QUIT; exec "$0" "$@"`, sandboxdBin}, args...)...)
	}
	// The server's own cwd deliberately differs from the working dir (in
	// OpenHands it is /openhands/code): relative paths must resolve against
	// the bash cwd, not the process cwd.
	cmd.Dir = t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "SESSION_API_KEY", "NO_CHANGE_TIMEOUT_SECONDS":
			continue
		}
		env = append(env, kv)
	}
	for k, v := range cfg.env {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sandboxd: %v", err)
	}
	s := &server{
		t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), port: port,
		workdir: cfg.workdir, apiKey: cfg.apiKey, cmd: cmd, out: out,
		exited: make(chan struct{}),
		httpc:  &http.Client{Transport: &http.Transport{DisableKeepAlives: false}},
	}
	go func() { cmd.Wait(); close(s.exited) }()
	t.Cleanup(s.stop)

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("sandboxd exited before /alive answered (args %q)\n--- server output ---\n%s", args, tail(out.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandboxd did not answer /alive with status ok within 20s\n--- server output ---\n%s", tail(out.String(), 4000))
		}
		req, _ := http.NewRequest("GET", s.url+"/alive", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := s.httpc.Do(req.WithContext(ctx))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			var m map[string]any
			if resp.StatusCode == 200 && json.Unmarshal(b, &m) == nil && m["status"] == "ok" {
				return s
			}
		} else {
			cancel()
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *server) stop() {
	if s.t.Failed() {
		s.t.Logf("--- sandboxd output (tail) ---\n%s", tail(s.out.String(), 3000))
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
		}
	}
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object (%v): %s", err, trunc(string(r.body), 2000))
	}
	return m
}

func (s *server) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string, timeout time.Duration) httpResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if s.apiKey != "" {
		req.Header.Set("X-Session-API-Key", s.apiKey)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := s.httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *server) get(t *testing.T, path string) httpResult {
	t.Helper()
	return s.do(t, "GET", path, nil, nil, 30*time.Second)
}

func (s *server) postJSON(t *testing.T, path string, v any) httpResult {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return s.do(t, "POST", path, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"}, 30*time.Second)
}

func (s *server) postRaw(t *testing.T, path string, body string, hdr map[string]string) httpResult {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	return s.do(t, "POST", path, strings.NewReader(body), h, 30*time.Second)
}

// ---------------------------------------------------------------------------
// Actions and observations
// ---------------------------------------------------------------------------

// obs is a decoded observation plus the request that produced it, so that a
// failed expectation can print the exact request, the expectation and the
// whole reply.
type obs struct {
	m       map[string]any
	req     string
	raw     string
	elapsed time.Duration
}

// execute POSTs {"action": action} and requires HTTP 200 with a JSON object.
func (s *server) execute(t *testing.T, action map[string]any) obs {
	t.Helper()
	clientTimeout := 60 * time.Second
	switch to := action["timeout"].(type) {
	case pyFloat:
		clientTimeout = time.Duration(float64(to)*float64(time.Second)) + 15*time.Second
	case int:
		clientTimeout = time.Duration(to)*time.Second + 15*time.Second
	}
	body, _ := json.Marshal(map[string]any{"action": action})
	start := time.Now()
	r := s.do(t, "POST", "/execute_action", bytes.NewReader(body), map[string]string{"Content-Type": "application/json"}, clientTimeout)
	el := time.Since(start)
	if r.status != 200 {
		t.Fatalf("POST /execute_action %s\n=> HTTP %d (want 200): %s", body, r.status, trunc(string(r.body), 2000))
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("POST /execute_action %s\n=> invalid JSON (%v): %s", body, err, trunc(string(r.body), 2000))
	}
	return obs{m: m, req: string(body), raw: string(r.body), elapsed: el}
}

type runOpts struct {
	timeout  any // pyFloat, or int to send an integer JSON number
	blocking bool
	isInput  bool
	hidden   bool
	isStatic bool
	cwd      any
	noTO     bool
}

type runOpt func(*runOpts)

// hardTimeout mirrors CmdRunAction.set_hard_timeout(x): timeout x, blocking=true.
func hardTimeout(x float64) runOpt {
	return func(o *runOpts) { o.timeout = pyFloat(x); o.blocking = true }
}

// softTimeout sets a timeout while leaving blocking=false (what the client
// does with sandbox.timeout when the action had none).
func softTimeout(x float64) runOpt {
	return func(o *runOpts) { o.timeout = pyFloat(x); o.blocking = false }
}

func intTimeout(x int) runOpt  { return func(o *runOpts) { o.timeout = x; o.blocking = true } }
func input() runOpt            { return func(o *runOpts) { o.isInput = true } }
func hidden() runOpt           { return func(o *runOpts) { o.hidden = true } }
func blocking(b bool) runOpt   { return func(o *runOpts) { o.blocking = b } }
func noTimeout() runOpt        { return func(o *runOpts) { o.noTO = true } }
func static(cwd string) runOpt { return func(o *runOpts) { o.isStatic = true; o.cwd = cwd } }

// runAction builds the action exactly as event_to_dict(CmdRunAction) does
// after ActionExecutionClient applied its default timeout (120.0, non-blocking).
func runAction(cmd string, opts ...runOpt) map[string]any {
	o := &runOpts{timeout: pyFloat(120)}
	for _, f := range opts {
		f(o)
	}
	a := map[string]any{
		"message": "Running command: " + cmd,
		"action":  "run",
		"args": map[string]any{
			"command": cmd, "is_input": o.isInput, "thought": "", "blocking": o.blocking,
			"is_static": o.isStatic, "cwd": o.cwd, "hidden": o.hidden,
			"confirmation_state": "confirmed", "security_risk": -1,
		},
	}
	if !o.noTO {
		a["timeout"] = o.timeout
	}
	return a
}

func (s *server) run(t *testing.T, cmd string, opts ...runOpt) obs {
	t.Helper()
	return s.execute(t, runAction(cmd, opts...))
}

func readAction(path string, extra map[string]any) map[string]any {
	args := map[string]any{"path": path, "start": 0, "end": -1, "thought": "",
		"security_risk": -1, "impl_source": "default", "view_range": nil}
	for k, v := range extra {
		args[k] = v
	}
	return map[string]any{"action": "read", "args": args, "timeout": pyFloat(120)}
}

func writeAction(path, content string, extra map[string]any) map[string]any {
	args := map[string]any{"path": path, "content": content, "start": 0, "end": -1,
		"thought": "", "security_risk": -1}
	for k, v := range extra {
		args[k] = v
	}
	return map[string]any{"action": "write", "args": args, "timeout": pyFloat(120)}
}

// editAction builds an ACI FileEditAction; fields not given are null like
// the dataclass defaults.
func editAction(command, path string, fields map[string]any) map[string]any {
	args := map[string]any{"path": path, "command": command, "file_text": nil,
		"old_str": nil, "new_str": nil, "insert_line": nil, "content": "",
		"start": 1, "end": -1, "thought": "", "security_risk": -1, "impl_source": "oh_aci"}
	for k, v := range fields {
		args[k] = v
	}
	return map[string]any{"action": "edit", "args": args, "timeout": pyFloat(120)}
}

func (s *server) edit(t *testing.T, command, path string, fields map[string]any) obs {
	t.Helper()
	return s.execute(t, editAction(command, path, fields))
}

func (s *server) write(t *testing.T, path, content string) obs {
	t.Helper()
	o := s.execute(t, writeAction(path, content, nil))
	o.wantType(t, "write")
	return o
}

// --- observation accessors ---

func (o obs) str(key string) string {
	v, _ := o.m[key].(string)
	return v
}

func (o obs) typ() string     { return o.str("observation") }
func (o obs) content() string { return o.str("content") }

func (o obs) extras() map[string]any {
	e, _ := o.m["extras"].(map[string]any)
	return e
}

func (o obs) extra(key string) any { return o.extras()[key] }

func (o obs) meta() map[string]any {
	m, _ := o.extras()["metadata"].(map[string]any)
	return m
}

func (o obs) metaInt(key string) (int, bool) {
	f, ok := o.meta()[key].(float64)
	return int(f), ok
}

func (o obs) exitCode() int {
	n, ok := o.metaInt("exit_code")
	if !ok {
		return -999
	}
	return n
}

func (o obs) prefix() string { s, _ := o.meta()["prefix"].(string); return s }
func (o obs) suffix() string { s, _ := o.meta()["suffix"].(string); return s }

// --- expectations (all report the request and the full reply) ---

func (o obs) failf(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Errorf("%s\n  request: %s\n  reply (%.2fs): %s", fmt.Sprintf(format, args...), trunc(o.req, 1500), o.elapsed.Seconds(), trunc(o.raw, 3000))
}

func (o obs) wantType(t *testing.T, want string) {
	t.Helper()
	if o.typ() != want {
		o.failf(t, "observation type: want %q, got %q", want, o.typ())
	}
}

func (o obs) wantContent(t *testing.T, want string) {
	t.Helper()
	if o.content() != want {
		o.failf(t, "content mismatch:\n  want: %q\n  got:  %q", trunc(want, 1500), trunc(o.content(), 1500))
	}
}

func (o obs) wantContains(t *testing.T, sub string) {
	t.Helper()
	if !strings.Contains(o.content(), sub) {
		o.failf(t, "content should contain %q", sub)
	}
}

func (o obs) wantNotContains(t *testing.T, sub string) {
	t.Helper()
	if strings.Contains(o.content(), sub) {
		o.failf(t, "content should NOT contain %q", sub)
	}
}

func (o obs) wantExit(t *testing.T, want int) {
	t.Helper()
	if o.typ() != "run" {
		o.failf(t, "want a run observation with exit code %d, got observation %q", want, o.typ())
		return
	}
	if got := o.exitCode(); got != want {
		o.failf(t, "metadata.exit_code: want %d, got %d", want, got)
	}
}

func (o obs) wantSuffix(t *testing.T, want string) {
	t.Helper()
	if o.suffix() != want {
		o.failf(t, "metadata.suffix:\n  want: %q\n  got:  %q", want, o.suffix())
	}
}

func (o obs) wantSuffixContains(t *testing.T, sub string) {
	t.Helper()
	if !strings.Contains(o.suffix(), sub) {
		o.failf(t, "metadata.suffix should contain %q, got %q", sub, o.suffix())
	}
}

func (o obs) wantPrefix(t *testing.T, want string) {
	t.Helper()
	if o.prefix() != want {
		o.failf(t, "metadata.prefix: want %q, got %q", want, o.prefix())
	}
}

func (o obs) wantExtra(t *testing.T, key string, want any) {
	t.Helper()
	got, ok := o.extras()[key]
	if !ok {
		o.failf(t, "extras.%s missing (want %#v)", key, want)
		return
	}
	if !jsonEqual(got, want) {
		o.failf(t, "extras.%s: want %#v, got %#v", key, want, got)
	}
}

func (o obs) wantMessage(t *testing.T, want string) {
	t.Helper()
	if got := o.str("message"); got != want {
		o.failf(t, "message: want %q, got %q", want, got)
	}
}

// jsonEqual compares a decoded JSON value with a Go value through JSON.
func jsonEqual(got, want any) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return bytes.Equal(a, b)
}

// ---------------------------------------------------------------------------
// Exact strings (spec §5.4–§5.6, bash_constants.py)
// ---------------------------------------------------------------------------

const timeoutTemplate = `You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys ("C-c", "C-z", "C-d") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.`

const continuePrefix = "[Below is the output of the previous command.]\n"

func completedSuffix(code int) string {
	return fmt.Sprintf("\n[The command completed with exit code %d.]", code)
}

func completedKeySuffix(code int, key string) string {
	return fmt.Sprintf("\n[The command completed with exit code %d. CTRL+%s was sent.]", code, key)
}

func noChangeSuffix(sec int) string {
	return fmt.Sprintf("\n[The command has no new output after %d seconds. %s]", sec, timeoutTemplate)
}

// hardTimeoutSuffix takes the timeout already formatted as Python formats a
// float ("1.0", "2.5").
func hardTimeoutSuffix(t string) string {
	return fmt.Sprintf("\n[The command timed out after %s seconds. %s]", t, timeoutTemplate)
}

func notExecutedSuffix(cmd string) string {
	return fmt.Sprintf("\n[Your command \"%s\" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting `is_input` to `true`, you can interact with the current process: %s]", cmd, timeoutTemplate)
}

const truncationNotice = "\n[... Observation truncated due to length ...]\n"

// ---------------------------------------------------------------------------
// small utilities
// ---------------------------------------------------------------------------

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + fmt.Sprintf(" …[%d bytes elided]… ", len(s)-n) + s[len(s)-n/2:]
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func mustWriteFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

func mustReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// pyFloat marshals like Python's json.dumps(float): 120.0, 2.5 (the client
// always sends event.timeout, a float).
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}
