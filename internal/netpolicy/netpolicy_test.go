package netpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestParseCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"none":                             "none",
		" OPEN ":                           "open",
		"open,!Evil.COM.":                  "open,!evil.com",
		"pypi.org *.pythonhosted.org":      "allow,*.pythonhosted.org,pypi.org",
		"allow":                            "allow",
		"b.test,a.test,a.test":             "allow,a.test,b.test",
		"10.1.2.3/16,10.9.9.9":             "allow,10.1.0.0/16,10.9.9.9/32",
		"allowed.test,!bad.allowed.test":   "allow,allowed.test,!bad.allowed.test",
		"::ffff:1.2.3.4":                   "allow,1.2.3.4/32",
		"allow,\n*.a.test\t!x.a.test":      "allow,*.a.test,!x.a.test",
		"open,!10.0.0.0/8,!169.254.0.0/16": "open,!10.0.0.0/8,!169.254.0.0/16",
	} {
		p, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if p.String() != want {
			t.Errorf("Parse(%q) = %s, want %s", in, p, want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{
		"", " , ", "none,a.test", "open,a.test", "!a.test", "a.test,none", "*.com", "a..test",
		"a_b c!d", "http://a.test", "a.test:443", "10.0.0.0/33", "fe80::1%eth0", "*.*.a.test", "a*.test",
	} {
		_, err := Parse(in)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Parse(%q) = %v, want an invalid-argument error", in, err)
		}
	}
}

func TestMatcher(t *testing.T) {
	m := Compile(MustParse("allowed.test,*.wild.test,!deny.wild.test,10.5.0.0/16,!10.5.9.0/24"))
	for host, want := range map[string]bool{
		"allowed.test":      true,
		"ALLOWED.test.":     true,
		"x.allowed.test":    false, // exact entries do not cover subdomains
		"wild.test":         false, // a wildcard does not cover its own name
		"a.wild.test":       true,
		"a.b.wild.test":     true,
		"deny.wild.test":    false,
		"notwild.test":      false,
		"denied.test":       false,
		"10.5.1.1":          true,
		"10.5.9.1":          false,
		"10.6.0.1":          false,
		"[::ffff:10.5.1.1]": true,
	} {
		if ok, why := m.Dest(host); ok != want || ok != (why == "") {
			t.Errorf("Dest(%q) = %v %q, want %v", host, ok, why, want)
		}
	}
	if ok, _ := m.Resolved(netip.MustParseAddr("192.0.2.1")); !ok {
		t.Error("an address an allowed name resolved to is refused outside the allow CIDRs")
	}
	if ok, why := m.Resolved(netip.MustParseAddr("10.5.9.3")); ok || why != ReasonDenied {
		t.Errorf("deny CIDR not applied to a resolved address: %v %q", ok, why)
	}
	open := Compile(MustParse("open,!bad.test"))
	if ok, _ := open.Dest("any.where"); !ok {
		t.Error("open refused a name")
	}
	if ok, _ := open.Dest("bad.test"); ok {
		t.Error("open let a denied name through")
	}
	// A zone makes netip's Contains false, so a zoned literal would slip
	// past every deny CIDR (Linux ignores the zone of a global address).
	v6 := Compile(MustParse("open,!2001:db8::/32,!10.9.0.0/16"))
	for _, host := range []string{"2001:db8::1", "[2001:db8::1%x]", "2001:db8::1%25x", "[::ffff:10.9.0.1%eth0]"} {
		if ok, why := v6.Dest(host); ok {
			t.Errorf("Dest(%q) under a deny CIDR = allowed", host)
		} else if why == "" {
			t.Errorf("Dest(%q): no reason", host)
		}
	}
	if ok, _ := v6.Resolved(netip.MustParseAddr("2001:db8::1%x")); ok {
		t.Error("Resolved let a zoned address under a deny CIDR through")
	}
	none := Compile(MustParse("none"))
	if ok, why := none.Dest("allowed.test"); ok || why != ReasonNone {
		t.Errorf("none: %v %q", ok, why)
	}
}

func TestWith(t *testing.T) {
	p, err := MustParse("a.test,!b.test").With([]string{"b.test", "c.test"}, []string{"a.test"})
	if err != nil || p.String() != "allow,b.test,c.test,!a.test" {
		t.Fatalf("With = %s, %v", p, err)
	}
	p, _ = MustParse("none").With([]string{"x.test"}, nil)
	if p.String() != "allow,x.test" {
		t.Errorf("none widened = %s", p)
	}
	if _, err := p.With([]string{"*.com"}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad entry: %v", err)
	}
}

func TestResolveNamed(t *testing.T) {
	named := map[string]string{"registries": "pypi.org,*.pythonhosted.org", "broken": "none,x.test"}
	if p, err := Resolve("registries", named); err != nil || p.String() != "allow,*.pythonhosted.org,pypi.org" {
		t.Errorf("named: %s %v", p, err)
	}
	if p, err := Resolve("", named); err != nil || p.Enforced() {
		t.Errorf("empty: %s %v", p, err)
	}
	if _, err := Resolve("broken", named); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("broken named policy: %v", err)
	}
	if p, _ := Resolve("x.test", named); p.String() != "allow,x.test" {
		t.Errorf("inline = %s", p)
	}
	// A lone word that is neither a keyword nor a name is a typo, not an
	// allow-list that refuses everything.
	for in, hint := range map[string]string{"opne": `did you mean "open"?`, "nnone": `did you mean "none"?`, "registris": `did you mean "registries"?`, "db": `"allow,db"`} {
		_, err := Resolve(in, named)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), hint) || !strings.Contains(err.Error(), "registries") {
			t.Errorf("Resolve(%q) = %v, want an error with %s", in, err, hint)
		}
	}
	if _, err := Resolve("pypi-onyl", map[string]string{"PyPI-Only": "pypi.org"}); err == nil || !strings.Contains(err.Error(), `did you mean "PyPI-Only"?`) {
		t.Errorf("a named policy is suggested as spelt: %v", err)
	}
	for _, in := range []string{"OPEN", "allow,db", "None", "open,!x.test"} {
		if _, err := Resolve(in, named); err != nil {
			t.Errorf("Resolve(%q): %v", in, err)
		}
	}
}

