package conformance_test

// Bash tests that complete without timeouts. Sources: tests/runtime/test_bash.py
// and tests/unit/runtime/utils/test_bash_session.py (OpenHands), spec §5.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// test_basic_command (runtime + unit): exit codes, exact suffix/prefix, and
// the full run observation envelope of §3.4.
func TestBashBasicCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	name, _, _ := currentUser(t)
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".") // \h

	o := s.run(t, "echo 'hello world'")
	o.wantType(t, "run")
	o.wantContent(t, "hello world")
	o.wantExit(t, 0)
	o.wantSuffix(t, completedSuffix(0))
	o.wantPrefix(t, "")
	o.wantMessage(t, "Command `echo 'hello world'` executed with exit code 0.")
	o.wantExtra(t, "command", "echo 'hello world'")
	o.wantExtra(t, "hidden", false)
	if o.m["success"] != true {
		o.failf(t, "success: want true, got %#v", o.m["success"])
	}
	md := o.meta()
	for _, k := range []string{"exit_code", "pid", "username", "hostname", "working_dir", "py_interpreter_path", "prefix", "suffix"} {
		if _, ok := md[k]; !ok {
			o.failf(t, "metadata.%s missing (all CmdOutputMetadata keys are always present)", k)
		}
	}
	if pid, _ := o.metaInt("pid"); pid != -1 {
		o.failf(t, "metadata.pid: want -1 when no background job was started, got %d", pid)
	}
	if md["username"] != name {
		o.failf(t, "metadata.username: want %q, got %#v", name, md["username"])
	}
	if md["hostname"] != host {
		o.failf(t, "metadata.hostname: want %q (bash \\h), got %#v", host, md["hostname"])
	}
	if md["working_dir"] != s.workdir {
		o.failf(t, "metadata.working_dir: want %q, got %#v", s.workdir, md["working_dir"])
	}
	if _, ok := md["py_interpreter_path"].(string); !ok {
		o.failf(t, "metadata.py_interpreter_path: want a string (`which python` or \"\"), got %#v", md["py_interpreter_path"])
	}
	for _, k := range []string{"id", "timestamp", "source", "cause"} {
		if _, ok := o.m[k]; ok {
			o.failf(t, "server observations carry no %q key", k)
		}
	}

	o = s.run(t, "nonexistent_command")
	o.wantExit(t, 127)
	o.wantContains(t, "nonexistent_command: command not found")
	o.wantSuffix(t, completedSuffix(127))
	o.wantPrefix(t, "")
	o.wantMessage(t, "Command `nonexistent_command` executed with exit code 127.")
	if o.m["success"] != false {
		o.failf(t, "success: want false for exit code 127, got %#v", o.m["success"])
	}

	o = s.run(t, "echo 'hello   world    with\nspecial  chars'")
	o.wantExit(t, 0)
	o.wantContent(t, "hello   world    with\nspecial  chars")

	o = s.run(t, `echo "first" && echo "second" && echo "third"`)
	o.wantExit(t, 0)
	o.wantContent(t, "first\nsecond\nthird")
	o.wantSuffix(t, completedSuffix(0))
}

// test_session_initialization / test_cmd_run: initial cwd, ls -l of an empty
// workspace, files created by the shell.
func TestBashCmdRun(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	name, _, _ := currentUser(t)

	o := s.run(t, "pwd")
	o.wantContent(t, s.workdir)
	o.wantSuffix(t, completedSuffix(0))

	o = s.run(t, "ls -l "+s.workdir)
	o.wantExit(t, 0)
	o = s.run(t, "ls -l")
	o.wantExit(t, 0)
	o.wantContent(t, "total 0")

	s.run(t, "mkdir test").wantExit(t, 0)
	o = s.run(t, "ls -l")
	o.wantExit(t, 0)
	o.wantContains(t, "test")
	o.wantContains(t, name)

	s.run(t, "touch test/foo.txt").wantExit(t, 0)
	o = s.run(t, "ls -l test")
	o.wantExit(t, 0)
	o.wantContains(t, "foo.txt")
	s.run(t, "rm -rf test").wantExit(t, 0)
}

// test_multiline_commands, test_no_ps2_in_output.
func TestBashMultilineCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	o := s.run(t, "echo \\\n -e \"foo\"")
	o.wantExit(t, 0)
	o.wantContent(t, "foo")

	o = s.run(t, "echo -e \"hello\nworld\"")
	o.wantExit(t, 0)
	o.wantContent(t, "hello\nworld")
	o.wantNotContains(t, ">") // PS2 is empty

	o = s.run(t, `echo -e "a\n\n\nz"`)
	o.wantExit(t, 0)
	o.wantContent(t, "a\n\n\nz")

	o = s.run(t, "if true; then\necho \"inside if\"\nfi")
	o.wantExit(t, 0)
	o.wantContent(t, "inside if")
	o.wantPrefix(t, "")
	o.wantSuffix(t, completedSuffix(0))
}

// test_complex_commands.
func TestBashComplexCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cmd := `count=0; tries=0; while [ $count -lt 3 ]; do result=$(echo "Heads"); tries=$((tries+1)); echo "Flip $tries: $result"; if [ "$result" = "Heads" ]; then count=$((count+1)); else count=0; fi; done; echo "Got 3 heads in a row after $tries flips!";`
	o := s.run(t, cmd)
	o.wantExit(t, 0)
	o.wantContent(t, "Flip 1: Heads\nFlip 2: Heads\nFlip 3: Heads\nGot 3 heads in a row after 3 flips!")
}

