package conformance_test

// Bash tests around timeouts, interactive input, control keys and refusing
// new commands while one runs. Sources: tests/runtime/test_bash.py,
// tests/unit/runtime/utils/test_bash_session.py, spec §5.4–§5.7, §5.10.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func (o obs) wantRunning(t *testing.T) {
	t.Helper()
	o.wantType(t, "run")
	if got := o.exitCode(); got != -1 {
		o.failf(t, "metadata.exit_code: want -1 (command still running), got %d", got)
	}
}

// A timeout reply has no prompt, so the prompt fields are null (§3.4).
func (o obs) wantNoPromptMetadata(t *testing.T) {
	t.Helper()
	md := o.meta()
	for _, k := range []string{"username", "hostname", "working_dir", "py_interpreter_path"} {
		if v, ok := md[k]; !ok || v != nil {
			o.failf(t, "metadata.%s: want null when no prompt was parsed, got %#v", k, v)
		}
	}
	if pid, _ := o.metaInt("pid"); pid != -1 {
		o.failf(t, "metadata.pid: want -1 when no prompt was parsed, got %d", pid)
	}
}

// test_empty_command_errors (runtime + unit) and the is_input twin (§5.4 step 1).
func TestBashEmptyCommandErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "")
	o.wantType(t, "run")
	o.wantContent(t, "ERROR: No previous running command to retrieve logs from.")
	o.wantExit(t, -1)
	o.wantPrefix(t, "")
	o.wantSuffix(t, "")
	o.wantExtra(t, "command", "")
	o.wantMessage(t, "Command `` executed with exit code -1.")
	if o.m["success"] != false {
		o.failf(t, "success: want false (exit -1)")
	}

	o = s.run(t, "   \n  ")
	o.wantContent(t, "ERROR: No previous running command to retrieve logs from.")

	o = s.run(t, "John", input())
	o.wantType(t, "run")
	o.wantContent(t, "ERROR: No previous running command to interact with.")
	o.wantExit(t, -1)
	o.wantExtra(t, "command", "")
	o.wantSuffix(t, "")

	o = s.run(t, "C-c", input())
	o.wantContent(t, "ERROR: No previous running command to interact with.")

	// After a completed command the same errors apply.
	s.run(t, "echo done").wantExit(t, 0)
	o = s.run(t, "")
	o.wantContent(t, "ERROR: No previous running command to retrieve logs from.")
}

// test_interactive_command (runtime, NO_CHANGE_TIMEOUT_SECONDS=1).
func TestBashInteractiveReadP(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, `read -p "Enter name: " name && echo "Hello $name"`)
	o.wantRunning(t)
	o.wantContains(t, "Enter name:")
	o.wantContent(t, "Enter name:")
	o.wantSuffix(t, noChangeSuffix(1))
	o.wantPrefix(t, "")
	o.wantNoPromptMetadata(t)
	if o.elapsed > 4*time.Second {
		o.failf(t, "no-change timeout of 1 s took %.1fs", o.elapsed.Seconds())
	}

	o = s.run(t, "John", input())
	o.wantExit(t, 0)
	o.wantContains(t, "Hello John")
	o.wantContent(t, "Hello John")
	o.wantSuffix(t, completedSuffix(0))
	o.wantPrefix(t, "")
	o.wantExtra(t, "command", "John")

	o = s.run(t, "cat << EOF\nline 1\nline 2\nEOF")
	o.wantExit(t, 0)
	o.wantContent(t, "line 1\nline 2")
	o.wantSuffix(t, completedSuffix(0))
}

// test_interactive_command (unit): a bare heredoc start waits for input;
// every later partial reply carries the continuation prefix (§5.10).
func TestBashHeredocInteractive(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "cat << EOF")
	o.wantRunning(t)
	o.wantSuffix(t, noChangeSuffix(1))
	o.wantPrefix(t, "")

	o = s.run(t, "line 1", input())
	o.wantRunning(t)
	o.wantSuffix(t, noChangeSuffix(1))
	o.wantPrefix(t, continuePrefix)
	o.wantContent(t, "") // the echo of the typed input is stripped like a command

	o = s.run(t, "line 2", input())
	o.wantRunning(t)
	o.wantSuffix(t, noChangeSuffix(1))
	o.wantPrefix(t, continuePrefix)
	o.wantContent(t, "")

	o = s.run(t, "EOF", input())
	o.wantExit(t, 0)
	o.wantContains(t, "line 1")
	o.wantContains(t, "line 2")
	o.wantContent(t, "line 1\nline 2")
	o.wantSuffix(t, completedSuffix(0))
	o.wantPrefix(t, "")
}

