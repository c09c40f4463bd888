// Command sandbox-api is the self-hosted runtime API behind OpenHands'
// RUNTIME=remote (SANDBOX_REMOTE_RUNTIME_API_URL, SANDBOX_API_KEY): it
// starts runtimes on the Docker engine for many tenants and proxies each
// runtime's URL.
//
//	sandbox-api serve [--addr 127.0.0.1:8000] [--db PATH_OR_DSN] [--public-url URL] [--auto-resume] [--config FILE]
//	sandbox-api keys create NAME    (prints the new key once, on stdout)
//	sandbox-api keys list
//	sandbox-api keys revoke NAME_OR_ID
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/backend"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/runtimeapi/server"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
	"github.com/sbx-dev/sbx/modal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `usage:
  sandbox-api serve [--addr ADDR] [--db PATH_OR_DSN] [--public-url URL] [--domain DOMAIN] [--auto-resume] [--runtime docker|modal] [--config FILE]
  sandbox-api keys create NAME [--db PATH_OR_DSN]
  sandbox-api keys list [--db PATH_OR_DSN] [--json]
  sandbox-api keys revoke NAME_OR_ID [--db PATH_OR_DSN]
(every flag also as SANDBOX_API_<NAME> and in the --config file; see --help of serve)
`

// settings are serve's and keys' options: flags, else environment
// (SANDBOX_API_<NAME>), else the config file, else defaults.
type settings struct {
	Addr         string `toml:"addr"`
	DB           string `toml:"db"`
	PublicURL    string `toml:"public_url"`
	Domain       string `toml:"domain"`
	AutoResume   bool   `toml:"auto_resume"`
	StartTimeout string `toml:"start_timeout"`
	LogLevel     string `toml:"log_level"`
	Instance     string `toml:"instance"`
	Sweep        string `toml:"sweep_interval"`
	// Runtime is the backend: docker, or modal (Modal's cloud, with
	// credentials from MODAL_TOKEN_ID / MODAL_TOKEN_SECRET,
	// MODAL_API_TOKEN_ID / _SECRET or ~/.modal.toml).
	Runtime string `toml:"runtime"`

	// Modal's credentials, as sbx's configuration names them: MODAL_TOKEN_*
	// win over the seed's MODAL_API_TOKEN_*.
	modalTokenID, modalTokenSecret, modalAPITokenID, modalAPITokenSecret string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr, getenv)
	case "keys":
		return keys(ctx, args[1:], stdout, stderr, getenv)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sandbox-api: unknown command %q\n%s", args[0], usage)
	return 2
}

// load reads settings: flags win over SANDBOX_API_* variables, which win
// over the config file (--config, SANDBOX_API_CONFIG).
func load(fs *flag.FlagSet, args []string, stderr io.Writer, getenv func(string) string) (settings, error) {
	var s settings
	var cfgFile string
	fs.SetOutput(stderr)
	fs.StringVar(&cfgFile, "config", getenv("SANDBOX_API_CONFIG"), "TOML file with the settings below (addr, db, public_url, domain, auto_resume, start_timeout, log_level, sweep_interval, instance, runtime)")
	addr := fs.String("addr", "", "address to listen on (SANDBOX_API_ADDR; default 127.0.0.1:8000)")
	db := fs.String("db", "", "SQLite file or postgres:// DSN (SANDBOX_API_DB; default a SQLite file in the state directory)")
	pub := fs.String("public-url", "", "base URL clients reach the service at (SANDBOX_API_PUBLIC_URL; default http://ADDR)")
	dom := fs.String("domain", "", "subdomain mode: runtimes at <runtime_id>.DOMAIN, their services at <service>-<runtime_id>.DOMAIN, on --public-url's scheme and port; *.DOMAIN must resolve to the service (SANDBOX_API_DOMAIN; default: path mode, PUBLIC_URL/<runtime_id>)")
	auto := fs.Bool("auto-resume", false, "resume a paused runtime on its first proxied request (SANDBOX_API_AUTO_RESUME)")
	st := fs.String("start-timeout", "", "bound on a runtime's start (SANDBOX_API_START_TIMEOUT; default 5m)")
	lvl := fs.String("log-level", "", "debug, info, warn or error (SANDBOX_API_LOG_LEVEL; default info)")
	sweep := fs.String("sweep-interval", "", "how often sandboxes without a live runtime are removed (SANDBOX_API_SWEEP_INTERVAL; default 15s)")
	inst := fs.String("instance", "", "name on this service's sandboxes (SANDBOX_API_INSTANCE; default derived from --db): a service reconciles and removes only its own")
	rt := fs.String("runtime", "", "backend: docker or modal (SANDBOX_API_RUNTIME; default docker)")
	// Flags may follow the arguments (`keys create NAME --db X`), as
	// operators type them.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return s, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
		return s, err
	}
	if cfgFile != "" {
		md, err := toml.DecodeFile(cfgFile, &s)
		if err != nil {
			return s, fmt.Errorf("config %s: %w", cfgFile, err)
		}
		if u := md.Undecoded(); len(u) > 0 {
			return s, fmt.Errorf("config %s: unknown setting %q", cfgFile, u[0].String())
		}
	}
	pick := func(dst *string, flagVal, env string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flagVal != "" {
			*dst = flagVal
		}
	}
	pick(&s.Addr, *addr, "SANDBOX_API_ADDR")
	pick(&s.DB, *db, "SANDBOX_API_DB")
	pick(&s.PublicURL, *pub, "SANDBOX_API_PUBLIC_URL")
	pick(&s.Domain, *dom, "SANDBOX_API_DOMAIN")
	pick(&s.StartTimeout, *st, "SANDBOX_API_START_TIMEOUT")
	pick(&s.LogLevel, *lvl, "SANDBOX_API_LOG_LEVEL")
	pick(&s.Instance, *inst, "SANDBOX_API_INSTANCE")
	pick(&s.Sweep, *sweep, "SANDBOX_API_SWEEP_INTERVAL")
	pick(&s.Runtime, *rt, "SANDBOX_API_RUNTIME")
	switch s.Runtime {
	case "":
		s.Runtime = "docker"
	case "docker", modal.Name:
	default:
		return s, fmt.Errorf("runtime %q: want docker or modal", s.Runtime)
	}
	s.modalTokenID, s.modalTokenSecret = getenv("MODAL_TOKEN_ID"), getenv("MODAL_TOKEN_SECRET")
	s.modalAPITokenID, s.modalAPITokenSecret = getenv("MODAL_API_TOKEN_ID"), getenv("MODAL_API_TOKEN_SECRET")
	if v := getenv("SANDBOX_API_AUTO_RESUME"); v == "1" || strings.EqualFold(v, "true") {
		s.AutoResume = true
	}
	if *auto {
		s.AutoResume = true
	}
	if s.Addr == "" {
		s.Addr = "127.0.0.1:8000"
	}
	if s.DB == "" {
		dir := getenv("XDG_STATE_HOME")
		if dir == "" {
			home := getenv("HOME")
			if home == "" {
				return s, errors.New("no --db given and no HOME for the default state directory")
			}
			dir = filepath.Join(home, ".local", "state")
		}
		dir = filepath.Join(dir, "sbx")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return s, err
		}
		s.DB = filepath.Join(dir, "sandbox-api.db")
	}
	if s.PublicURL == "" {
		s.PublicURL = "http://" + s.Addr
	}
	if s.Instance == "" {
		s.Instance = instanceOf(s.DB)
	}
	return s, nil
}

func keys(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	verb, rest := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+verb, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "keys list: print a JSON array (name, id, created, revoked)")
	s, err := load(fs, rest, stderr, getenv)
	if err != nil {
		return 2
	}
	want := map[string]int{"create": 1, "list": 0, "revoke": 1}
	n, ok := want[verb]
	if !ok || fs.NArg() != n {
		fmt.Fprint(stderr, usage)
		return 2
	}
	st, err := store.Open(ctx, s.DB)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox-api: %v\n", err)
		return 1
	}
	defer st.Close()
	switch verb {
	case "create":
		k, secret, err := st.CreateKey(ctx, fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "sandbox-api: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "created key %s (id %s); it is shown only now\n", k.Name, k.ID)
	case "list":
		ks, err := st.Keys(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "sandbox-api: %v\n", err)
			return 1
		}
		if *asJSON {
			type keyJSON struct {
				Name    string     `json:"name"`
				ID      string     `json:"id"`
				Created time.Time  `json:"created"`
				Revoked *time.Time `json:"revoked"`
			}
			out := make([]keyJSON, 0, len(ks))
			for _, k := range ks {
				j := keyJSON{Name: k.Name, ID: k.ID, Created: k.Created.UTC()}
				if !k.Active() {
					r := k.Revoked.UTC()
					j.Revoked = &r
				}
				out = append(out, j)
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(out); err != nil {
				fmt.Fprintf(stderr, "sandbox-api: %v\n", err)
				return 1
			}
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tCREATED\tSTATE")
		for _, k := range ks {
			state := "active"
			if !k.Active() {
				state = "revoked " + k.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.ID, k.Created.Format(time.RFC3339), state)
		}
		tw.Flush()
	case "revoke":
		k, err := st.RevokeKey(ctx, fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "sandbox-api: %v\n", err)
			if errors.Is(err, errdefs.ErrNotFound) {
				return 1
			}
			return 1
		}
		fmt.Fprintf(stderr, "revoked key %s (id %s)\n", k.Name, k.ID)
	}
	return 0
}

func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	s, err := load(fs, args, stderr, getenv)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "sandbox-api: %v\n", err)
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "sandbox-api serve takes no arguments\n%s", usage)
		return 2
	}
	var level slog.Level
	if s.LogLevel != "" {
		if err := level.UnmarshalText([]byte(s.LogLevel)); err != nil {
			fmt.Fprintf(stderr, "sandbox-api: log level %q: %v\n", s.LogLevel, err)
			return 2
		}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	var startTimeout time.Duration
	if s.StartTimeout != "" {
		if startTimeout, err = time.ParseDuration(s.StartTimeout); err != nil || startTimeout <= 0 {
			fmt.Fprintf(stderr, "sandbox-api: start timeout %q: a positive duration such as 5m\n", s.StartTimeout)
			return 2
		}
	}
	var sweepEvery time.Duration
	if s.Sweep != "" {
		if sweepEvery, err = time.ParseDuration(s.Sweep); err != nil || sweepEvery <= 0 {
			fmt.Fprintf(stderr, "sandbox-api: sweep interval %q: a positive duration such as 15s\n", s.Sweep)
			return 2
		}
	}
	if err := serveWith(ctx, s, startTimeout, sweepEvery, log); err != nil {
		log.Error("sandbox-api stopped", "err", err)
		return 1
	}
	return 0
}

func serveWith(ctx context.Context, s settings, startTimeout, sweepEvery time.Duration, log *slog.Logger) error {
	st, err := store.Open(ctx, s.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := config.Default()
	cfg.Runtime = s.Runtime
	cfg.Host.ModalTokenID, cfg.Host.ModalTokenSecret = s.modalTokenID, s.modalTokenSecret
	cfg.ModalAPITokenID, cfg.ModalAPITokenSecret = s.modalAPITokenID, s.modalAPITokenSecret
	be, err := backend.Open(ctx, cfg, backend.Options{Logger: log, Drivers: modal.Drivers()})
	if err != nil {
		return err
	}
	defer be.Close()
	srv, err := server.New(server.Config{
		Store: st, Driver: be.Driver, Caps: be.Caps, Backend: be.Name, PublicURL: s.PublicURL, Domain: s.Domain,
		AutoResume: s.AutoResume, StartTimeout: startTimeout, SweepInterval: sweepEvery, Logger: log,
		Labels: map[string]string{LabelInstance: s.Instance},
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	// Listen first: a second service on the same address fails here,
	// before it reconciles anything.
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	rec, err := srv.Reconcile(ctx)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("sandbox-api listening", "addr", ln.Addr().String(), "public_url", s.PublicURL, "domain", s.Domain, "db", dbKind(s.DB), "instance", s.Instance,
		"backend", be.Name, "adopted", len(rec.Adopted), "failed", len(rec.Failed), "removed", len(rec.Removed))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Drain: requests in flight (a long action through the proxy) get
	// their answers; new connections are refused.
	log.Info("sandbox-api shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("shutdown did not drain in time", "err", err)
		hs.Close()
	}
	return nil
}

// LabelInstance names the service a sandbox belongs to. Two services on
// one engine (a staging and a production one, or tests) each reconcile
// and remove only their own sandboxes; a restart on the same database is
// the same instance.
const LabelInstance = "dev.sbx.runtimeapi"

// instanceOf is the default instance name: a digest of the database, so
// that it needs no configuring and is stable across restarts.
func instanceOf(dsn string) string {
	if !store.IsPostgres(dsn) {
		if abs, err := filepath.Abs(strings.TrimPrefix(dsn, "sqlite:")); err == nil {
			dsn = abs
		}
	}
	h := sha256.Sum256([]byte(dsn))
	return hex.EncodeToString(h[:6])
}

func dbKind(dsn string) string {
	if store.IsPostgres(dsn) {
		return "postgres"
	}
	return dsn
}