// test_multiline_command_loop (issue #3143).
func TestBashMultilineCommandLoop(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	initCmd := "mkdir -p _modules && \\\nfor month in {01..04}; do\n    for day in {01..05}; do\n        touch \"_modules/2024-${month}-${day}-sample.md\"\n    done\ndone && echo \"created files\"\n"
	followUp := "for file in _modules/*.md; do\n    new_date=$(echo $file | sed -E 's/2024-(01|02|03|04)-/2024-/;s/2024-01/2024-08/;s/2024-02/2024-09/;s/2024-03/2024-10/;s/2024-04/2024-11/')\n    mv \"$file\" \"$new_date\"\ndone && echo \"success\"\n"
	o := s.run(t, initCmd)
	o.wantExit(t, 0)
	o.wantContains(t, "created files")
	o = s.run(t, followUp)
	o.wantExit(t, 0)
	o.wantContains(t, "success")
	// 20 files were created; the renames collide (month is dropped, the day
	// becomes the month), leaving one file per day.
	o = s.run(t, "ls _modules | wc -l")
	o.wantContent(t, "5")
}

// test_multiple_multiline_commands + split_bash_commands cases of
// test_bash_parsing.py: newline-separated commands are rejected with an
// ErrorObservation that lists them; each alone works.
func TestBashMultipleCommandsRejected(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cmds := []string{
		"ls -l",
		"echo -e \"hello\nworld\"",
		"echo -e \"hello it's me\"",
		"echo \\\n    -e 'hello' \\\n    world",
		`echo -e 'hello\nworld\nare\nyou\nthere?'`,
		"echo -e 'hello\nworld\nare\nyou\n\nthere?'",
		"echo -e 'hello\nworld \"'",
	}
	o := s.run(t, strings.Join(cmds, "\n"))
	o.wantType(t, "error")
	o.wantContains(t, "Cannot execute multiple commands at once")
	var want strings.Builder
	want.WriteString("ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:")
	for i, c := range cmds {
		fmt.Fprintf(&want, "\n(%d) %s", i+1, c)
	}
	o.wantContent(t, want.String())
	o.wantExtra(t, "error_id", "")
	o.wantMessage(t, o.content())
	if _, ok := o.m["success"]; ok {
		o.failf(t, "error observations carry no `success` key")
	}

	results := []string{"total 0", "hello\nworld", "hello it's me", "hello world",
		"hello\nworld\nare\nyou\nthere?", "hello\nworld\nare\nyou\n\nthere?", "hello\nworld \""}
	for i, c := range cmds {
		o := s.run(t, c)
		o.wantType(t, "run")
		o.wantExit(t, 0)
		o.wantContent(t, results[i])
	}
}

// Exact rejection texts for split_bash_commands cases (test_bash_parsing.py
// and bashlex 0.18 behaviour); nothing of a rejected batch runs.
func TestBashMultipleCommandsSplitText(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	head := "ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n"
	cases := []struct{ name, in, list string }{
		{"two simple", "echo a\necho b", "(1) echo a\n(2) echo b"},
		{"heredoc then command", "\ncat <<EOF\nmultiline\ntext\nEOF\necho \"Done\"\n", "(1) cat <<EOF\nmultiline\ntext\nEOF\n(2) echo \"Done\""},
		{"empty lines", "\nls -l\n\necho \"Hello\"\n\ncd /tmp\n", "(1) ls -l\n(2) echo \"Hello\"\n(3) cd /tmp"},
		{"comments glued to previous", "\necho \"Hello\" # This is a comment\n# This is another comment\nls -l\n", "(1) echo \"Hello\" # This is a comment\n# This is another comment\n(2) ls -l"},
		{"quoting", "\necho \"This is a \\\"quoted\\\" string\"\necho \"Mixed 'quotes' in \\\"double quotes\\\"\"\n", "(1) echo \"This is a \\\"quoted\\\" string\"\n(2) echo \"Mixed 'quotes' in \\\"double quotes\\\"\""},
		{"multiline loop then command", "for i in 1 2; do\n  echo $i\ndone\necho after", "(1) for i in 1 2; do\n  echo $i\ndone\n(2) echo after"},
		// More cases, as bashlex 0.18 splits them.
		{"arithmetic command", "(( i = 1 + 2 ))\necho $i", "(1) (( i = 1 + 2 ))\n(2) echo $i"},
		{"function keyword", "function f { echo hi; }\nf", "(1) function f { echo hi; }\n(2) f"},
		{"background then command", "echo a &\necho b", "(1) echo a &\n(2) echo b"},
		{"group then command", "{ echo a; echo b; }\necho c", "(1) { echo a; echo b; }\n(2) echo c"},
		{"tab-stripping heredoc", "cat <<-EOF\n\tindented\n\tEOF\necho done", "(1) cat <<-EOF\n\tindented\n\tEOF\n(2) echo done"},
	}
	for _, c := range cases {
		o := s.run(t, c.in)
		o.wantType(t, "error")
		o.wantContent(t, head+c.list)
	}
	// Nothing of a rejected batch may have run.
	o := s.run(t, "touch rejected_a\ntouch rejected_b")
	o.wantType(t, "error")
	o = s.run(t, "ls -A")
	o.wantContent(t, "")
}

// Single commands that span lines are one bashlex node and must run.
func TestBashSingleCommandsAccepted(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cases := []struct{ cmd, want string }{
		{"ls -l", "total 0"},
		{"echo 'Hello, world!'", "Hello, world!"},
		{"cd /tmp && cd - >/dev/null && echo ok", "ok"},
		{"echo -e 'line1\\nline2\\nline3'", "line1\nline2\nline3"},
		{"printf 'b\\na\\nb\\n' | sort | uniq", "a\nb"},
		{"for i in {1..5}; do echo $i; done", "1\n2\n3\n4\n5"},
		{"echo \"Double quotes \\\"do\\\" escape\"", "Double quotes \"do\" escape"},
		{"cat <<EOF\nmultiline\ntext\nEOF", "multiline\ntext"},
		{"echo \"Command with a trailing backslash \\\n  and continuation\"", "Command with a trailing backslash   and continuation"},
		{"echo one; echo two", "one\ntwo"},
		{"cat <<'EOF' | tr a-z A-Z\nheredoc $HOME\nEOF", "HEREDOC $HOME"},
	}
	for _, c := range cases {
		o := s.run(t, c.cmd)
		o.wantType(t, "run")
		o.wantExit(t, 0)
		o.wantContent(t, c.want)
	}
}