// test_python_interactive_input (unit: no-change timeout 2).
func TestBashPythonInteractiveInput(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t, withNoChange(2))
	script := `name = input('Enter your name: '); age = input('Enter your age: '); print(f'Hello {name}, you are {age} years old')`
	o := s.run(t, fmt.Sprintf(`python3 -c "%s"`, script))
	o.wantRunning(t)
	o.wantContains(t, "Enter your name:")
	o.wantSuffix(t, noChangeSuffix(2))

	o = s.run(t, "Alice", input())
	o.wantRunning(t)
	o.wantContains(t, "Enter your age:")
	o.wantContent(t, "Enter your age:")
	o.wantPrefix(t, continuePrefix)

	o = s.run(t, "25", input())
	o.wantExit(t, 0)
	o.wantContains(t, "Hello Alice, you are 25 years old")
	o.wantContent(t, "Hello Alice, you are 25 years old")
	o.wantSuffix(t, completedSuffix(0))
	o.wantPrefix(t, "")
}

// test_python_interactive_input_without_set_input.
func TestBashPythonInteractiveInputWithoutSetInput(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t, withNoChange(2))
	script := `name = input('Enter your name: '); age = input('Enter your age: '); print(f'Hello {name}, you are {age} years old')`
	o := s.run(t, fmt.Sprintf(`python3 -c "%s"`, script))
	o.wantRunning(t)
	o.wantContains(t, "Enter your name:")

	start := time.Now()
	o = s.run(t, "Alice")
	o.wantRunning(t)
	o.wantNotContains(t, "Enter your age:")
	o.wantSuffixContains(t, `Your command "Alice" is NOT executed. The previous command is still running`)
	o.wantSuffix(t, notExecutedSuffix("Alice"))
	o.wantExtra(t, "command", "Alice")
	o.wantContent(t, "")
	o.wantPrefix(t, continuePrefix)
	if time.Since(start) > 1500*time.Millisecond {
		o.failf(t, "a refused command must be answered at once, took %s", time.Since(start))
	}

	o = s.run(t, "Alice", input())
	o.wantRunning(t)
	o.wantContains(t, "Enter your age:")

	o = s.run(t, "25", input())
	o.wantExit(t, 0)
	o.wantContains(t, "Hello Alice, you are 25 years old")
	o.wantSuffix(t, completedSuffix(0))
}

// test_ctrl_c (unit, no-change 2): C-c ends a bash loop with 130.
func TestBashCtrlC(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(2))
	o := s.run(t, "while true; do echo 'looping'; sleep 3; done")
	o.wantRunning(t)
	o.wantContains(t, "looping")
	o.wantSuffix(t, noChangeSuffix(2))
	o.wantPrefix(t, "")

	o = s.run(t, "C-c", input())
	o.wantExit(t, 130)
	o.wantSuffixContains(t, "CTRL+C was sent")
	o.wantSuffix(t, completedKeySuffix(130, "C"))
	o.wantPrefix(t, "")
	o.wantExtra(t, "command", "C-c")
	o.wantMessage(t, "Command `C-c` executed with exit code 130.")

	o = s.run(t, "echo ready")
	o.wantExit(t, 0)
	o.wantContent(t, "ready")
}

