// Package sbx starts sandboxes for AI coding agents and runs actions in
// them. The configuration is OpenHands' (RUNTIME, SANDBOX_* variables,
// config.toml); the sandbox speaks OpenHands' action protocol through an
// embedded *sandboxapi.Client.
//
//	sb, err := sbx.Start(ctx, sbx.CreateOptions{Remove: true})
//	if err != nil { ... }
//	defer sb.Close(context.Background())
//	out, code, err := sb.Exec(ctx, "echo hi", 0)
//
// (Example, which runs as a test, is the same program.) Drivers are
// reached through internal/backend: docker and local are always there;
// others are linked in with Options.Drivers. sandboxd, the server put into
// every sandbox, is found as the CLI finds it: $SBX_SANDBOXD, a sandboxd
// beside the running program, or built once with the Go toolchain.
package sbx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/backend"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/netpolicy"
	"github.com/sbx-dev/sbx/internal/owner"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// Label keys sbx puts on sandboxes, beyond the driver's own.
const (
	labelOwner = "dev.sbx.owner"
)

// Error classes, for errors.Is: every class of internal/errdefs
// (errors_test.go fails when one is missing).
var (
	ErrNotFound      = errdefs.ErrNotFound
	ErrAlreadyExists = errdefs.ErrAlreadyExists
	ErrInvalid       = errdefs.ErrInvalidArgument
	ErrUnavailable   = errdefs.ErrUnavailable
	ErrNotSupported  = errdefs.ErrNotImplemented
	ErrConflict      = errdefs.ErrConflict
	ErrPermission    = errdefs.ErrPermission
	ErrUnauthorized  = errdefs.ErrUnauthorized
	ErrTooLarge      = errdefs.ErrTooLarge
	// ErrInsufficientStorage: the sandbox's disk is full; retry after
	// freeing space.
	ErrInsufficientStorage = errdefs.ErrInsufficientStorage
	ErrInternal            = errdefs.ErrInternal
)

