package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sbx-dev/sbx"
)

type lsOptions struct {
	All   bool
	JSON  bool
	Quiet bool
}

const lsAbout = `
List sbx's sandboxes of the configured runtime, oldest first. Without -a
only running and paused ones are shown.`

func (a *app) lsCmd() *cobra.Command {
	var o lsOptions
	c := newCommand("ls [OPTIONS]", "List sandboxes", lsAbout, func(c *cobra.Command, args []string) error {
		if err := noArgs(c, args); err != nil {
			return err
		}
		return a.list(c.Context(), o)
	})
	c.Flags().BoolVarP(&o.All, "all", "a", false, "show stopped sandboxes too")
	c.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array")
	c.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "print ids only")
	return c
}

func (a *app) list(ctx context.Context, o lsOptions) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	all, err := rt.List(ctx)
	if err != nil {
		return err
	}
	var shown []sbx.Info
	for _, in := range all {
		if o.All || in.State == "running" || in.State == "paused" {
			shown = append(shown, in)
		}
	}
	switch {
	case o.JSON:
		return writeJSON(a.stdout, sandboxesJSON(shown))
	case o.Quiet:
		for _, in := range shown {
			fmt.Fprintln(a.stdout, in.ID)
		}
		return nil
	}
	return writeTable(a.stdout, shown, time.Now())
}

// sandboxJSON is the stable, machine-readable form of a sandbox, shared
// by `ls --json` and `gc --json`.
type sandboxJSON struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	State    string            `json:"state"`
	Image    string            `json:"image"`
	URL      string            `json:"url"`
	Created  time.Time         `json:"created"`
	Keep     bool              `json:"keep"`
	AppPorts []portJSON        `json:"app_ports"`
	Labels   map[string]string `json:"labels"`
	// SWEReX is absent for a sandbox without a SWE-ReX listener; its
	// token is only known where the sandbox was inspected (sbx run), not
	// in a listing.
	SWEReX *swerexJSON `json:"swerex,omitempty"`
}

// swerexJSON is where a sandbox answers SWE-ReX (sbx run --protocol
// swerex), in the terms of SWE-agent's remote deployment.
type swerexJSON struct {
	URL   string `json:"url"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	Token string `json:"token,omitempty"`
}

type portJSON struct {
	Sandbox int    `json:"sandbox"`
	Host    int    `json:"host"`
	URL     string `json:"url"`
}

func sandboxesJSON(in []sbx.Info) []sandboxJSON {
	out := make([]sandboxJSON, 0, len(in))
	for _, s := range in {
		j := sandboxJSON{ID: s.ID, Name: s.Name, Driver: s.Driver, State: string(s.State), Image: s.Image, URL: s.URL,
			Created: s.Created.UTC(), Keep: s.Keep, AppPorts: []portJSON{}, Labels: s.Labels}
		for _, p := range s.AppPorts {
			j.AppPorts = append(j.AppPorts, portJSON(p))
		}
		if j.Labels == nil {
			j.Labels = map[string]string{}
		}
		if e := s.SWEReX; e != nil {
			j.SWEReX = &swerexJSON{URL: e.URL, Host: e.Host, Port: e.Port, Token: e.Token}
		}
		out = append(out, j)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, in []sbx.Info, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	// The SWE-ReX column only when a sandbox has one (sbx run --protocol
	// swerex), so the usual listing keeps its shape.
	swerex := slices.ContainsFunc(in, func(s sbx.Info) bool { return s.SWEReX != nil })
	if swerex {
		fmt.Fprintln(tw, "ID\tSTATE\tIMAGE\tURL\tSWEREX\tCREATED")
	} else {
		fmt.Fprintln(tw, "ID\tSTATE\tIMAGE\tURL\tCREATED")
	}
	for _, s := range in {
		if swerex {
			u := ""
			if s.SWEReX != nil {
				u = s.SWEReX.URL
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, orDash(s.Image), orDash(s.URL), orDash(u), humanAge(now.Sub(s.Created)))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, orDash(s.Image), orDash(s.URL), humanAge(now.Sub(s.Created)))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanAge says how long ago something happened, in the largest unit
// that fits, as `docker ps` does.
func humanAge(d time.Duration) string {
	if d < time.Second {
		return "just now"
	}
	units := []struct {
		d    time.Duration
		name string
	}{
		{365 * 24 * time.Hour, "year"},
		{30 * 24 * time.Hour, "month"},
		{7 * 24 * time.Hour, "week"},
		{24 * time.Hour, "day"},
		{time.Hour, "hour"},
		{time.Minute, "minute"},
		{time.Second, "second"},
	}
	for _, u := range units {
		if n := int(d / u.d); n >= 1 {
			if n == 1 {
				return fmt.Sprintf("1 %s ago", u.name)
			}
			return fmt.Sprintf("%d %ss ago", n, u.name)
		}
	}
	return "just now"
}
