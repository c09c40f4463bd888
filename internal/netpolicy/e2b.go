package netpolicy

import (
	"net/netip"
)

// FromE2B maps E2B's create request (allow_internet_access, and
// network.allowOut / network.denyOut, spec/e2b-api.md §2.3) to a policy.
// allow_internet_access false, or a denyOut that covers every address
// (0.0.0.0/0), is an allow-list of allowOut ("allow" alone when empty, so
// update_network can widen it later); otherwise it is open with denyOut as
// its deny-list. E2B lets allowOut override denyOut; sbx's deny-list wins,
// so an open policy whose allowOut falls inside a denyOut CIDR is refused
// rather than enforced differently.
func FromE2B(allowInternetAccess *bool, allowOut, denyOut []string) (Policy, error) {
	all := allowInternetAccess != nil && !*allowInternetAccess
	var deny []string
	for _, d := range denyOut {
		e, err := canonEntry(d)
		if err != nil {
			return Policy{}, err
		}
		if pfx, err := netip.ParsePrefix(e); err == nil && pfx.Bits() == 0 {
			all = true
			continue
		}
		deny = append(deny, e)
	}
	if all {
		return Policy{Mode: Allow}.With(allowOut, deny)
	}
	p, err := Policy{Mode: Open}.With(nil, deny)
	if err != nil {
		return Policy{}, err
	}
	m := Compile(p)
	for _, a := range allowOut {
		e, err := canonEntry(a)
		if err != nil {
			return Policy{}, err
		}
		probe := e
		if pfx, err := netip.ParsePrefix(e); err == nil {
			probe = pfx.Addr().String()
		}
		if ok, _ := m.Dest(probe); !ok {
			return Policy{}, invalid("allowOut %q falls inside denyOut: sbx's deny-list wins over its allow entries, so list the denied ranges around it instead", a)
		}
	}
	return p, nil
}

// E2BFields is the inverse of FromE2B, for SandboxDetail: whether the
// sandbox reaches the internet, and its allowOut / denyOut.
func (p Policy) E2BFields() (allowInternetAccess bool, allowOut, denyOut []string) {
	p = p.normal()
	switch p.Mode {
	case Open:
		return true, nil, p.Deny
	case None:
		return false, nil, []string{"0.0.0.0/0"}
	}
	return false, p.Allow, append([]string{"0.0.0.0/0"}, p.Deny...)
}
