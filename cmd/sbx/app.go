package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/modal"
)

// Exit statuses of sbx's own making; a command run in a sandbox passes its
// status through instead.
const (
	exitOK      = 0
	exitUsage   = 2
	exitTimeout = 124 // the command hit --timeout, as timeout(1)
	exitFailure = 125 // sbx itself failed, as `docker run`
)

// app is one invocation: the environment and streams it was given, so
// that tests run the whole program in-process with their own.
type app struct {
	getenv  func(string) string
	environ func() []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// run is the program with its environment passed in; it returns the exit
// status.
func run(ctx context.Context, args []string, getenv func(string) string, environ func() []string,
	stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{getenv: getenv, environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	// nil would make cobra read os.Args.
	root.SetArgs(append([]string{}, args...))
	return a.exit(ctx, root.ExecuteContext(ctx))
}

// exitStatus is a command's own exit status, passed through silently.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a mistake on the command line (exit 2).
type usageError struct {
	cmd string // subcommand, "" for sbx itself
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// errNothingDone tells forEachID that an id needed nothing done: neither
// a failure nor worth printing.
var errNothingDone = errors.New("nothing done")

// reported is an error whose details were already printed (per-id
// failures of stop, rm…); only the exit status is left to set.
type reported struct{ n int }

func (e reported) Error() string { return fmt.Sprintf("%d failed", e.n) }

// timedOut is a command that ran into --timeout; it may still be running.
type timedOut struct{ msg string }

func (e timedOut) Error() string { return e.msg }

// exit prints err the way a user can act on and turns it into a status.
func (a *app) exit(ctx context.Context, err error) int {
	var (
		status exitStatus
		usage  *usageError
		rep    reported
		to     timedOut
		sig    signalError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &usage):
		fmt.Fprintf(a.stderr, "sbx: %s\n", usage.msg)
		if usage.cmd != "" {
			fmt.Fprintf(a.stderr, "See 'sbx %s -h'.\n", usage.cmd)
		} else {
			fmt.Fprintln(a.stderr, "See 'sbx -h'.")
		}
		return exitUsage
	case errors.As(err, &rep):
		return exitFailure
	case errors.As(err, &to):
		fmt.Fprintf(a.stderr, "sbx: %s\n", to.msg)
		return exitTimeout
	case errors.As(context.Cause(ctx), &sig):
		fmt.Fprintf(a.stderr, "sbx: %s\n", sig)
		return 128 + int(sig.sig)
	}
	fmt.Fprintf(a.stderr, "sbx: %s\n", err)
	return exitFailure
}

// loadConfig reads the configuration from the injected environment.
func (a *app) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(config.Source{Getenv: a.getenv, Environ: a.environ})
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// openRuntime connects to the driver RUNTIME selects. Progress of long
// steps goes to stderr so that stdout carries only results.
func (a *app) openRuntime(ctx context.Context) (*sbx.Runtime, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	return sbx.Open(ctx, sbx.Options{
		Config:   cfg,
		Logger:   a.logger(cfg),
		Progress: a.stderr,
		Sandboxd: &sandboxdbin.Locator{Getenv: a.getenv},
		Drivers:  modal.Drivers(),
	})
}

// logger shows the SDK's warnings (the local runtime's lack of isolation,
// settings a driver ignores) always, and its diagnostics when DEBUG is
// set, as OpenHands does. A CLI's stderr needs no timestamps.
func (a *app) logger(cfg *config.Config) *slog.Logger {
	level := slog.LevelWarn
	if cfg.Debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
			if len(groups) == 0 && at.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return at
		}}))
}

// withHint adds what to do next to errors the user can fix from here.
func withHint(err error, id string) error {
	if errors.Is(err, sbx.ErrNotFound) && id != "" {
		return fmt.Errorf("%w (see `sbx ls -a` for the sandboxes there are)", err)
	}
	return err
}

// forEachID runs f on every id, reporting each failure and carrying on,
// as `docker stop a b c` does; ids that worked are printed.
func (a *app) forEachID(ids []string, f func(id string) error) error {
	failed := 0
	for _, id := range ids {
		err := f(id)
		if errors.Is(err, errNothingDone) {
			continue
		}
		if err != nil {
			fmt.Fprintf(a.stderr, "sbx: %s\n", withHint(err, id))
			failed++
			continue
		}
		fmt.Fprintln(a.stdout, id)
	}
	if failed > 0 {
		return reported{failed}
	}
	return nil
}
