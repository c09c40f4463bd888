package main

import (
	"runtime"
	"strings"
	"testing"
)

// The local runtime runs sandboxd as a host process: the same commands
// must behave the same without Docker.
func localEnv(t *testing.T) env {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the local runtime needs Linux")
	}
	return baseEnv("RUNTIME=local", "WORKSPACE_BASE="+t.TempDir())
}

func TestLocalRun(t *testing.T) {
	e := localEnv(t)
	t.Parallel()
	if r := sbxCmd(t, e, "run", "--rm", "--", "echo", "hi"); r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("echo hi: %s", r)
	}
	if r := sbxCmd(t, e, "run", "--rm", "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("exit 3: %s", r)
	}
	if r := sbxCmd(t, e, "run", "--rm", "-e", "K=v", "--", "echo $K"); r.code != 0 || r.stdout != "v\n" {
		t.Fatalf("-e: %s", r)
	}
	r := sbxIn(t, e, strings.NewReader("echo hi\ncd /tmp\npwd\nexit\n"), "run", "--rm")
	if r.code != 0 || r.stdout != "hi\n/tmp\n" {
		t.Fatalf("interactive: %s", r)
	}
}

func TestLocalExecAndCopy(t *testing.T) {
	e := localEnv(t)
	t.Parallel()
	id := sandboxName(t, e)
	if r := mustSbx(t, e, "run", "-d", "--name", id); r.stdout != id+"\n" {
		t.Fatalf("run -d: %s", r)
	}
	mustSbx(t, e, "exec", id, "--", "export V=kept")
	if r := mustSbx(t, e, "exec", id, "--", "echo $V"); r.stdout != "kept\n" {
		t.Fatalf("exec: %s", r)
	}
	if r := sbxCmd(t, e, "exec", id, "--", "sh", "-c", "exit 4"); r.code != 4 {
		t.Fatalf("exec status: %s", r)
	}
	// In a local sandbox, sandbox paths are host paths.
	testCopy(t, e, id, t.TempDir()+"/cp")
}

// The local runtime has no guard (its sandbox works in the host folder
// itself): asking for one is refused before anything starts.
func TestLocalRefusesGuard(t *testing.T) {
	e := localEnv(t)
	t.Parallel()
	r := sbxCmd(t, e, "run", "--rm", "--guard", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "RUNTIME=local cannot guard the workspace") {
		t.Fatalf("run --guard: %s", r)
	}
	r = sbxCmd(t, baseEnv("RUNTIME=local", "WORKSPACE_BASE="+t.TempDir(), "WORKSPACE_GUARD=true"), "run", "--rm", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "cannot guard") {
		t.Fatalf("WORKSPACE_GUARD=true: %s", r)
	}
	if r := sbxCmd(t, e, "diff", "nosuch"); r.code != 125 || !strings.Contains(r.stderr, "RUNTIME=local cannot guard a mounted folder") {
		t.Fatalf("diff: %s", r)
	}
}