// test_bash_server: a foreground server hits the hard timeout (float 1.0 in
// the suffix although the client set 1), C-c stops it with exit 0.
func TestBashServerCtrlC(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t)
	port := freePort(t)
	o := s.run(t, fmt.Sprintf("python3 -u -m http.server %d --bind 127.0.0.1", port), hardTimeout(1))
	o.wantRunning(t)
	o.wantContains(t, "Serving HTTP on")
	o.wantSuffixContains(t, "[The command timed out after 1.0 seconds. "+timeoutTemplate+"]")
	o.wantSuffix(t, hardTimeoutSuffix("1.0"))

	o = s.run(t, "C-c", input(), hardTimeout(30))
	o.wantExit(t, 0)
	o.wantContains(t, "Keyboard interrupt received, exiting.")
	if wd, _ := o.meta()["working_dir"].(string); !strings.Contains(wd, s.workdir) {
		o.failf(t, "metadata.working_dir should contain %q", s.workdir)
	}
	o.wantSuffix(t, completedKeySuffix(0, "C"))

	o = s.run(t, "ls", hardTimeout(3))
	o.wantExit(t, 0)
	o.wantNotContains(t, "Keyboard interrupt received, exiting.")

	o = s.run(t, fmt.Sprintf("python3 -u -m http.server %d --bind 127.0.0.1", port), hardTimeout(1))
	o.wantRunning(t)
	o.wantContains(t, "Serving HTTP on")
	s.run(t, "C-c", input(), hardTimeout(30)).wantExit(t, 0)
}

// test_command_output_continuation (runtime): hard timeout 2.5 (blocking)
// and empty-command continuation until completion.
func TestBashCommandOutputContinuation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "for i in {1..5}; do echo $i; sleep 3; done", hardTimeout(2.5))
	o.wantRunning(t)
	if strings.TrimSpace(o.content()) != "1" {
		o.failf(t, "content.strip(): want %q", "1")
	}
	o.wantContent(t, "1")
	o.wantPrefix(t, "")
	o.wantSuffixContains(t, "[The command timed out after 2.5 seconds.")
	o.wantSuffix(t, hardTimeoutSuffix("2.5"))
	o.wantNoPromptMetadata(t)

	for _, want := range []string{"2", "3", "4", "5"} {
		o = s.run(t, "", hardTimeout(2.5))
		o.wantRunning(t)
		o.wantPrefix(t, continuePrefix)
		if strings.TrimSpace(o.content()) != want {
			o.failf(t, "content.strip(): want %q", want)
		}
		o.wantContent(t, want)
		o.wantSuffix(t, hardTimeoutSuffix("2.5"))
		o.wantExtra(t, "command", "")
	}

	o = s.run(t, "")
	o.wantExit(t, 0)
	o.wantSuffixContains(t, "[The command completed with exit code 0.]")
	o.wantSuffix(t, completedSuffix(0))
	o.wantPrefix(t, "")
	if strings.TrimSpace(o.content()) != "" {
		o.failf(t, "completion after all output was already returned should add nothing, got %q", o.content())
	}
}

// test_long_running_command_follow_by_execute (runtime).
func TestBashLongRunningFollowByExecute(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "for i in {1..3}; do echo $i; sleep 3; done", hardTimeout(2.5))
	o.wantRunning(t)
	o.wantContains(t, "1")
	o.wantSuffixContains(t, "[The command timed out after 2.5 seconds.")
	o.wantPrefix(t, "")

	o = s.run(t, "", hardTimeout(2.5))
	o.wantRunning(t)
	o.wantContains(t, "2")
	o.wantPrefix(t, continuePrefix)
	o.wantSuffixContains(t, "[The command timed out after 2.5 seconds.")

	o = s.run(t, "sleep 15", hardTimeout(2.5))
	o.wantRunning(t)
	o.wantNotContains(t, "3")
	o.wantContent(t, "")
	o.wantPrefix(t, continuePrefix)
	o.wantSuffixContains(t, "The previous command is still running")
	o.wantSuffix(t, notExecutedSuffix("sleep 15"))
	o.wantNoPromptMetadata(t)

	o = s.run(t, "")
	o.wantExit(t, 0)
	o.wantContains(t, "3")
	o.wantContent(t, "3")
	o.wantSuffix(t, completedSuffix(0))
	o.wantPrefix(t, "")
	o.wantNotContains(t, "sleep 15")
}

