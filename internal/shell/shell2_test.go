package shell

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestNothingRunning(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: ""})
	if res.Content != "ERROR: No previous running command to retrieve logs from." || res.Metadata.ExitCode != -1 || res.Metadata.Suffix != "" || res.Command != "" {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "y", IsInput: true})
	if res.Content != "ERROR: No previous running command to interact with." {
		t.Fatalf("got %+v", res)
	}
}

func TestMultipleCommandsRejected(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: "ls -l\necho hi"})
	if !strings.HasPrefix(res.Error, "ERROR: Cannot execute multiple commands at once.") || !strings.HasSuffix(res.Error, "(1) ls -l\n(2) echo hi") {
		t.Fatalf("got %+v", res)
	}
}

func TestLongOutputKeepsTail(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 5*time.Second)
	res := run(t, sh, Request{Command: "for i in $(seq 1 50000); do echo \"Line $i\"; done", Timeout: 60})
	if res.Metadata.ExitCode != 0 {
		t.Fatalf("exit %d", res.Metadata.ExitCode)
	}
	if !strings.HasPrefix(res.Metadata.Prefix, "[Previous command outputs are truncated. Showing the last ") {
		t.Fatalf("prefix %q", res.Metadata.Prefix)
	}
	if !strings.Contains(res.Content, "Line 50000") || !strings.Contains(res.Content, "[... Observation truncated due to length ...]") {
		t.Fatalf("content tail %q", res.Content[len(res.Content)-100:])
	}
	if n := len([]rune(res.Content)); n != 30000+len("\n[... Observation truncated due to length ...]\n") {
		t.Fatalf("content is %d runes", n)
	}
	// The kept history holds at least the last 11 000 lines, as tmux would.
	var lines int
	fmt.Sscanf(strings.TrimPrefix(res.Metadata.Prefix, "[Previous command outputs are truncated. Showing the last "), "%d", &lines)
	if lines < 10990 {
		t.Fatalf("only %d lines kept", lines)
	}
}

func TestHiddenNotTruncated(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 5*time.Second)
	res := run(t, sh, Request{Command: "head -c 40000 /dev/zero | tr '\\0' a", Hidden: true})
	if len(res.Content) != 40000 || !res.Hidden {
		t.Fatalf("len %d hidden %v", len(res.Content), res.Hidden)
	}
}

func TestStderrUnicodeBinary(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 5*time.Second)
	res := run(t, sh, Request{Command: "echo out; echo err >&2; echo 'héllo wörld 你好 🎉'"})
	if res.Content != "out\nerr\nhéllo wörld 你好 🎉" {
		t.Fatalf("got %q", res.Content)
	}
	// Random bytes, without ESC and the C1 controls: an escape sequence
	// left open by chance (an OSC string with no terminator) swallows what
	// follows on a real terminal too, which made this test flaky.
	res = run(t, sh, Request{Command: `head -c 4096 /dev/urandom | LC_ALL=C tr -d '\033\200-\237'; echo; echo done`})
	if res.Metadata.ExitCode != 0 || !strings.HasSuffix(res.Content, "done") {
		t.Fatalf("got exit %d, tail %q", res.Metadata.ExitCode, res.Content[max(0, len(res.Content)-20):])
	}
	if !strings.Contains(sh.Cwd(), "/") {
		t.Fatal("cwd lost")
	}
}

func TestContinuationPrefix(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: "echo first; sleep 1.5; echo second; sleep 1.5; echo third"})
	if res.Content != "first" || res.Metadata.Prefix != "" {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: ""})
	if res.Metadata.Prefix != "[Below is the output of the previous command.]\n" || res.Content != "second" {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "", Timeout: 10, Blocking: true})
	if res.Content != "third" || res.Metadata.ExitCode != 0 || res.Metadata.Prefix != "" {
		t.Fatalf("got %+v", res)
	}
}

func TestHeredocWaitingForInput(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: "cat"})
	if res.Content != "" || res.Metadata.ExitCode != -1 {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "hello", IsInput: true})
	if res.Content != "hello" || res.Metadata.Prefix != "[Below is the output of the previous command.]\n" {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "C-d", IsInput: true})
	if res.Metadata.ExitCode != 0 || res.Metadata.Suffix != "\n[The command completed with exit code 0. CTRL+D was sent.]" {
		t.Fatalf("got %+v", res)
	}
}

