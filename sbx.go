// Package sbx starts sandboxes for AI coding agents and runs actions in
// them. The configuration is OpenHands' (RUNTIME, SANDBOX_* variables,
// config.toml); the sandbox speaks OpenHands' action protocol through an
// embedded *sandboxapi.Client.
//
//	sb, err := sbx.Start(ctx, sbx.CreateOptions{})
//	if err != nil { ... }
//	defer sb.Close(context.Background())
//	out, code, err := sb.Exec(ctx, "echo hi")
package sbx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/docker"
	"github.com/sbx-dev/sbx/internal/driver/local"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/owner"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// Label keys sbx puts on sandboxes, beyond the driver's own.
const (
	labelOwner = "dev.sbx.owner"
)

// Error classes, for errors.Is.
var (
	ErrNotFound      = errdefs.ErrNotFound
	ErrAlreadyExists = errdefs.ErrAlreadyExists
	ErrInvalid       = errdefs.ErrInvalidArgument
	ErrUnavailable   = errdefs.ErrUnavailable
	ErrNotSupported  = errdefs.ErrNotImplemented
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
}

// Runtime is a connection to one driver (RUNTIME), used to create, find
// and manage sandboxes.
type Runtime struct {
	cfg      *config.Config
	drv      driver.Driver
	log      *slog.Logger
	progress io.Writer
	images   imageResolver
	closers  []io.Closer
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
	r := &Runtime{cfg: cfg, log: opts.Logger, progress: opts.Progress}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.progress == nil {
		r.progress = io.Discard
	}
	bin := opts.Sandboxd
	if bin == nil {
		bin = &sandboxdbin.Locator{}
	}
	switch cfg.Runtime {
	case "", "docker":
		c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrUnavailable, "docker client: "+err.Error(), err)
		}
		d, err := docker.New(docker.Options{Client: c, Sandboxd: bin, Logger: r.log, URLHost: urlHost(cfg)})
		if err != nil {
			c.Close()
			return nil, err
		}
		r.drv = d
		r.closers = append(r.closers, c)
		r.images = newDockerImages(c, bin, r.progress, r.log)
	case "local":
		d, err := local.New(local.Options{Sandboxd: bin, Logger: r.log})
		if err != nil {
			return nil, err
		}
		r.drv = d
	case "remote", "modal", "kubernetes":
		return nil, errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("RUNTIME=%s is not available in this sbx yet; use docker (default) or local", cfg.Runtime))
	default:
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("RUNTIME=%q is not a runtime sbx knows; use docker (the default) or, without Docker, local", cfg.Runtime))
	}
	return r, nil
}

// urlHost is the host part of DOCKER_HOST_ADDR / local_runtime_url when it
// names something other than this machine's loopback.
func urlHost(cfg *config.Config) string {
	u, err := url.Parse(cfg.LocalRuntimeURL())
	if err != nil {
		return ""
	}
	switch h := u.Hostname(); h {
	case "", "localhost", "127.0.0.1", "::1":
		return ""
	default:
		return h
	}
}

// Config returns the configuration the runtime uses.
func (r *Runtime) Config() *config.Config { return r.cfg }

// DriverName is the RUNTIME in use.
func (r *Runtime) DriverName() string { return r.drv.Name() }

// Close releases the runtime's connections; sandboxes are not touched.
func (r *Runtime) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// States of a sandbox, as Info.State reports them.
const (
	StateCreated = string(driver.StateCreated)
	StateRunning = string(driver.StateRunning)
	StatePaused  = string(driver.StatePaused)
	StateStopped = string(driver.StateStopped)
	StateUnknown = string(driver.StateUnknown)
)

// Info describes a sandbox.
type Info struct {
	ID      string
	Name    string
	Driver  string
	Image   string
	State   string
	Created time.Time
	URL     string
	// AppPorts maps ports inside the sandbox (APP_PORT_1/2) to host URLs.
	AppPorts []PortMapping
	Labels   map[string]string
	// Keep is true when the sandbox outlives its creator
	// (keep_runtime_alive, `sbx run -d`).
	Keep bool
}

