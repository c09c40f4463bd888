package session

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T) *Session {
	t.Helper()
	s, out, err := Start(context.Background(), Config{Env: os.Environ(), Dir: t.TempDir(), Starter: testReaper, StartupTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("start: %v (output %q)", err, out)
	}
	t.Cleanup(s.Close)
	return s
}

func f(v float64) *float64 { return &v }

func run(t *testing.T, s *Session, a Action) Observation {
	t.Helper()
	if a.Check == "" {
		a.Check = "raise"
	}
	if a.Timeout == nil {
		a.Timeout = f(5)
	}
	obs, err := s.Run(context.Background(), a)
	if err != nil {
		t.Fatalf("run %q: %v", a.Command, err)
	}
	return obs
}

// The expected outputs are upstream's own test suite's
// (tests/test_execution.py), the contract of spec §5.6.
func TestOutputs(t *testing.T) {
	s := start(t)
	tests := []struct{ cmd, want string }{
		{"echo 'hello world'; echo 'hello again'", "hello world\nhello again\n"},
		{`printf '\nx'`, "\nx"},
		{`printf '  x'`, "  x"},
		{"echo ''", "\n"},
		{"# echo 'hello world'", ""},
		{"\n\n\n echo 'test1' \n  \n \n echo 'test2' \n\n\n", "test1\ntest2\n"},
		{"cat <<EOF\na\nb\nEOF", "a\nb\n"},
		{"echo a \\\n b", "a b\n"},
		{"x=41; echo $((x+1))", "42\n"},
		{"echo $x", "41\n"},
		{"cd /tmp && pwd", "/tmp\n"},
		{"pwd", "/tmp\n"},
		{"printf 'a\\xffb\\n'", "a\\xffb\n"},
		{"printf '\\e[31mred\\e[0m\\n'", "red\n"},
	}
	for _, tt := range tests {
		obs := run(t, s, Action{Command: tt.cmd})
		if obs.Output != tt.want || obs.ExitCode == nil || *obs.ExitCode != 0 {
			t.Errorf("%q: output %q exit %v, want %q exit 0", tt.cmd, obs.Output, obs.ExitCode, tt.want)
		}
	}
}

func TestExitCodesAndChecks(t *testing.T) {
	s := start(t)
	for cmd, want := range map[string]int{"doesntexit": 127, "false && true": 1, "A=(); false": 1, "[[ 1 == 2 ]]": 1, "(exit 3)": 3} {
		obs := run(t, s, Action{Command: cmd, Check: "silent"})
		if obs.ExitCode == nil || *obs.ExitCode != want {
			t.Errorf("%q: exit %v, want %d", cmd, obs.ExitCode, want)
		}
	}
	obs := run(t, s, Action{Command: "false", Check: "ignore"})
	if obs.ExitCode != nil {
		t.Errorf("check=ignore: exit %v, want null", *obs.ExitCode)
	}
	_, err := s.Run(context.Background(), Action{Command: "false", Check: "raise", Timeout: f(5), ErrorMsg: "oops"})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindNonZeroExit || !strings.HasPrefix(e.Msg, "oops: Command 'false' failed with exit code 1") {
		t.Errorf("check=raise: %v", err)
	}
}

func TestSyntaxError(t *testing.T) {
	s := start(t)
	for _, cmd := range []string{"(a", "a='", "for"} {
		_, err := s.Run(context.Background(), Action{Command: cmd, Check: "raise", Timeout: f(5)})
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindSyntax {
			t.Fatalf("%q: %v, want a syntax error", cmd, err)
		}
		if stderr, _ := e.Extra["bash_stderr"].(string); !strings.Contains(stderr, "syntax error") && !strings.Contains(stderr, "unexpected EOF") {
			t.Errorf("%q: bash_stderr %q", cmd, stderr)
		}
	}
	// The session is still usable.
	if obs := run(t, s, Action{Command: "echo ok"}); obs.Output != "ok\n" {
		t.Errorf("after syntax errors: %q", obs.Output)
	}
}

func TestTimeoutThenInterrupt(t *testing.T) {
	s := start(t)
	_, err := s.Run(context.Background(), Action{Command: "sleep 10", Check: "raise", Timeout: f(0.1)})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTimeout || e.Msg != "timeout after 0.1 seconds while running command 'sleep 10'" {
		t.Fatalf("timeout: %v", err)
	}
	obs, err := s.Interrupt(context.Background(), Interrupt{Timeout: 0.2, NRetry: 3})
	if err != nil || obs.ExitCode == nil || *obs.ExitCode != 0 {
		t.Fatalf("interrupt: %+v %v", obs, err)
	}
	if obs := run(t, s, Action{Command: "echo after"}); obs.Output != "after\n" {
		t.Errorf("after interrupt: %q", obs.Output)
	}
}

func TestBackgroundReturnsPromptly(t *testing.T) {
	s := start(t)
	t0 := time.Now()
	run(t, s, Action{Command: "(sleep 10) &"})
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("background job held the reply for %v", d)
	}
}

func TestInteractivePython(t *testing.T) {
	py := ""
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3"} {
		if isExecutable(p) {
			py = p
		}
	}
	if py == "" {
		t.Skip("no python3 on this machine")
	}
	s := start(t)
	obs := run(t, s, Action{Command: py, Interactive: true, Expect: []string{">>> "}})
	if obs.ExpectString != ">>> " {
		t.Fatalf("python start: %+v", obs)
	}
	obs = run(t, s, Action{Command: "print('hello world')", Interactive: true, Expect: []string{">>> "}})
	if obs.Output != "hello world" {
		t.Errorf("print: %q", obs.Output)
	}
	obs = run(t, s, Action{Command: "quit()\n", InteractiveQuit: true})
	if obs.ExpectString != PromptPattern {
		t.Errorf("quit: %+v", obs)
	}
	if obs := run(t, s, Action{Command: "echo back"}); obs.Output != "back\n" {
		t.Errorf("after quit: %q", obs.Output)
	}
}

func TestExpectPatternWins(t *testing.T) {
	s := start(t)
	obs := run(t, s, Action{Command: "echo first; sleep 0.2; echo second", Expect: []string{"fir.t"}, Check: "silent"})
	if obs.ExpectString != "fir.t" || obs.ExitCode == nil || *obs.ExitCode != 0 {
		t.Errorf("%+v", obs)
	}
}

// A start-up slower than startup_timeout fails as upstream's, and the
// session's first command is still answered with its own output, not the
// late start-up prompt.
func TestSlowStartupThenRun(t *testing.T) {
	rc := t.TempDir() + "/rc"
	os.WriteFile(rc, []byte("sleep 0.5; echo from-rc\n"), 0o644)
	s, _, err := Start(context.Background(), Config{Env: os.Environ(), Dir: t.TempDir(), Starter: testReaper,
		StartupSource: []string{rc}, StartupTimeout: 50 * time.Millisecond})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindExpectTimeout {
		t.Fatalf("start: %v, want a start-up timeout", err)
	}
	defer s.Close()
	if obs := run(t, s, Action{Command: "echo mine"}); obs.Output != "mine\n" {
		t.Errorf("first command after a slow start: %q", obs.Output)
	}
}
