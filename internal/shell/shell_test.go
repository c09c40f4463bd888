package shell

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/reaper"
)

// testReaper is the one reaper of the test process: two wait4(-1) loops
// would steal each other's children.
var testReaper *reaper.Reaper

func TestMain(m *testing.M) {
	testReaper = reaper.New(nil)
	code := m.Run()
	testReaper.Close()
	os.Exit(code)
}

func newTestShell(t *testing.T, noChange time.Duration) *Shell {
	t.Helper()
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8", "TERM=xterm-256color"}
	sh, err := New(t.Context(), Config{Dir: t.TempDir(), Env: env, Starter: testReaper, NoChangeTimeout: noChange})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	return sh
}

func run(t *testing.T, sh *Shell, req Request) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	res, err := sh.Run(ctx, req)
	if err != nil {
		t.Fatalf("Run(%q): %v", req.Command, err)
	}
	return res
}

func TestEchoHi(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 2*time.Second)
	res := run(t, sh, Request{Command: "echo hi"})
	if res.Content != "hi" || res.Metadata.ExitCode != 0 || res.Metadata.Suffix != "\n[The command completed with exit code 0.]" {
		t.Fatalf("got %+v", res)
	}
	if *res.Metadata.WorkingDir != sh.cfg.Dir {
		t.Fatalf("working dir %q, want %q", *res.Metadata.WorkingDir, sh.cfg.Dir)
	}
}

func TestStatePersists(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 2*time.Second)
	run(t, sh, Request{Command: "mkdir -p sub && cd sub && export FOO=bar && alias ll='echo aliased' && f() { echo func $1; }"})
	res := run(t, sh, Request{Command: "pwd; echo $FOO; ll; f x"})
	want := sh.cfg.Dir + "/sub\nbar\naliased\nfunc x"
	if res.Content != want {
		t.Fatalf("got %q want %q", res.Content, want)
	}
	if sh.Cwd() != sh.cfg.Dir+"/sub" {
		t.Fatalf("cwd %q", sh.Cwd())
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 2*time.Second)
	for cmd, code := range map[string]int{"true": 0, "false": 1, "nonexistent_cmd_xyz": 127, "(exit 42)": 42} {
		res := run(t, sh, Request{Command: cmd})
		if res.Metadata.ExitCode != code {
			t.Errorf("%s: exit %d want %d (%q)", cmd, res.Metadata.ExitCode, code, res.Content)
		}
	}
}

func TestNoChangeTimeoutAndInput(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 1*time.Second)
	res := run(t, sh, Request{Command: `read -p "Enter name: " name && echo "Hello $name"`})
	if res.Content != "Enter name:" || res.Metadata.ExitCode != -1 || !strings.HasPrefix(res.Metadata.Suffix, "\n[The command has no new output after 1 seconds.") {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "John", IsInput: true})
	if res.Content != "Hello John" || res.Metadata.ExitCode != 0 || res.Metadata.Prefix != "" {
		t.Fatalf("got %+v", res)
	}
}

func TestCtrlC(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 1*time.Second)
	// Output keeps coming, so only the hard timeout can end the wait.
	res := run(t, sh, Request{Command: `while true; do echo looping; sleep 0.3; done`, Timeout: 1.5})
	if !strings.Contains(res.Content, "looping") || res.Metadata.ExitCode != -1 ||
		!strings.HasPrefix(res.Metadata.Suffix, "\n[The command timed out after 1.5 seconds.") {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "ls", IsInput: false})
	if !strings.HasPrefix(res.Metadata.Suffix, "\n[Your command \"ls\" is NOT executed.") {
		t.Fatalf("not refused: %+v", res)
	}
	res = run(t, sh, Request{Command: "C-c", IsInput: true})
	if res.Metadata.ExitCode != 130 || res.Metadata.Suffix != "\n[The command completed with exit code 130. CTRL+C was sent.]" {
		t.Fatalf("got %+v", res)
	}
}

func TestHardTimeout(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 10*time.Second)
	res := run(t, sh, Request{Command: "sleep 5", Timeout: 0.5, Blocking: true})
	if !strings.HasPrefix(res.Metadata.Suffix, "\n[The command timed out after 0.5 seconds.") {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "C-c", IsInput: true})
	if res.Metadata.ExitCode != 130 {
		t.Fatalf("got %+v", res)
	}
}

func TestLongLineAndTabs(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 2*time.Second)
	long := strings.Repeat("a", 10000)
	res := run(t, sh, Request{Command: "echo " + long + " | wc -c"})
	if res.Content != "10001" {
		t.Fatalf("got %q", res.Content)
	}
	res = run(t, sh, Request{Command: "printf 'a\\tb\\n'"})
	if res.Content != "a       b" {
		t.Fatalf("got %q", res.Content)
	}
	res = run(t, sh, Request{Command: "printf 'progress 10%%\\rprogress 100%%\\n'"})
	if res.Content != "progress 100%" {
		t.Fatalf("got %q", res.Content)
	}
}

func TestBackgroundPid(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 2*time.Second)
	res := run(t, sh, Request{Command: "sleep 30 &"})
	if res.Metadata.PID <= 0 || !strings.Contains(res.Content, "[1]") {
		t.Fatalf("got %+v", res)
	}
}

func TestShellExitRestarts(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 2*time.Second)
	res := run(t, sh, Request{Command: "exit 3"})
	if res.Metadata.ExitCode != 3 || !strings.Contains(res.Metadata.Suffix, "shell exited") {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "echo alive"})
	if res.Content != "alive" || !strings.Contains(res.Metadata.Prefix, "previous shell exited") {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "kill -9 $$"})
	res = run(t, sh, Request{Command: "echo again"})
	if res.Content != "again" {
		t.Fatalf("got %+v", res)
	}
}