// PortMapping is one published port.
type PortMapping struct {
	Sandbox int
	Host    int
	URL     string
}

func toInfo(s driver.Sandbox) Info {
	in := Info{ID: s.ID, Name: s.Name, Driver: s.Driver, Image: s.Image, State: string(s.State), Created: s.Created,
		URL: s.Endpoint.URL, Labels: s.Labels, Keep: s.Labels[driver.LabelKeep] == "true"}
	for _, p := range s.AppPorts {
		in.AppPorts = append(in.AppPorts, PortMapping(p))
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
	// Resources override docker_runtime_kwargs limits when non-zero.
	CPUs        float64
	MemoryBytes int64
}

// Sandbox is a running sandbox: sandboxd's client plus its lifecycle.
type Sandbox struct {
	*sandboxapi.Client
	rt       *Runtime
	info     Info
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
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id = hex.EncodeToString(b[:])
	}
	keep := co.Keep || r.cfg.Sandbox.KeepRuntimeAlive
	if co.Attach || r.cfg.Sandbox.KeepRuntimeAlive {
		if sb, err := r.attach(ctx, id, keep); err == nil {
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
	ds, err := r.drv.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	sb := r.wrap(ds, co.Remove, keep, false)
	// On the local runtime the shell's home is the user's own: its
	// ~/.bashrc and git identity are not sbx's to rewrite (OpenHands' CLI
	// runtime leaves git config alone for the same reason); the variables
	// reach the shell through sandboxd's environment instead.
	if err := sb.setupEnv(ctx, r.cfg, co.Env, r.drv.Name() != local.Name); err != nil {
		// A create that fails or is cancelled leaves nothing behind; the
		// removal outlives ctx, but not forever.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = sb.destroy(dctx)
		cancel()
		return nil, err
	}
	r.log.Debug("sandbox ready", "id", id, "driver", r.drv.Name(), "image", spec.Image,
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
	ds, err := r.drv.Inspect(ctx, id)
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
		if ds, err = r.drv.Start(ctx, id); err != nil { // waits until it answers
			return nil, err
		}
	case driver.StatePaused:
		p, ok := r.drv.(driver.Pauser)
		if !ok {
			return nil, errdefs.New(errdefs.ErrNotImplemented, "driver cannot resume")
		}
		if ds, err = p.Resume(ctx, id); err != nil {
			return nil, err
		}
	default:
		if ds, err = r.drv.Start(ctx, id); err != nil {
			return nil, err
		}
	}
	return r.wrap(ds, false, keep, true), nil
}

func (r *Runtime) wrap(ds driver.Sandbox, remove, keep, attached bool) *Sandbox {
	return &Sandbox{Client: sandboxapi.NewClient(ds.Endpoint.URL, ds.Endpoint.Token), rt: r, info: toInfo(ds),
		remove: remove, keep: keep, attached: attached}
}

// ID is the session id.
func (s *Sandbox) ID() string { return s.info.ID }

// Info describes the sandbox as it was when created or attached.
func (s *Sandbox) Info() Info { return s.info }

// ErrTimeout is the class of a command that did not finish within its
// timeout; it is still running in the sandbox's shell, and the next
// command is refused until it ends or is interrupted (Execute an is_input
// "C-c").
var ErrTimeout = errors.New("timed out")

// Exec runs a command in the sandbox's shell until it ends or timeout
// passes (0 means sandbox.timeout), and returns its output and exit code.
// The wait is a hard timeout: a command that is merely quiet for a while
// is waited for, unlike an OpenHands run action without blocking.
func (s *Sandbox) Exec(ctx context.Context, command string, timeout time.Duration) (string, int, error) {
	if timeout <= 0 {
		timeout = time.Duration(s.rt.cfg.Sandbox.Timeout) * time.Second
	}
	a, err := sandboxapi.NewAction(sandboxapi.ActionRun, sandboxapi.CmdRunArgs{
		Command: command, Blocking: true, ConfirmationState: "confirmed", SecurityRisk: -1,
	}, timeout.Seconds())
	if err != nil {
		return "", 0, err
	}
	// As OpenHands' client does: the request may take the command's
	// timeout plus a margin, so a sandbox that stopped answering (paused
	// by someone else, its host gone) cannot hold the caller forever.
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	obs, ex, err := s.Run(ctx, a)
	if err != nil {
		return "", 0, err
	}
	if ex.Metadata.ExitCode == -1 {
		return obs.Content, -1, errdefs.New(ErrTimeout, fmt.Sprintf("command did not finish within %v: %s", timeout, strings.TrimSpace(ex.Metadata.Suffix)))
	}
	return obs.Content, ex.Metadata.ExitCode, nil
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
// With rm_all_containers every sbx sandbox is stopped.
func (s *Sandbox) Close(ctx context.Context) error {
	var err error
	switch {
	case s.remove:
		err = s.destroy(ctx)
	case s.keep || s.attached:
	default:
		err = s.rt.drv.Stop(ctx, s.info.ID, 10*time.Second)
		if errors.Is(err, errdefs.ErrNotFound) {
			err = nil
		}
	}
	// OpenHands' close does nothing at all for a kept or attached
	// runtime, rm_all_containers included.
	if s.rt.cfg.Sandbox.RmAllContainers && !s.keep && !s.attached {
		all, lerr := s.rt.drv.List(ctx, nil)
		err = errors.Join(err, lerr)
		for _, o := range all {
			if o.State == driver.StateRunning || o.State == driver.StatePaused {
				err = errors.Join(err, s.rt.drv.Stop(ctx, o.ID, 10*time.Second))
			}
		}
	}
	if s.ownsRT {
		err = errors.Join(err, s.rt.Close())
	}
	return err
}

// destroy removes the sandbox as fast as the driver allows: a Docker
// sandbox created for removal is killed and the engine deletes it.
func (s *Sandbox) destroy(ctx context.Context) error {
	if k, ok := s.rt.drv.(interface {
		Kill(context.Context, string) error
	}); ok && s.info.Labels[driver.LabelRemove] == "true" {
		return k.Kill(ctx, s.info.ID)
	}
	return s.rt.drv.Remove(ctx, s.info.ID)
}

// Get describes one sandbox.
func (r *Runtime) Get(ctx context.Context, id string) (Info, error) {
	ds, err := r.drv.Inspect(ctx, id)
	if err != nil {
		return Info{}, err
	}
	return toInfo(ds), nil
}

// List describes sbx's sandboxes of this runtime, oldest first.
func (r *Runtime) List(ctx context.Context) ([]Info, error) {
	all, err := r.drv.List(ctx, nil)
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
	return r.drv.Stop(ctx, id, grace)
}

// StartAgain starts a stopped sandbox (or resumes a paused one) and
// returns a client to it.
func (r *Runtime) StartAgain(ctx context.Context, id string) (*Sandbox, error) {
	return r.attach(ctx, id, true)
}

// Pause freezes a sandbox, keeping its processes.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	p, ok := r.drv.(driver.Pauser)
	if !ok {
		return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("RUNTIME=%s cannot pause", r.drv.Name()))
	}
	return p.Pause(ctx, id)
}

// Resume thaws a paused sandbox and waits until it answers.
func (r *Runtime) Resume(ctx context.Context, id string) (Info, error) {
	p, ok := r.drv.(driver.Pauser)
	if !ok {
		return Info{}, errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("RUNTIME=%s cannot pause or resume", r.drv.Name()))
	}
	ds, err := p.Resume(ctx, id)
	return toInfo(ds), err
}

