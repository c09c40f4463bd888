package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func loadTOML(t *testing.T, text string, env ...string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(Source{File: p, Environ: func() []string { return env }, Getuid: func() int { return 1000 },
		Getwd: func() (string, error) { return t.TempDir(), nil }})
}

func TestNetworkPolicyKeys(t *testing.T) {
	c, err := loadTOML(t, `
[sandbox]
network_policy = "registries"
egress_networks = ["bridge", "corp"]
[sandbox.network_policies]
registries = "pypi.org,*.pythonhosted.org"
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox.NetworkPolicy != "registries" || c.Sandbox.NetworkPolicies["registries"] != "pypi.org,*.pythonhosted.org" ||
		strings.Join(c.Sandbox.EgressNetworks, ",") != "bridge,corp" {
		t.Errorf("loaded %+v", c.Sandbox)
	}
	// The environment overrides the file, as for every key.
	c, err = loadTOML(t, "[sandbox.network_policies]\nr = \"pypi.org\"\n", "SANDBOX_NETWORK_POLICY=none")
	if err != nil || c.Sandbox.NetworkPolicy != "none" {
		t.Errorf("env override: %q, %v", c.Sandbox.NetworkPolicy, err)
	}
	for _, bad := range []string{
		"[sandbox]\nnetwork_policy = \"none,x.test\"\n",
		"[sandbox.network_policies]\nbroken = \"*.com\"\n",
		"[sandbox]\nnetwork_policy = \"!x.test\"\n",
	} {
		if _, err := loadTOML(t, bad); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "network_polic") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