// test_multi_cmd_run_in_single_line.
func TestBashChainedCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "pwd && ls -l")
	o.wantExit(t, 0)
	o.wantContent(t, s.workdir+"\ntotal 0")
	o = s.run(t, "false; echo after-false")
	o.wantExit(t, 0)
	o.wantContent(t, "after-false")
	o = s.run(t, "false && echo never")
	o.wantExit(t, 1)
	o.wantContent(t, "")
	o.wantSuffix(t, completedSuffix(1))
}

// test_stateful_cmd, test_pwd_property, test_cwd_property.
func TestBashCdPersistence(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.run(t, "mkdir -p test").wantExit(t, 0)
	o := s.run(t, "cd test")
	o.wantExit(t, 0)
	o.wantContent(t, "")
	if o.meta()["working_dir"] != filepath.Join(s.workdir, "test") {
		o.failf(t, "metadata.working_dir after cd: want %q", filepath.Join(s.workdir, "test"))
	}
	o = s.run(t, "pwd")
	o.wantExit(t, 0)
	o.wantContent(t, filepath.Join(s.workdir, "test"))

	s.run(t, "mkdir -p random_dir").wantExit(t, 0)
	o = s.run(t, "cd random_dir && pwd")
	o.wantExit(t, 0)
	o.wantContent(t, filepath.Join(s.workdir, "test", "random_dir"))
	if o.meta()["working_dir"] != filepath.Join(s.workdir, "test", "random_dir") {
		o.failf(t, "metadata.working_dir: want %q", filepath.Join(s.workdir, "test", "random_dir"))
	}
}

// test_run_as_user_correct_home_dir.
func TestBashHomeDir(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, _, home := currentUser(t)
	o := s.run(t, "cd ~ && pwd")
	o.wantExit(t, 0)
	o.wantContent(t, home)
}

// test_failed_cmd and the exit-code conventions of §5.6.
func TestBashExitCodes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, c := range []struct {
		cmd  string
		code int
	}{{"true", 0}, {"false", 1}, {"(exit 42)", 42}, {"bash -c 'exit 3'", 3}, {"non_existing_command", 127}, {"ls /definitely/not/here", 2}} {
		o := s.run(t, c.cmd)
		o.wantExit(t, c.code)
		o.wantSuffix(t, completedSuffix(c.code))
		o.wantMessage(t, fmt.Sprintf("Command `%s` executed with exit code %d.", c.cmd, c.code))
		if o.m["success"] != (c.code == 0) {
			o.failf(t, "success: want %v", c.code == 0)
		}
	}
}

// Shell state persists across calls: exported variables (the client's
// add_env_vars command), aliases, functions (§5.7).
func TestBashStatePersistence(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	// runtime.add_env_vars({'QUUX': 'abc"def'}) sends exactly this.
	s.run(t, `export QUUX="abc\"def";`).wantExit(t, 0)
	s.run(t, "echo $QUUX").wantContent(t, `abc"def`)
	s.run(t, `export FOOBAR="xyz";`).wantExit(t, 0)
	s.run(t, "echo $QUUX $FOOBAR").wantContent(t, `abc"def xyz`)
	s.run(t, `export QUUX="new_value";`).wantExit(t, 0)
	s.run(t, "echo $QUUX").wantContent(t, "new_value")

	s.run(t, "alias sayhi='echo hi-from-alias'").wantExit(t, 0)
	s.run(t, "sayhi").wantContent(t, "hi-from-alias")

	s.run(t, "greet() { echo \"hello $1\"; }").wantExit(t, 0)
	o := s.run(t, "greet world")
	o.wantExit(t, 0)
	o.wantContent(t, "hello world")

	s.run(t, "MYVAR=local_only").wantExit(t, 0)
	s.run(t, "echo ${MYVAR}").wantContent(t, "local_only")
}

// §2.2 step 7: alias git="git --no-pager"; test_git_operation and
// test_bash_remove_prefix.
func TestBashGit(t *testing.T) {
	t.Parallel()
	requireTool(t, "git")
	s := startServer(t)
	o := s.run(t, "alias git")
	o.wantExit(t, 0)
	o.wantContains(t, "git --no-pager")

	o = s.run(t, "git init && git remote add origin https://github.com/OpenHands/OpenHands")
	o.wantExit(t, 0)
	o = s.run(t, "git remote -v")
	o.wantExit(t, 0)
	o.wantContains(t, "https://github.com/OpenHands/OpenHands")
	o.wantNotContains(t, "git remote -v")

	s.run(t, `echo "hello" > test_file.txt`).wantExit(t, 0)
	s.run(t, "git add test_file.txt").wantExit(t, 0)
	o = s.run(t, "git diff --no-color --cached")
	o.wantExit(t, 0)
	o.wantContains(t, "b/test_file.txt")
	o.wantContains(t, "+hello")
	// A pager would block: with the alias `git log` returns at once.
	o = s.run(t, `git -c user.name=openhands -c user.email=openhands@all-hands.dev commit -q -m "test commit" && git log --format=%s`)
	o.wantExit(t, 0)
	o.wantContent(t, "test commit")
}

// test_python_version.
func TestBashPythonVersion(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t)
	o := s.run(t, "python3 --version")
	o.wantExit(t, 0)
	o.wantContains(t, "Python 3")
}