// Remove deletes a sandbox whatever its state; a missing one is no error.
func (r *Runtime) Remove(ctx context.Context, id string) error { return r.drv.Remove(ctx, id) }

// Logs writes sandboxd's own log (not the shell's output) to w.
func (r *Runtime) Logs(ctx context.Context, id string, w io.Writer, tail int) error {
	return r.drv.Logs(ctx, id, w, tail)
}

// GCOptions tune GC.
type GCOptions struct {
	// Match limits GC to sandboxes carrying all these labels (one
	// evaluation run's, say); nil means every sbx sandbox.
	Match map[string]string
	// Grace is how old an abandoned sandbox must be before it is
	// collected, so a sandbox being created right now is never taken.
	Grace time.Duration
	// DryRun lists what would be removed without removing it.
	DryRun bool
}

// GC removes sandboxes nothing holds: not kept alive (keep_runtime_alive,
// `sbx run -d`), and either stopped or created by a process on this host
// that has exited. Paused sandboxes are held. It returns what it removed
// (or, with DryRun, would remove).
func (r *Runtime) GC(ctx context.Context, o GCOptions) ([]Info, error) {
	all, err := r.drv.List(ctx, o.Match)
	if err != nil {
		return nil, err
	}
	var out []Info
	var errs []error
	for _, s := range all {
		if !collectable(s, o.Grace, time.Now()) {
			continue
		}
		// A running sandbox restarted after its creator left (`sbx start`)
		// is someone's again; the listing does not say when it started,
		// so ask.
		if s.State == driver.StateRunning {
			full, err := r.drv.Inspect(ctx, s.ID)
			if err != nil || restarted(full) {
				continue
			}
		}
		out = append(out, toInfo(s))
		if o.DryRun {
			continue
		}
		if err := r.drv.Remove(ctx, s.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.ID, err))
		}
	}
	// Volumes holding other sbx builds' sandboxd, once nothing uses them.
	if p, ok := r.drv.(interface {
		PruneVolumes(context.Context, time.Duration, bool) ([]string, error)
	}); ok {
		vols, err := p.PruneVolumes(ctx, max(o.Grace, 10*time.Minute), o.DryRun)
		errs = append(errs, err)
		for _, v := range vols {
			verb := "removed"
			if o.DryRun {
				verb = "would remove"
			}
			fmt.Fprintf(r.progress, "%s volume %s (sandboxd of an earlier sbx build)\n", verb, v)
		}
	}
	return out, errors.Join(errs...)
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
		AutoRemove: co.Remove && r.drv.Name() == "docker",
	}
	for k, v := range co.Labels {
		sp.Labels[k] = v
	}
	if keep {
		sp.Labels[driver.LabelKeep] = "true"
	}
	if co.Remove {
		sp.Labels[driver.LabelRemove] = "true"
	}
	sp.User, sp.UserID = runtimeUser(cfg)

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

	switch r.drv.Name() {
	case "local":
		// The sandbox is the host: the workspace is a host directory.
		sp.WorkDir = cfg.WorkspaceBase
	default:
		for _, v := range append(cfg.Mounts(), co.Volumes...) {
			if v.Overlay {
				r.log.Warn("overlay volumes are not supported; skipped", "volume", v.Source+":"+v.Target)
				continue
			}
			sp.Mounts = append(sp.Mounts, driver.Mount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly, Volume: v.Named})
		}
		img, err := r.images.resolve(ctx, co.Image, cfg)
		if err != nil {
			return driver.Spec{}, err
		}
		sp.Image, sp.Prebuilt = img.Ref, img.Prebuilt
	}
	return sp, nil
}

// runtimeUser picks the user the agent runs as. With run_as_openhands the
// user is "openhands" with SANDBOX_USER_ID (default: the host user's uid),
// so files the agent writes into a mounted workspace belong to the host
// user; a host uid of 0 means root in the sandbox too. RUNTIME_USERNAME and
// RUNTIME_UID override both.
func runtimeUser(cfg *config.Config) (string, int) {
	name, uid := "root", 0
	if cfg.RunAsOpenHands && cfg.Sandbox.UserID != 0 {
		name, uid = "openhands", cfg.Sandbox.UserID
	}
	if cfg.Host.RuntimeUsername != "" {
		name = cfg.Host.RuntimeUsername
	}
	if cfg.Host.RuntimeUID != nil {
		uid = *cfg.Host.RuntimeUID
	}
	return name, uid
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
