package main

import (
	"strings"
	"testing"
)

// TestSuggestions: a misspelled command or flag, wherever it is, is
// answered with the closest real one, and is a usage error.
func TestSuggestions(t *testing.T) {
	e := baseEnv()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"run", "--rmm", "--", "true"}, "did you mean --rm?"},
		{[]string{"run", "--volum", "/a:/b", "--", "true"}, "did you mean -v (--volume)?"},
		{[]string{"run", "-rm", "--", "true"}, "did you mean --rm?"},
		{[]string{"run", "--nmae", "x"}, "did you mean --name?"},
		{[]string{"--verison"}, "did you mean -v (--version)?"},
		{[]string{"ls", "--jsno"}, "did you mean --json?"},
		{[]string{"ls", "--al"}, "did you mean -a (--all)?"},
		{[]string{"gc", "--dryrun"}, "did you mean --dry-run?"},
		{[]string{"rm", "--froce", "x"}, "did you mean -f (--force)?"},
		{[]string{"exec", "--timeuot", "1s", "x", "true"}, "did you mean --timeout?"},
		{[]string{"image", "build", "--extra-dep", "x"}, "did you mean --extra-deps?"},
		{[]string{"stpo", "x"}, `unknown command "stpo"; did you mean stop?`},
		{[]string{"image", "buidl"}, `unknown image command "buidl"; did you mean build?`},
		{[]string{"help", "rnu"}, "did you mean run"},
	} {
		r := sbxCmd(t, e, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.err) || !strings.HasPrefix(r.stderr, "sbx: ") {
			t.Errorf("sbx %q: want exit 2 and %q; got %s", tc.args, tc.err, r)
		}
	}
}

// TestHelpEverywhere: every command has help, in the three spellings.
func TestHelpEverywhere(t *testing.T) {
	e := baseEnv()
	for _, cmd := range [][]string{
		{"run"}, {"exec"}, {"ls"}, {"stop"}, {"start"}, {"pause"}, {"resume"}, {"rm"}, {"logs"}, {"cp"},
		{"gc"}, {"image"}, {"image", "bootstrap"}, {"image", "build"}, {"image", "ls"}, {"config"}, {"version"}, {"completion"},
	} {
		want := "Usage: sbx " + strings.Join(cmd, " ")
		for _, args := range [][]string{append([]string{"help"}, cmd...), append(cmd[:len(cmd):len(cmd)], "--help"), append(cmd[:len(cmd):len(cmd)], "-h")} {
			r := sbxCmd(t, e, args...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, want) || r.stderr != "" {
				t.Errorf("sbx %q: want exit 0 and %q; got %s", args, want, r)
			}
		}
	}
	// After the first operand of run and exec, -h is the command's.
	o, err := (&app{getenv: func(string) string { return "" }}).parseRun([]string{"--rm", "ls", "-h", "--", "x"})
	if err != nil || strings.Join(o.Command, " ") != "ls -h -- x" {
		t.Errorf("run ls -h: %q, %v", o.Command, err)
	}
}

func TestLabelFlag(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	o, err := a.parseRun([]string{"-l", "team=x", "--label", "empty", "--label", "a=b=c", "--", "true"})
	if err != nil || len(o.Labels) != 3 || o.Labels["team"] != "x" || o.Labels["empty"] != "" || o.Labels["a"] != "b=c" {
		t.Fatalf("labels %v, %v", o.Labels, err)
	}
	for _, bad := range []string{"=v", "dev.sbx.managed=false"} {
		if _, err := a.parseRun([]string{"-l", bad, "--", "true"}); err == nil {
			t.Errorf("-l %s: no error", bad)
		}
	}
}

// --network-policy "" (an unset variable in a script) is refused rather
// than taken as the default, open.
func TestEmptyNetworkPolicyFlag(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	for _, v := range []string{"", " "} {
		if _, err := a.parseRun([]string{"--network-policy", v, "--", "true"}); err == nil || !strings.Contains(err.Error(), "--network-policy needs a policy") {
			t.Errorf("--network-policy %q: %v", v, err)
		}
	}
	if o, err := a.parseRun([]string{"--network-policy", "none", "--", "true"}); err != nil || o.NetworkPolicy != "none" {
		t.Errorf("--network-policy none: %+v %v", o.NetworkPolicy, err)
	}
}

func TestCompletion(t *testing.T) {
	e := baseEnv()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if r := sbxCmd(t, e, "completion", shell); r.code != 0 || !strings.Contains(r.stdout, "sbx") {
			t.Errorf("completion %s: %s", shell, r)
		}
	}
	r := sbxCmd(t, e, "__complete", "ru")
	if r.code != 0 || !strings.Contains(r.stdout, "run") {
		t.Errorf("completing a command: %s", r)
	}
	r = sbxCmd(t, e, "__complete", "run", "--r")
	if r.code != 0 || !strings.Contains(r.stdout, "--rm") {
		t.Errorf("completing a flag: %s", r)
	}
	// With no engine to ask, there are no ids, quietly.
	r = sbxCmd(t, baseEnv("DOCKER_HOST=unix:///nonexistent/docker.sock"), "__complete", "rm", "")
	if r.code != 0 || strings.Contains(r.stdout, "rror") || strings.Contains(r.stderr, "sbx:") {
		t.Errorf("completing ids without an engine: %s", r)
	}
}

func TestCompletionListsSandboxes(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	id := sandboxName(t, e)
	mustSbx(t, e, "run", "-d", "--name", id)
	for _, args := range [][]string{{"__complete", "exec", id[:10]}, {"__complete", "rm", "x", id[:10]}, {"__complete", "cp", id[:10]}} {
		if r := sbxCmd(t, e, args...); r.code != 0 || !strings.Contains(r.stdout, id) {
			t.Errorf("sbx %q: %s", args, r)
		}
	}
}

// TestGCSaysNothing: a gc with nothing to do says so rather than print
// nothing at all.
func TestGCSaysNothing(t *testing.T) {
	// The local runtime keeps its state under XDG_STATE_HOME: an empty
	// one has nothing to collect, and nobody else's sandboxes are touched.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	e := baseEnv("RUNTIME=local", "WORKSPACE_BASE="+t.TempDir())
	if r := sbxCmd(t, e, "gc", "--dry-run"); r.code != 0 || r.stdout != "nothing would be removed\n" {
		t.Errorf("gc --dry-run: %s", r)
	}
	if r := sbxCmd(t, e, "gc"); r.code != 0 || r.stdout != "nothing to remove\n" {
		t.Errorf("gc: %s", r)
	}
	if r := sbxCmd(t, e, "gc", "--json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("gc --json: %s", r)
	}
}

func TestRmForceMissing(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	if r := sbxCmd(t, e, "rm", "-f", "clitest-never-there"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("rm -f of a missing sandbox: %s", r)
	}
	if r := sbxCmd(t, e, "rm", "clitest-never-there"); r.code != exitFailure || !strings.Contains(r.stderr, "sbx ls -a") {
		t.Errorf("rm of a missing sandbox: %s", r)
	}
}