// test_command_backslash: `\;` must reach find intact.
func TestBashCommandBackslash(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dir := filepath.Join(s.workdir, "test_dir")
	s.run(t, fmt.Sprintf(`mkdir -p %s && echo "implemented_function" > %s/file_1.txt`, dir, dir)).wantExit(t, 0)
	o := s.run(t, fmt.Sprintf(`find %s -type f -exec grep -l "implemented_function" {} \;`, dir))
	o.wantExit(t, 0)
	o.wantContent(t, dir+"/file_1.txt")
	o.wantExtra(t, "command", fmt.Sprintf(`find %s -type f -exec grep -l "implemented_function" {} \;`, dir))
	o = s.run(t, `echo a \| b \; c \& d \> e`)
	o.wantExit(t, 0)
	o.wantContent(t, "a | b ; c & d > e")
}

// test_long_output: 5000 lines, hard timeout 10 (blocking).
func TestBashLongOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, `for i in $(seq 1 5000); do echo "Line $i"; done`, hardTimeout(10))
	o.wantExit(t, 0)
	o.wantPrefix(t, "")
	o.wantSuffix(t, completedSuffix(0))
	lines := make([]string, 5000)
	for i := range lines {
		lines[i] = fmt.Sprintf("Line %d", i+1)
	}
	full := strings.Join(lines, "\n")
	// 48 893 chars > 30 000: middle-truncated (§5.8).
	want := pyTruncate(full)
	o.wantContent(t, want)
	o.wantContains(t, "Line 1\n")
	o.wantContains(t, "Line 5000")
}

// test_long_output_exceed_history_limit + §5.10 "history retained".
func TestBashLongOutputExceedHistoryLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, `for i in $(seq 1 50000); do echo "Line $i"; done`, hardTimeout(30))
	o.wantExit(t, 0)
	o.wantSuffix(t, completedSuffix(0))
	o.wantContains(t, "Line 40000")
	o.wantContains(t, "Line 50000")
	if !strings.HasSuffix(o.content(), "\nLine 50000") {
		o.failf(t, "content should end with the last line %q", "Line 50000")
	}
	re := regexp.MustCompile(`^\[Previous command outputs are truncated\. Showing the last (\d+) lines of the output below\.\]\n$`)
	m := re.FindStringSubmatch(o.prefix())
	if m == nil {
		o.failf(t, "metadata.prefix: want %q, got %q", "[Previous command outputs are truncated. Showing the last <L> lines of the output below.]\n", o.prefix())
		return
	}
	n, _ := strconv.Atoi(m[1])
	first := firstLine(o.content())
	start, err := strconv.Atoi(strings.TrimPrefix(first, "Line "))
	if err != nil {
		o.failf(t, "first content line should be a \"Line N\" line, got %q", first)
		return
	}
	shown := 50000 - start + 1
	// OpenHands counts splitlines() of the raw text before the prompt,
	// which includes the blank line the PS1 starts with: L = shown or shown+1.
	if n != shown && n != shown+1 {
		o.failf(t, "truncation notice says %d lines but the output holds %d (Line %d..Line 50000)", n, shown, start)
	}
	if shown < 10000 {
		o.failf(t, "history rule: at least 10 000 lines must be kept, got %d", shown)
	}
	if !strings.Contains(o.content(), truncationNotice) {
		o.failf(t, "content of %d lines exceeds 30 000 chars and must be middle-truncated", shown)
	}
}

// test_long_output_from_nested_directories.
func TestBashLongOutputFromNestedDirectories(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dir := filepath.Join(s.workdir, "test_dir")
	// Same tree as the Python test, one touch per folder instead of per file
	// (10 000 forks take ~40 s on a loaded 2-core machine).
	setup := fmt.Sprintf(`mkdir -p %s && cd %s && for i in $(seq 1 100); do mkdir -p "folder_$i"; touch "folder_$i"/file_{1..100}.txt; done`, dir, dir)
	s.run(t, setup, hardTimeout(60)).wantExit(t, 0)
	o := s.run(t, "ls -R "+dir, hardTimeout(60))
	o.wantExit(t, 0)
	for _, sub := range []string{"folder_1", "file_1.txt", "folder_100", "file_100.txt"} {
		o.wantContains(t, sub)
	}
}

// §5.8: > 30 000 chars → first 15 000 + notice + last 15 000, counted in
// characters (code points), not bytes; exactly 30 000 is kept.
func TestBashOutputTruncation(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	o := s.run(t, "seq -f 'row%08g' 1 4000")
	o.wantExit(t, 0)
	lines := make([]string, 4000)
	for i := range lines {
		lines[i] = fmt.Sprintf("row%08d", i+1)
	}
	o.wantContent(t, pyTruncate(strings.Join(lines, "\n")))

	// Exactly 30 000 characters in one (wrapped) line: not truncated.
	o = s.run(t, `printf 'y%.0s' $(seq 1 30000); echo`)
	o.wantExit(t, 0)
	o.wantContent(t, strings.Repeat("y", 30000))

	// 30 001 characters: truncated.
	o = s.run(t, `printf 'z%.0s' $(seq 1 30001); echo`)
	o.wantExit(t, 0)
	o.wantContent(t, strings.Repeat("z", 15000)+truncationNotice+strings.Repeat("z", 15000))

	// 20 000 two-byte characters = 40 000 bytes but 20 000 chars: kept whole.
	o = s.run(t, `printf 'é%.0s' $(seq 1 20000); echo`)
	o.wantExit(t, 0)
	o.wantContent(t, strings.Repeat("é", 20000))
}

// pyTruncate is CmdOutputObservation._maybe_truncate (code points).
func pyTruncate(s string) string {
	r := []rune(s)
	if len(r) <= 30000 {
		return s
	}
	return string(r[:15000]) + truncationNotice + string(r[len(r)-15000:])
}

// `hidden` is copied into the observation and disables truncation (§5.8).
func TestBashHidden(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "echo secret", hidden())
	o.wantExit(t, 0)
	o.wantContent(t, "secret")
	o.wantExtra(t, "hidden", true)

	o = s.run(t, `printf 'h%.0s' $(seq 1 35000); echo`, hidden())
	o.wantExit(t, 0)
	o.wantExtra(t, "hidden", true)
	o.wantContent(t, strings.Repeat("h", 35000))

	o = s.run(t, "echo visible")
	o.wantExtra(t, "hidden", false)
}