func TestKeyStable(t *testing.T) {
	a, b := MustParse("b.test a.test"), MustParse("allow,a.test,b.test,a.test")
	if a.Key() != b.Key() || len(a.Key()) != 12 || a.Key() == MustParse("a.test").Key() {
		t.Errorf("keys %s %s", a.Key(), b.Key())
	}
}

// FuzzParse: no input panics, an accepted policy's canonical text parses
// back to itself, and its matcher never allows under none.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"none", "open", "open,!a.test", "a.test,*.b.test,10.0.0.0/8,!c.b.test", "allow", "::1", "*.com", "a,,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		q, err := Parse(p.String())
		if err != nil || !q.Equal(p) {
			t.Fatalf("round trip of %q: %q -> %q, %v", s, p, q, err)
		}
		m := Compile(p)
		for _, e := range append(append([]string{}, p.Allow...), p.Deny...) {
			ok, _ := m.Dest(e)
			if p.Mode == None && ok {
				t.Fatalf("none allowed %q", e)
			}
		}
	})
}

func TestFromE2B(t *testing.T) {
	no, yes := false, true
	for _, c := range []struct {
		internet        *bool
		allow, deny     []string
		want            string
		allowed, denied []string
	}{
		{nil, nil, nil, "open", nil, nil},
		{&yes, nil, []string{"10.0.0.0/8"}, "open,!10.0.0.0/8", nil, nil},
		{&no, nil, nil, "allow", nil, nil},
		{&no, []string{"pypi.org"}, nil, "allow,pypi.org", nil, nil},
		{nil, []string{"1.2.3.4", "pypi.org"}, []string{"0.0.0.0/0", "8.8.8.8"}, "allow,1.2.3.4/32,pypi.org,!8.8.8.8/32", nil, nil},
	} {
		p, err := FromE2B(c.internet, c.allow, c.deny)
		if err != nil || p.String() != c.want {
			t.Errorf("FromE2B(%v, %v, %v) = %s, %v; want %s", c.internet, c.allow, c.deny, p, err, c.want)
			continue
		}
		inet, a, d := p.E2BFields()
		q, err := FromE2B(&inet, a, d)
		if err != nil || !q.Equal(p) {
			t.Errorf("E2BFields of %s round-trips to %s, %v", p, q, err)
		}
	}
	if _, err := FromE2B(nil, []string{"10.1.2.3"}, []string{"10.0.0.0/8"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("an allowOut inside denyOut: %v", err)
	}
}