// test_long_running_command_follow_by_execute (unit, no-change 2): the
// refused reply still delivers the output that appeared meanwhile.
func TestBashNoChangeTimeoutFollowUp(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(2))
	o := s.run(t, "for i in {1..3}; do echo $i; sleep 3; done")
	o.wantRunning(t)
	o.wantContains(t, "1")
	o.wantSuffix(t, noChangeSuffix(2))
	o.wantPrefix(t, "")

	o = s.run(t, "", input())
	o.wantRunning(t)
	o.wantContains(t, "2")
	o.wantPrefix(t, continuePrefix)
	o.wantSuffix(t, noChangeSuffix(2))

	o = s.run(t, "sleep 15")
	o.wantRunning(t)
	o.wantNotContains(t, "3")
	o.wantPrefix(t, continuePrefix)
	o.wantSuffix(t, notExecutedSuffix("sleep 15"))

	time.Sleep(3 * time.Second)
	o = s.run(t, "sleep 15")
	o.wantRunning(t)
	o.wantContains(t, "3")
	o.wantContent(t, "3")
	o.wantPrefix(t, continuePrefix)
	o.wantSuffixContains(t, "The previous command is still running")

	o = s.run(t, "", input())
	o.wantExit(t, 0)
	o.wantNotContains(t, "sleep 15")
	o.wantContent(t, "")
}

// test_stress_long_output_with_soft_and_hard_timeout (2 iterations):
// read -p answered with is_input; 1000-char lines under a hard timeout of 2;
// refusal; C-c → 130; terminal usable again.
func TestBashSoftAndHardTimeoutStress(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	for i := 0; i < 2; i++ {
		o := s.run(t, `read -p "Do you want to continue? [Y/n] " answer; if [[ $answer == "Y" ]]; then echo "Proceeding with operation..."; echo "Operation completed successfully!"; else echo "Operation cancelled."; exit 1; fi`)
		o.wantContains(t, "Do you want to continue?")
		o.wantRunning(t)

		o = s.run(t, "Y", input())
		o.wantContains(t, "Proceeding with operation...")
		o.wantContains(t, "Operation completed successfully!")
		o.wantExit(t, 0)
		o.wantSuffixContains(t, "[The command completed with exit code 0.]")

		o = s.run(t, fmt.Sprintf(`export i=%d; for j in $(seq 1 100); do echo "Line $j - Iteration $i - $(printf '%%1000s' | tr " " "*")"; sleep 1; done`, i), intTimeout(2))
		o.wantRunning(t)
		o.wantContains(t, fmt.Sprintf("Line 1 - Iteration %d", i))
		// The 1000-column line must come back whole (wrapped lines re-joined).
		o.wantContains(t, fmt.Sprintf("Line 1 - Iteration %d - %s\n", i, strings.Repeat("*", 1000)))
		o.wantSuffix(t, hardTimeoutSuffix("2.0"))

		o = s.run(t, "ls")
		o.wantRunning(t)
		o.wantSuffixContains(t, "The previous command is still running")

		o = s.run(t, "C-c", input())
		o.wantExit(t, 130)
		o.wantSuffix(t, completedKeySuffix(130, "C"))

		o = s.run(t, "ls")
		o.wantExit(t, 0)
	}
}

// Hard timeout with a float timeout: exact suffix, process not killed,
// timing bounded (sbx detects completion without polling).
func TestBashHardTimeoutFloat(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "sleep 4; echo finished", hardTimeout(1.5))
	o.wantRunning(t)
	o.wantSuffix(t, hardTimeoutSuffix("1.5"))
	o.wantPrefix(t, "")
	o.wantContent(t, "")
	o.wantNoPromptMetadata(t)
	o.wantMessage(t, "Command `sleep 4; echo finished` executed with exit code -1.")
	if o.elapsed < 1400*time.Millisecond || o.elapsed > 4*time.Second {
		o.failf(t, "hard timeout 1.5 s answered after %.2fs", o.elapsed.Seconds())
	}
	// Not killed: it finishes by itself.
	o = s.run(t, "", hardTimeout(10))
	o.wantExit(t, 0)
	o.wantContains(t, "finished")

	// Completion is immediate (no 0.5 s polling, no waiting for the timeout).
	o = s.run(t, "echo quick", hardTimeout(30))
	o.wantExit(t, 0)
	if o.elapsed > 2*time.Second {
		o.failf(t, "a command that completes at once took %.2fs", o.elapsed.Seconds())
	}
}