// Unicode in commands, output, extras.command, message and cwd.
func TestBashUnicode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cmd := "echo 'héllo wörld 你好 🎉 ∑'"
	o := s.run(t, cmd)
	o.wantExit(t, 0)
	o.wantContent(t, "héllo wörld 你好 🎉 ∑")
	o.wantExtra(t, "command", cmd)
	o.wantMessage(t, "Command `"+cmd+"` executed with exit code 0.")

	o = s.run(t, "mkdir -p 'dïr 名前' && cd 'dïr 名前' && pwd")
	o.wantContent(t, filepath.Join(s.workdir, "dïr 名前"))
	if o.meta()["working_dir"] != filepath.Join(s.workdir, "dïr 名前") {
		o.failf(t, "metadata.working_dir: want %q", filepath.Join(s.workdir, "dïr 名前"))
	}
}

// Raw non-UTF-8 bytes and control characters must not break the JSON reply
// nor the session.
func TestBashBinaryOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, `printf 'abc\x00\x01\x02\xff\xfe\x80def\n'`)
	o.wantExit(t, 0)
	o.wantContains(t, "abc")
	o.wantContains(t, "def")

	// Deterministic pseudo-random bytes (no /dev/urandom flakiness).
	data := make([]byte, 4096)
	x := uint32(2463534242)
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
		if data[i] == 0x1b { // no escape sequences: a stray "ESC c" would reset any terminal
			data[i] = ' '
		}
	}
	mustWriteFile(t, filepath.Join(s.workdir, "blob.bin"), data, 0o644)
	o = s.run(t, "cat blob.bin; echo", hardTimeout(20))
	o.wantExit(t, 0)
	o = s.run(t, "echo still-ok")
	o.wantExit(t, 0)
	o.wantContent(t, "still-ok")
}

// stdout and stderr share the terminal, in order.
func TestBashStderrInterleaving(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "echo out1; echo err1 >&2; echo out2; echo err2 >&2")
	o.wantExit(t, 0)
	o.wantContent(t, "out1\nerr1\nout2\nerr2")
	o = s.run(t, "ls /nonexistent_dir_xyz")
	o.wantExit(t, 2)
	o.wantContains(t, "No such file or directory")
}

// A command longer than the 4096-byte canonical tty line limit.
func TestBashLongSingleLineCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	long := strings.Repeat("A", 6000)
	o := s.run(t, "echo "+long)
	o.wantExit(t, 0)
	o.wantContent(t, long)

	words := make([]string, 1500)
	for i := range words {
		words[i] = fmt.Sprintf("w%d", i)
	}
	o = s.run(t, "echo "+strings.Join(words, " ")+" | wc -w")
	o.wantExit(t, 0)
	o.wantContent(t, "1500")

	body := strings.Repeat("0123456789abcdef\n", 600) // ~10 KB heredoc
	o = s.run(t, "cat <<'EOF' | wc -c\n"+body+"EOF")
	o.wantExit(t, 0)
	o.wantContent(t, strconv.Itoa(len(body)))
}

// Terminal rendering: tabs, carriage-return redraws (§5.8: "\r-based
// redraws appear as their final screen state"), SGR colours stripped,
// lines right-stripped.
func TestBashTerminalRendering(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, `printf 'a\tb\n'`)
	o.wantExit(t, 0)
	if c := o.content(); c != "a\tb" && c != "a       b" {
		o.failf(t, "tab: want %q (tab kept) or %q (rendered to column 8 as tmux does)", "a\tb", "a       b")
	}
	o = s.run(t, `printf 'abc\rX\n'`)
	o.wantContent(t, "Xbc")
	o = s.run(t, `printf '10%%\r20%%\r100%%\n'`)
	o.wantContent(t, "100%")
	o = s.run(t, `printf '\033[31mred\033[0m plain\n'`)
	o.wantContent(t, "red plain")
	o = s.run(t, `printf 'trailing   \nspaces\t\n'`)
	o.wantContent(t, "trailing\nspaces")
}

// Background jobs complete immediately; metadata.pid is $! (§5.7).
func TestBashBackgroundJobPid(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "sleep 30 &")
	o.wantExit(t, 0)
	pid, _ := o.metaInt("pid")
	if pid <= 0 {
		o.failf(t, "metadata.pid: want the background job's PID ($!), got %d", pid)
	}
	if !regexp.MustCompile(`^\[1\] \d+$`).MatchString(o.content()) {
		o.failf(t, "content: want \"[1] <pid>\", got %q", o.content())
	}
	if o.content() != fmt.Sprintf("[1] %d", pid) {
		o.failf(t, "content %q should name the same PID as metadata.pid %d", o.content(), pid)
	}
	o2 := s.run(t, "echo $!")
	o2.wantContent(t, strconv.Itoa(pid))
	if p2, _ := o2.metaInt("pid"); p2 != pid {
		o2.failf(t, "metadata.pid stays $! (= %d) on later commands, got %d", pid, p2)
	}
	s.run(t, "kill %1; wait 2>/dev/null; true").wantExit(t, 0)
}

// test_bash_background_server.
func TestBashBackgroundServer(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	requireTool(t, "curl")
	s := startServer(t)
	port := freePort(t)
	o := s.run(t, fmt.Sprintf("python3 -m http.server %d --bind 127.0.0.1 &", port))
	o.wantType(t, "run")
	o.wantExit(t, 0)
	pid, _ := o.metaInt("pid")

	// Give the server a moment (the Python test sleeps 1 s).
	o = s.run(t, fmt.Sprintf("for i in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:%d && break; sleep 0.1; done; curl -s http://127.0.0.1:%d", port, port))
	o.wantExit(t, 0)
	o.wantContains(t, "Directory listing for")

	o = s.run(t, fmt.Sprintf("kill %d", pid))
	o.wantExit(t, 0)
}

