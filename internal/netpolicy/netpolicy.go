// Package netpolicy is a sandbox's network egress policy: none (loopback
// only), an allow-list (deny by default) of exact domains, *.wildcard
// domains and CIDRs with an optional deny-list, or open (the default, with
// an optional deny-list). It parses the one text form every surface uses
// (`sbx run --network-policy`, config.toml, the SDK, the egress proxy's
// command line and control endpoint) and decides single destinations. It
// is stdlib-only so the egress proxy, a static binary, stays small.
package netpolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/suggest"
)

// Mode is what a destination that no entry names gets.
type Mode string

const (
	// Open reaches everything but the deny-list: today's behaviour.
	Open Mode = "open"
	// Allow reaches only the allow-list, minus the deny-list.
	Allow Mode = "allow"
	// None reaches nothing but the sandbox's own loopback.
	None Mode = "none"
)

// Limits keep a policy to what a person writes, so a policy read from a
// request or a file cannot make the proxy's tables arbitrarily large.
const (
	MaxEntries = 1024
	maxText    = 64 << 10
)

// Policy is a parsed policy; its zero value is Open. Entries are kept
// canonical (lower case, no trailing dot, CIDRs masked) and sorted, so two
// policies that mean the same compare equal and hash alike.
type Policy struct {
	Mode  Mode
	Allow []string
	Deny  []string
}

// Denial is one connection (or name lookup) a sandbox's policy refused,
// as the proxy logged it.
type Denial struct {
	Time time.Time `json:"time"`
	// Dest is host:port as the sandbox named it.
	Dest string `json:"dest"`
	// Via is how it was tried: connect, proxy, http, tls, dns.
	Via    string `json:"via"`
	Reason string `json:"reason"`
	// NotLoggedBefore counts this sandbox's denials left out of the log
	// just before this one (a flood is logged at a bounded rate).
	NotLoggedBefore int `json:"not_logged_before,omitempty"`
}

// Parse reads the text form: "none", "open", or entries separated by
// commas or white space, where an entry is a domain ("pypi.org"), a
// wildcard ("*.pythonhosted.org": every name below it, not the name
// itself), an address or CIDR ("10.1.0.0/16"), and a leading '!' puts the
// entry on the deny-list. A list of entries is an allow-list; "open"
// followed by '!' entries is open with a deny-list; "allow" alone or
// before entries says allow explicitly (alone it reaches nothing, like
// none but through the proxy, so it can be widened later).
func Parse(s string) (Policy, error) {
	if len(s) > maxText {
		return Policy{}, invalid("network policy is longer than %d bytes", maxText)
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) == 0 {
		return Policy{}, invalid("empty network policy: say none, open, or list the domains and CIDRs to allow")
	}
	if len(fields) > MaxEntries+1 {
		return Policy{}, invalid("network policy has more than %d entries", MaxEntries)
	}
	p := Policy{Mode: Allow}
	explicit := false
	for i, f := range fields {
		switch strings.ToLower(f) {
		case string(None), string(Open), string(Allow):
			if i != 0 {
				return Policy{}, invalid("%q must come first in a network policy", f)
			}
			p.Mode, explicit = Mode(strings.ToLower(f)), true
			continue
		}
		deny := strings.HasPrefix(f, "!")
		e, err := canonEntry(strings.TrimPrefix(f, "!"))
		if err != nil {
			return Policy{}, err
		}
		if deny {
			p.Deny = append(p.Deny, e)
		} else {
			p.Allow = append(p.Allow, e)
		}
	}
	switch {
	case p.Mode == None && len(p.Allow)+len(p.Deny) > 0:
		return Policy{}, invalid("network policy none takes no entries (it reaches nothing but loopback)")
	case p.Mode == Open && len(p.Allow) > 0:
		return Policy{}, invalid("network policy open allows everything already: only '!' entries (a deny-list) may follow it")
	case !explicit && len(p.Allow) == 0:
		return Policy{}, invalid("network policy %q has only '!' entries: write \"open,%s\" for everything but those", s, strings.Join(fields, ","))
	}
	return p.normal(), nil
}

