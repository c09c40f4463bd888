// Command sandboxd is the server inside every sbx sandbox. It speaks
// OpenHands' action execution protocol and is launched the same way:
//
//	sandboxd <port> --working-dir DIR [--plugins NAME...] [--username U]
//	         [--user-id N] [--no-enable-browser] [--host ADDR]
//
// See README.md for the environment variables it reads.
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
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/internal/fileops"
	"github.com/sbx-dev/sbx/internal/fileviewer"
	"github.com/sbx-dev/sbx/internal/ipython"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/procs"
	"github.com/sbx-dev/sbx/internal/reaper"
	"github.com/sbx-dev/sbx/internal/sandboxd"
	"github.com/sbx-dev/sbx/internal/shell"
	"github.com/sbx-dev/sbx/internal/swerex"
	"github.com/sbx-dev/sbx/internal/transfer"
	"github.com/sbx-dev/sbx/internal/userinit"
	"github.com/sbx-dev/sbx/internal/version"
)

func main() {
	if filepath.Base(os.Args[0]) == "swerex-remote" {
		os.Exit(runSwerex(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "swerex" {
		os.Exit(runSwerex(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program with the OS passed in, so tests can run it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := launch.Parse(args, getenv)
	if errors.Is(err, launch.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if errors.Is(err, launch.ErrVersion) {
		fmt.Fprintf(stdout, "sandboxd %s\n", version.String())
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sandboxd: %v\n\n%s", err, usage)
		return 2
	}
	level := slog.LevelInfo
	if launch.IsTrue(getenv("DEBUG")) {
		level = slog.LevelDebug
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if launch.IsTrue(getenv("LOG_JSON")) {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(handler)
	if getenv("GOMAXPROCS") == "" {
		// One scheduler slot: sandboxd runs one action at a time and waits
		// on I/O, and with many sandboxes on a host, idle slots spinning
		// for work in every sandboxd cost more CPU than they save (8
		// sandboxes on 2 cores: +12% actions/s).
		runtime.GOMAXPROCS(1)
	}
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("sandboxd failed", "err", err)
		return 1
	}
	return 0
}

// Signals are handled, never left ignored: a server started with SIGINT
// ignored (by a shell's `&`) would pass that on to the agent's shell and
// C-c would do nothing (spec §5.10). Installing a handler makes every
// child start with the default disposition again.
var handledSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

func serve(ctx context.Context, cfg launch.Launch, log *slog.Logger) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, handledSignals...)
	defer signal.Stop(sigs)
	// A terminating signal cancels ctx at any point, start-up included, so
	// that `docker stop` during a slow user set-up does not need SIGKILL.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go watchSignals(sigs, stop, log)

	r := reaper.New(log)
	defer r.Close()

	ln, err := listen(cfg)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("sandboxd listening", "addr", ln.Addr().String(), "version", version.String(), "pid", os.Getpid())
	if cfg.SessionAPIKey == "" {
		// As OpenHands does, but not silently: on 0.0.0.0 anyone who can
		// reach the port can run commands.
		log.Warn("SESSION_API_KEY is empty: serving without authentication", "addr", ln.Addr().String())
	}
	journal := openJournal(cfg, log)
	defer journal.Close()

	// Spec §2.2 step 1: the file viewer the agent's browser tool uses.
	if viewer, err := fileviewer.Start(cfg.Port, cfg.URLFileOrDefault(), log); err != nil {
		log.Warn("file viewer not started", "err", err)
	} else {
		defer viewer.Close(context.Background())
		log.Debug("file viewer started", "url", viewer.URL)
	}

	// The listener answers /alive with "not initialized" while the user,
	// the working directory and the shell are being prepared.
	tUser := time.Now()
	u, err := prepareUser(ctx, cfg, r, log)
	userTook := time.Since(tUser)
	if err != nil {
		ln.Close()
		return err
	}
	files, err := fileops.New(fileops.Options{WorkspaceRoot: cfg.WorkDir, UID: u.chownUID, GID: u.chownGID, Logger: log, Journal: journal})
	if err != nil {
		ln.Close()
		return err
	}
	defer files.Close()

	var owner *transfer.Owner
	if u.chownUID >= 0 {
		owner = &transfer.Owner{UID: u.chownUID, GID: u.chownGID}
	}
	var kernel sandboxd.IPython
	if slices.Contains(cfg.Plugins, "jupyter") {
		k := ipython.New(ipython.Config{
			Env: shellEnv(os.Environ(), u), Dir: cfg.WorkDir, Credential: u.credential,
			Starter: r, Logger: log.With("component", "ipython"),
		})
		defer k.Close()
		kernel = k
	}
	// Process logs live in sandboxd's state directory, never in the
	// user's folders.
	// What a warm-pool claim adds reaches every child started after it.
	claimed := sandboxd.NewEnviron()
	baseEnv := shellEnv(os.Environ(), u)
	pm, err := procs.New(procs.Options{Dir: filepath.Join(cfg.StateDirOrDefault(), "procs"),
		Starter: r, Env: baseEnv, EnvFunc: func() []string { return claimed.Apply(baseEnv) }, WorkDir: cfg.WorkDir, Credential: u.credential, Logger: log.With("component", "procs")})
	var bg sandboxd.Procs // nil: the routes answer 501
	if err != nil {
		log.Warn("background processes disabled", "err", err)
	} else {
		defer pm.Close()
		bg = pm
	}
	srv := sandboxd.New(sandboxd.Options{
		Procs:         bg,
		IPython:       kernel,
		WorkDir:       cfg.WorkDir,
		SessionAPIKey: cfg.SessionAPIKey,
		PoolSecret:    cfg.PoolSecret,
		Env:           claimed,
		Plugins:       cfg.Plugins,
		Files:         files,
		Upload:        transfer.Options{Owner: owner, Journal: journal},
		// Attached terminals start as the shells do: same user, same
		// environment.
		Terminal: sandboxd.TerminalOptions{Env: shellEnv(os.Environ(), u), Credential: u.credential, Starter: r},
		Logger:   log,
		Version:  version.String(),
	})
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		// No read or write timeout: actions legitimately run for minutes
		// and transfers stream gigabytes. Idle keep-alives are closed.
		IdleTimeout: 10 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	shellCfg := shell.Config{
		Dir:             cfg.WorkDir,
		Env:             shellEnv(os.Environ(), u),
		Credential:      u.credential,
		NoChangeTimeout: cfg.NoChangeTimeout,
		Starter:         r,
		Logger:          log.With("component", "shell"),
	}
	tShell := time.Now()
	sh, err := shell.New(ctx, shellCfg)
	shellTook := time.Since(tShell)
	if err != nil {
		hs.Close()
		if ctx.Err() != nil {
			log.Info("stopped during start-up", "cause", context.Cause(ctx).Error())
			return nil
		}
		return fmt.Errorf("start shell: %w", err)
	}
	// Every other shell (named sessions, is_static commands) starts as the
	// OpenHands one does, in its own directory and with the caller's
	// variables after the sandbox's (the last of a name wins).
	factory := func(ctx context.Context, o sandboxd.ShellOptions) (sandboxd.Shell, error) {
		c := shellCfg
		c.Dir = o.Dir
		c.Env = append(claimed.Apply(shellCfg.Env), o.Env...)
		return shell.New(ctx, c)
	}
	if err := srv.SetReady(sh, factory); err != nil {
		sh.Close()
		hs.Close()
		return err
	}
	if addr := os.Getenv(envSwerexAddr); addr != "" {
		stopSwerex, err := startSwerexBeside(addr, os.Getenv(envSwerexToken), swerex.Config{
			Logger: log.With("component", "swerex"), Starter: r,
			EnvFunc: func() []string { return claimed.Apply(shellCfg.Env) },
			Dir:     cfg.WorkDir, Credential: u.credential,
		})
		if err != nil {
			srv.Close()
			hs.Close()
			return err
		}
		defer stopSwerex()
	}
	log.Info("sandboxd ready", "working_dir", cfg.WorkDir, "user", u.name, "uid", u.uid,
		"user_setup", userTook.Round(time.Microsecond), "shell_start", shellTook.Round(time.Microsecond))

	var result error
	select {
	case err := <-serveErr:
		result = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx).Error())
	}
	// End the agent's processes first, so that nothing keeps writing while
	// the server goes away, then stop serving.
	srv.Close()
	if pm != nil {
		pm.Close()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	return result
}

// listen binds host:port, or takes over the socket named by SBX_LISTEN_FD.
func listen(cfg launch.Launch) (net.Listener, error) {
	if cfg.ListenFD < 0 {
		return net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	}
	// Children must neither see the variable (a shell would inherit a
	// number that means nothing to it) nor the descriptor, which
	// FileListener duplicates close-on-exec so the original can go.
	os.Unsetenv(launch.EnvListenFD)
	f := os.NewFile(uintptr(cfg.ListenFD), launch.EnvListenFD)
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("%s=%d: %w", launch.EnvListenFD, cfg.ListenFD, err)
	}
	return ln, nil
}

// watchSignals cancels the server on the first terminating signal; SIGHUP
// and SIGQUIT are logged and otherwise ignored.
func watchSignals(sigs <-chan os.Signal, stop context.CancelCauseFunc, log *slog.Logger) {
	for sig := range sigs {
		if sig == syscall.SIGHUP || sig == syscall.SIGQUIT {
			log.Info("ignoring signal", "signal", sig.String())
			continue
		}
		stop(fmt.Errorf("signal %s", sig))
		return
	}
}

type sandboxUser struct {
	name       string
	uid        int
	home       string
	credential *syscall.Credential // nil: the shell runs as sandboxd's user
	chownUID   int                 // owner given to files sandboxd creates; -1: leave as is
	chownGID   int
}

// prepareUser does spec §2.2 step 2 and decides who the shell runs as.
func prepareUser(ctx context.Context, cfg launch.Launch, r *reaper.Reaper, log *slog.Logger) (sandboxUser, error) {
	self, err := userinit.Current()
	if err != nil {
		return sandboxUser{}, fmt.Errorf("who am I: %w", err)
	}
	root := os.Geteuid() == 0
	group := cfg.GroupID
	// Without a user switch the shell runs as we do and, like any local
	// process, keeps our HOME.
	home := self.Home
	if h := cfg.Home; h != "" {
		home = h
	}
	su := sandboxUser{name: self.Name, uid: self.UID, home: home, chownUID: -1, chownGID: -1}

	// LocalRuntime: the server already runs as the requested user.
	if cfg.Username == cfg.User && cfg.Username != "root" && cfg.Username != "openhands" {
		if err := userinit.PrepareWorkDir(cfg.WorkDir, self.UID, self.GID); err != nil {
			return su, err
		}
		return su, nil
	}
	if !root {
		if cfg.Username != self.Name {
			log.Warn("not root: the shell runs as the server's own user", "requested", cfg.Username, "user", self.Name)
		}
		return su, userinit.PrepareWorkDir(cfg.WorkDir, self.UID, self.GID)
	}
	u, err := userinit.Ensure(ctx, userinit.Options{Runner: r, Logger: log}, cfg.Username, cfg.UserID)
	if err != nil {
		return su, err
	}
	gid := 0
	if group >= 0 {
		gid = group
	}
	if err := userinit.PrepareWorkDir(cfg.WorkDir, u.UID, gid); err != nil {
		return su, err
	}
	su.chownUID, su.chownGID = u.UID, u.UID
	if cfg.SuToUser && (cfg.Username == "root" || cfg.Username == "openhands" || (cfg.RuntimeUsername != "" && cfg.Username == cfg.RuntimeUsername)) {
		su.name, su.uid, su.home = u.Name, u.UID, u.Home
		if u.UID != 0 {
			groups := make([]uint32, 0, len(u.Groups))
			for _, g := range u.Groups {
				groups = append(groups, uint32(g))
			}
			su.credential = &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: groups}
		}
	}
	return su, nil
}

// shellEnv is the agent shell's environment: sandboxd's own, minus its
// secrets, with the account variables of the user the shell runs as.
func shellEnv(base []string, u sandboxUser) []string {
	drop := map[string]bool{"SESSION_API_KEY": true, launch.EnvPoolSecret: true, launch.EnvListenFD: true, launch.EnvStateDir: true, launch.EnvURLFile: true, envSwerexAddr: true, envSwerexToken: true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true, "MAIL": true, "PS1": true, "PROMPT_COMMAND": true}
	env := make([]string, 0, len(base)+6)
	hasLang, hasTerm := false, false
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] {
			continue
		}
		switch k {
		case "LANG", "LC_ALL":
			hasLang = true
		case "TERM":
			hasTerm = true
		}
		env = append(env, kv)
	}
	home := u.home
	if home == "" {
		home = "/"
	}
	env = append(env, "HOME="+home, "USER="+u.name, "LOGNAME="+u.name, "SHELL=/bin/bash")
	if !hasLang {
		// Readline mangles non-ASCII input in the C locale.
		env = append(env, "LANG=C.UTF-8")
	}
	if !hasTerm {
		env = append(env, "TERM=xterm-256color")
	}
	return env
}
