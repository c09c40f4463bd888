package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdFlags is a subcommand's flag set with its usage text.
type cmdFlags struct {
	*flag.FlagSet
	cmd      string // "run", "image build"
	synopsis string // after "sbx <cmd> "
	about    string
}

func newFlags(cmd, synopsis, about string) *cmdFlags {
	fs := flag.NewFlagSet("sbx "+cmd, flag.ContinueOnError)
	// Errors and usage are printed by parse, to the right stream.
	fs.SetOutput(io.Discard)
	return &cmdFlags{FlagSet: fs, cmd: cmd, synopsis: synopsis, about: about}
}

// parse parses args: flags first, then operands; `--` ends the flags. -h
// prints the usage to stdout and ends the command successfully.
func (f *cmdFlags) parse(a *app, args []string) error {
	err := f.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		f.usage(a.stdout)
		return errHelpShown
	case err != nil:
		return usageErrorf(f.cmd, "%v", err)
	}
	return nil
}

func (f *cmdFlags) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sbx %s %s\n\n%s\n", f.cmd, f.synopsis, strings.TrimSpace(f.about))
	var b strings.Builder
	f.VisitAll(func(fl *flag.Flag) {
		name, help := flag.UnquoteUsage(fl)
		dash := "--"
		if len(fl.Name) == 1 {
			dash = "-"
		}
		left := dash + fl.Name
		if name != "" {
			left += " " + name
		}
		if def := fl.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			help += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(&b, "  %-22s %s\n", left, help)
	})
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nOptions:\n%s", b.String())
	}
}

// stringList is a repeatable flag (-v, -e).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
