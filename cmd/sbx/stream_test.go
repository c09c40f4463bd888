package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildSbx builds the CLI as users run it, for tests that need a real
// process (signals, a terminal).
func buildSbx(t testing.TB) string {
	t.Helper()
	bin := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", bin+"/", "github.com/sbx-dev/sbx/cmd/sbx")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sbx: %v\n%s", err, out)
	}
	return bin + "/sbx"
}

// `sbx exec` prints output as it is produced: the first line arrives while
// the command still sleeps, not with the second at the end.
func TestExecStreamsOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	needDocker(t)
	e := baseEnv()
	id := sandboxName(t, e)
	mustSbx(t, e, "run", "--name", id, "-d")
	cmd := exec.Command(buildSbx(t), "exec", id, "--", "echo a; sleep 2; echo b")
	cmd.Env = e.environ()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var lines []string
	var at []time.Time
	for sc.Scan() {
		lines, at = append(lines, sc.Text()), append(at, time.Now())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, ",") != "a,b" {
		t.Fatalf("output %q", lines)
	}
	// The sleep is 2 s; a reply held to the end would show both together.
	if gap := at[1].Sub(at[0]); gap < time.Second {
		t.Fatalf("a came %v before b: the output was not streamed", gap)
	}
}

// Ctrl-C of `sbx exec` stops the command in the sandbox and exits 130,
// as `docker exec` does.
func TestExecInterruptStopsTheRemoteCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	needDocker(t)
	e := baseEnv()
	id := sandboxName(t, e)
	mustSbx(t, e, "run", "--name", id, "-d")
	bin := buildSbx(t)
	cmd := exec.Command(bin, "exec", id, "--", "sleep 30")
	cmd.Env = e.environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until sleep runs in the sandbox, looking from outside: the
	// sandbox's shell is busy with it.
	pgrep := func() string {
		out, _ := exec.Command("docker", "exec", "sbx-"+id, "pgrep", "-x", "sleep").Output()
		return strings.TrimSpace(string(out))
	}
	deadline := time.Now().Add(30 * time.Second)
	for pgrep() == "" {
		if time.Now().After(deadline) {
			t.Fatal("sleep did not start in the sandbox")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	took := time.Since(sent)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("sbx exec after SIGINT: %v, want exit status 130", err)
	}
	t.Logf("sbx exec exited %v after SIGINT", took)
	// sandboxd interrupts the command when it sees the client go.
	for left := pgrep(); left != ""; left = pgrep() {
		if time.Since(sent) > 10*time.Second {
			t.Fatalf("sleep left in the sandbox after the interrupt: pids %s", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("no sleep left in the sandbox %v after SIGINT", time.Since(sent))
	if r := mustSbx(t, e, "exec", id, "--", "echo free"); r.stdout != "free\n" {
		t.Fatalf("the shell after the interrupt: %s", r)
	}
}
