package config

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Setting describes one supported key and its value, for `sbx config`.
type Setting struct {
	// Section is "core", "sandbox" or "kubernetes"; "" for a host-side
	// environment variable, which has no config.toml key.
	Section string
	Key     string // key in config.toml; "" for host-side variables
	Env     string // environment variable that overrides it
	// Value and Default are rendered as a Python literal would be written
	// in the environment for lists and dicts, plainly otherwise; "" is
	// unset. Secret values are redacted.
	Value   string
	Default string
	Origin  Origin
	Secret  bool
	Doc     string // what the key means (Markdown)
}

// redacted stands in for a secret's value.
const redacted = "********"

// Describe lists every supported key in documentation order, with its
// current value, its default and where the value came from.
func (c *Config) Describe() []Setting {
	def := defaults(c.defaultUID)
	table := keyTable()
	out := make([]Setting, 0, len(table))
	for _, k := range table {
		value, _ := render(k.field(c))
		dflt, _ := render(k.field(def))
		if k.prefix {
			// Names only: forwarded values are often credentials.
			value = strings.Join(slices.Sorted(maps.Keys(c.Host.SandboxEnv)), ", ")
			dflt = ""
		}
		if k.secret && value != "" {
			value = redacted
		}
		origin := c.origins[k.env()]
		if origin == "" {
			origin = OriginDefault
		}
		s := Setting{Section: k.section, Env: k.env(), Value: value, Default: dflt, Origin: origin, Secret: k.secret, Doc: k.doc}
		if k.section != sectionHost {
			s.Key = k.name
		}
		out = append(out, s)
	}
	return out
}

// render writes a field's value; empty reports an unset value (empty
// string, nil pointer, nil list or dict).
func render(field any) (s string, empty bool) {
	switch p := field.(type) {
	case *string:
		return *p, *p == ""
	case *bool:
		return strconv.FormatBool(*p), false
	case *int:
		return strconv.Itoa(*p), false
	case **int:
		if *p == nil {
			return "", true
		}
		return strconv.Itoa(**p), false
	case *[]string:
		if *p == nil {
			return "", true
		}
		items := make([]any, len(*p))
		for i, v := range *p {
			items[i] = v
		}
		return pyLiteral(items), false
	case *map[string]string:
		if *p == nil {
			return "", true
		}
		m := make(map[string]any, len(*p))
		for k, v := range *p {
			m[k] = v
		}
		return pyLiteral(m), false
	case *map[string]any:
		if *p == nil {
			return "", true
		}
		return pyLiteral(*p), false
	}
	return fmt.Sprint(field), false
}

// pyLiteral writes a value so that it can be pasted into an environment
// variable and read back by pyliteral; for strings, lists and string maps
// it is also JSON.
func pyLiteral(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return strconv.Quote(v)
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(v, 10)
	case *big.Int:
		return v.String()
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEIN") {
			s += ".0" // keep it a float when read back
		}
		return s
	case []any:
		parts := make([]string, len(v))
		for i, item := range v {
			parts[i] = pyLiteral(item)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, strconv.Quote(k)+": "+pyLiteral(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	// TOML can also produce dates and arrays of tables; they are shown,
	// not read back.
	return strconv.Quote(fmt.Sprint(v))
}
