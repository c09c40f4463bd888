package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	e := baseEnv()
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{nil, 0, "Usage: sbx COMMAND", ""},
		{[]string{"help"}, 0, "Commands:", ""},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"help", "run"}, 0, "Usage: sbx run", ""},
		{[]string{"run", "-h"}, 0, "--rm", ""},
		{[]string{"cp", "--help"}, 0, "Usage: sbx cp SRC DST", ""},
		{[]string{"image", "-h"}, 0, "bootstrap", ""},
		{[]string{"image", "build", "-h"}, 0, "--extra-deps", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"run", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"run", "-v", "/tmp", "--", "true"}, 2, "", "-v /tmp: want HOST:DIR"},
		{[]string{"run", "-v", "/tmp:relative", "--", "true"}, 2, "", "must be an absolute path"},
		{[]string{"run", "-v", "/tmp:/x:rx", "--", "true"}, 2, "", `mode "rx"`},
		{[]string{"run", "--memory", "lots", "--", "true"}, 2, "", "--memory lots"},
		{[]string{"run", "--rm", "-d"}, 2, "", "cannot be combined"},
		{[]string{"run", "--protocol", "ssh"}, 2, "", `--protocol "ssh": want one of openhands, swerex`},
		{[]string{"exec", "only-an-id"}, 2, "", "want a sandbox id and a command"},
		{[]string{"stop"}, 2, "", "want at least one sandbox id"},
		{[]string{"logs", "a", "b"}, 2, "", "exactly one sandbox id"},
		{[]string{"cp", "a", "b"}, 2, "", "exactly one of SRC and DST"},
		{[]string{"cp", "x:/a", "y:/b"}, 2, "", "exactly one of SRC and DST"},
		{[]string{"cp", "x:rel", "/tmp"}, 2, "", "must be absolute"},
		{[]string{"cp", "x:/a", "-"}, 2, "", "tar stream"},
		{[]string{"exec", "--timeout", "-1s", "id", "true"}, 2, "", "must not be negative"},
		{[]string{"image"}, 2, "", "want a subcommand"},
		{[]string{"image", "rmi"}, 2, "", "unknown image command"},
		{[]string{"run", "--guard-mode", "fuse", "--", "true"}, 2, "", `--guard-mode "fuse"`},
		{[]string{"run", "-v", "/tmp:/x:guarded", "--", "true"}, 2, "", "want ro, rw or guard"},
		{[]string{"diff"}, 2, "", "want one sandbox id"},
		{[]string{"diff", "--stat", "--json", "x"}, 2, "", "alternatives"},
		{[]string{"apply"}, 2, "", "want a sandbox id"},
		{[]string{"discard"}, 2, "", "want at least one sandbox id"},
	} {
		r := sbxCmd(t, e, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.out) || !strings.Contains(r.stderr, tc.err) {
			t.Errorf("sbx %q: want exit %d, stdout with %q, stderr with %q; got %s", tc.args, tc.code, tc.out, tc.err, r)
		}
		if tc.code == 2 && !strings.HasPrefix(r.stderr, "sbx: ") {
			t.Errorf("sbx %q: stderr should start with \"sbx: \": %q", tc.args, r.stderr)
		}
	}
}

func TestBadConfigIsReported(t *testing.T) {
	r := sbxCmd(t, baseEnv("SANDBOX_TIMEOUT=soon"), "ls")
	if r.code != exitFailure || !strings.Contains(r.stderr, "SANDBOX_TIMEOUT") {
		t.Fatalf("want exit 125 naming the variable; got %s", r)
	}
}

func TestConfigAndVersion(t *testing.T) {
	e := baseEnv()
	r := mustSbx(t, e, "config", "--json")
	var settings []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &settings); err != nil {
		t.Fatalf("config --json: %v\n%s", err, r.stdout)
	}
	found := false
	for _, s := range settings {
		if s["env"] == "SANDBOX_BASE_CONTAINER_IMAGE" {
			found = s["value"] == testImage && s["source"] == "env"
		}
	}
	if !found {
		t.Errorf("config --json: SANDBOX_BASE_CONTAINER_IMAGE not shown as %s from env:\n%s", testImage, r.stdout)
	}
	if r := mustSbx(t, e, "config"); !strings.Contains(r.stdout, "SANDBOX_BASE_CONTAINER_IMAGE") {
		t.Errorf("config: %s", r)
	}
	r = mustSbx(t, e, "version", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["version"] == "" || v["go"] == "" {
		t.Fatalf("version --json: %v\n%s", err, r.stdout)
	}
}

