package main

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// A runtime that cannot enforce a policy says so and starts nothing.
func TestNetworkPolicyLocalRefused(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	e := baseEnv("RUNTIME=local", "WORKSPACE_BASE="+t.TempDir())
	r := sbxCmd(t, e, "run", "--rm", "--network-policy", "pypi.org", "true")
	if r.code != exitFailure || !strings.Contains(r.stderr, "cannot enforce the network policy allow,pypi.org") {
		t.Errorf("local run with a policy: %s", r)
	}
	if r := sbxCmd(t, e, "ls", "-a", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("a refused run left a sandbox: %s", r)
	}
	// open is what the local runtime does anyway.
	if r := sbxCmd(t, e, "run", "--rm", "--network-policy", "open", "echo", "ok"); r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Errorf("local run with policy open: %s", r)
	}
	if r := sbxCmd(t, e, "run", "--rm", "--network-policy", "*.com", "true"); r.code != exitFailure || !strings.Contains(r.stderr, "wildcard") {
		t.Errorf("bad policy: %s", r)
	}
}

func TestNetworkCommand(t *testing.T) {
	needDocker(t)
	e := baseEnv()
	id := "clitest-net-" + strings.ToLower(t.Name()[len(t.Name())-4:])
	mustSbx(t, e, "run", "-d", "--name", id, "--network-policy", "allow")
	key := ""
	t.Cleanup(func() {
		sbxCmd(t, e, "rm", "-f", id)
		if key != "" {
			// The proxy this test made (gc takes only those older than
			// ten minutes).
			_ = exec.Command("docker", "rm", "-f", "sbx_egress-"+key).Run()
			_ = exec.Command("docker", "network", "rm", "sbx_egress-"+key).Run()
		}
	})
	out, err := exec.Command("docker", "inspect", "-f", `{{index .Config.Labels "dev.sbx.egress"}}`, "sbx-"+id).Output()
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(string(out))
	if r := mustSbx(t, e, "network", id); strings.TrimSpace(r.stdout) != "allow" {
		t.Errorf("sbx network: %s", r)
	}
	if r := mustSbx(t, e, "network", id, "--allow", "pypi.org", "--allow", "*.pythonhosted.org", "--deny", "evil.pypi.org"); strings.TrimSpace(r.stdout) != "allow,*.pythonhosted.org,pypi.org,!evil.pypi.org" {
		t.Errorf("sbx network --allow: %s", r)
	}
	if r := mustSbx(t, e, "network", id); strings.TrimSpace(r.stdout) != "allow,*.pythonhosted.org,pypi.org,!evil.pypi.org" {
		t.Errorf("the change did not stick: %s", r)
	}
	// Nothing resolves pypi.org here, so the attempt is refused all the
	// same, and logged.
	sbxCmd(t, e, "exec", id, "curl -s --max-time 5 https://evil.pypi.org/")
	if r := mustSbx(t, e, "logs", "--network", id); !strings.Contains(r.stdout, "evil.pypi.org:443") || !strings.Contains(r.stdout, "on the deny-list") {
		t.Errorf("sbx logs --network: %s", r)
	}
	if r := sbxCmd(t, e, "network", id, "--policy", "x.test", "--allow", "y.test"); r.code != 2 {
		t.Errorf("--policy with --allow: %s", r)
	}
	// The same as JSON.
	var ds []struct{ Dest, Via, Reason string }
	if r := mustSbx(t, e, "logs", "--network", "--json", id); json.Unmarshal([]byte(r.stdout), &ds) != nil || len(ds) == 0 || !slices.ContainsFunc(ds, func(d struct{ Dest, Via, Reason string }) bool {
		return d.Dest == "evil.pypi.org:443" && d.Reason == "on the deny-list"
	}) {
		t.Errorf("sbx logs --network --json: %s", r)
	}
	var pol struct {
		Policy, Mode string
		Allow, Deny  []string
	}
	if r := mustSbx(t, e, "network", "--json", id); json.Unmarshal([]byte(r.stdout), &pol) != nil || pol.Mode != "allow" || len(pol.Allow) != 2 || len(pol.Deny) != 1 || pol.Policy != "allow,*.pythonhosted.org,pypi.org,!evil.pypi.org" {
		t.Errorf("sbx network --json: %s", r)
	}
	if r := sbxCmd(t, e, "logs", "--json", id); r.code != 2 {
		t.Errorf("logs --json without --network: %s", r)
	}
	if r := sbxCmd(t, e, "network", id, "--policy", "opne"); r.code != exitFailure || !strings.Contains(r.stderr, `did you mean "open"?`) {
		t.Errorf("a misspelt policy: %s", r)
	}
}
