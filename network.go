package sbx

import (
	"context"
	"io"

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

// NetworkLog writes the sandbox's refused connections, one a line (time,
// destination, how it was tried, why it was refused), so an agent can ask
// for a domain instead of guessing.
func (r *Runtime) NetworkLog(ctx context.Context, id string, w io.Writer) error {
	if r.be.Caps.Network == nil {
		return r.unsupported("enforce a network policy, so it logs no denials; RUNTIME=docker can")
	}
	return r.be.Caps.Network.NetworkLog(ctx, id, w)
}
