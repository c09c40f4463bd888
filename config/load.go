package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Origin says where a setting's value came from.
type Origin string

const (
	OriginDefault Origin = "default"
	OriginFile    Origin = "file"
	OriginEnv     Origin = "env"
	// OriginDerived marks a value finalisation computed from others, such
	// as workspace_base taken from a /workspace volume.
	OriginDerived Origin = "derived"
)

// sectionError is OpenHands' wording for a bad section, kept so that
// people searching for it find the same cause.
func sectionError(section string) string {
	return "Invalid " + section + " configuration"
}

func invalid(cause error, format string, args ...any) error {
	return errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...), cause)
}

// applyTOML overlays the runtime sections of a config.toml. Sections that
// are not runtime configuration ([llm], [agent], …) are ignored.
func (c *Config) applyTOML(file string, data []byte) []error {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return []error{invalid(err, "%s: %v", file, err)}
	}
	table := keyTable()
	var errs []error
	for _, section := range []string{sectionCore, sectionSandbox, sectionKubernetes} {
		raw, ok := doc[section]
		if !ok {
			continue
		}
		values, ok := raw.(map[string]any)
		if !ok {
			errs = append(errs, invalid(nil, "%s: [%s] must be a table, got %s", file, section, typeName(raw)))
			continue
		}
		names := make([]string, 0, len(values))
		for name := range values {
			names = append(names, name)
		}
		// Sorted, so that several mistakes are reported in a stable order.
		slices.Sort(names)
		for _, name := range names {
			k := lookup(table, section, name)
			if k == nil {
				if section == sectionCore {
					// OpenHands' [core] has many keys that are not
					// runtime configuration; they are not ours to judge.
					continue
				}
				errs = append(errs, unknownKey(table, file, section, name))
				continue
			}
			if err := k.setFromTOML(c, values[name]); err != nil {
				errs = append(errs, invalid(err, "%s: [%s] %s: %v", file, section, name, err))
				continue
			}
			c.origins[k.env()] = OriginFile
		}
	}
	return errs
}

func unknownKey(table []key, file, section, name string) error {
	msg := fmt.Sprintf("%s: [%s] unknown key %q (%s)", file, section, truncate(name, 100), sectionError(section))
	if s := closest(name, sectionKeys(table, section)); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else {
		for _, other := range []string{sectionCore, sectionSandbox, sectionKubernetes} {
			if other != section && lookup(table, other, name) != nil {
				msg += fmt.Sprintf("; %q belongs in [%s]", name, other)
				break
			}
		}
	}
	return invalid(nil, "%s", msg)
}

func lookup(table []key, section, name string) *key {
	for i := range table {
		if table[i].section == section && table[i].name == name && !table[i].prefix {
			return &table[i]
		}
	}
	return nil
}

// applyEnv overlays the environment. Empty values count as unset, as in
// OpenHands, so `FOO=` cannot blank out a file's setting.
func (c *Config) applyEnv(getenv func(string) string, environ func() []string) []error {
	var errs []error
	for _, k := range keyTable() {
		if k.prefix {
			forwarded := sandboxEnv(environ())
			if len(forwarded) > 0 {
				c.Host.SandboxEnv = forwarded
				c.origins[k.env()] = OriginEnv
			}
			continue
		}
		name := k.env()
		v := getenv(name)
		if v == "" {
			continue
		}
		if err := k.setFromEnv(c, v); err != nil {
			errs = append(errs, invalid(err, "%s=%s: %v", name, truncate(fmt.Sprintf("%q", v), 80), err))
			continue
		}
		c.origins[name] = OriginEnv
	}
	return errs
}

// sandboxEnv collects SANDBOX_ENV_<NAME>=value as <NAME>=value. Empty
// values are kept: setting a variable to "" inside the sandbox is a
// legitimate request.
func sandboxEnv(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if rest, ok := strings.CutPrefix(name, sandboxEnvPrefix); ok && rest != "" {
			out[rest] = value
		}
	}
	return out
}
