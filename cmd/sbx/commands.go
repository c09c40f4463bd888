package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/internal/suggest"
	"github.com/sbx-dev/sbx/modal"
)

// rootCmd builds the command tree for one invocation; nothing of it
// outlives the call, so tests can run many in one process.
func (a *app) rootCmd() *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "sbx",
		Short: "Sandboxes for AI coding agents",
		Long: `Sandboxes for AI coding agents, configured as OpenHands' runtime is
(RUNTIME=docker|local, SANDBOX_* variables, config.toml).`,
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		// Unknown commands get sbx's own message and exit status.
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			return unknownCommand(c, args[0], "")
		},
		RunE: func(c *cobra.Command, args []string) error {
			if showVersion {
				return a.version(c.Context(), false)
			}
			mainUsage(c, c.OutOrStdout())
			return nil
		},
	}
	root.Flags().BoolVarP(&showVersion, "version", "v", false, "show the version, as 'sbx version' does")
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetHelpFunc(helpFunc)
	root.SetFlagErrorFunc(flagError)
	root.SetHelpCommand(helpCmd())
	root.CompletionOptions.HiddenDefaultCmd = false
	root.AddCommand(
		a.runCmd(), a.execCmd(), a.attachCmd(), a.lsCmd(), a.stopCmd(), a.startCmd(), a.pauseCmd(), a.resumeCmd(),
		a.rmCmd(), a.diffCmd(), a.applyCmd(), a.discardCmd(), a.logsCmd(), a.networkCmd(), a.cpCmd(), a.gcCmd(), a.imageCmd(), a.configCmd(), a.versionCmd(),
	)
	return root
}

// newCommand is a subcommand with sbx's conventions: use is its name and
// synopsis, about the text of its help.
func newCommand(use, short, about string, runE func(c *cobra.Command, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:                   use,
		Short:                 short,
		Long:                  strings.TrimSpace(about),
		RunE:                  runE,
		DisableFlagsInUseLine: true,
		// Completion of files is wrong for every operand sbx takes unless
		// a command says otherwise.
		ValidArgsFunction: cobra.NoFileCompletions,
	}
}

// cmdName is how usage errors name a command: "run", "image build".
func cmdName(c *cobra.Command) string {
	p := c.CommandPath()
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[i+1:]
	}
	return ""
}

func mainUsage(c *cobra.Command, w io.Writer) {
	fmt.Fprintf(w, "Usage: sbx COMMAND [OPTIONS] [ARGS...]\n\n%s\n\nCommands:\n", c.Long)
	for _, sub := range c.Commands() {
		if !sub.Hidden {
			fmt.Fprintf(w, "  %-11s %s\n", sub.Name(), sub.Short)
		}
	}
	fmt.Fprint(w, `
Options:
`+c.LocalFlags().FlagUsages()+`
Run 'sbx COMMAND -h' for a command's options.
`)
}

// helpFunc prints a command's usage to stdout: help is asked for, so it
// is the output, not a diagnostic.
func helpFunc(c *cobra.Command, _ []string) {
	w := c.OutOrStdout()
	if !c.HasParent() {
		mainUsage(c, w)
		return
	}
	fmt.Fprintf(w, "Usage: %s\n", c.UseLine())
	if c.Long != "" {
		fmt.Fprintf(w, "\n%s\n", c.Long)
	} else {
		fmt.Fprintf(w, "\n%s.\n", c.Short)
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprint(w, "\nCommands:\n")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(w, "  %-11s %s\n", sub.Name(), sub.Short)
			}
		}
	}
	if fl := c.LocalFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(w, "\nOptions:\n%s", fl.FlagUsages())
	}
}

