package sbx

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runScript runs the set-up script in a real bash with a scratch HOME and
// returns its exit status and what it printed for probe.
func runScript(t *testing.T, script, probe string) (int, string, string) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("bash", "--norc", "-c", script+"\n__st=$?; "+probe+"; exit $__st")
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out), home
}

func TestEnvScriptExportsPersistsAndQuotes(t *testing.T) {
	env := map[string]string{"plain": "x", "TRICKY": `a'b $HOME "q" \n`, "EMPTY": ""}
	s, err := envScript(env, `O'Hands "x"`, "o@h.dev", true, false)
	if err != nil {
		t.Fatal(err)
	}
	code, out, home := runScript(t, s, `printf '%s|%s|%s|%s' "$PLAIN" "$TRICKY" "${EMPTY-unset}" "${__sbx_rc-gone}"`)
	if code != 0 || out != `x|a'b $HOME "q" \n||gone` {
		t.Fatalf("status %d, output %q", code, out)
	}
	rc, _ := os.ReadFile(filepath.Join(home, ".bashrc"))
	for _, want := range []string{"export PLAIN='x'\n", `export TRICKY='a'\''b $HOME "q" \n'` + "\n"} {
		if !strings.Contains(string(rc), want) {
			t.Errorf(".bashrc lacks %q:\n%s", want, rc)
		}
	}
	// Run twice: each name is persisted once.
	cmd := exec.Command("bash", "--norc", "-c", s+"; "+s)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	rc, _ = os.ReadFile(filepath.Join(home, ".bashrc"))
	if n := strings.Count(string(rc), "export PLAIN="); n != 1 {
		t.Errorf("PLAIN persisted %d times", n)
	}
	if _, err := exec.LookPath("git"); err == nil {
		g := exec.Command("git", "config", "--global", "user.name")
		g.Env = []string{"HOME=" + home}
		b, err := g.Output()
		if err != nil || string(b) != "O'Hands \"x\"\n" {
			t.Errorf("git user.name = %q, %v", b, err)
		}
	}
}

func TestEnvScriptReportsFailure(t *testing.T) {
	// UID is read-only in bash: the export fails, the script says so, and
	// the broken line never reaches ~/.bashrc (where it would print an
	// error in every later shell).
	s, err := envScript(map[string]string{"UID": "5", "OK": "1"}, "n", "e", true, false)
	if err != nil {
		t.Fatal(err)
	}
	code, out, home := runScript(t, s, `printf '%s' "$OK"`)
	if code == 0 || !strings.HasSuffix(out, "1") {
		t.Fatalf("status %d, output %q", code, out)
	}
	rc, _ := os.ReadFile(filepath.Join(home, ".bashrc"))
	if strings.Contains(string(rc), "UID") || !strings.Contains(string(rc), "export OK=") {
		t.Fatalf(".bashrc:\n%s", rc)
	}
}

func TestEnvScriptWithoutPersistTouchesNoFiles(t *testing.T) {
	s, err := envScript(map[string]string{"A": "1"}, "n", "e", false, false)
	if err != nil {
		t.Fatal(err)
	}
	code, out, home := runScript(t, s, `printf '%s' "$A"`)
	if code != 0 || out != "1" {
		t.Fatalf("status %d, output %q", code, out)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Fatalf("home written: %v", ents)
	}
	if s, _ := envScript(nil, "n", "e", false, false); s != "" {
		t.Fatalf("nothing to do, yet a script: %q", s)
	}
}

func TestEnvScriptRefusesBadNames(t *testing.T) {
	for _, k := range []string{"", "1A", "A-B", "A=B", "A B", "$(x)"} {
		if _, err := envScript(map[string]string{k: "v"}, "n", "e", true, false); err == nil {
			t.Errorf("name %q accepted", k)
		}
	}
	if _, err := envScript(nil, "a\nb", "e", true, false); err == nil {
		t.Error("multi-line git name accepted")
	}
}