// is_static + cwd: a separate fresh shell in cwd that does not touch the
// main session (§3.2, §5.7).
func TestBashIsStatic(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	other := t.TempDir()
	o := s.run(t, "pwd", static(other))
	o.wantType(t, "run")
	o.wantExit(t, 0)
	o.wantContent(t, other)
	if o.meta()["working_dir"] != other {
		o.failf(t, "metadata.working_dir: want %q", other)
	}
	s.run(t, "cd / && export STATIC_VAR=1", static(other)).wantExit(t, 0)
	o = s.run(t, "pwd")
	o.wantContent(t, s.workdir)
	o = s.run(t, "echo \"[${STATIC_VAR}]\"")
	o.wantContent(t, "[]")

	s.run(t, "export MAIN_VAR=1").wantExit(t, 0)
	o = s.run(t, "echo \"[${MAIN_VAR}]\"", static(other))
	o.wantContent(t, "[]")
}

// Starting arguments: --working-dir is created if missing (§2.1, §2.2).
func TestServerCreatesWorkingDir(t *testing.T) {
	t.Parallel()
	wd := filepath.Join(t.TempDir(), "a", "b", "c")
	s := startServer(t, withWorkdir(wd))
	st, err := os.Stat(wd)
	if err != nil || !st.IsDir() {
		t.Fatalf("--working-dir %s should have been created: %v", wd, err)
	}
	// umask 002; mkdir -p; chmod g+rw (§2.2 step 2).
	if st.Mode().Perm()&0o060 != 0o060 {
		t.Errorf("--working-dir mode %o: want group read+write (chmod g+rw)", st.Mode().Perm())
	}
	o := s.run(t, "pwd")
	o.wantContent(t, wd)
}

// shellQuote is Python's shlex.quote.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if regexp.MustCompile(`^[\w@%+=:,./-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// test_grep_to_cmdrun_special_chars (test_glob_and_grep.py) with `grep -E`
// standing in for `rg`: a multi-line, indented, backslash-continued setup
// command and quoted patterns full of shell metacharacters.
func TestBashSpecialCharsQuoting(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	d := filepath.Join(s.workdir, "test_special_patterns")
	setup := strings.ReplaceAll(`
        mkdir -p DIR && \
        echo "testing x && y || z pattern" > DIR/logical.txt && \
        echo "function() { return x; }" > DIR/function.txt && \
        echo "using \$variable here" > DIR/dollar.txt && \
        echo "using \`+"`"+`backticks\`+"`"+` here" > DIR/backticks.txt && \
        echo "line with \n newline chars" > DIR/newline.txt && \
        echo "matching *.js wildcard" > DIR/wildcard.txt && \
        echo "testing x > y redirection" > DIR/redirect.txt && \
        echo "testing a | b pipe" > DIR/pipe.txt && \
        echo "line with #comment" > DIR/comment.txt && \
        echo "CSS \!important rule" > DIR/bang.txt
        `, "DIR", d)
	s.run(t, setup).wantExit(t, 0)
	cases := []struct{ pattern, file string }{
		{`x && y \|\| z`, "logical.txt"},
		{`function\(\) \{ return x; \}`, "function.txt"},
		{`\$variable`, "dollar.txt"},
		{`\\n newline`, "newline.txt"},
		{`\*\.js`, "wildcard.txt"},
		{`x > y`, "redirect.txt"},
		{`a \| b`, "pipe.txt"},
		{`#comment`, "comment.txt"},
	}
	for _, c := range cases {
		complete := fmt.Sprintf("grep -rliE %s %s | head -n 100", shellQuote(c.pattern), shellQuote(d))
		cmd := fmt.Sprintf("echo \"Below are the execution results of the search command: %s\n\"; %s", complete, complete)
		o := s.run(t, cmd)
		o.wantExit(t, 0)
		for _, bad := range []string{"command not found", "syntax error", "unexpected"} {
			o.wantNotContains(t, bad)
		}
		o.wantContains(t, "Below are the execution results of the search command: ")
		o.wantContains(t, filepath.Join(d, c.file))
	}
	o := s.run(t, "cat "+filepath.Join(d, "backticks.txt")+" "+filepath.Join(d, "bang.txt"))
	o.wantContent(t, "using `backticks` here\nCSS \\!important rule")
}

// test_env_vars_runtime_operations: `env` is stable between calls (nothing
// per-command leaks into the environment).
func TestBashEnvStable(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a := s.run(t, "env | sort")
	b := s.run(t, "env | sort")
	a.wantExit(t, 0)
	if a.content() != b.content() {
		b.failf(t, "`env` output changed between two calls:\nfirst:  %q\nsecond: %q", trunc(a.content(), 3000), trunc(b.content(), 3000))
	}
}

// Cursor-addressing output ends up as the final screen state, as tmux shows
// it (values cross-checked on tmux 3.3a).
func TestBashCursorRendering(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.run(t, `printf 'abc\bX\n'`).wantContent(t, "abX")
	s.run(t, `printf 'line1\nline2\033[1Aup\n'`).wantContent(t, "line1up\nline2")
	s.run(t, `printf 'progress 50%%\033[2K\rdone\n'`).wantContent(t, "done")
	o := s.run(t, `printf 'no newline'`)
	o.wantExit(t, 0)
	o.wantContent(t, "no newline")
}

// $? and $_ survive between actions (bash preserves them around
// PROMPT_COMMAND; nothing else may run in between).
func TestBashSpecialParametersPreserved(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.run(t, "false").wantExit(t, 1)
	s.run(t, "echo $?").wantContent(t, "1")
	s.run(t, "(exit 7)").wantExit(t, 7)
	s.run(t, "echo $?").wantContent(t, "7")
	s.run(t, "echo hello").wantExit(t, 0)
	s.run(t, "echo $_").wantContent(t, "hello")
}