// An integer JSON timeout is still formatted as Python formats float(t).
func TestBashTimeoutNumberFormatting(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "sleep 5", intTimeout(1))
	o.wantRunning(t)
	o.wantSuffix(t, hardTimeoutSuffix("1.0"))
	s.run(t, "C-c", input()).wantExit(t, 130)

	o = s.run(t, "sleep 5", hardTimeout(1.25))
	o.wantSuffix(t, hardTimeoutSuffix("1.25"))
	s.run(t, "C-c", input()).wantExit(t, 130)
}

// blocking=true disables the no-change timeout; blocking=false does not.
func TestBashBlocking(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "sleep 2.5 && echo done-blocking", hardTimeout(10))
	o.wantExit(t, 0)
	o.wantContent(t, "done-blocking")
	if o.elapsed < 2*time.Second {
		o.failf(t, "blocking command returned before it finished (%.2fs)", o.elapsed.Seconds())
	}

	o = s.run(t, "sleep 2.5 && echo done-nonblocking", softTimeout(10))
	o.wantRunning(t)
	o.wantSuffix(t, noChangeSuffix(1))
	if o.elapsed > 2*time.Second {
		o.failf(t, "non-blocking command should hit the 1 s no-change timeout, took %.2fs", o.elapsed.Seconds())
	}
	o = s.run(t, "", hardTimeout(10))
	o.wantExit(t, 0)
	o.wantContains(t, "done-nonblocking")
}

// §5.10: the continuation prefix appears on every later partial reply even if
// the earlier replies were empty.
func TestBashContinuationPrefixAfterEmptyReply(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "sleep 6")
	o.wantRunning(t)
	o.wantContent(t, "")
	o.wantPrefix(t, "")
	o = s.run(t, "")
	o.wantRunning(t)
	o.wantContent(t, "")
	o.wantPrefix(t, continuePrefix)
	o.wantSuffix(t, noChangeSuffix(1))
	o = s.run(t, "echo refused")
	o.wantRunning(t)
	o.wantPrefix(t, continuePrefix)
	o.wantSuffix(t, notExecutedSuffix("echo refused"))
	o = s.run(t, "C-c", input())
	o.wantExit(t, 130)
	o.wantPrefix(t, "")
}

// C-d ends `cat`; C-z suspends a job (exit 148) that stays in `jobs`.
func TestBashCtrlDAndCtrlZ(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "cat")
	o.wantRunning(t)
	o = s.run(t, "hello-cat", input())
	o.wantRunning(t)
	o.wantContains(t, "hello-cat")
	o.wantContent(t, "hello-cat") // cat's copy; the echo of the input is stripped
	o = s.run(t, "C-d", input())
	o.wantExit(t, 0)
	o.wantSuffix(t, completedKeySuffix(0, "D"))
	o.wantContent(t, "")

	o = s.run(t, "sleep 30")
	o.wantRunning(t)
	o = s.run(t, "C-z", input())
	o.wantExit(t, 148)
	o.wantSuffix(t, completedKeySuffix(148, "Z"))
	o.wantContains(t, "[1]+  Stopped                 sleep 30")
	o = s.run(t, "jobs")
	o.wantExit(t, 0)
	o.wantContains(t, "Stopped")
	o.wantContains(t, "sleep 30")
	o.wantContent(t, "[1]+  Stopped                 sleep 30")
	s.run(t, "kill -9 %1; wait 2>/dev/null; true").wantExit(t, 0)
}

// hidden is copied into completed and refused replies (§5.10).
func TestBashHiddenOnRefusal(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "sleep 5")
	o.wantRunning(t)
	o = s.run(t, "echo x", hidden())
	o.wantRunning(t)
	o.wantExtra(t, "hidden", true)
	o.wantSuffix(t, notExecutedSuffix("echo x"))
	o = s.run(t, "C-c", input(), hidden())
	o.wantExit(t, 130)
	o.wantExtra(t, "hidden", true)
}

// is_static commands run even while the main session is busy.
func TestBashIsStaticWhileMainBusy(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "sleep 8; echo main-done")
	o.wantRunning(t)
	other := t.TempDir()
	o = s.run(t, "echo static-ok && pwd", static(other))
	o.wantExit(t, 0)
	o.wantContent(t, "static-ok\n"+other)
	o = s.run(t, "C-c", input())
	o.wantExit(t, 130)
}

