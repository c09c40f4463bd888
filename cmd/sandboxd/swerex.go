package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/reaper"
	"github.com/sbx-dev/sbx/internal/swerex"
)

// SWE-ReX mode: the same binary, invoked as swerex-remote (a link) or as
// `sandboxd swerex`, serves only SWE-ReX's protocol, with the Python
// server's command line (spec swerex-remote.md §1.3).

const swerexUsage = `usage: swerex-remote [-h] [-v] [--host HOST] [--port PORT] [--auth-token AUTH_TOKEN]

SWE-ReX's remote runtime server (sbx sandboxd in SWE-ReX mode).

options:
  -h, --help            show this help message and exit
  -v, --version         print the SWE-ReX version this server speaks and exit
  --host HOST           address to listen on (default 0.0.0.0)
  --port PORT           port to listen on (default 8000)
  --auth-token AUTH_TOKEN
                        token clients send as X-API-Key; "" turns authentication off
`

type swerexArgs struct {
	host, token string
	port        int
	tokenSet    bool
}

var errSwerexHelp = errors.New("help")

// parseSwerexArgs parses argparse-style: --flag VALUE, --flag=VALUE and
// unambiguous prefixes (--auth, --po).
func parseSwerexArgs(args []string) (swerexArgs, error) {
	a := swerexArgs{host: "0.0.0.0", port: 8000}
	long := []string{"--host", "--port", "--auth-token", "--help", "--version"}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "-h" {
			return a, errSwerexHelp
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if !strings.HasPrefix(name, "--") || name == "--" {
			return a, fmt.Errorf("unrecognized arguments: %s", arg)
		}
		var matches []string
		for _, l := range long {
			if l == name {
				matches = []string{l}
				break
			}
			if strings.HasPrefix(l, name) {
				matches = append(matches, l)
			}
		}
		switch len(matches) {
		case 0:
			return a, fmt.Errorf("unrecognized arguments: %s", arg)
		case 1:
		default:
			return a, fmt.Errorf("ambiguous option: %s could match %s", name, strings.Join(matches, ", "))
		}
		if matches[0] == "--help" {
			return a, errSwerexHelp
		}
		if !hasValue {
			if i+1 >= len(args) || (strings.HasPrefix(args[i+1], "-") && args[i+1] != "-" && len(args[i+1]) > 1 && !isNumber(args[i+1])) {
				return a, fmt.Errorf("argument %s: expected one argument", matches[0])
			}
			i++
			value = args[i]
		}
		switch matches[0] {
		case "--host":
			a.host = value
		case "--port":
			p, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil {
				return a, fmt.Errorf("argument --port: invalid int value: '%s'", value)
			}
			a.port = p
		case "--auth-token":
			a.token, a.tokenSet = value, true
		}
	}
	if a.port < 0 || a.port > 65535 {
		return a, fmt.Errorf("argument --port: %d is not a TCP port", a.port)
	}
	return a, nil
}

func isNumber(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil }

func runSwerex(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-v" || a == "--version" || (strings.HasPrefix(a, "--v") && strings.HasPrefix("--version", a)) {
			if len(args) > 1 {
				fmt.Fprintln(stdout, "Error: --version cannot be combined with other arguments")
				return 1
			}
			fmt.Fprintln(stdout, swerex.Version)
			return 0
		}
	}
	a, err := parseSwerexArgs(args)
	if errors.Is(err, errSwerexHelp) {
		fmt.Fprint(stdout, swerexUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%sswerex-remote: error: %v\n", strings.SplitN(swerexUsage, "\n", 2)[0]+"\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := serveSwerex(ctx, a, log); err != nil {
		log.Error("swerex-remote failed", "err", err)
		return 1
	}
	return 0
}

func serveSwerex(ctx context.Context, a swerexArgs, log *slog.Logger) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, handledSignals...)
	defer signal.Stop(sigs)
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go watchSignals(sigs, stop, log)

	r := reaper.New(log)
	defer r.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort(a.host, strconv.Itoa(a.port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if !a.tokenSet {
		// argparse would refuse to start; SWE-ReX's Fargate deployment
		// passes no token at all, and refusing would send it to its pipx
		// fallback, which an image without Python cannot run.
		log.Warn("no --auth-token given: serving without authentication")
	} else if a.token == "" {
		log.Warn("--auth-token is empty: serving without authentication")
	}
	wd, _ := os.Getwd()
	srv := swerex.New(swerex.Config{Token: a.token, Logger: log, Starter: r, Env: os.Environ(), Dir: wd})
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("swerex-remote listening", "addr", ln.Addr().String(), "swerex_version", swerex.Version, "pid", os.Getpid())

	var result error
	select {
	case err := <-serveErr:
		result = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx).Error())
	}
	srv.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	return result
}

// A normal sandboxd also serves SWE-ReX's protocol on a second listener
// when the driver asks for it, so one sandbox serves both OpenHands-style
// clients and SWE-agent. The names are the launch contract's, which the
// drivers write.
const (
	envSwerexAddr  = launch.EnvSWEReXAddr
	envSwerexToken = launch.EnvSWEReXToken
)

func startSwerexBeside(addr, token string, cfg swerex.Config) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for SWE-ReX on %s: %w", addr, err)
	}
	cfg.Token = token
	if token == "" {
		cfg.Logger.Warn(envSwerexToken + " is empty: SWE-ReX served without authentication")
	}
	srv := swerex.New(cfg)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	go hs.Serve(ln)
	cfg.Logger.Info("serving SWE-ReX", "addr", ln.Addr().String(), "swerex_version", swerex.Version)
	return func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
	}, nil
}