// Options configure a Runtime.
type Options struct {
	// Config is the configuration; nil loads it from the environment and
	// config.toml with config.Load.
	Config *config.Config
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Progress receives one-line reports of long steps (image pulls, the
	// first sandboxd injection, notes about image fallbacks); nil discards.
	Progress io.Writer
	// Sandboxd overrides where the sandboxd binary comes from.
	Sandboxd *sandboxdbin.Locator
	// Drivers links drivers beyond docker and local in, by RUNTIME name
	// (the Kubernetes and Modal packages provide theirs), so that a program
	// that does not use them does not link their clients.
	Drivers map[string]DriverFactory
	// Scope confines the Runtime to sandboxes carrying all these labels:
	// Create adds them, and List, GC and rm_all_containers see no other
	// sandbox. An evaluation run or a test suite sets one of its own so that
	// it never stops or removes anyone else's sandboxes on a shared engine;
	// nil means every sbx sandbox, as for the CLI.
	Scope map[string]string
}

// DriverFactory makes a driver from the configuration; see Options.Drivers.
type DriverFactory = backend.Factory

// Runtime is a connection to one driver (RUNTIME), used to create, find
// and manage sandboxes.
type Runtime struct {
	cfg      *config.Config
	be       *backend.Backend
	log      *slog.Logger
	progress io.Writer
	scope    map[string]string // Options.Scope, copied
}

// Open connects to the driver the configuration selects.
func Open(ctx context.Context, opts Options) (*Runtime, error) {
	cfg := opts.Config
	if cfg == nil {
		var err error
		if cfg, err = config.Load(config.Source{}); err != nil {
			return nil, err
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	be, err := backend.Open(ctx, cfg, backend.Options{Logger: log, Progress: opts.Progress, Sandboxd: opts.Sandboxd, Drivers: opts.Drivers})
	if err != nil {
		return nil, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	return &Runtime{cfg: cfg, be: be, log: log, progress: progress, scope: maps.Clone(opts.Scope)}, nil
}

// Config returns the configuration the runtime uses.
func (r *Runtime) Config() *config.Config { return r.cfg }

// DriverName is the RUNTIME in use.
func (r *Runtime) DriverName() string { return r.be.Name }

// Capabilities names what the runtime's driver can do beyond creating,
// listing and removing sandboxes ("pause", "restart", "images", …).
func (r *Runtime) Capabilities() []string { return r.be.Caps.Names() }

// Close releases the runtime's connections; sandboxes are not touched.
func (r *Runtime) Close() error { return r.be.Close() }

// State is where a sandbox is in its life.
type State string

// States of a sandbox, as Info.State reports them.
const (
	StateCreated State = State(driver.StateCreated)
	StateRunning State = State(driver.StateRunning)
	StatePaused  State = State(driver.StatePaused)
	StateStopped State = State(driver.StateStopped)
	StateUnknown State = State(driver.StateUnknown)
)

// Info describes a sandbox.
type Info struct {
	ID      string
	Name    string
	Driver  string
	Image   string
	State   State
	Created time.Time
	URL     string
	// AppPorts maps ports inside the sandbox (APP_PORT_1/2) to host URLs.
	AppPorts []PortMapping
	Labels   map[string]string
	// Keep is true when the sandbox outlives its creator
	// (keep_runtime_alive, `sbx run -d`).
	Keep bool
	// SWEReX is where the sandbox answers SWE-ReX's protocol
	// (CreateOptions.SWEReX), nil when it does not. List leaves its Token
	// empty; Get and Create fill it.
	SWEReX *SWEReXEndpoint
	// Guarded is true when a mount is guarded (CreateOptions.Guard): its
	// changes wait for Apply.
	Guarded bool
}

// SWEReXEndpoint is what SWE-agent's `remote` deployment (SWE-ReX's
// RemoteDeploymentConfig) needs to reach a sandbox: its host (with the
// scheme, as "http://127.0.0.1"), port and auth_token.
type SWEReXEndpoint struct {
	// URL is the listener's base URL, e.g. http://127.0.0.1:32771.
	URL string
	// Host is the host part of URL without scheme or port ("127.0.0.1");
	// RemoteDeploymentConfig.host wants "http://" + Host.
	Host string
	Port int
	// Token is sent as X-API-Key.
	Token string
}

// PortMapping is one published port.
type PortMapping struct {
	Sandbox int
	Host    int
	URL     string
}

func toInfo(s driver.Sandbox) Info {
	in := Info{ID: s.ID, Name: s.Name, Driver: s.Driver, Image: s.Image, State: State(s.State), Created: s.Created,
		URL: s.Endpoint.URL, Labels: s.Labels, Keep: s.Labels[driver.LabelKeep] == "true",
		Guarded: s.Labels[driver.LabelGuard] == "true"}
	for _, p := range s.AppPorts {
		in.AppPorts = append(in.AppPorts, PortMapping{Sandbox: p.Sandbox, Host: p.Host, URL: p.URL})
	}
	if s.SWEReX.URL != "" {
		e := &SWEReXEndpoint{URL: s.SWEReX.URL, Token: s.SWEReX.Token}
		if u, err := url.Parse(s.SWEReX.URL); err == nil {
			e.Host = u.Hostname()
			e.Port, _ = strconv.Atoi(u.Port())
		}
		in.SWEReX = e
	}
	return in
}

// CreateOptions say what sandbox to create; zero values come from the
// configuration.
type CreateOptions struct {
	// ID is the session id; "" picks a random one. The same id always
	// names the same sandbox.
	ID string
	// Image overrides sandbox.runtime_container_image.
	Image string
	// Env is exported in the sandbox's shell (OpenHands' caller-supplied
	// env), on top of SANDBOX_ENV_* and runtime_startup_env_vars.
	Env map[string]string
	// Volumes are mounted on top of the configured ones.
	Volumes []config.Volume
	// Plugins are sandboxd plugins ("jupyter" gives run_ipython).
	Plugins []string
	// Remove deletes the sandbox when it is closed (`sbx run --rm`).
	Remove bool
	// Keep leaves the sandbox running when it is closed, like
	// keep_runtime_alive, and marks it so `sbx gc` leaves it alone.
	Keep bool
	// Attach uses a running sandbox with the same ID if there is one,
	// instead of failing; with keep_runtime_alive this is OpenHands'
	// reconnect-on-restart.
	Attach bool
	// Labels are added to the sandbox.
	Labels map[string]string
	// NoAppPorts leaves the two app ports (APP_PORT_1/2) unpublished,
	// which makes a burst of creates faster; for evaluation runs.
	NoAppPorts bool
	// SWEReX also serves SWE-ReX's protocol (what SWE-agent's `remote`
	// deployment talks), with a random token, on a port published like
	// the others; Sandbox.SWEReX says where. A driver without the
	// "swerex" capability refuses it with ErrNotSupported.
	SWEReX bool
	// NetworkPolicy is the sandbox's egress policy: a name from
	// sandbox.network_policies or a policy ("none", "open", an allow-list
	// such as "pypi.org,*.pythonhosted.org,10.0.0.0/8", "!entry" to deny;
	// see ParseNetworkPolicy); "" is sandbox.network_policy. A runtime
	// that cannot enforce it (RUNTIME=local) refuses with ErrNotSupported.
	NetworkPolicy string
	// Guard guards every writable host-directory mount (`sbx run
	// --guard`): the sandbox sees a copy-on-write view, and its changes
	// reach the folder only through Apply. A mount whose mode is "guard",
	// and the workspace mount with workspace_guard, are guarded anyway.
	// A driver without the "guard" capability refuses it.
	Guard bool
	// GuardMode overrides workspace_guard_mode: "overlay" or "copy".
	GuardMode string
	// Resources override docker_runtime_kwargs limits when non-zero.
	CPUs        float64
	MemoryBytes int64
}

// Sandbox is a running sandbox: sandboxd's client plus its lifecycle.
type Sandbox struct {
	*sandboxapi.Client
	rt       *Runtime
	info     Info
	token    string // sandboxd's session API key, for AttachTerminal
	remove   bool
	keep     bool
	attached bool
	ownsRT   bool
}

// Start opens a runtime from the environment's configuration and creates
// a sandbox in it; Close on the sandbox also closes that runtime.
func Start(ctx context.Context, co CreateOptions) (*Sandbox, error) {
	rt, err := Open(ctx, Options{})
	if err != nil {
		return nil, err
	}
	sb, err := rt.Create(ctx, co)
	if err != nil {
		rt.Close()
		return nil, err
	}
	sb.ownsRT = true
	return sb, nil
}

// Create starts a sandbox and prepares its shell as OpenHands does
// (SANDBOX_ENV_*, runtime_startup_env_vars, the git identity).
func (r *Runtime) Create(ctx context.Context, co CreateOptions) (*Sandbox, error) {
	id := co.ID
	if id == "" {
		id = ids.New(6)
	}
	keep := co.Keep || r.cfg.Sandbox.KeepRuntimeAlive
	if co.Attach || r.cfg.Sandbox.KeepRuntimeAlive {
		if sb, err := r.attach(ctx, id, keep); err == nil {
			if co.SWEReX && sb.info.SWEReX == nil {
				return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s runs without SWE-ReX, which only a new sandbox can get: remove it, or pick another id", id))
			}
			return sb, nil
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
	}
	spec, err := r.spec(ctx, id, co, keep)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	ds, err := r.be.Driver.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	sb := r.wrap(ds, co.Remove, keep, false)
	// On the local runtime the shell's home is the user's own: its
	// ~/.bashrc and git identity are not sbx's to rewrite (OpenHands' CLI
	// runtime leaves git config alone for the same reason); the variables
	// reach the shell through sandboxd's environment instead.
	if err := sb.setupEnv(ctx, r.cfg, co.Env, !r.be.Caps.Traits.HostFilesystem); err != nil {
		// A create that fails or is cancelled leaves nothing behind; the
		// removal outlives ctx, but not forever.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = sb.destroy(dctx)
		cancel()
		return nil, err
	}
	r.log.Debug("sandbox ready", "id", id, "driver", r.be.Name, "image", spec.Image,
		"create", t1.Sub(t0), "setup", time.Since(t1))
	return sb, nil
}

// Attach connects to an existing sandbox (attach_to_existing); it is
// ErrNotFound when there is none. A stopped sandbox is started and a
// paused one resumed. Closing an attached sandbox leaves it running.
func (r *Runtime) Attach(ctx context.Context, id string) (*Sandbox, error) {
	return r.attach(ctx, id, true)
}

func (r *Runtime) attach(ctx context.Context, id string, keep bool) (*Sandbox, error) {
	ds, err := r.be.Driver.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	switch ds.State {
	case driver.StateRunning:
		// One probe instead of the driver's full start path: a running
		// sandbox normally answers at once.
		if ds.Endpoint.URL != "" {
			if st, err := sandboxapi.NewClient(ds.Endpoint.URL, ds.Endpoint.Token).Alive(ctx); err == nil && st == "ok" {
				break
			}
		}
		if ds, err = r.start(ctx, id); err != nil { // waits until it answers
			return nil, err
		}
	case driver.StatePaused:
		p := r.be.Caps.Pause
		if p == nil {
			return nil, r.unsupported("resume")
		}
		if ds, err = p.Resume(ctx, id); err != nil {
			return nil, err
		}
	default:
		if ds, err = r.start(ctx, id); err != nil {
			return nil, err
		}
	}
	return r.wrap(ds, false, keep, true), nil
}

func (r *Runtime) start(ctx context.Context, id string) (driver.Sandbox, error) {
	if r.be.Caps.Restart == nil {
		return driver.Sandbox{}, r.unsupported("start a stopped sandbox")
	}
	return r.be.Caps.Restart.Start(ctx, id)
}

// unsupported is the error for a capability the driver lacks.
func (r *Runtime) unsupported(what string) error {
	return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("RUNTIME=%s cannot %s", r.be.Name, what))
}

func (r *Runtime) wrap(ds driver.Sandbox, remove, keep, attached bool) *Sandbox {
	return &Sandbox{Client: sandboxapi.NewClient(ds.Endpoint.URL, ds.Endpoint.Token), rt: r, info: toInfo(ds),
		token: ds.Endpoint.Token, remove: remove, keep: keep, attached: attached}
}

// ID is the session id.
func (s *Sandbox) ID() string { return s.info.ID }

// Info describes the sandbox as it was when created or attached.
func (s *Sandbox) Info() Info { return s.info }

// SWEReX is where the sandbox answers SWE-ReX's protocol, nil when it was
// created without CreateOptions.SWEReX.
func (s *Sandbox) SWEReX() *SWEReXEndpoint { return s.info.SWEReX }

// ErrTimeout is the class of a command that did not finish within its
// timeout; it is still running in the sandbox's shell, and the next
// command is refused until it ends or is interrupted (Execute an is_input
// "C-c").
var ErrTimeout = errors.New("timed out")

// Exec runs a command in the sandbox's shell until it ends or timeout
// passes (0 means sandbox.timeout, a negative one waits for ever), and
// returns its output and exit code.
// The wait is a hard timeout: a command that is merely quiet for a while
// is waited for, unlike an OpenHands run action without blocking.
func (s *Sandbox) Exec(ctx context.Context, command string, timeout time.Duration) (string, int, error) {
	res, err := s.ExecWith(ctx, command, ExecOptions{Timeout: timeout})
	return res.Output, res.ExitCode, err
}

// ExecOptions tune ExecWith.
type ExecOptions struct {
	// Timeout is the hard limit: 0 is sandbox.timeout, negative is none.
	Timeout time.Duration
	// Interrupt sends C-c to a command that timed out, so the shell is free
	// for the next one; without it the command keeps running and the
	// next command is refused until it ends.
	Interrupt bool
	// Output, if set, gets the command's output as it is produced (as the
	// terminal shows it, with CRLF line ends made LF), and a ctx that
	// ends before the command interrupts it (C-c), as `docker exec` ends
	// its process. The result's Output still holds the whole reply.
	Output io.Writer
}

// ExecResult is what a command did.
type ExecResult struct {
	// Output is what the command printed, as a terminal shows it.
	Output string
	// ExitCode is the command's exit status; -1 when it did not finish.
	ExitCode int
}

// ExecWith runs a command in the sandbox's shell as Exec does, with
// options. A command that did not finish is ErrTimeout, with its output so
// far in the result.
func (s *Sandbox) ExecWith(ctx context.Context, command string, o ExecOptions) (ExecResult, error) {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = time.Duration(s.rt.cfg.Sandbox.Timeout) * time.Second
	}
	secs := 0.0
	if timeout > 0 {
		secs = timeout.Seconds()
		// As OpenHands' client does: the request may take the command's
		// timeout plus a margin, so a sandbox that stopped answering
		// (paused by someone else, its host gone) cannot hold the caller
		// forever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+5*time.Second)
		defer cancel()
	}
	var obs sandboxapi.Observation
	var ex sandboxapi.CmdOutputExtras
	var err error
	if o.Output != nil {
		obs, ex, err = s.execStreamed(ctx, command, secs, o.Output)
	} else {
		obs, ex, err = s.Run(ctx, sandboxapi.NewBlockingRunAction(command, secs))
	}
	if err != nil {
		return ExecResult{}, err
	}
	res := ExecResult{Output: obs.Content, ExitCode: ex.Metadata.ExitCode}
	if res.ExitCode != -1 {
		return res, nil
	}
	if o.Interrupt {
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = s.Execute(ictx, sandboxapi.NewInputAction("C-c", 5))
	}
	if timeout > 0 {
		return res, errdefs.New(ErrTimeout, fmt.Sprintf("command did not finish within %v: %s", timeout, strings.TrimSpace(ex.Metadata.Suffix)))
	}
	return res, errdefs.New(errdefs.ErrInternal, "the sandbox's shell returned before the command finished: "+strings.TrimSpace(ex.Metadata.Suffix))
}

// execStreamed is a blocking run in the default session with its output
// written to w as it comes.
func (s *Sandbox) execStreamed(ctx context.Context, command string, secs float64, w io.Writer) (sandboxapi.Observation, sandboxapi.CmdOutputExtras, error) {
	req := sandboxapi.SessionRunRequest{Command: command, Blocking: true}
	if secs > 0 {
		req.Timeout = &secs
	}
	lw := &lfWriter{w: w}
	obs, err := s.RunStream(ctx, req, sandboxapi.RunOptions{CancelOnDisconnect: true}, func(ev sandboxapi.StreamEvent) error {
		switch ev.Type {
		case sandboxapi.EventOutput:
			return lw.write(ev.Data)
		case sandboxapi.EventLost:
			// The ring overtook this reader; say so rather than splice.
			return lw.write(fmt.Sprintf("\n[sbx: %d bytes of output were not delivered: the reader fell behind]\n", ev.Skipped))
		}
		return nil
	})
	if ferr := lw.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(context.Cause(ctx), err)
		}
		return obs, sandboxapi.CmdOutputExtras{}, err
	}
	ex, err := obs.CmdOutput()
	return obs, ex, err
}

// lfWriter turns the terminal's CRLF line ends into LF, holding back a CR
// at the end of one chunk until the next shows whether LF follows; a lone
// CR (a progress bar) passes.
type lfWriter struct {
	w  io.Writer
	cr bool
}

func (l *lfWriter) write(s string) error {
	if s == "" {
		return nil
	}
	b := make([]byte, 0, len(s)+1)
	if l.cr {
		if s[0] != '\n' {
			b = append(b, '\r')
		}
		l.cr = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' {
			if i+1 == len(s) {
				l.cr = true
				continue
			}
			if s[i+1] == '\n' {
				continue
			}
		}
		b = append(b, c)
	}
	_, err := l.w.Write(b)
	return err
}