func TestRunEchoHi(t *testing.T) {
	needDocker(t)
	t.Parallel()
	r := sbxCmd(t, baseEnv(), "run", "--rm", "--", "echo", "hi")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("want hi and exit 0; got %s", r)
	}
}

func TestRunExitCode(t *testing.T) {
	needDocker(t)
	t.Parallel()
	r := sbxCmd(t, baseEnv(), "run", "--rm", "--", "sh", "-c", "exit 3")
	if r.code != 3 {
		t.Fatalf("want exit 3; got %s", r)
	}
}

func TestRunShellString(t *testing.T) {
	needDocker(t)
	t.Parallel()
	// One argument is shell text; several are quoted word by word.
	r := sbxCmd(t, baseEnv(), "run", "--rm", "--", "echo a b | tr ab xy")
	if r.code != 0 || r.stdout != "x y\n" {
		t.Fatalf("single argument: %s", r)
	}
	r = sbxCmd(t, baseEnv(), "run", "--rm", "--", "printf", "%s|", "a b", "$HOME", "it's")
	// The output is the command's own, streamed: no newline is added to
	// output that has none, as with docker run.
	if r.code != 0 || r.stdout != "a b|$HOME|it's|" {
		t.Fatalf("quoted arguments: %s", r)
	}
}

func TestRunEnvAndTimeout(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv("FROM_HOST=forwarded")
	r := sbxCmd(t, e, "run", "--rm", "-e", "K=v w$x", "-e", "FROM_HOST", "--", `echo "$K/$FROM_HOST"`)
	if r.code != 0 || r.stdout != "v w$x/forwarded\n" {
		t.Fatalf("-e: %s", r)
	}
	r = sbxCmd(t, e, "run", "--rm", "--timeout", "1s", "--", "sleep 30")
	if r.code != exitTimeout || !strings.Contains(r.stderr, "did not finish within 1s") {
		t.Fatalf("--timeout: %s", r)
	}
}

