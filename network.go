package sbx

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// NetworkPolicy is a sandbox's egress policy: none (loopback only), an
// allow-list (exact domains, *.wildcard domains, CIDRs, with an optional
// deny-list), or open (optionally with a deny-list). Its String is the
// text form CreateOptions.NetworkPolicy and `sbx run --network-policy`
// take.
type NetworkPolicy = netpolicy.Policy

// ParseNetworkPolicy reads a policy's text form.
func ParseNetworkPolicy(s string) (NetworkPolicy, error) { return netpolicy.Parse(s) }

// ResolveNetworkPolicy reads a policy setting as `sbx run
// --network-policy` does: a name from [sandbox.network_policies] or a
// policy's text; a lone word that is neither is refused with a
// suggestion.
func (r *Runtime) ResolveNetworkPolicy(s string) (NetworkPolicy, error) {
	return netpolicy.Resolve(s, r.cfg.Sandbox.NetworkPolicies)
}

// NetworkPolicyFromE2B maps E2B's create fields (allow_internet_access,
// network.allowOut, network.denyOut) to a policy.
func NetworkPolicyFromE2B(allowInternetAccess *bool, allowOut, denyOut []string) (NetworkPolicy, error) {
	return netpolicy.FromE2B(allowInternetAccess, allowOut, denyOut)
}

// NetworkPolicy reports a sandbox's egress policy now.
func (r *Runtime) NetworkPolicy(ctx context.Context, id string) (NetworkPolicy, error) {
	if r.be.Caps.Network == nil {
		return NetworkPolicy{Mode: netpolicy.Open}, nil
	}
	return r.be.Caps.Network.NetworkPolicy(ctx, id)
}

// SetNetworkPolicy changes a running sandbox's egress policy without a
// restart: connections opened afterwards follow it, open ones go on (E2B's
// update_network). A sandbox started open, or none, cannot change kind
// while it runs (ErrNotSupported).
func (r *Runtime) SetNetworkPolicy(ctx context.Context, id string, p NetworkPolicy) error {
	if r.be.Caps.Network == nil {
		return r.unsupported("enforce a network policy; RUNTIME=docker can")
	}
	return r.be.Caps.Network.SetNetworkPolicy(ctx, id, p)
}

// NetworkDenial is one connection a sandbox's policy refused.
type NetworkDenial = netpolicy.Denial

// NetworkDenials are the sandbox's refused connections, oldest first, so
// an agent can ask for a domain instead of guessing.
func (r *Runtime) NetworkDenials(ctx context.Context, id string) ([]NetworkDenial, error) {
	if r.be.Caps.Network == nil {
		return nil, r.unsupported("enforce a network policy, so it logs no denials; RUNTIME=docker can")
	}
	return r.be.Caps.Network.NetworkDenials(ctx, id)
}

// NetworkLog writes the sandbox's refused connections, one a line (time,
// destination, how it was tried, why it was refused).
func (r *Runtime) NetworkLog(ctx context.Context, id string, w io.Writer) error {
	ds, err := r.NetworkDenials(ctx, id)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.NotLoggedBefore > 0 {
			if _, err := fmt.Fprintf(w, "(%d more denials before this one were not logged: a flood is logged at a bounded rate)\n", d.NotLoggedBefore); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s  denied  %-40s  %-7s  %s\n", d.Time.Format(time.RFC3339Nano), d.Dest, d.Via, d.Reason); err != nil {
			return err
		}
	}
	return nil
}