func (l *lfWriter) flush() error {
	if !l.cr {
		return nil
	}
	l.cr = false
	_, err := l.w.Write([]byte{'\r'})
	return err
}

// Exec runs command in the running sandbox id, as `sbx exec` does: one
// look at the sandbox, then the command. A sandbox that is not running is
// not started or resumed behind the caller's back: that is ErrConflict,
// with what to do.
func (r *Runtime) Exec(ctx context.Context, id, command string, o ExecOptions) (ExecResult, error) {
	ds, err := r.be.Driver.Inspect(ctx, id)
	if err != nil {
		return ExecResult{}, err
	}
	switch ds.State {
	case driver.StateRunning:
	case driver.StatePaused:
		return ExecResult{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s is paused; resume it with `sbx resume %s`", id, id))
	default:
		return ExecResult{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s is %s; start it with `sbx start %s`", id, ds.State, id))
	}
	return r.wrap(ds, false, true, true).ExecWith(ctx, command, o)
}

// Pause freezes the sandbox with its processes (drivers that can).
func (s *Sandbox) Pause(ctx context.Context) error { return s.rt.Pause(ctx, s.info.ID) }

// Resume thaws a paused sandbox.
func (s *Sandbox) Resume(ctx context.Context) error {
	_, err := s.rt.Resume(ctx, s.info.ID)
	return err
}

// Close ends the session as configured: a sandbox created with Remove is
// deleted; one kept alive (keep_runtime_alive, Keep) or attached is left
// running; any other is stopped, its files kept until `sbx rm` or `sbx gc`.
// With rm_all_containers every sbx sandbox (of the Runtime's Scope) is
// stopped.
func (s *Sandbox) Close(ctx context.Context) error {
	var err error
	switch {
	case s.remove:
		err = s.destroy(ctx)
	case s.keep && !s.attached && s.rt.cfg.Sandbox.KeepRuntimeAlive && s.rt.cfg.Sandbox.PauseClosedRuntimes &&
		s.rt.be.Caps.Traits.PauseKept && s.rt.be.Caps.Pause != nil:
		// OpenHands' remote runtime: a runtime kept by keep_runtime_alive
		// sleeps until the next session resumes it. (`sbx run -d` keeps
		// its sandbox running: that is what detaching means.)
		err = s.rt.be.Caps.Pause.Pause(ctx, s.info.ID)
	case s.keep || s.attached:
	case s.rt.be.Caps.Restart == nil:
		// Where a stopped sandbox keeps nothing, stopping it is removing it.
		err = s.destroy(ctx)
	default:
		err = s.rt.be.Caps.Restart.Stop(ctx, s.info.ID, 10*time.Second)
		if errors.Is(err, errdefs.ErrNotFound) {
			err = nil
		}
	}
	// OpenHands' close does nothing at all for a kept or attached
	// runtime, rm_all_containers included.
	if rs := s.rt.be.Caps.Restart; s.rt.cfg.Sandbox.RmAllContainers && !s.keep && !s.attached && rs != nil {
		all, lerr := s.rt.be.Driver.List(ctx, s.rt.scope)
		err = errors.Join(err, lerr)
		for _, o := range all {
			if o.State == driver.StateRunning || o.State == driver.StatePaused {
				err = errors.Join(err, rs.Stop(ctx, o.ID, 10*time.Second))
			}
		}
	}
	if s.ownsRT {
		err = errors.Join(err, s.rt.Close())
	}
	return err
}

// destroy removes the sandbox as fast as the driver allows: a Docker
// sandbox created for removal is killed and the engine deletes it in the
// background (a Create of the same id waits for that); otherwise it is
// removed. Either way its id is free again when destroy returns.
func (s *Sandbox) destroy(ctx context.Context) error {
	if k := s.rt.be.Caps.Kill; k != nil {
		return k.Kill(ctx, s.info.ID)
	}
	return s.rt.be.Driver.Remove(ctx, s.info.ID)
}

// Get describes one sandbox.
func (r *Runtime) Get(ctx context.Context, id string) (Info, error) {
	ds, err := r.be.Driver.Inspect(ctx, id)
	if err != nil {
		return Info{}, err
	}
	return toInfo(ds), nil
}

// List describes sbx's sandboxes of this runtime (of its Scope), oldest
// first.
func (r *Runtime) List(ctx context.Context) ([]Info, error) {
	all, err := r.be.Driver.List(ctx, r.scope)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(all))
	for _, s := range all {
		out = append(out, toInfo(s))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Stop stops a sandbox; its files survive, its processes do not.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	if r.be.Caps.Restart == nil {
		return r.unsupported("stop a sandbox and keep its files")
	}
	return r.be.Caps.Restart.Stop(ctx, id, grace)
}

// Pause freezes a sandbox, keeping its processes.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	if r.be.Caps.Pause == nil {
		return r.unsupported("pause")
	}
	return r.be.Caps.Pause.Pause(ctx, id)
}