// Refusal check happens before typing: the refused text must never reach
// the running program (test_python_interactive_input_without_set_input).
func TestBashRefusedCommandNotTyped(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "read -r line; echo \"got:[$line]\"")
	o.wantRunning(t)
	o = s.run(t, "secret-refused")
	o.wantRunning(t)
	o.wantSuffix(t, notExecutedSuffix("secret-refused"))
	o = s.run(t, "typed", input())
	o.wantExit(t, 0)
	o.wantContains(t, "got:[typed]")
	o.wantContent(t, "got:[typed]")
	o.wantNotContains(t, "secret-refused")
}

// NO_CHANGE_TIMEOUT_SECONDS defaults to 10 (§2.1, §14).
func TestBashNoChangeTimeoutDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "read -r x")
	o.wantRunning(t)
	o.wantSuffix(t, noChangeSuffix(10))
	if o.elapsed < 9500*time.Millisecond || o.elapsed > 14*time.Second {
		o.failf(t, "default no-change timeout should fire after ~10 s, took %.1fs", o.elapsed.Seconds())
	}
	s.run(t, "C-c", input()).wantExit(t, 130)
}

// Input text goes through the same multiple-command check as commands
// (split_bash_commands runs before anything is sent, §5.4 step 2).
func TestBashMultilineInputRejected(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	s.run(t, "cat").wantRunning(t)
	o := s.run(t, "first line\nsecond line", input())
	o.wantType(t, "error")
	o.wantContent(t, "ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n(1) first line\n(2) second line")
	o = s.run(t, "single", input())
	o.wantRunning(t)
	o.wantContains(t, "single")
	o.wantNotContains(t, "first line")
	s.run(t, "C-d", input()).wantExit(t, 0)
}

// What the terminal echoes for control keys. OpenHands' tmux pane shows the
// tty's ECHOCTL echo: the C-c reply of an interrupted loop is exactly "^C",
// the C-z reply starts with "^Z". (Cross-checked with OpenHands' BashSession
// algorithm on tmux 3.3a.)
func TestBashControlKeyEcho(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "while true; do echo 'looping'; sleep 3; done")
	o.wantRunning(t)
	o.wantContent(t, "looping")
	o = s.run(t, "C-c", input())
	o.wantExit(t, 130)
	o.wantContent(t, "^C")

	s.run(t, "sleep 30").wantRunning(t)
	o = s.run(t, "C-z", input())
	o.wantExit(t, 148)
	o.wantContent(t, "^Z\n[1]+  Stopped                 sleep 30")
	s.run(t, "kill -9 %1; wait 2>/dev/null; true").wantExit(t, 0)
}

// Output that keeps changing never hits the no-change timeout; the hard
// timeout still applies to a non-blocking action.
func TestBashHardTimeoutNonBlockingStreaming(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "for i in $(seq 1 40); do echo tick $i; sleep 0.2; done", softTimeout(3))
	o.wantRunning(t)
	o.wantSuffix(t, hardTimeoutSuffix("3.0"))
	o.wantContains(t, "tick 1\n")
	if o.elapsed < 2800*time.Millisecond {
		o.failf(t, "returned after %.2fs: output kept changing, so only the 3.0 s hard timeout applies", o.elapsed.Seconds())
	}
	s.run(t, "C-c", input()).wantExit(t, 130)
}

// blocking=true without any timeout: only completion ends the call.
func TestBashBlockingWithoutTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "sleep 2.5; echo done-unbounded", noTimeout(), blocking(true))
	o.wantExit(t, 0)
	o.wantContent(t, "done-unbounded")
}

// §5.10: sbx copies `hidden` into timeout replies too.
func TestBashHiddenOnTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "sleep 4", hidden())
	o.wantRunning(t)
	o.wantExtra(t, "hidden", true)
	o = s.run(t, "", hidden(), hardTimeout(1))
	o.wantRunning(t)
	o.wantExtra(t, "hidden", true)
	s.run(t, "C-c", input()).wantExit(t, 130)
}