func TestRunVolume(t *testing.T) {
	needDocker(t)
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := baseEnv()
	r := sbxCmd(t, e, "run", "--rm", "-v", dir+":/mnt/host", "--", "cat /mnt/host/in.txt && echo made > /mnt/host/out.txt")
	if r.code != 0 || r.stdout != "from host\n" {
		t.Fatalf("rw mount: %s", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	if err != nil || string(b) != "made\n" {
		t.Fatalf("file made in the sandbox: %q, %v", b, err)
	}
	r = sbxCmd(t, e, "run", "--rm", "-v", dir+":/mnt/host:ro", "--", "touch /mnt/host/nope")
	if r.code == 0 {
		t.Fatalf("ro mount was writable: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("ro mount: the file reached the host")
	}
}

func TestInteractiveFromPipe(t *testing.T) {
	needDocker(t)
	t.Parallel()
	in := strings.NewReader("echo hi\ncd /tmp\npwd\n\nexit\necho never\n")
	r := sbxIn(t, baseEnv(), in, "run", "--rm")
	if r.code != 0 || r.stdout != "hi\n/tmp\n" {
		t.Fatalf("want hi and /tmp; got %s", r)
	}
	// The status is the last command's, or exit's argument.
	r = sbxIn(t, baseEnv(), strings.NewReader("true\nfalse\n"), "run", "--rm")
	if r.code != 1 {
		t.Fatalf("want the last command's status 1; got %s", r)
	}
	r = sbxIn(t, baseEnv(), strings.NewReader("echo x\nexit 7\n"), "run", "--rm")
	if r.code != 7 || r.stdout != "x\n" {
		t.Fatalf("want exit 7; got %s", r)
	}
}

// TestLifecycle drives one detached sandbox through every state.
func TestLifecycle(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	id := sandboxName(t, e)
	if r := mustSbx(t, e, "run", "-d", "--name", id); r.stdout != id+"\n" {
		t.Fatalf("run -d prints the id: %s", r)
	}
	// The shell persists between execs.
	mustSbx(t, e, "exec", id, "--", "cd /tmp && export V=kept")
	if r := mustSbx(t, e, "exec", id, "--", "echo $PWD $V"); r.stdout != "/tmp kept\n" {
		t.Fatalf("exec: %s", r)
	}
	if r := sbxCmd(t, e, "exec", "--timeout", "500ms", id, "--", "sleep 30"); r.code != exitTimeout {
		t.Fatalf("exec --timeout: %s", r)
	}
	// The timed-out command was interrupted, so the shell takes the next one.
	if r := sbxCmd(t, e, "exec", id, "sh", "-c", "exit 5"); r.code != 5 {
		t.Fatalf("exec without -- passes the status: %s", r)
	}
	// A -- after the command's first word is the command's own.
	if r := mustSbx(t, e, "exec", id, "echo", "--", "x"); r.stdout != "-- x\n" {
		t.Fatalf("exec with -- in the command: %s", r)
	}
	if st := stateOf(t, e, id); st != "running" {
		t.Fatalf("state %q, want running", st)
	}
	if r := mustSbx(t, e, "ls", "-q"); !slices.Contains(strings.Fields(r.stdout), id) {
		t.Fatalf("ls -q lacks %s: %s", id, r)
	}
	if r := mustSbx(t, e, "ls"); !strings.Contains(r.stdout, "CREATED") || !strings.Contains(r.stdout, id) {
		t.Fatalf("ls: %s", r)
	}

	r := sbxCmd(t, e, "rm", id)
	if r.code != exitFailure || !strings.Contains(r.stderr, "sbx rm -f "+id) {
		t.Fatalf("rm of a running sandbox must refuse with a hint: %s", r)
	}

	mustSbx(t, e, "pause", id)
	if st := stateOf(t, e, id); st != "paused" {
		t.Fatalf("state %q, want paused", st)
	}
	if r := sbxCmd(t, e, "exec", id, "--", "true"); r.code != exitFailure || !strings.Contains(r.stderr, "sbx resume "+id) {
		t.Fatalf("exec in a paused sandbox: %s", r)
	}
	mustSbx(t, e, "resume", id)
	// Pause keeps the shell's state.
	if r := mustSbx(t, e, "exec", id, "--", "echo $V"); r.stdout != "kept\n" {
		t.Fatalf("after resume: %s", r)
	}

	mustSbx(t, e, "stop", "-t", "2", id)
	if st := stateOf(t, e, id); st != "stopped" {
		t.Fatalf("state %q, want stopped", st)
	}
	if r := mustSbx(t, e, "ls", "-q"); slices.Contains(strings.Fields(r.stdout), id) {
		t.Fatalf("ls without -a shows a stopped sandbox: %s", r)
	}
	mustSbx(t, e, "start", id)
	if r := mustSbx(t, e, "exec", id, "--", "echo again"); r.stdout != "again\n" {
		t.Fatalf("exec after start: %s", r)
	}
	if r := mustSbx(t, e, "logs", id); !strings.Contains(r.stdout, "sandboxd") {
		t.Fatalf("logs: %s", r)
	}
	if r := mustSbx(t, e, "logs", "--tail", "1", id); strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Fatalf("logs --tail 1: %s", r)
	}

	// Without -f a missing id fails on its own; the others are still
	// handled. With -f, as docker rm -f, a missing one is no error.
	r = sbxCmd(t, e, "rm", "clitest-missing", id)
	if r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, "clitest-missing") || !strings.Contains(r.stderr, "sbx ls") {
		t.Fatalf("rm with a missing id: %s", r)
	}
	r = sbxCmd(t, e, "rm", "-f", "clitest-missing", id)
	if r.code != 0 || r.stdout != id+"\n" || r.stderr != "" {
		t.Fatalf("rm -f with a missing id: %s", r)
	}
	if st := stateOf(t, e, id); st != "" {
		t.Fatalf("removed sandbox still listed as %q", st)
	}
}

// stateOf finds id in `ls -a --json`; "" when it is not listed.
func stateOf(t *testing.T, e env, id string) string {
	t.Helper()
	r := mustSbx(t, e, "ls", "-a", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	for _, s := range list {
		if s["id"] == id {
			for _, k := range []string{"name", "driver", "image", "url", "created", "keep", "app_ports", "labels"} {
				if _, ok := s[k]; !ok {
					t.Errorf("ls --json: key %q missing in %v", k, s)
				}
			}
			return s["state"].(string)
		}
	}
	return ""
}

func TestUnknownSandbox(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	for _, args := range [][]string{
		{"exec", "clitest-nosuch", "--", "true"},
		{"logs", "clitest-nosuch"},
		{"stop", "clitest-nosuch"},
		{"cp", "clitest-nosuch:/etc/hostname", t.TempDir()},
	} {
		r := sbxCmd(t, e, args...)
		if r.code != exitFailure || !strings.Contains(r.stderr, "not found") || !strings.Contains(r.stderr, "sbx ls") {
			t.Errorf("sbx %q: want 125 with a hint; got %s", args, r)
		}
	}
	r := sbxCmd(t, e, "run", "--rm", "--image", "sbx-test/no-such-image:never", "--", "true")
	if r.code != exitFailure || !strings.Contains(r.stderr, "sbx: ") || !strings.Contains(r.stderr, "no-such-image") {
		t.Errorf("missing image: %s", r)
	}
}

func TestCopy(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	id := sandboxName(t, e)
	mustSbx(t, e, "run", "-d", "--name", id)
	testCopy(t, e, id, "/tmp/cptest")
}

// testCopy copies a file and a directory into the sandbox and back, below
// the sandbox directory base.
func testCopy(t *testing.T, e env, id, base string) {
	host := t.TempDir()
	src := filepath.Join(host, "tree")
	writeTree(t, src, map[string]string{
		"a.txt":        "alpha\n",
		"sub/run.sh":   "#!/bin/sh\necho run\n",
		"sub/deep/z":   "zed",
		"archive.zip":  "not really a zip",
		"sub/.hidden":  "h",
		"with space.t": "s",
	})
	if err := os.Chmod(filepath.Join(src, "sub/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}

	mustSbx(t, e, "exec", id, "--", "mkdir -p "+base)
	// A file to a new name, and into an existing directory.
	mustSbx(t, e, "cp", filepath.Join(src, "a.txt"), id+":"+base+"/renamed.txt")
	mustSbx(t, e, "cp", filepath.Join(src, "archive.zip"), id+":"+base)
	// A directory into an existing directory, and to a new name.
	r := mustSbx(t, e, "cp", src, id+":"+base)
	if r.stdout != "" || !strings.Contains(r.stderr, "skipped symbolic link") {
		t.Errorf("cp of a tree with a link: %s", r)
	}
	mustSbx(t, e, "cp", src+"/.", id+":"+base+"/copy")
	r = mustSbx(t, e, "exec", id, "--", "cd "+base+" && cat renamed.txt archive.zip && echo && find . | sort && stat -c %a tree/sub/run.sh copy/empty")
	want := "alpha\nnot really a zip\n.\n./archive.zip\n./copy\n./copy/a.txt\n./copy/archive.zip\n./copy/empty\n./copy/sub\n./copy/sub/.hidden\n./copy/sub/deep\n./copy/sub/deep/z\n./copy/sub/run.sh\n./copy/with space.t\n./renamed.txt\n./tree\n./tree/a.txt\n./tree/archive.zip\n./tree/empty\n./tree/sub\n./tree/sub/.hidden\n./tree/sub/deep\n./tree/sub/deep/z\n./tree/sub/run.sh\n./tree/with space.t\n755\n700\n"
	if r.stdout != want {
		t.Errorf("in the sandbox:\n%s\nwant:\n%s", r.stdout, want)
	}

	// Back: a file into a directory and to a name, a tree to a new name.
	back := filepath.Join(host, "back")
	if err := os.Mkdir(back, 0o755); err != nil {
		t.Fatal(err)
	}
	mustSbx(t, e, "cp", id+":"+base+"/renamed.txt", back)
	mustSbx(t, e, "cp", id+":"+base+"/tree/sub/run.sh", filepath.Join(back, "r.sh"))
	mustSbx(t, e, "cp", id+":"+base+"/tree", filepath.Join(back, "tree2"))
	mustSbx(t, e, "cp", id+":"+base+"/tree", back)
	for name, content := range map[string]string{
		"renamed.txt":        "alpha\n",
		"r.sh":               "#!/bin/sh\necho run\n",
		"tree2/a.txt":        "alpha\n",
		"tree2/sub/deep/z":   "zed",
		"tree2/with space.t": "s",
		"tree/archive.zip":   "not really a zip",
		"tree/sub/.hidden":   "h",
		"tree/sub/run.sh":    "#!/bin/sh\necho run\n",
	} {
		b, err := os.ReadFile(filepath.Join(back, name))
		if err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q", name, b, err, content)
		}
	}
	if fi, err := os.Stat(filepath.Join(back, "r.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("r.sh lost its mode: %v %v", fi.Mode(), err)
	}
	// A file over a file, a directory's contents into a directory, and a
	// file to a directory that is not there.
	mustSbx(t, e, "cp", id+":"+base+"/tree/sub/deep/z", filepath.Join(back, "renamed.txt"))
	contents := filepath.Join(back, "contents")
	os.Mkdir(contents, 0o755)
	mustSbx(t, e, "cp", id+":"+base+"/tree/sub/.", contents)
	for name, content := range map[string]string{"renamed.txt": "zed", "contents/run.sh": "#!/bin/sh\necho run\n", "contents/deep/z": "zed"} {
		if b, err := os.ReadFile(filepath.Join(back, name)); err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q", name, b, err, content)
		}
	}
	if _, err := os.Stat(filepath.Join(contents, "sub")); err == nil {
		t.Error("SRC/. copied the directory itself")
	}
	r = sbxCmd(t, e, "cp", id+":"+base+"/renamed.txt", filepath.Join(back, "nodir")+"/")
	if r.code != exitFailure || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("cp of a file to a missing directory: %s", r)
	}
	r = sbxCmd(t, e, "cp", id+":"+base+"/missing", back)
	if r.code != exitFailure || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("cp of a missing file: %s", r)
	}
	r = sbxCmd(t, e, "cp", id+":"+base+"/tree", filepath.Join(back, "r.sh"))
	if r.code != exitFailure || !strings.Contains(r.stderr, "onto file") {
		t.Errorf("cp of a directory onto a file: %s", r)
	}
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGCDryRun(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	id := sandboxName(t, e)
	// Without --rm or -d the sandbox is stopped at exit: collectable.
	mustSbx(t, e, "run", "--name", id, "--", "true")
	r := mustSbx(t, e, "gc", "--dry-run", "--grace", "0s", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("gc --json: %v\n%s", err, r.stdout)
	}
	if !slices.ContainsFunc(list, func(s map[string]any) bool { return s["id"] == id }) {
		t.Fatalf("gc --dry-run does not list the stopped %s: %s", id, r)
	}
	if st := stateOf(t, e, id); st == "" {
		t.Fatal("gc --dry-run removed the sandbox")
	}
	r = mustSbx(t, e, "gc", "--dry-run", "--grace", "0s")
	if !strings.Contains(r.stdout, "would remove "+id) {
		t.Fatalf("gc --dry-run: %s", r)
	}
	// A young sandbox is left alone.
	r = mustSbx(t, e, "gc", "--dry-run", "--grace", "1h")
	if strings.Contains(r.stdout, id) {
		t.Fatalf("gc --grace 1h lists a new sandbox: %s", r)
	}
}

func TestImageLs(t *testing.T) {
	needDocker(t)
	t.Parallel()
	r := mustSbx(t, baseEnv(), "image", "ls", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("image ls --json: %v\n%s", err, r.stdout)
	}
	for _, img := range list {
		if _, ok := img["id"]; !ok {
			t.Fatalf("image without id: %v", img)
		}
	}
	if r := mustSbx(t, baseEnv(), "image", "ls"); !strings.HasPrefix(r.stdout, "IMAGE") {
		t.Fatalf("image ls: %s", r)
	}
}

// TestRunRemovedOnCancel: Ctrl-C during `run --rm` still removes the
// sandbox.
func TestRunRemovedOnCancel(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	id := sandboxName(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		var out, errw strings.Builder
		code := run(ctx, []string{"run", "--rm", "--name", id, "--", "sleep 60"}, e.getenv, e.environ, strings.NewReader(""), &out, &errw)
		done <- result{code, out.String(), errw.String()}
	}()
	waitFor(t, func() bool { return stateOf(t, e, id) == "running" })
	cancel()
	r := <-done
	if r.code == 0 {
		t.Fatalf("a cancelled run succeeded: %s", r)
	}
	waitFor(t, func() bool { return stateOf(t, e, id) == "" })
}