// Resume thaws a paused sandbox and waits until it answers.
func (r *Runtime) Resume(ctx context.Context, id string) (Info, error) {
	if r.be.Caps.Pause == nil {
		return Info{}, r.unsupported("pause or resume")
	}
	ds, err := r.be.Caps.Pause.Resume(ctx, id)
	return toInfo(ds), err
}

// Remove deletes a sandbox whatever its state, and returns once it is
// gone, so the id can be used again at once; a missing one is no error.
func (r *Runtime) Remove(ctx context.Context, id string) error { return r.be.Driver.Remove(ctx, id) }

// Logs writes sandboxd's own log (not the shell's output) to w.
func (r *Runtime) Logs(ctx context.Context, id string, w io.Writer, tail int) error {
	return r.be.Driver.Logs(ctx, id, w, tail)
}

// GCOptions tune GC.
type GCOptions struct {
	// Match limits GC to sandboxes carrying all these labels (one
	// evaluation run's, say), within the Runtime's Scope; nil means every
	// sbx sandbox of the Scope. A limited GC leaves the sandboxd volumes
	// alone: they belong to the machine, not to one run.
	Match map[string]string
	// Grace is how old an abandoned sandbox must be before it is
	// collected, so a sandbox being created right now is never taken.
	Grace time.Duration
	// DryRun lists what would be removed without removing it.
	DryRun bool
	// Pruned, when set, is told each thing other than a sandbox that GC
	// removed (or would remove): the sandboxd volumes of earlier builds,
	// and egress proxies and their networks that no sandbox uses
	// (DescribePruned says which).
	// Unset, they are reported to Options.Progress.
	Pruned func(name string)
}

