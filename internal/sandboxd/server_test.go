package sandboxd

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/fileops"
	"github.com/sbx-dev/sbx/internal/ipython"
	"github.com/sbx-dev/sbx/internal/reaper"
	"github.com/sbx-dev/sbx/internal/shell"
	"github.com/sbx-dev/sbx/sandboxapi"
)

var testReaper *reaper.Reaper

func TestMain(m *testing.M) {
	testReaper = reaper.New(nil)
	code := m.Run()
	testReaper.Close()
	os.Exit(code)
}

type testServer struct {
	srv  *Server
	ts   *httptest.Server
	c    *sandboxapi.Client
	work string
}

func newBenchServer(t testing.TB) *testServer { return newTestServer(t, "") }

func newTestServer(t testing.TB, key string) *testServer {
	return newTestServerWith(t, key, nil)
}

func newTestServerWith(t testing.TB, key string, kernel IPython) *testServer {
	t.Helper()
	return newTestServerOpts(t, key, kernel, nil)
}

func newTestServerOpts(t testing.TB, key string, kernel IPython, edit func(*Options)) *testServer {
	t.Helper()
	work := t.TempDir()
	files, err := fileops.New(fileops.Options{WorkspaceRoot: work, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8"}
	opts := Options{WorkDir: work, SessionAPIKey: key, Files: files, Terminal: TerminalOptions{Env: env, Starter: testReaper}}
	if kernel != nil {
		opts.IPython, opts.Plugins = kernel, []string{"agent_skills", "jupyter"}
	}
	if edit != nil {
		edit(&opts)
	}
	srv := New(opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	cfg := shell.Config{
		Dir:             work,
		Env:             env,
		Starter:         testReaper,
		NoChangeTimeout: 2 * time.Second,
	}
	sh, err := shell.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	if err := srv.SetReady(sh, func(ctx context.Context, o ShellOptions) (Shell, error) {
		c := cfg
		c.Dir = o.Dir
		c.Env = append(srv.env.Apply(cfg.Env), o.Env...)
		return shell.New(ctx, c)
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &testServer{srv: srv, ts: ts, c: sandboxapi.NewClient(ts.URL, key), work: work}
}

func (s *testServer) post(t *testing.T, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.ts.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAliveAndNotInitialized(t *testing.T) {
	t.Parallel()
	srv := New(Options{WorkDir: t.TempDir()})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c := sandboxapi.NewClient(ts.URL, "")
	if st, err := c.Alive(t.Context()); err != nil || st != "not initialized" {
		t.Fatalf("alive = %q, %v", st, err)
	}
	s := newTestServer(t, "")
	if st, err := s.c.Alive(t.Context()); err != nil || st != "ok" {
		t.Fatalf("alive = %q, %v", st, err)
	}
}

func TestRunThroughClient(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	obs, ex, err := s.c.Run(t.Context(), sandboxapi.NewRunAction("echo hi", 30))
	if err != nil {
		t.Fatal(err)
	}
	if obs.Content != "hi" || obs.Message != "Command `echo hi` executed with exit code 0." || obs.Success == nil || !*obs.Success {
		t.Fatalf("obs %+v", obs)
	}
	if ex.Command != "echo hi" || ex.Metadata.ExitCode != 0 || ex.Metadata.Suffix != "\n[The command completed with exit code 0.]" || *ex.Metadata.WorkingDir != s.work {
		t.Fatalf("extras %+v", ex)
	}
	// Every metadata key is present on the wire.
	var raw map[string]map[string]any
	json.Unmarshal(obs.Extras, &raw)
	for _, k := range []string{"exit_code", "pid", "username", "hostname", "working_dir", "py_interpreter_path", "prefix", "suffix"} {
		if _, ok := raw["metadata"][k]; !ok {
			t.Errorf("metadata lacks %q", k)
		}
	}
}

func TestMultipleCommandsIsErrorObservation(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	obs, err := s.c.Execute(t.Context(), sandboxapi.NewRunAction("ls\npwd", 30))
	if err != nil {
		t.Fatal(err)
	}
	if obs.Observation != "error" || obs.Message != obs.Content || string(obs.Extras) != `{"error_id":""}` || obs.Success != nil {
		t.Fatalf("obs %+v extras %s", obs, obs.Extras)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "sekrit")
	for _, path := range []string{"/execute_action", "/list_files", "/nope"} {
		code, body := s.post(t, path, `{}`, nil)
		if code != 403 || body != `{"detail":"Invalid API Key"}` {
			t.Errorf("%s without key: %d %s", path, code, body)
		}
		code, body = s.post(t, path, `{}`, map[string]string{"X-Session-API-Key": "wrong"})
		if code != 403 {
			t.Errorf("%s with a wrong key: %d %s", path, code, body)
		}
	}
	resp, err := http.Get(s.ts.URL + "/alive")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("alive needs no key: %v %v", err, resp)
	}
	if _, _, err := s.c.Run(t.Context(), sandboxapi.NewRunAction("true", 10)); err != nil {
		t.Fatalf("with the key: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	cases := []struct {
		body   string
		status int
		detail string
	}{
		{`not json`, 422, "Invalid request parameters"},
		{`{"action":{"action":"message","args":{"content":"hi"}}}`, 500, "Internal server error: 'ActionExecutor' object has no attribute 'message'"},
		{`{"action":{"action":"run_ipython","args":{"code":"1"}}}`, 500, "Internal server error: JupyterRequirement not found. Unable to run IPython action."},
		{`{"action":{"action":"run","args":{"command":5}}}`, 500, "Internal server error: action="},
	}
	for _, c := range cases {
		code, body := s.post(t, "/execute_action", c.body, nil)
		var eb sandboxapi.ErrorBody
		if err := json.Unmarshal([]byte(body), &eb); err != nil || code != c.status || !strings.HasPrefix(eb.Detail, c.detail) {
			t.Errorf("%s: got %d %s", c.body, code, body)
		}
	}
	obs, err := s.c.Execute(t.Context(), mustAction(t, "browse", map[string]any{"url": "http://x"}))
	if err != nil || obs.Content != "Browser functionality is not supported or disabled." || obs.Observation != "error" {
		t.Fatalf("browse: %v %+v", err, obs)
	}
	big := `{"action":{"action":"run","args":{"command":"` + strings.Repeat("a", 65<<20) + `"}}}`
	code, body := s.post(t, "/execute_action", big, nil)
	if code != 413 {
		t.Fatalf("oversize body: %d %.200s", code, body)
	}
}

func mustAction(t *testing.T, typ string, args any) sandboxapi.Action {
	a, err := sandboxapi.NewAction(typ, args, 30)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWriteReadEditThroughHTTP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	ctx := t.Context()
	p := filepath.Join(s.work, "a.txt")
	obs, err := s.c.Execute(ctx, mustAction(t, "write", sandboxapi.FileWriteArgs{Path: "a.txt", Content: "foo\nbar", End: -1}))
	if err != nil || obs.Observation != "write" || obs.Message != "I wrote to the file "+p+"." {
		t.Fatalf("write: %v %+v", err, obs)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "foo\nbar\n" {
		t.Fatalf("file %q", b)
	}
	obs, err = s.c.Execute(ctx, mustAction(t, "read", sandboxapi.FileReadArgs{Path: p, End: -1, ImplSource: "default"}))
	if err != nil || obs.Content != "foo\nbar\n" {
		t.Fatalf("read: %v %+v", err, obs)
	}
	old, nw := "foo", "baz"
	obs, err = s.c.Execute(ctx, mustAction(t, "edit", sandboxapi.FileEditArgs{Path: p, Command: "str_replace", OldStr: &old, NewStr: &nw, ImplSource: "oh_aci"}))
	if err != nil || obs.Observation != "edit" {
		t.Fatalf("edit: %v %+v", err, obs)
	}
	var ex sandboxapi.FileEditExtras
	if err := obs.DecodeExtras(&ex); err != nil {
		t.Fatal(err)
	}
	if ex.Diff == nil || !strings.Contains(*ex.Diff, "-foo\n+baz") || *ex.OldContent != "foo" || *ex.NewContent != "baz" || ex.ImplSource != "oh_aci" {
		t.Fatalf("extras %+v", ex)
	}
	if !bytes.Contains(obs.Extras, []byte(`"_diff_cache":null`)) {
		t.Fatalf("extras lack _diff_cache: %s", obs.Extras)
	}
}

func TestUploadDownloadList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	ctx := t.Context()
	dest := filepath.Join(s.work, "up")
	res, err := s.c.Upload(ctx, dest, "x.txt", strings.NewReader("hello"), false)
	if err != nil || res.Filename != "x.txt" || res.Destination != dest || res.Recursive {
		t.Fatalf("upload: %v %+v", err, res)
	}
	names, err := s.c.ListFiles(ctx, "")
	if err != nil || strings.Join(names, ",") != "up/" {
		t.Fatalf("list: %v %v", err, names)
	}
	var buf bytes.Buffer
	if err := s.c.Download(ctx, dest, &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "x.txt" {
		t.Fatalf("zip: %v %+v", err, zr)
	}
	if _, err := s.c.Upload(ctx, "relative", "x.txt", strings.NewReader("x"), false); !sandboxapi.IsStatus(err, 500) || !strings.Contains(err.Error(), "400: Destination must be an absolute path") {
		t.Fatalf("relative destination: %v", err)
	}
	if err := s.c.Download(ctx, "/definitely/not/here", io.Discard); !sandboxapi.IsStatus(err, 500) || !strings.Contains(err.Error(), "404: File not found") {
		t.Fatalf("missing download: %v", err)
	}
	code, body := s.post(t, "/list_files", `not json`, nil)
	if code != 500 || body != `{"detail":"An unexpected error occurred. Please try again later."}` {
		t.Fatalf("list with bad json: %d %s", code, body)
	}
}

func TestServerInfo(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	si, err := s.c.ServerInfo(t.Context())
	if err != nil || si.Uptime <= 0 || si.Resources.Memory.RSS <= 0 || si.Resources.Disk.Total <= 0 {
		t.Fatalf("%v %+v", err, si)
	}
}

func TestStaticCommand(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	sub := filepath.Join(s.work, "sub")
	os.Mkdir(sub, 0o755)
	a := mustAction(t, "run", sandboxapi.CmdRunArgs{Command: "pwd; cd /; export X=1", IsStatic: true, Cwd: &sub, ConfirmationState: "confirmed", SecurityRisk: -1})
	obs, err := s.c.Execute(t.Context(), a)
	if err != nil || obs.Content != sub {
		t.Fatalf("%v %+v", err, obs)
	}
	_, ex, err := s.c.Run(t.Context(), sandboxapi.NewRunAction("pwd; echo ${X:-unset}", 10))
	if err != nil || *ex.Metadata.WorkingDir != s.work {
		t.Fatalf("the main shell moved: %v %+v", err, ex)
	}
}

func TestRunIPython(t *testing.T) {
	t.Parallel()
	k := ipython.New(ipython.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, Dir: t.TempDir(), Starter: testReaper})
	t.Cleanup(func() { k.Close() })
	s := newTestServerWith(t, "", k)
	run := func(code string) sandboxapi.Observation {
		t.Helper()
		o, err := s.c.Execute(t.Context(), mustAction(t, "run_ipython", sandboxapi.IPythonArgs{Code: code, IncludeExtra: true, ConfirmationState: "confirmed", SecurityRisk: -1}))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := run("print('hello')")
	if o.Observation != "run_ipython" || o.Message != "Code executed in IPython cell." || o.Success == nil || !*o.Success {
		t.Fatalf("%+v", o)
	}
	head, footer, _ := strings.Cut(o.Content, "\n[Jupyter current working directory: ")
	if head != "hello" || !strings.HasPrefix(footer, s.work+"]\n[Jupyter Python interpreter: /") {
		t.Fatalf("content %q", o.Content)
	}
	var ex sandboxapi.IPythonExtras
	if err := o.DecodeExtras(&ex); err != nil || ex.Code != "print('hello')" || ex.ImageURLs != nil {
		t.Fatalf("extras %s", o.Extras)
	}
	// The kernel follows the shell's working directory.
	os.Mkdir(filepath.Join(s.work, "sub"), 0o755)
	s.c.Run(t.Context(), sandboxapi.NewRunAction("cd sub", 10))
	if o := run("import os; print(os.getcwd())"); !strings.HasPrefix(o.Content, filepath.Join(s.work, "sub")+"\n") {
		t.Fatalf("cwd not followed: %q", o.Content)
	}
}
