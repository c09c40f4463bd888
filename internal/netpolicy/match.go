package netpolicy

import (
	"net/netip"
	"strings"
)

// Matcher decides destinations under one policy. It is immutable, so the
// proxy swaps a sandbox's Matcher whole when its policy changes and
// connections already deciding keep the one they started with.
type Matcher struct {
	policy     Policy
	allowExact map[string]bool
	denyExact  map[string]bool
	allowWild  []string // ".suffix"
	denyWild   []string
	allowNets  []netip.Prefix
	denyNets   []netip.Prefix
}

// Compile makes the Matcher of p.
func Compile(p Policy) *Matcher {
	p = p.normal()
	m := &Matcher{policy: p, allowExact: map[string]bool{}, denyExact: map[string]bool{}}
	add := func(entries []string, exact map[string]bool, wild *[]string, nets *[]netip.Prefix) {
		for _, e := range entries {
			if pfx, err := netip.ParsePrefix(e); err == nil {
				*nets = append(*nets, pfx)
			} else if strings.HasPrefix(e, "*.") {
				*wild = append(*wild, e[1:])
			} else {
				exact[e] = true
			}
		}
	}
	add(p.Allow, m.allowExact, &m.allowWild, &m.allowNets)
	add(p.Deny, m.denyExact, &m.denyWild, &m.denyNets)
	return m
}

// Policy is the policy m decides by.
func (m *Matcher) Policy() Policy { return m.policy }

// Reasons a destination is refused, as the denial log says them.
const (
	ReasonZone      = "an address with a zone"
	ReasonNone      = "policy none"
	ReasonDenied    = "on the deny-list"
	ReasonNotListed = "not on the allow-list"
)

// Dest decides a destination as a client names it: a domain or an address
// literal (an address is matched against CIDR entries only, so naming an
// allowed domain's address directly does not get through). The reason is
// "" when allowed.
func (m *Matcher) Dest(host string) (bool, string) {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			// netip's Contains is false for a zoned address, so it would
			// pass every CIDR on the deny-list; no destination needs one.
			return false, ReasonZone
		}
		return m.addr(a.Unmap())
	}
	if m.policy.Mode == None {
		return false, ReasonNone
	}
	if m.denyExact[host] || suffixed(host, m.denyWild) {
		return false, ReasonDenied
	}
	if m.policy.Mode == Open || m.allowExact[host] || suffixed(host, m.allowWild) {
		return true, ""
	}
	return false, ReasonNotListed
}

func (m *Matcher) addr(a netip.Addr) (bool, string) {
	if m.policy.Mode == None {
		return false, ReasonNone
	}
	if inAny(a, m.denyNets) {
		return false, ReasonDenied
	}
	if m.policy.Mode == Open || inAny(a, m.allowNets) {
		return true, ""
	}
	return false, ReasonNotListed
}

// Resolved decides an address that an allowed name resolved to: the
// deny-list's CIDRs still apply, the allow-list's need not (the name was
// allowed).
func (m *Matcher) Resolved(a netip.Addr) (bool, string) {
	if m.policy.Mode == None {
		return false, ReasonNone
	}
	if inAny(a.WithZone("").Unmap(), m.denyNets) {
		return false, ReasonDenied
	}
	return true, ""
}

func suffixed(host string, suffixes []string) bool {
	for _, s := range suffixes {
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func inAny(a netip.Addr, nets []netip.Prefix) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
