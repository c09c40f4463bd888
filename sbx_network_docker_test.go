package sbx_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx"
)

// The SDK path of a policy: a named policy from the configuration is
// resolved and enforced, the sandbox works (its shell was set up through
// sandboxd's internal address), and a change it cannot take says so.
func TestDockerNetworkPolicyNamed(t *testing.T) {
	rt := openRuntime(t, `SANDBOX_NETWORK_POLICIES={"isolated": "none"}`, "SANDBOX_NETWORK_POLICY=isolated")
	sb := create(t, rt, sbx.CreateOptions{})
	if out := exec(t, sb, "curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:30000/alive"); out != "200" {
		t.Errorf("a sandbox of policy none: %q", out)
	}
	ctx := context.Background()
	p, err := rt.NetworkPolicy(ctx, sb.ID())
	if err != nil || p.String() != "none" {
		t.Errorf("NetworkPolicy = %s, %v", p, err)
	}
	wider, _ := sbx.ParseNetworkPolicy("pypi.org")
	if err := rt.SetNetworkPolicy(ctx, sb.ID(), wider); !errors.Is(err, sbx.ErrNotSupported) {
		t.Errorf("widening none: %v, want ErrNotSupported", err)
	}
	// An option overrides the configured default.
	open := create(t, rt, sbx.CreateOptions{NetworkPolicy: "open"})
	if p, err := rt.NetworkPolicy(ctx, open.ID()); err != nil || p.Enforced() {
		t.Errorf("open sandbox's policy: %s, %v", p, err)
	}
	if _, err := rt.Create(ctx, sbx.CreateOptions{NetworkPolicy: "none,pypi.org"}); err == nil || !strings.Contains(err.Error(), "takes no entries") {
		t.Errorf("a bad policy: %v", err)
	}
}