// §5.10: a server started with SIGINT/SIGQUIT ignored must still let C-c
// interrupt the shell's foreground job.
func TestBashCtrlCWhenServerIgnoresSigint(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1), withIgnoredSigint())
	o := s.run(t, "sleep 20")
	o.wantRunning(t)
	o = s.run(t, "C-c", input(), hardTimeout(5))
	o.wantExit(t, 130)
	o.wantSuffix(t, completedKeySuffix(130, "C"))
	s.run(t, "trap -p INT; echo ok").wantContent(t, "ok")
}

// Multi-line input that bashlex cannot parse (Python code) is one "command":
// it is typed into the running program, not rejected.
func TestBashMultilineInputToRepl(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t, withNoChange(1))
	o := s.run(t, "python3 -q")
	o.wantRunning(t)
	o.wantContains(t, ">>>")
	o = s.run(t, "x = 1\nprint(x + 41)", input())
	if o.typ() == "error" {
		o.failf(t, "bashlex cannot parse this Python text, so OpenHands types it (one command) instead of rejecting it")
	} else {
		o.wantRunning(t)
		o.wantContains(t, "42")
	}
	o = s.run(t, "C-d", input())
	o.wantExit(t, 0)
}

// A timed-out command that finished on its own meanwhile: the pane ends with a
// prompt, so nothing is refused (§5.4 step 4). The next reply delivers the
// late output first (OpenHands: "late-finish\n\n\necho new\nnew").
func TestBashTimedOutCommandFinishedMeanwhile(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	s.run(t, "sleep 2; echo late-finish").wantRunning(t)
	time.Sleep(2500 * time.Millisecond)
	o := s.run(t, "echo new")
	o.wantExit(t, 0)
	o.wantContains(t, "late-finish")
	if !strings.HasSuffix(o.content(), "new") {
		o.failf(t, "content should end with the new command's output %q", "new")
	}
	o.wantPrefix(t, "")
	s.run(t, "echo next").wantContent(t, "next")

	s.run(t, "sleep 2; echo late2").wantRunning(t)
	time.Sleep(2500 * time.Millisecond)
	o = s.run(t, "")
	o.wantExit(t, 0)
	o.wantContent(t, "late2")
	o.wantSuffix(t, completedSuffix(0))

	// is_input text reaches the shell itself once the program is gone.
	s.run(t, "sleep 2; echo late3").wantRunning(t)
	time.Sleep(2500 * time.Millisecond)
	o = s.run(t, "xyzzy_not_a_cmd", input())
	o.wantExit(t, 127)
	o.wantContains(t, "late3")
	o.wantContains(t, "xyzzy_not_a_cmd: command not found")
	o = s.run(t, "echo clean")
	o.wantContent(t, "clean") // nothing of the previous exchange leaks here
}

// C-c sent after the timed-out command already finished goes to the shell's
// prompt: OpenHands replies "late4\n\n\n^C" with exit 130, and the next
// command's reply is clean.
func TestBashCtrlCAfterCommandFinishedMeanwhile(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	s.run(t, "sleep 2; echo late4").wantRunning(t)
	time.Sleep(2500 * time.Millisecond)
	o := s.run(t, "C-c", input())
	o.wantExit(t, 130)
	o.wantContains(t, "late4")
	o.wantSuffix(t, completedKeySuffix(130, "C"))
	o = s.run(t, "echo after")
	o.wantExit(t, 0)
	o.wantContent(t, "after")
}

// An endless flood (`yes`) under a hard timeout: the reply comes back on
// time with the retained "y" lines (history-bounded, so ~22 000 chars);
// C-c stops it and the session is usable.
func TestBashEndlessOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "yes", hardTimeout(2))
	o.wantRunning(t)
	o.wantSuffix(t, hardTimeoutSuffix("2.0"))
	if c := o.content(); c == "" || strings.Trim(c, "y\n") != "" || len(c) > 30000+len(truncationNotice) {
		o.failf(t, "content should be a bounded run of \"y\" lines (%d chars)", len(c))
	}
	if o.elapsed > 8*time.Second {
		o.failf(t, "hard timeout 2.0 answered after %.1fs", o.elapsed.Seconds())
	}
	o = s.run(t, "C-c", input(), hardTimeout(10))
	o.wantExit(t, 130)
	s.run(t, "echo calm").wantContent(t, "calm")
}