// GC removes sandboxes nothing holds: not kept alive (keep_runtime_alive,
// `sbx run -d`), and either stopped or created by a process on this host
// that has exited. Paused sandboxes are held. It returns what it removed
// (or, with DryRun, would remove).
func (r *Runtime) GC(ctx context.Context, o GCOptions) ([]Info, error) {
	match := maps.Clone(o.Match)
	if len(r.scope) > 0 {
		match = maps.Clone(r.scope)
		maps.Copy(match, o.Match)
	}
	all, err := r.be.Driver.List(ctx, match)
	if err != nil {
		return nil, err
	}
	var out []Info
	var errs []error
	for _, s := range all {
		if !collectable(s, o.Grace, time.Now()) {
			continue
		}
		// A guarded sandbox's changes are the user's until applied or
		// discarded.
		if s.Labels[driver.LabelGuard] == "true" {
			if n, err := r.pending(ctx, s.ID); err != nil || n > 0 {
				continue
			}
		}
		// A running sandbox restarted after its creator left (`sbx start`)
		// is someone's again; the listing does not say when it started,
		// so ask.
		if s.State == driver.StateRunning {
			full, err := r.be.Driver.Inspect(ctx, s.ID)
			if err != nil || restarted(full) {
				continue
			}
		}
		out = append(out, toInfo(s))
		if o.DryRun {
			continue
		}
		if err := r.be.Driver.Remove(ctx, s.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.ID, err))
		}
	}
	// What the driver keeps besides sandboxes (Docker: volumes holding
	// earlier sbx builds' sandboxd), once nothing uses it; only by a GC of
	// the whole machine, since a volume carries no run's labels and may
	// serve sandboxes outside the Match.
	if p := r.be.Caps.Prune; p != nil && len(match) == 0 {
		pruned, err := p.Prune(ctx, driver.PruneOptions{MinAge: max(o.Grace, 10*time.Minute), DryRun: o.DryRun})
		errs = append(errs, err)
		for _, v := range pruned {
			if o.Pruned != nil {
				o.Pruned(v)
				continue
			}
			verb := "removed"
			if o.DryRun {
				verb = "would remove"
			}
			fmt.Fprintf(r.progress, "%s %s\n", verb, DescribePruned(v))
		}
	}
	return out, errors.Join(errs...)
}