func TestCtrlZ(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	run(t, sh, Request{Command: "sleep 100"})
	res := run(t, sh, Request{Command: "C-z", IsInput: true})
	if res.Metadata.ExitCode != 148 || !strings.Contains(res.Content, "Stopped") {
		t.Fatalf("got %+v", res)
	}
}

func TestCompletedAfterTimeoutThenNewCommand(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: "sleep 1.5; echo late"})
	if res.Metadata.ExitCode != -1 {
		t.Fatalf("got %+v", res)
	}
	time.Sleep(1500 * time.Millisecond)
	// The first command finished after its reply; a new command is not
	// refused and the late output is not lost.
	res = run(t, sh, Request{Command: "echo next"})
	if res.Metadata.ExitCode != 0 || !strings.Contains(res.Content, "late") || !strings.HasSuffix(res.Content, "next") {
		t.Fatalf("got %+v", res)
	}
}

func TestPythonInput(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: `python3 -c "name = input('Enter your name: '); print(f'Hello {name}')"`})
	if res.Content != "Enter your name:" {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "Alice", IsInput: true})
	if res.Content != "Hello Alice" || res.Metadata.ExitCode != 0 {
		t.Fatalf("got %+v", res)
	}
}

func TestGitAliasAndPython(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: "alias git"})
	if res.Content != "alias git='git --no-pager'" {
		t.Fatalf("got %q", res.Content)
	}
	res = run(t, sh, Request{Command: "mkdir -p bin && ln -s $(command -v python3) bin/python && export PATH=$PWD/bin:$PATH && true"})
	if got := *res.Metadata.PyInterpreterPath; got != sh.Cwd()+"/bin/python" {
		t.Fatalf("py_interpreter_path %q", got)
	}
}

func TestCloseDuringRun(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 30*time.Second)
	done := make(chan Result, 1)
	go func() {
		res, _ := sh.Run(t.Context(), Request{Command: "sleep 60", Blocking: true, Timeout: 60})
		done <- res
	}()
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	sh.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Close took %s", d)
	}
	if _, err := sh.Run(t.Context(), Request{Command: "true"}); err != ErrClosed {
		t.Fatalf("Run after Close: %v", err)
	}
}

// TestOrphansReaped: background jobs whose parent exits are re-parented to
// the reaper's process (a child subreaper) and reaped, not left as zombies.
func TestOrphansReaped(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 10*time.Second)
	res := run(t, sh, Request{Command: "for i in $(seq 1000); do (sleep 0.001 &); done; sleep 1; echo spawned", Timeout: 60})
	if res.Content != "spawned" {
		t.Fatalf("got %+v", res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		z := zombiesOf(os.Getpid())
		if z == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d zombie children left", z)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if testReaper.Orphans() < 900 {
		t.Fatalf("reaped only %d orphans", testReaper.Orphans())
	}
}

func zombiesOf(ppid int) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[0] == "Z" && f[1] == fmt.Sprint(ppid) {
			n++
		}
	}
	return n
}

func TestOddDirectoryNames(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 2*time.Second)
	res := run(t, sh, Request{Command: `mkdir -p $'a\ab\x1fc%07d' && cd $'a\ab\x1fc%07d' && echo in`})
	want := sh.cfg.Dir + "/a\ab\x1fc%07d"
	if res.Content != "in" || *res.Metadata.WorkingDir != want {
		t.Fatalf("got %q in %q, want %q", res.Content, *res.Metadata.WorkingDir, want)
	}
	res = run(t, sh, Request{Command: "echo next"})
	if res.Content != "next" {
		t.Fatalf("prompt leaked into the next reply: %q", res.Content)
	}
}

func TestCtrlCPastUnreadInput(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	run(t, sh, Request{Command: "sleep 1000"})
	// sleep never reads: this fills the terminal's input buffer and the
	// writer blocks; C-c must still get through.
	big := strings.Repeat(strings.Repeat("x", 99)+"\n", 200)
	run(t, sh, Request{Command: big, IsInput: true})
	res := run(t, sh, Request{Command: "C-c", IsInput: true, Timeout: 10})
	if res.Metadata.ExitCode != 130 {
		t.Fatalf("got %+v", res.Metadata)
	}
	if res := run(t, sh, Request{Command: "echo ok"}); res.Content != "ok" {
		t.Fatalf("after C-c: %q", res.Content)
	}
}

func TestHugeTimeout(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, time.Second)
	res := run(t, sh, Request{Command: "echo hi", Timeout: 1e12})
	if res.Content != "hi" || res.Metadata.ExitCode != 0 {
		t.Fatalf("got %+v", res)
	}
}