// OpenHands' pane is 1000×1000 (§5.1, §5.8): programs format for 1000 columns.
func TestBashTerminalSize(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "tput cols")
	o.wantContent(t, "1000")
	o = s.run(t, "stty size")
	o.wantContent(t, "1000 1000")
	o = s.run(t, "mkdir -p many && cd many && touch $(seq -f 'file_%03g' 1 60) && ls")
	want := make([]string, 60)
	for i := range want {
		want[i] = fmt.Sprintf("file_%03d", i+1)
	}
	o.wantContent(t, strings.Join(want, "  ")) // one 598-column row
}

// The command is stripped (§5.4) — in extras.command and message too; a
// comment-only command is one (empty) command.
func TestBashCommandStripping(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "   echo hi   \n")
	o.wantExit(t, 0)
	o.wantContent(t, "hi")
	o.wantExtra(t, "command", "echo hi")
	o.wantMessage(t, "Command `echo hi` executed with exit code 0.")
	o = s.run(t, "# just a comment")
	o.wantType(t, "run")
	o.wantExit(t, 0)
	o.wantContent(t, "")
}

// Output a background job prints between actions is not lost: it shows up in
// the next reply (§5.7).
func TestBashBackgroundLateOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, "(sleep 1; echo late-output) &")
	o.wantExit(t, 0)
	time.Sleep(2 * time.Second)
	o = s.run(t, "echo now")
	o.wantExit(t, 0)
	o.wantContains(t, "late-output")
	o.wantContains(t, "now")
	o = s.run(t, "echo again")
	o.wantContent(t, "again")
}

// `clear` inside a command must not break output extraction (OpenHands
// returns "after-clear" with a "Previous command outputs are truncated"
// prefix here because the clear wiped its first prompt).
func TestBashClearScreen(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	// What `clear` prints (home, erase display, erase scrollback), without
	// depending on $TERM.
	o := s.run(t, `printf '\033[H\033[2J\033[3J' && echo after-clear`)
	o.wantExit(t, 0)
	o.wantContent(t, "after-clear")
	o = s.run(t, "echo next")
	o.wantExit(t, 0)
	o.wantContent(t, "next")
	o.wantPrefix(t, "")
}

// An activated virtualenv persists and shows in metadata.py_interpreter_path
// (`which python` in the prompt, §3.4, §5.7).
func TestBashVenvPersistence(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t)
	o := s.run(t, "python3 -m venv --without-pip venv && source venv/bin/activate && which python", hardTimeout(60))
	o.wantExit(t, 0)
	py := filepath.Join(s.workdir, "venv", "bin", "python")
	o.wantContent(t, py)
	if o.meta()["py_interpreter_path"] != py {
		o.failf(t, "metadata.py_interpreter_path: want %q", py)
	}
	o = s.run(t, "echo x")
	if o.meta()["py_interpreter_path"] != py {
		o.failf(t, "metadata.py_interpreter_path after activation: want %q", py)
	}
}

// Many quick actions in a row: no output of one leaks into another.
func TestBashRapidSequence(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	start := time.Now()
	for i := 0; i < 100; i++ {
		o := s.run(t, fmt.Sprintf("echo n%d", i))
		o.wantExit(t, 0)
		o.wantContent(t, fmt.Sprintf("n%d", i))
		if t.Failed() {
			return
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("100 trivial commands took %s", d)
	}
}

// Lines at and around the 1000-column width, double-width characters that
// cannot fit at the end of a row, combining marks, emoji sequences: the
// re-joined text equals what the program printed (checked on tmux 3.3a).
func TestBashWrapBoundariesAndWideChars(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t)
	o := s.run(t, `python3 -c "print('x'*1000); print('y'*999); print('z'*1001); print('w'*2000)"`)
	o.wantContent(t, strings.Repeat("x", 1000)+"\n"+strings.Repeat("y", 999)+"\n"+strings.Repeat("z", 1001)+"\n"+strings.Repeat("w", 2000))
	o = s.run(t, `python3 -c "print('你'*600)"`)
	o.wantContent(t, strings.Repeat("你", 600))
	o = s.run(t, `python3 -c "print('a'+'你'*600)"`)
	o.wantContent(t, "a"+strings.Repeat("你", 600))
	o = s.run(t, `printf 'e\xcc\x81 cafe\xcc\x81\n'`)
	o.wantContent(t, "e\u0301 cafe\u0301")
	o = s.run(t, "echo '👍🏽 🇫🇷 👨‍👩‍👧'")
	o.wantContent(t, "👍🏽 🇫🇷 👨‍👩‍👧")
}

// Large outputs: a 1 MB single line and 3 000 000 lines (~20 MB) finish well
// within the timeout (tmux needs ~6 s for the latter) and keep the rules.
func TestBashHugeOutput(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t)
	o := s.run(t, `python3 -c "import sys; sys.stdout.write('ab'*500000 + '\n')"`, hardTimeout(60))
	o.wantExit(t, 0)
	o.wantContent(t, pyTruncate(strings.Repeat("ab", 500000)))

	o = s.run(t, "seq 1 3000000", hardTimeout(90))
	o.wantExit(t, 0)
	if !strings.HasPrefix(o.prefix(), "[Previous command outputs are truncated. Showing the last ") {
		o.failf(t, "metadata.prefix: want the history truncation notice")
	}
	if !strings.HasSuffix(o.content(), "\n2999999\n3000000") {
		o.failf(t, "content should end with the last lines")
	}
	if o.elapsed > 45*time.Second {
		o.failf(t, "3 000 000 lines took %.1fs (tmux: ~6 s)", o.elapsed.Seconds())
	}
	o = s.run(t, "echo after")
	o.wantContent(t, "after")
}

