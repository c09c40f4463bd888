package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

const configAbout = `
Print the effective configuration: every key sbx reads from config.toml
and the environment, its variable, its value and where the value came
from (default, file, env, derived). Secrets are redacted.`

type settingJSON struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	Env     string `json:"env"`
	Value   string `json:"value"`
	Default string `json:"default"`
	Source  string `json:"source"`
	Secret  bool   `json:"secret"`
}

func (a *app) configCmd() *cobra.Command {
	var asJSON bool
	c := newCommand("config [OPTIONS]", "Show the effective configuration", configAbout, func(c *cobra.Command, args []string) error {
		if err := noArgs(c, args); err != nil {
			return err
		}
		return a.showConfig(asJSON)
	})
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return c
}

func (a *app) showConfig(asJSON bool) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	settings := cfg.Describe()
	if asJSON {
		out := make([]settingJSON, 0, len(settings))
		for _, s := range settings {
			out = append(out, settingJSON{Section: s.Section, Key: s.Key, Env: s.Env, Value: s.Value,
				Default: s.Default, Source: string(s.Origin), Secret: s.Secret})
		}
		return writeJSON(a.stdout, out)
	}
	if cfg.File != "" {
		fmt.Fprintf(a.stdout, "# config file: %s\n", cfg.File)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tENV\tVALUE\tSOURCE")
	for _, s := range settings {
		key := "-"
		if s.Key != "" {
			key = "[" + s.Section + "] " + s.Key
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", key, s.Env, orDash(s.Value), s.Origin)
	}
	return tw.Flush()
}
