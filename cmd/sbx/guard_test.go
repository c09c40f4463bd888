package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The whole guarded workflow through the CLI, with --rm: the container
// goes at exit, the changes stay until apply and rm.
func TestGuardedRunDiffApply(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	id := sandboxName(t, e)
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "keep.txt"), []byte("one\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := sbxCmd(t, e, "run", "--rm", "--name", id, "--guard", "-v", ws+":/workspace", "--",
		"cd /workspace && printf 'one\\n2\\n' > keep.txt && echo new > new.txt && mkdir .vscode && echo '{}' > .vscode/tasks.json && cat keep.txt")
	if r.code != 0 || r.stdout != "one\n2\n" || !strings.Contains(r.stderr, "sbx diff "+id) {
		t.Fatalf("guarded run: %s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "keep.txt")); string(b) != "one\ntwo\n" {
		t.Fatalf("the host file changed during the run: %q", b)
	}
	r = mustSbx(t, e, "diff", id)
	if r.stdout != "A! .vscode/\nA! .vscode/tasks.json\nM  keep.txt\nA  new.txt\n" {
		t.Fatalf("diff: %s", r)
	}
	r = mustSbx(t, e, "diff", "--patch", id)
	if !strings.Contains(r.stdout, "--- a/keep.txt\n+++ b/keep.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n") {
		t.Fatalf("diff --patch: %s", r)
	}
	r = mustSbx(t, e, "diff", "--json", id)
	var rep struct {
		Mounts []struct {
			Target  string
			Changes []struct{ Path, Kind string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Mounts) != 1 || len(rep.Mounts[0].Changes) != 4 {
		t.Fatalf("diff --json: %v %s", err, r)
	}
	if r := sbxCmd(t, e, "rm", id); r.code != 125 || !strings.Contains(r.stderr, "unapplied") {
		t.Fatalf("rm with unapplied changes: %s", r)
	}
	// Naming one path leaves the others for later, and says so without
	// calling them risky.
	r = mustSbx(t, e, "apply", id, "new.txt")
	if strings.Contains(r.stderr, "keep.txt (risky") || !strings.Contains(r.stderr, "/workspace: 1 change(s) not named stay for a later apply") {
		t.Fatalf("apply of one path: %s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "keep.txt")); string(b) != "one\ntwo\n" {
		t.Fatalf("keep.txt applied without being named: %q", b)
	}
	r = mustSbx(t, e, "apply", id)
	if !strings.Contains(r.stderr, "left out /workspace/.vscode") {
		t.Fatalf("apply: %s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "keep.txt")); string(b) != "one\n2\n" {
		t.Fatalf("after apply: %q", b)
	}
	if _, err := os.Stat(filepath.Join(ws, ".vscode")); err == nil {
		t.Fatal(".vscode applied without being named")
	}
	mustSbx(t, e, "apply", id, ".vscode")
	if _, err := os.Stat(filepath.Join(ws, ".vscode/tasks.json")); err != nil {
		t.Fatal(err)
	}
	if r := mustSbx(t, e, "diff", id); r.stdout != "" {
		t.Fatalf("diff after apply: %s", r)
	}
	mustSbx(t, e, "rm", id)
	if r := sbxCmd(t, e, "diff", id); r.code != 125 {
		t.Fatalf("diff after rm: %s", r)
	}
}