// When bashlex cannot parse the text, OpenHands treats it as ONE command
// (split_bash_commands returns [text]) and types it whole: every line runs.
// bashlex 0.18 fails on [[ ]], $(( )), case, arrays, `time`, and a quoted
// heredoc delimiter followed by a redirect — so these multi-line inputs are
// executed, not rejected (verified by running split_bash_commands on them).
func TestBashParseFailuresRunAsOneCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cases := []struct{ cmd, marker string }{
		{"echo a\n[[ -f nofile ]] || touch m1", "m1"},
		{"x=5\n[ $((x+1)) -eq 6 ] && touch m2", "m2"},
		{"case x in x) touch m3;; esac\necho after", "m3"},
		{"arr=(1 2 3)\n[ ${#arr[@]} -eq 3 ] && touch m4", "m4"},
		{"cat << 'EOF' > f.txt\nline $x\nEOF\ncp f.txt m5", "m5"},
		{"time true\ntouch m6", "m6"},
	}
	for _, c := range cases {
		o := s.run(t, c.cmd, hardTimeout(20))
		if o.typ() == "error" {
			o.failf(t, "bashlex cannot parse this, so OpenHands runs it as one command instead of rejecting it")
			continue
		}
		o.wantType(t, "run")
		if o.exitCode() == -1 {
			s.run(t, "", hardTimeout(10))
		}
		s.run(t, "echo sync").wantContains(t, "sync")
		if _, err := os.Stat(filepath.Join(s.workdir, c.marker)); err != nil {
			o.failf(t, "the last line of the input should have run (marker %s missing)", c.marker)
		}
	}
}

// Unparseable input that leaves the shell waiting (unclosed quote) is typed
// as is and hits the no-change timeout.
func TestBashUnclosedQuoteIsTyped(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, `echo "Unclosed quote`)
	o.wantRunning(t)
	o.wantSuffix(t, noChangeSuffix(1))
	o = s.run(t, `still open"`, input())
	o.wantExit(t, 0)
	o.wantContains(t, "Unclosed quote")
	o.wantContains(t, "still open")
	s.run(t, "echo ok").wantContent(t, "ok")
}

// The shell is a real terminal (programs line-buffer and colour as under
// tmux): stdin/stdout are TTYs; python's print appears before it exits.
func TestBashIsATerminal(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	s.run(t, "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty").wantContent(t, "tty")
	o := s.run(t, `python3 -c "import time; print('first', flush=False); time.sleep(3); print('second')"`)
	o.wantRunning(t)
	o.wantContent(t, "first")
	s.run(t, "", hardTimeout(10)).wantContains(t, "second")
}

// With --username root (or openhands) OpenHands runs `su <user> -`. The
// "-" after the user name is an argument for the shell, not su's login
// flag (util-linux su only reads "-" before the user), so the shell is an
// interactive non-login bash with the server's environment and the user's
// HOME/USER. sbx does the same, except that SESSION_API_KEY is withheld.
func TestBashShellEnvironment(t *testing.T) {
	t.Parallel()
	name, _, home := currentUser(t)
	if name != "root" && name != "openhands" {
		t.Skip("OpenHands only uses su for root/openhands")
	}
	s := startServer(t, withAPIKey("s3cret-key"), withEnv("SBX_CONFORMANCE_SERVER_ONLY", "inherited"))
	s.run(t, "shopt -q login_shell && echo login || echo not-login").wantContent(t, "not-login")
	s.run(t, "[[ $- == *i* ]] && echo interactive").wantContent(t, "interactive")
	s.run(t, `echo "[$SESSION_API_KEY]"`).wantContent(t, "[]")
	s.run(t, `echo "[$SBX_CONFORMANCE_SERVER_ONLY]"`).wantContent(t, "[inherited]")
	s.run(t, `echo "$HOME $USER"`).wantContent(t, home+" "+name)

	// SU_TO_USER=false: plain /bin/bash under the server's environment.
	s2 := startServer(t, withEnv("SU_TO_USER", "false"), withEnv("SBX_CONFORMANCE_SERVER_ONLY", "inherited"))
	s2.run(t, "shopt -q login_shell && echo login || echo not-login").wantContent(t, "not-login")
	s2.run(t, `echo "[$SBX_CONFORMANCE_SERVER_ONLY]"`).wantContent(t, "[inherited]")
}

// Full-screen programs: what a program drew on the alternate screen is gone
// once it switches back (tmux keeps only the normal screen): OpenHands
// returns "back" here. A rendering detail — flagged for a decision.
func TestBashAlternateScreen(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	o := s.run(t, `printf '\033[?1049h'; echo in-alt; sleep 1; printf '\033[?1049l'; echo back`, hardTimeout(10))
	o.wantExit(t, 0)
	o.wantContent(t, "back")
	s.run(t, "echo next").wantContent(t, "next")
}

// Stopping the server ends the shell and its jobs (OpenHands kills the tmux
// session: the shell and its jobs get SIGHUP).
func TestServerShutdownEndsShellJobs(t *testing.T) {
	t.Parallel()
	s := startServer(t, withNoChange(1))
	o := s.run(t, "sleep 300 &")
	bg, _ := o.metaInt("pid")
	o = s.run(t, "sleep 301")
	o.wantRunning(t)
	fg := s.run(t, "pgrep -n -f 'sleep 301'", static(s.workdir))
	fgPid, _ := strconv.Atoi(fg.content())
	if bg <= 0 || fgPid <= 0 {
		t.Fatalf("could not learn the job PIDs (bg %d, fg %q)", bg, fg.content())
	}
	s.stop()
	deadline := time.Now().Add(5 * time.Second)
	alive := func(pid int) bool { return syscall.Kill(pid, 0) == nil }
	for time.Now().Before(deadline) && (alive(bg) || alive(fgPid)) {
		time.Sleep(100 * time.Millisecond)
	}
	for name, pid := range map[string]int{"background `sleep 300 &`": bg, "foreground `sleep 301`": fgPid} {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs 5 s after sandboxd stopped", name, pid)
			syscall.Kill(pid, syscall.SIGKILL) // started by this test
		}
	}
}