// helpCmd is `sbx help [COMMAND...]`; cobra's own prints to stderr and
// exits 0 for an unknown topic.
func helpCmd() *cobra.Command {
	c := newCommand("help [COMMAND]", "Show help for a command", `
Show the usage of COMMAND (or of sbx), as 'sbx COMMAND -h' does.`, nil)
	c.RunE = func(c *cobra.Command, args []string) error {
		root := c.Root()
		if len(args) == 0 {
			mainUsage(root, c.OutOrStdout())
			return nil
		}
		found, rest, err := root.Find(args)
		if err != nil || found == root || found == c || len(rest) > 0 {
			return unknownCommand(root, args[0], "")
		}
		found.InitDefaultHelpFlag()
		return found.Help()
	}
	c.ValidArgsFunction = func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		var names []string
		for _, sub := range c.Root().Commands() {
			if !sub.Hidden && strings.HasPrefix(sub.Name(), toComplete) {
				names = append(names, sub.Name()+"\t"+sub.Short)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
	return c
}

// unknownCommand is the usage error for a command name that is not one,
// with cobra's suggestions of the closest ones. parent is "" for sbx's
// own commands.
func unknownCommand(c *cobra.Command, name, parent string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if parent != "" {
		msg = fmt.Sprintf("unknown %s command %q", parent, name)
	}
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, which only its own error applies
	}
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageErrorf(cmdName(c), "%s", msg)
}

// flagError turns pflag's errors into usage errors, with a suggestion for
// a flag that does not exist.
func flagError(c *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	if !errors.As(err, &ne) {
		return usageErrorf(cmdName(c), "%v", err)
	}
	// The message sbx has always printed (Go's flag package's), with the
	// spelling the user typed: "-rm" for a single-dash long flag too.
	typed := ne.GetSpecifiedName()
	if sh := ne.GetSpecifiedShortnames(); sh != "" {
		typed = sh
	}
	msg := "flag provided but not defined: -" + typed
	if s := suggestFlag(c.Flags(), typed); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return usageErrorf(cmdName(c), "%s", msg)
}

// suggestFlag finds the flag typed most likely stands for: one whose long
// name is within two edits of it or starts with it, or whose shorthand it
// is with the letter doubled (-vv).
func suggestFlag(fs *pflag.FlagSet, typed string) string {
	best, bestDist := "", 3
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := suggest.Distance(typed, f.Name)
		if strings.HasPrefix(f.Name, typed) && d > 1 {
			d = 1
		}
		if f.Shorthand != "" && strings.Trim(typed, f.Shorthand) == "" {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	f := fs.Lookup(best)
	if f.Shorthand != "" {
		return "-" + f.Shorthand + " (--" + f.Name + ")"
	}
	return "--" + f.Name
}

// noArgs is the operand check of commands that take none.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf(cmdName(c), "unexpected argument %q", args[0])
	}
	return nil
}

// completeIDs completes sandbox ids for the first n operands (0: all).
// It must stay quiet: whatever it prints lands in the user's shell, and an
// engine that is down should just mean no candidates.
func (a *app) completeIDs(n int) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if n > 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := c.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var ids []string
		if infos, err := a.listQuiet(ctx); err == nil {
			for _, in := range infos {
				if strings.HasPrefix(in.ID, toComplete) {
					ids = append(ids, in.ID+"\t"+string(in.State))
				}
			}
		}
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

// listQuiet lists the sandboxes with the SDK's output discarded.
func (a *app) listQuiet(ctx context.Context) ([]sbx.Info, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	rt, err := sbx.Open(ctx, sbx.Options{
		Config:   cfg,
		Logger:   slog.New(slog.DiscardHandler),
		Progress: io.Discard,
		Sandboxd: &sandboxdbin.Locator{Getenv: a.getenv},
		Drivers:  modal.Drivers(),
	})
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	return rt.List(ctx)
}

// stringsFlag is a repeatable flag (-v, -e, -l) that keeps each value
// whole: pflag's StringArray, named for what the help shows.
func stringsFlag(fs *pflag.FlagSet, p *[]string, name, short, usage string) {
	fs.StringArrayVarP(p, name, short, nil, usage)
}
