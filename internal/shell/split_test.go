package shell

import (
	"slices"
	"testing"
	"time"
)

func TestSplitCommands(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{""}},
		{"   ", []string{""}},
		{"ls -l", []string{"ls -l"}},
		{"ls -l\necho hi", []string{"ls -l", "echo hi"}},
		{"ls -l; echo hi", []string{"ls -l; echo hi"}},
		{"ls -l && echo hi", []string{"ls -l && echo hi"}},
		{"ls | grep x", []string{"ls | grep x"}},
		{"sleep 1 & echo hi", []string{"sleep 1 & echo hi"}},
		{"sleep 1 &\necho hi", []string{"sleep 1 &", "echo hi"}},
		{"a;\nb", []string{"a;", "b"}},
		{"echo a \\\n  b", []string{"echo a \\\n  b"}},
		{"for i in 1 2; do\n  echo $i\ndone", []string{"for i in 1 2; do\n  echo $i\ndone"}},
		{"if true; then\necho y\nfi\necho z", []string{"if true; then\necho y\nfi", "echo z"}},
		{"cat <<EOF\nhello\nworld\nEOF", []string{"cat <<EOF\nhello\nworld\nEOF"}},
		{"cat <<EOF\na;b\nEOF\necho done", []string{"cat <<EOF\na;b\nEOF", "echo done"}},
		{"cat <<'EOF'\na;b\nEOF\necho done", []string{"cat <<'EOF'\na;b\nEOF\necho done"}},
		{"cat <<\\EOF\na\nEOF\necho done", []string{"cat <<\\EOF\na\nEOF\necho done"}},
		{"select x in a; do break; done\necho", []string{"select x in a; do break; done\necho"}},
		{"for ((i=0;i<2;i++)); do :; done\necho", []string{"for ((i=0;i<2;i++)); do :; done\necho"}},
		{"echo $[1+1]\necho", []string{"echo $[1+1]\necho"}},
		{"declare -a a=(1)\necho", []string{"declare -a a=(1)\necho"}},
		{"cat <<EOF; echo x\nbody\nEOF", []string{"cat <<EOF; echo x\nbody\nEOF"}},
		{"echo 'unterminated", []string{"echo 'unterminated"}},
		{"ls # comment\npwd", []string{"ls # comment", "pwd"}},
		{"# lead\nls", []string{"# lead", "ls"}},
		{"echo a\n\n\necho b\n", []string{"echo a", "echo b"}},
		{"python3 -c 'print(1)\nprint(2)'", []string{"python3 -c 'print(1)\nprint(2)'"}},
		{"f() {\n echo hi\n}\nf", []string{"f() {\n echo hi\n}", "f"}},
		{"find . -name '*.go' -exec grep -l x {} \\;", []string{"find . -name '*.go' -exec grep -l x {} \\;"}},
		// Constructs bashlex cannot parse make OpenHands send the whole text.
		{"echo a\n[[ -f x ]] || touch y", []string{"echo a\n[[ -f x ]] || touch y"}},
		{"x=5\necho $((x+1))", []string{"x=5\necho $((x+1))"}},
		{"case x in x) echo;; esac\necho after", []string{"case x in x) echo;; esac\necho after"}},
		{"arr=(1 2 3)\necho ${#arr[@]}", []string{"arr=(1 2 3)\necho ${#arr[@]}"}},
		{"time true\ntouch m", []string{"time true\ntouch m"}},
		{"cat << 'EOF' > f.txt\nx\nEOF\ncp f.txt g", []string{"cat << 'EOF' > f.txt\nx\nEOF\ncp f.txt g"}},
		{"cat << EOF > f.txt\nx\nEOF\ncp f.txt g", []string{"cat << EOF > f.txt\nx\nEOF", "cp f.txt g"}},
	}
	for _, tt := range tests {
		got := splitCommands(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("splitCommands(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMultipleCommandsError(t *testing.T) {
	got := multipleCommandsError([]string{"ls -l", "echo hi"})
	want := "ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n(1) ls -l\n(2) echo hi"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func FuzzSplitCommands(f *testing.F) {
	for _, s := range []string{"ls", "a\nb", "a; b", "cat <<EOF\nx\nEOF\necho", "for i in 1; do\necho; done", "'", "$(", "# c\nls"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := splitCommands(s)
		if len(got) == 0 {
			t.Fatalf("no commands for %q", s)
		}
	})
}

func TestGroupedScriptRunsWhole(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 5*time.Second)
	res := run(t, sh, Request{Command: "echo a\n[[ -f nofile ]] || echo b\n\n# note\narr=(1 2 3)\necho ${#arr[@]}", Timeout: 20})
	if res.Content != "a\nb\n3" || res.Metadata.ExitCode != 0 {
		t.Fatalf("got %+v", res)
	}
	res = run(t, sh, Request{Command: "echo sync"})
	if res.Content != "sync" {
		t.Fatalf("desynchronised: %+v", res)
	}
}
