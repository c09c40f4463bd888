package config

import (
	"bytes"
	"fmt"
	"strings"
)

// docsIntro is the hand-written part of docs/configuration.md; the tables
// after it come from keyTable.
const docsIntro = `# Configuration

<!-- Generated from config/keys.go by ` + "`go generate ./config`" + `. Do not edit. -->

sbx reads the same configuration as OpenHands' runtimes, so a ` + "`config.toml`" + `
and environment written for OpenHands work unchanged. The package
` + "`github.com/sbx-dev/sbx/config`" + ` loads it for every driver, the CLI and the SDK;
` + "`sbx config`" + ` shows the values in effect and where each came from.

## How settings are loaded

1. **Defaults**, as listed below.
2. **config.toml**: the file given to the CLI or SDK, else the file named by
   ` + "`$SBX_CONFIG`" + `, else ` + "`./config.toml`" + ` if it exists. A file that is named
   but missing is an error.
   * ` + "`[core]`" + `: the runtime keys below are read; other keys (OpenHands has
     many that are not runtime settings) are ignored.
   * ` + "`[sandbox]`" + ` and ` + "`[kubernetes]`" + `: every key is known; an unknown key is an
     error ("Invalid sandbox configuration"), with a suggestion when it looks
     like a typo.
   * Other sections (` + "`[llm]`, `[agent]`, `[security]`, `[mcp]`, `[condenser]`,\n     `[model_routing]`" + `, …) are not runtime configuration and are ignored.
   * A value of the wrong TOML type (` + "`timeout = \"120\"`" + `) is an error naming the
     key and the file. Lists and dicts are TOML arrays and tables.
3. **Environment variables** override the file. The name is the key
   upper-cased, prefixed with ` + "`SANDBOX_`" + ` for ` + "`[sandbox]`" + ` and ` + "`KUBERNETES_`" + ` for
   ` + "`[kubernetes]`" + `, unprefixed for ` + "`[core]`" + `.
   * Empty values are ignored.
   * Booleans: ` + "`true`" + ` or ` + "`1`" + ` (any case) is true, anything else false.
   * Integers must parse, or loading fails naming the variable.
   * Lists and dicts are Python literals, so ` + "`SANDBOX_RUNTIME_STARTUP_ENV_VARS=\"{'A': 'b'}\"`" + `,
     ` + "`SANDBOX_ADDITIONAL_NETWORKS='[\"net1\"]'`" + ` and JSON with double quotes all work;
     ` + "`None`" + ` clears one.
4. **Finalisation**:
   * ` + "`runtime = \"eventstream\"`" + ` becomes ` + "`docker`" + `; an empty ` + "`base_container_image`" + `
     becomes the default.
   * If ` + "`sandbox.volumes`" + ` has a mount on exactly ` + "`/workspace`" + `, its host path becomes
     ` + "`workspace_base`" + ` and ` + "`workspace_mount_path`" + `; if the volumes have none, both are
     cleared. Without volumes, ` + "`workspace_base`" + ` is made absolute,
     ` + "`workspace_mount_path`" + ` defaults to it and ` + "`workspace_mount_rewrite`" + ` applies;
     the workspace is mounted read-write at ` + "`workspace_mount_path_in_sandbox`" + `.
   * Values are checked against the rules in the "sbx notes" column.

Every problem is reported at once, each naming the key, the value and where it
came from.

`

// markdown renders docs/configuration.md from the key table.
func markdown() []byte {
	var b bytes.Buffer
	b.WriteString(docsIntro)
	def := defaults(fallbackUID)
	table := keyTable()
	for _, sec := range []struct{ section, title, intro string }{
		{sectionCore, "`[core]`", "Only the keys that concern a runtime."},
		{sectionSandbox, "`[sandbox]`", "Every key of OpenHands' `SandboxConfig`, with its code default."},
		{sectionKubernetes, "`[kubernetes]`", "Read so that OpenHands configurations load; used by a Kubernetes driver."},
		{sectionHost, "Host-side environment variables", "Read from the environment only; there is no config.toml key."},
	} {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", sec.title, sec.intro)
		if sec.section == sectionHost {
			b.WriteString("| Variable | Default | Meaning | sbx notes |\n|---|---|---|---|\n")
		} else {
			b.WriteString("| Key | Variable | Default | Meaning | sbx notes |\n|---|---|---|---|---|\n")
		}
		for _, k := range table {
			if k.section != sec.section {
				continue
			}
			row := []string{"`" + k.env() + "`", docDefault(&k, def), k.doc, k.note}
			if sec.section != sectionHost {
				row = append([]string{"`" + k.name + "`"}, row...)
			}
			for i := range row {
				row[i] = strings.ReplaceAll(row[i], "|", `\|`)
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
		b.WriteString("\n")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func docDefault(k *key, def *Config) string {
	if k.defaultDoc != "" {
		return k.defaultDoc
	}
	if k.prefix {
		return "none"
	}
	v, empty := render(k.field(def))
	switch {
	case empty && k.section == sectionHost:
		return "unset"
	case empty:
		return "null"
	}
	return "`" + v + "`"
}