// MustParse is Parse for literals in tests and tables.
func MustParse(s string) Policy {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

func (p Policy) normal() Policy {
	if p.Mode == "" {
		p.Mode = Open
	}
	p.Allow = sortUniq(p.Allow)
	p.Deny = sortUniq(p.Deny)
	return p
}

func sortUniq(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	l = slices.Clone(l)
	slices.Sort(l)
	return slices.Compact(l)
}

// String is the canonical text form; Parse(p.String()) equals p.
func (p Policy) String() string {
	p = p.normal()
	parts := []string{string(p.Mode)}
	parts = append(parts, p.Allow...)
	for _, d := range p.Deny {
		parts = append(parts, "!"+d)
	}
	return strings.Join(parts, ",")
}

// Enforced reports whether anything must stand between the sandbox and the
// network: every policy but a plain open one.
func (p Policy) Enforced() bool {
	return p.Mode != "" && p.Mode != Open || len(p.Deny) > 0
}

// Key names the policy in a few characters (object names, labels): a hash
// of the canonical form.
func (p Policy) Key() string {
	h := sha256.Sum256([]byte(p.String()))
	return hex.EncodeToString(h[:6])
}

// Equal reports whether two policies mean the same.
func (p Policy) Equal(q Policy) bool { return p.String() == q.String() }

// With returns p widened by allow and narrowed by deny (entries in text
// form, as `sbx network --allow/--deny` take them). An entry moved to one
// list leaves the other. None becomes an allow-list when something is
// allowed.
func (p Policy) With(allow, deny []string) (Policy, error) {
	p = p.normal()
	q := Policy{Mode: p.Mode, Allow: slices.Clone(p.Allow), Deny: slices.Clone(p.Deny)}
	for _, a := range allow {
		e, err := canonEntry(a)
		if err != nil {
			return Policy{}, err
		}
		q.Deny = slices.DeleteFunc(q.Deny, func(s string) bool { return s == e })
		if q.Mode == Open {
			continue
		}
		if q.Mode == None {
			q.Mode = Allow
		}
		q.Allow = append(q.Allow, e)
	}
	for _, d := range deny {
		e, err := canonEntry(d)
		if err != nil {
			return Policy{}, err
		}
		q.Allow = slices.DeleteFunc(q.Allow, func(s string) bool { return s == e })
		if q.Mode == None {
			continue
		}
		q.Deny = append(q.Deny, e)
	}
	if len(q.Allow)+len(q.Deny) > MaxEntries {
		return Policy{}, invalid("network policy has more than %d entries", MaxEntries)
	}
	return q.normal(), nil
}

// Resolve turns a policy setting into a policy: the name of an entry in
// named (config.toml's [sandbox.network_policies]) or a policy's text. ""
// is open.
func Resolve(s string, named map[string]string) (Policy, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Policy{Mode: Open}, nil
	}
	if text, ok := named[s]; ok {
		p, err := Parse(text)
		if err != nil {
			return Policy{}, fmt.Errorf("network policy %q (sandbox.network_policies): %w", s, err)
		}
		return p, nil
	}
	if oneLabel(s) {
		// "opne", "nnone", a misspelt policy name: as an allow-list of
		// one host name without a dot it would quietly refuse
		// everything. Such a host is written "allow,NAME".
		return Policy{}, unknownPolicy(s, named)
	}
	return Parse(s)
}

// oneLabel says whether s is a single word that is no keyword, address
// or domain with a dot.
func oneLabel(s string) bool {
	switch strings.ToLower(s) {
	case string(None), string(Open), string(Allow):
		return false
	}
	return s != "" && !strings.ContainsAny(s, ".:/*!, \t")
}

func unknownPolicy(s string, named map[string]string) error {
	words := []string{string(None), string(Open), string(Allow)}
	names := make([]string, 0, len(named))
	for n := range named {
		names = append(names, n)
	}
	sort.Strings(names)
	// Compared without case, suggested as spelt: a named policy is
	// looked up exactly.
	lower := make([]string, 0, len(words)+len(names))
	spelt := make(map[string]string, len(words)+len(names))
	for _, w := range append(words, names...) {
		lower = append(lower, strings.ToLower(w))
		if _, dup := spelt[strings.ToLower(w)]; !dup {
			spelt[strings.ToLower(w)] = w
		}
	}
	hint := spelt[suggest.Closest(strings.ToLower(s), lower)]
	msg := fmt.Sprintf("unknown network policy %q: say none, open, an allow-list of domains and CIDRs", s)
	if len(names) > 0 {
		msg += ", or one of [sandbox.network_policies] (" + strings.Join(names, ", ") + ")"
	}
	if hint != "" {
		msg += fmt.Sprintf("; did you mean %q?", hint)
	}
	msg += fmt.Sprintf(" (a host name without a dot is written \"allow,%s\")", s)
	return invalid("%s", msg)
}

func canonEntry(s string) (string, error) {
	if s == "" {
		return "", invalid("empty network policy entry")
	}
	if strings.ContainsRune(s, '/') {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return "", invalid("network policy entry %q is not a CIDR (like 10.0.0.0/8): %v", s, err)
		}
		return pfx.Masked().String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", invalid("network policy entry %q: an address with a zone cannot be reached through a proxy", s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String(), nil
	}
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	wild := strings.HasPrefix(name, "*.")
	if err := checkName(strings.TrimPrefix(name, "*.")); err != nil {
		return "", invalid("network policy entry %q: %v", s, err)
	}
	if wild && !strings.Contains(name[2:], ".") {
		// "*.com" would allow a whole top-level domain, which is never
		// what an allow-list is for.
		return "", invalid("network policy entry %q: a wildcard needs at least two labels after \"*.\"", s)
	}
	return name, nil
}

// checkName accepts host names as resolvers do: labels of letters, digits,
// '-' and '_' (used by some service names), 1–63 bytes, 253 in all.
func checkName(n string) error {
	if n == "" || len(n) > 253 {
		return fmt.Errorf("not a domain name")
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("not a domain name (empty or over-long label)")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("not a domain name (%q is not allowed; a wildcard is only a leading \"*.\")", c)
			}
		}
	}
	return nil
}

func invalid(format string, a ...any) error {
	return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf(format, a...))
}