// DescribePruned says what a name GCOptions.Pruned was told is: a
// sandboxd volume of an earlier build (a bare name), or an egress proxy
// or its network that no sandbox uses ("container …", "network …"), or
// the network a removed policed sandbox left ("network sbx_egress-net-…").
func DescribePruned(name string) string {
	if strings.HasPrefix(name, "network sbx_egress-net-") {
		return name + " (network of a removed policed sandbox)"
	}
	if strings.HasPrefix(name, "container ") || strings.HasPrefix(name, "network ") {
		return name + " (egress proxy no sandbox uses)"
	}
	if strings.HasPrefix(name, "image ") {
		return name + " (egress proxy of an earlier sbx build)"
	}
	return "volume " + name + " (sandboxd of an earlier sbx build)"
}

func restarted(s driver.Sandbox) bool {
	return !s.Started.IsZero() && s.Started.Sub(s.Created) > time.Minute
}

func collectable(s driver.Sandbox, grace time.Duration, now time.Time) bool {
	if s.ID == "" || s.Labels[driver.LabelKeep] == "true" || now.Sub(s.Created) < grace {
		return false
	}
	switch s.State {
	case driver.StatePaused:
		return false
	case driver.StateStopped, driver.StateCreated:
		return true
	}
	o := s.Labels[labelOwner]
	return o != "" && !owner.Alive(o)
}

