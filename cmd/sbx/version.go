package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/internal/version"
)

type versionJSON struct {
	Version string      `json:"version"`
	Go      string      `json:"go"`
	OS      string      `json:"os"`
	Arch    string      `json:"arch"`
	Runtime string      `json:"runtime,omitempty"`
	Docker  *dockerJSON `json:"docker,omitempty"`
}

type dockerJSON struct {
	Version    string `json:"version,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
	Error      string `json:"error,omitempty"`
}

const versionAbout = `
Print sbx's version and, with the docker runtime, the engine's (when it
answers: an engine that is down is reported, not an error).`

func (a *app) versionCmd() *cobra.Command {
	var asJSON bool
	c := newCommand("version [OPTIONS]", "Show version information", versionAbout, func(c *cobra.Command, args []string) error {
		if err := noArgs(c, args); err != nil {
			return err
		}
		return a.version(c.Context(), asJSON)
	})
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func (a *app) version(ctx context.Context, asJSON bool) error {
	v := versionJSON{Version: version.String(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	// A broken configuration should not hide the version, which is what
	// one asks for when reporting it.
	if cfg, err := a.loadConfig(); err == nil {
		v.Runtime = cfg.Runtime
		v.Docker = a.engineVersion(ctx)
	}
	if asJSON {
		return writeJSON(a.stdout, v)
	}
	fmt.Fprintf(a.stdout, "sbx %s (%s %s/%s)\n", v.Version, v.Go, v.OS, v.Arch)
	if v.Runtime != "" {
		fmt.Fprintf(a.stdout, "runtime: %s\n", v.Runtime)
	}
	if d := v.Docker; d != nil {
		if d.Error != "" {
			fmt.Fprintf(a.stdout, "docker engine: not reachable (%s)\n", d.Error)
		} else {
			fmt.Fprintf(a.stdout, "docker engine: %s (API %s)\n", d.Version, d.APIVersion)
		}
	}
	return nil
}

// engineVersion asks the runtime's driver what it runs on; nil for a
// driver with no engine to describe (local).
func (a *app) engineVersion(ctx context.Context) *dockerJSON {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return &dockerJSON{Error: err.Error()}
	}
	defer rt.Close()
	e, err := rt.Engine(ctx)
	switch {
	case errors.Is(err, sbx.ErrNotSupported):
		return nil
	case err != nil:
		return &dockerJSON{Error: err.Error()}
	}
	return &dockerJSON{Version: e.Version, APIVersion: e.APIVersion}
}