// spec turns the configuration and options into what the driver starts.
func (r *Runtime) spec(ctx context.Context, id string, co CreateOptions, keep bool) (driver.Spec, error) {
	cfg := r.cfg
	sp := driver.Spec{
		ID:      id,
		WorkDir: cfg.WorkspaceMountPathInSandbox,
		Plugins: co.Plugins,
		Debug:   cfg.Debug,
		Labels:  map[string]string{labelOwner: owner.Self()},
		Network: driver.Network{
			BindAddress: cfg.Sandbox.RuntimeBindingAddress,
			HostNetwork: cfg.Sandbox.UseHostNetwork,
			Additional:  cfg.Sandbox.AdditionalNetworks,
			NoAppPorts:  co.NoAppPorts,
		},
		AutoRemove: co.Remove && r.be.Caps.Kill != nil,
	}
	setting := co.NetworkPolicy
	if setting == "" {
		setting = cfg.Sandbox.NetworkPolicy
	}
	pol, err := netpolicy.Resolve(setting, cfg.Sandbox.NetworkPolicies)
	if err != nil {
		return driver.Spec{}, err
	}
	if pol.Enforced() {
		if r.be.Caps.Network == nil {
			if err := driver.CheckPolicy(r.be.Name, "it has no network-policy capability", driver.Spec{Network: driver.Network{Policy: &pol}}); err != nil {
				return driver.Spec{}, err
			}
		}
		sp.Network.Policy = &pol
	}
	if co.SWEReX {
		if !r.be.Caps.SWEReX {
			return driver.Spec{}, r.unsupported("serve SWE-ReX (sbx run --protocol swerex); RUNTIME=docker can")
		}
		// As SWE-ReX's own deployments make theirs: str(uuid.uuid4()).
		sp.SWEReX = &driver.SWEReX{Token: ids.UUID()}
	}
	for k, v := range co.Labels {
		sp.Labels[k] = v
	}
	// After the caller's labels: a sandbox of the Scope must stay in it.
	maps.Copy(sp.Labels, r.scope)
	if keep {
		sp.Labels[driver.LabelKeep] = "true"
	}
	if co.Remove {
		sp.Labels[driver.LabelRemove] = "true"
	}
	sp.User, sp.UserID = cfg.RuntimeUser()

	// The environment of sandboxd, and so of the shell (OpenHands §8.3):
	// the initial env, then the fixed variables, then
	// runtime_startup_env_vars, which win.
	env := map[string]string{}
	for k, v := range initialEnv(cfg, co.Env) {
		env[k] = v
	}
	for k := range env {
		if !validName(k) {
			return driver.Spec{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("environment variable name %q is not valid in a shell", k))
		}
	}
	for k := range cfg.Sandbox.RuntimeStartupEnvVars {
		if !validName(k) {
			return driver.Spec{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("runtime_startup_env_vars: %q is not a valid variable name", k))
		}
	}
	env["PYTHONUNBUFFERED"] = "1"
	env["OPENHANDS_SESSION_ID"] = id
	env["PIP_BREAK_SYSTEM_PACKAGES"] = "1"
	for k, v := range cfg.Sandbox.RuntimeStartupEnvVars {
		env[k] = v
	}
	sp.Env = env

	lim := cfg.Sandbox.DockerLimits
	sp.Resources = driver.Resources{
		CPUs: lim.CPUs(), MemoryBytes: lim.Memory, MemorySwapBytes: lim.MemorySwap, CpusetCPUs: lim.CpusetCPUs,
		PidsLimit: lim.PidsLimit, ShmBytes: lim.ShmSize,
		GPU: cfg.Sandbox.EnableGPU,
	}
	if cfg.Sandbox.CUDAVisibleDevices != "" {
		sp.Resources.GPUDevices = strings.Split(cfg.Sandbox.CUDAVisibleDevices, ",")
	}
	if co.CPUs > 0 {
		sp.Resources.CPUs = co.CPUs
	}
	if co.MemoryBytes > 0 {
		sp.Resources.MemoryBytes = co.MemoryBytes
	}

	if r.be.Caps.Traits.HostFilesystem {
		if co.Guard || cfg.WorkspaceGuard {
			return driver.Spec{}, r.unsupported("guard the workspace: its sandbox works in the host folder itself")
		}
		// The sandbox is the host: the workspace is a host directory.
		sp.WorkDir = cfg.WorkspaceBase
	} else {
		guarded := false
		for _, v := range append(cfg.Mounts(), co.Volumes...) {
			if v.Overlay {
				r.log.Warn("overlay volumes are not supported; skipped", "volume", v.Source+":"+v.Target)
				continue
			}
			m := driver.Mount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly, Volume: v.Named}
			m.Guard = !v.Named && !v.ReadOnly && (v.Guard || co.Guard || cfg.WorkspaceGuard && v.Target == cfg.WorkspaceMountPathInSandbox)
			if v.Guard && (v.Named || v.ReadOnly) {
				return driver.Spec{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("mount on %s: only a writable host directory can be guarded", v.Target))
			}
			guarded = guarded || m.Guard
			sp.Mounts = append(sp.Mounts, m)
		}
		if guarded {
			if r.be.Caps.Guard == nil {
				return driver.Spec{}, r.unsupported("guard a mounted folder (sbx run --guard); RUNTIME=docker can")
			}
			sp.GuardMode = cmpOr(co.GuardMode, cfg.WorkspaceGuardMode)
		}
	}
	if ir := r.be.Caps.Images; ir != nil {
		img, err := ir.ResolveImage(ctx, co.Image)
		if err != nil {
			return driver.Spec{}, err
		}
		sp.Image, sp.Prebuilt = img.Ref, img.Prebuilt
	}
	return sp, nil
}

// initialEnv is OpenHands' initial_env_vars: SANDBOX_ENV_<NAME> as <NAME>,
// ENABLE_AUTO_LINT when enabled, and the caller's variables.
func initialEnv(cfg *config.Config, extra map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range cfg.Host.SandboxEnv {
		env[k] = v
	}
	if cfg.Sandbox.EnableAutoLint {
		env["ENABLE_AUTO_LINT"] = "true"
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
