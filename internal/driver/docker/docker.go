// Package docker is the default driver: one container per sandbox through
// the Docker Engine API, any image, with sandboxd injected from a read-only
// volume instead of a per-image build.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/docker/image"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/internal/version"
)

// Ports inside the container. The engine picks the host side, so these can
// be fixed; they sit in OpenHands' ranges so agents that read APP_PORT_1/2
// see familiar numbers.
const (
	ServerPort = 30000
	AppPort1   = 50000
	AppPort2   = 55000
)

// SWEReXPort is where sandboxd's SWE-ReX listener binds inside a
// container (Spec.SWEReX): SWE-ReX's own default, as its docs assume.
const SWEReXPort = launch.SWEReXPort

// labelSWEReX marks a sandbox started with a SWE-ReX listener; its value
// is the port that listener binds (SWEReXPort, or the host port in the
// host's network). It holds nothing secret: the token is in the
// container's environment, beside SESSION_API_KEY, where only those who
// can inspect the container (and so already control it) read it. On a
// shared engine every client of the engine is such a one; sbx assumes a
// single user's engine, as OpenHands does.
const labelSWEReX = "dev.sbx.swerex"

// labelWorkload marks a sandbox that runs a Spec.Workload, not sandboxd:
// Start and Resume do not wait for sandboxd's /alive.
const labelWorkload = "dev.sbx.workload"

// NamePrefix starts every sandbox container's name.
const NamePrefix = "sbx-"

// DefaultPidsLimit bounds a fork bomb in one sandbox from taking the host's
// PID space; OpenHands sets no limit.
const DefaultPidsLimit = 4096

// engine is the part of the Docker client this driver uses.
type engine interface {
	Ping(ctx context.Context, o client.PingOptions) (client.PingResult, error)
	ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, o client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerStop(ctx context.Context, id string, o client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerKill(ctx context.Context, id string, o client.ContainerKillOptions) (client.ContainerKillResult, error)
	ContainerPause(ctx context.Context, id string, o client.ContainerPauseOptions) (client.ContainerPauseResult, error)
	ContainerUnpause(ctx context.Context, id string, o client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error)
	ContainerLogs(ctx context.Context, id string, o client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	ContainerAttach(ctx context.Context, id string, o client.ContainerAttachOptions) (client.ContainerAttachResult, error)
	CopyToContainer(ctx context.Context, id string, o client.CopyToContainerOptions) (client.CopyToContainerResult, error)
	VolumeInspect(ctx context.Context, id string, o client.VolumeInspectOptions) (client.VolumeInspectResult, error)
	VolumeCreate(ctx context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error)
	VolumeList(ctx context.Context, o client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, id string, o client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)
	NetworkConnect(ctx context.Context, id string, o client.NetworkConnectOptions) (client.NetworkConnectResult, error)
	NetworkDisconnect(ctx context.Context, id string, o client.NetworkDisconnectOptions) (client.NetworkDisconnectResult, error)
	NetworkCreate(ctx context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error)
	NetworkInspect(ctx context.Context, id string, o client.NetworkInspectOptions) (client.NetworkInspectResult, error)
	NetworkList(ctx context.Context, o client.NetworkListOptions) (client.NetworkListResult, error)
	NetworkRemove(ctx context.Context, id string, o client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	ContainerWait(ctx context.Context, id string, o client.ContainerWaitOptions) client.ContainerWaitResult
	ServerVersion(ctx context.Context, o client.ServerVersionOptions) (client.ServerVersionResult, error)
}

// Options configure a Driver.
type Options struct {
	// Client talks to the engine; nil means one from DOCKER_HOST & co.
	Client *client.Client
	// Sandboxd finds the binary injected into sandboxes; nil means the
	// default search.
	Sandboxd *sandboxdbin.Locator
	Logger   *slog.Logger
	// HTTPClient reaches sandboxd for the readiness probe.
	HTTPClient *http.Client
	// StartTimeout bounds how long a sandbox may take to answer after its
	// container started; 0 is 120 s, as in OpenHands.
	StartTimeout time.Duration
	// DirectAddresses fills Endpoint.Direct and PortMapping.Direct with
	// the container's own address: set when the engine runs on this host
	// (a unix socket), where its bridge addresses are reachable.
	DirectAddresses bool
	// URLHost replaces the host of endpoint URLs (DOCKER_HOST_ADDR,
	// local_runtime_url) when sbx runs in a container of its own and
	// reaches published ports through the host's address.
	URLHost string
	// Images are the image settings sandboxes start from (ResolveImage).
	Images Images
	// PullFailures remembers images that could not be pulled; nil keeps
	// them for this driver's life only.
	PullFailures *image.PullFailures
	// Progress receives one-line reports of long steps (pulls, builds,
	// image fallbacks); nil discards them.
	Progress io.Writer
	// Egress configures the enforcement of network policies.
	Egress EgressOptions
}

// ServesSWEReX implements driver.SWEReXServer.
func (d *Driver) ServesSWEReX() {}

// RunsWorkloads implements driver.WorkloadRunner.
func (d *Driver) RunsWorkloads() {}

// Driver is the Docker driver.
type Driver struct {
	api     engine
	closer  io.Closer
	bin     *sandboxdbin.Locator
	log     *slog.Logger
	hc      *http.Client
	urlHost string
	direct  bool
	// startTimeout bounds the wait for a started container to answer.
	startTimeout time.Duration

	// volumes remembers sandboxd volumes known to be filled, so only the
	// first sandbox of a process pays for a volume check.
	volMu   sync.Mutex
	volumes map[string]bool

	// Images: img is nil for a driver made on a bare engine interface.
	img          image.API
	images       Images
	progress     io.Writer
	pullFailures *image.PullFailures
	// imgSem serialises resolutions (a pull or build must not run twice
	// for a burst of creates) while letting a waiter give up with its ctx.
	imgSem   chan struct{}
	imgCache map[imageKey]driver.Image

	// egressMu serialises making proxies and their networks in this
	// process, so a burst of creates makes one of each.
	egressMu  sync.Mutex
	egress    EgressOptions
	egressBin *sandboxdbin.Locator
}

// New connects to the engine. It does not ping it: Create reports an
// unreachable engine with the cause and what to do.
func New(opts Options) (*Driver, error) {
	d := &Driver{bin: opts.Sandboxd, log: opts.Logger, hc: opts.HTTPClient, urlHost: opts.URLHost, direct: opts.DirectAddresses && opts.URLHost == "", startTimeout: opts.StartTimeout, volumes: map[string]bool{},
		images: opts.Images, progress: opts.Progress, pullFailures: opts.PullFailures,
		imgSem: make(chan struct{}, 1), imgCache: map[imageKey]driver.Image{}, egress: opts.Egress, egressBin: opts.Egress.Binary}
	if d.egressBin == nil {
		d.egressBin = &sandboxdbin.Locator{Name: sandboxdbin.EgressName, Package: sandboxdbin.EgressPackage, EnvVar: sandboxdbin.EnvEgress}
	}
	if d.progress == nil {
		d.progress = io.Discard
	}
	if d.pullFailures == nil {
		d.pullFailures = &image.PullFailures{}
	}
	if d.startTimeout <= 0 {
		d.startTimeout = 120 * time.Second
	}
	if d.bin == nil {
		d.bin = &sandboxdbin.Locator{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.hc == nil {
		d.hc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	if opts.Client != nil {
		d.api, d.img = opts.Client, opts.Client
		return d, nil
	}
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, "docker client: "+err.Error(), err)
	}
	d.api, d.img, d.closer = c, c, c
	return d, nil
}

// Close releases the engine connection of a Driver that made its own.
func (d *Driver) Close() error {
	if d.closer != nil {
		return d.closer.Close()
	}
	return nil
}

// ContainerName is the deterministic name of a session's container.
func ContainerName(id string) string { return NamePrefix + id }

// Ping checks that the engine answers.
func (d *Driver) Ping(ctx context.Context) error {
	_, err := d.api.Ping(ctx, client.PingOptions{})
	return classify(err, "docker engine")
}

// Create implements driver.Driver.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) (driver.Sandbox, error) {
	if err := validID(spec.ID); err != nil {
		return driver.Sandbox{}, err
	}
	if spec.Image == "" {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrInvalidArgument, "no image given")
	}
	if spec.Workload != nil {
		return d.createWorkload(ctx, spec)
	}
	// A caller that chose the session key (sandbox-api hands it to its
	// client before the sandbox exists) gets it; otherwise a fresh one.
	token := spec.Env[launch.EnvSessionAPIKey]
	if token == "" {
		token = ids.Token()
	}
	var vol string
	if !spec.Prebuilt {
		var err error
		if vol, err = d.sandboxdVolume(ctx, spec.Image); err != nil {
			return driver.Sandbox{}, err
		}
	}
	guards, err := d.makeGuards(ctx, spec)
	if err != nil {
		return driver.Sandbox{}, err
	}
	sb, err := d.create(ctx, spec, vol, token, guards)
	if err != nil && vol != "" && errors.Is(err, errMissingSandboxd) {
		// The volume was created by a process that died before filling
		// it; fill it again once.
		d.log.Warn("sandboxd volume was empty; refilling", "volume", vol)
		if rerr := d.resetVolume(ctx, vol, spec.Image); rerr != nil {
			err = rerr
		} else {
			sb, err = d.create(ctx, spec, vol, token, guards)
		}
	}
	if err != nil && spec.GuardMode == driver.GuardAuto && hasOverlay(guards) && isVolumeMountFailure(err) {
		// Creating an overlay volume checks nothing; the start is where an
		// engine that cannot mount one (Docker Desktop's shares, rootless,
		// SELinux) says so. The guard falls back to a copy.
		d.log.Warn("the engine cannot mount an overlay for a guarded folder; copying it instead", "err", err)
		if err = d.toCopy(ctx, spec.ID, guards); err == nil {
			sb, err = d.create(ctx, spec, vol, token, guards)
		}
	}
	if err != nil && len(guards) > 0 {
		_ = d.removeGuardVolumes(ctx, spec.ID)
	}
	return sb, err
}

var errMissingSandboxd = errors.New("sandboxd missing from its volume")

func (d *Driver) create(ctx context.Context, spec driver.Spec, vol, token string, guards []*guardMount) (driver.Sandbox, error) {
	name := ContainerName(spec.ID)
	egress, err := d.egressFor(ctx, spec)
	if err != nil {
		return driver.Sandbox{}, err
	}
	created := false
	if egress != nil {
		// Runs after the container's own discard (defers run last
		// first): the network goes once nothing of the sandbox is on it.
		defer func() {
			if !created {
				d.unregisterAt(context.WithoutCancel(ctx), egress.proxy, egress.ip)
				if err := d.dropSandboxNet(context.WithoutCancel(ctx), spec.ID); err != nil {
					d.log.Warn("removing the network of a sandbox that failed to start", "sandbox", spec.ID, "err", err)
				}
			}
		}()
	}
	cfg, hostCfg, err := d.containerConfig(spec, vol, token, egress, guards)
	if err != nil {
		return driver.Sandbox{}, err
	}
	var netCfg *network.NetworkingConfig
	if egress != nil {
		// .3 of its own network, always: the proxy's registration and
		// the sandbox's resolver are set before it starts.
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			egress.network: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: egress.ip}}}}
	}
	t0 := time.Now()
	retried := false
again:
	res, err := d.createContainer(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hostCfg, NetworkingConfig: netCfg})
	if err != nil {
		if (cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err)) && ctx.Err() == nil && !retried && d.pendingRemoval(ctx, name) {
			// The same id's `--rm` sandbox was just closed and the engine
			// is still deleting it: its name is free in a moment.
			retried = true
			goto again
		}
		if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
			return driver.Sandbox{}, errdefs.Wrap(errdefs.ErrAlreadyExists,
				fmt.Sprintf("sandbox %q already exists (container %s): attach to it, or remove it with `sbx rm %s`", spec.ID, name, spec.ID), err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// The engine may still make the container of a call that was
			// given up on; nobody would ever learn of it.
			d.discardOwned(ctx, name, token)
		}
		if cerrdefs.IsNotFound(err) {
			return driver.Sandbox{}, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("image %s: %v", spec.Image, err), err)
		}
		return driver.Sandbox{}, classify(err, "create container "+name)
	}
	id := res.ID
	ok := false
	defer func() {
		if !ok {
			d.discard(ctx, id)
		}
	}()
	if err := ctx.Err(); err != nil {
		// Cancelled while the engine was creating it.
		return driver.Sandbox{}, fmt.Errorf("create container %s: %w", name, err)
	}
	// An auto-removed container's log is gone by the time a start-up exit
	// is noticed, so its output is read from the start through an attach.
	var early *tailBuffer
	if spec.AutoRemove {
		if att, err := d.api.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true}); err == nil {
			early = &tailBuffer{max: 8 << 10}
			go func() {
				_, _ = stdcopy.StdCopy(early, early, att.Reader)
				att.Close()
			}()
			defer att.Close()
		}
	}
	if err := d.beforeStart(ctx, id, guards); err != nil {
		return driver.Sandbox{}, err
	}
	// The overlays' manifests are being taken; every return waits for
	// them, so none writes after Create returned.
	defer func() {
		if err := afterStart(guards); err != nil && ok {
			ok = false
			d.discard(ctx, id)
		}
	}()
	t1 := time.Now()
	if _, err := d.api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if vol != "" && isMissingSandboxd(err) {
			return driver.Sandbox{}, fmt.Errorf("%w: %v", errMissingSandboxd, err)
		}
		return driver.Sandbox{}, classify(err, "start container "+name)
	}
	for _, n := range spec.Network.Additional {
		if _, err := d.api.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: id}); err != nil {
			return driver.Sandbox{}, classify(err, fmt.Sprintf("connect %s to network %s", name, n))
		}
	}
	t2 := time.Now()
	sb, err := d.waitReady(ctx, spec.ID, id, early)
	if err != nil {
		return driver.Sandbox{}, err
	}
	if err := afterStart(guards); err != nil {
		return driver.Sandbox{}, fmt.Errorf("the start manifest of a guarded folder: %w", err)
	}
	ok, created = true, true
	d.log.Debug("container ready", "name", name, "create", t1.Sub(t0), "start", t2.Sub(t1), "ready", time.Since(t2))
	return sb, nil
}

// createContainer runs ContainerCreate to its end even when ctx ends
// meanwhile (bounded by its own 30 s): the engine goes on creating the
// container of an abandoned call, and only a call that returns says which
// container to remove. The caller checks ctx afterwards.
func (d *Driver) createContainer(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return d.api.ContainerCreate(cctx, o)
}

// discard removes a container a failed Create made, even when the
// caller's context has ended, so a failure leaves nothing behind.
func (d *Driver) discard(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := d.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return
	}
	// An auto-removed container may already be on its way out; wait for
	// the engine to finish, so the caller's error means nothing is left.
	if isRemovalInProgress(err) {
		if err = d.waitRemoved(ctx, id); err == nil {
			return
		}
	}
	d.log.Warn("removing a container that failed to start", "id", id, "err", err)
}

func (d *Driver) waitReady(ctx context.Context, sid, cid string, early *tailBuffer) (driver.Sandbox, error) {
	ctx, cancel := context.WithTimeout(ctx, d.startTimeout)
	defer cancel()
	ins, err := d.api.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil {
		return driver.Sandbox{}, classify(err, "inspect "+ContainerName(sid))
	}
	sb := d.toSandbox(ctx, ins.Container)
	if sb.Endpoint.URL == "" {
		if err := d.exited(ctx, cid, early); err != nil {
			return driver.Sandbox{}, err
		}
		return driver.Sandbox{}, fmt.Errorf("container %s publishes no server port", ContainerName(sid))
	}
	if err := driver.WaitAlive(ctx, d.hc, sb.Endpoint.URL, func(ctx context.Context) error { return d.exited(ctx, cid, early) }); err != nil {
		if ctx.Err() != nil && d.urlHost != "" {
			return driver.Sandbox{}, fmt.Errorf("%w; sandboxd is reached through %s, but ports are published on runtime_binding_address (default 127.0.0.1): set SANDBOX_RUNTIME_BINDING_ADDRESS to an address that host reaches", err, sb.Endpoint.URL)
		}
		return driver.Sandbox{}, err
	}
	sb.State = driver.StateRunning
	return sb, nil
}

// exited returns an error quoting the container's last log lines when it
// is no longer running, so a sandbox that dies at start-up is reported at
// once with its cause instead of after a readiness timeout.
func (d *Driver) exited(ctx context.Context, cid string, early *tailBuffer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ins, err := d.api.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			msg := "the sandbox container exited during start-up and was removed"
			if early != nil {
				if t := lastLines(early.String(), 20); t != "" {
					msg += "; its last output:\n" + t
				}
			}
			return errdefs.New(errdefs.ErrUnavailable, msg)
		}
		return nil
	}
	st := ins.Container.State
	if st == nil || st.Running || st.Status == container.StateCreated {
		return nil
	}
	var logs strings.Builder
	if err := d.copyLogs(ctx, cid, &logs, 20); err != nil && early != nil {
		logs.Reset()
		logs.WriteString(lastLines(early.String(), 20))
	}
	msg := fmt.Sprintf("sandbox container %s exited during start-up (exit code %d", strings.TrimPrefix(ins.Container.Name, "/"), st.ExitCode)
	if st.OOMKilled {
		msg += ", killed for lack of memory"
	}
	if st.Error != "" {
		msg += ", " + st.Error
	}
	msg += ")"
	if t := strings.TrimSpace(logs.String()); t != "" {
		msg += "; its last output:\n" + t
	}
	return errdefs.New(errdefs.ErrUnavailable, msg)
}

func (d *Driver) containerConfig(spec driver.Spec, vol, token string, egress *sandboxNet, guards []*guardMount) (*container.Config, *container.HostConfig, error) {
	workDir := spec.WorkDir
	if workDir == "" {
		workDir = "/workspace"
	}
	user := spec.User
	if user == "" {
		user = "root"
	}
	port := ServerPort
	if spec.Network.HostNetwork {
		// Sharing the host's network means sandboxd binds a host port;
		// take one the kernel says is free now. The window between this
		// check and sandboxd's bind is small, and a loss shows as a
		// start-up exit with "address already in use".
		p, err := freeHostPort()
		if err != nil {
			return nil, nil, err
		}
		port = p
	}
	l := launch.Default()
	l.Port, l.WorkDir, l.Username, l.UserID, l.Plugins = port, workDir, user, spec.UserID, spec.Plugins
	l.SessionAPIKey = token
	if spec.Network.HostNetwork {
		// In the host's network sandboxd's own listener is the published
		// port: keep it on the binding address, not every interface.
		b, err := bindAddr(spec.Network.BindAddress)
		if err != nil {
			return nil, nil, err
		}
		l.Host = b.String()
	}
	cmd := l.Argv()
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	env["port"] = strconv.Itoa(port)
	swxPort := 0
	if spec.SWEReX != nil {
		swxPort = SWEReXPort
		swxHost := "0.0.0.0"
		if spec.Network.HostNetwork {
			// As sandboxd's own port: a free host port, on the binding
			// address only.
			p, err := freeHostPort()
			if err != nil {
				return nil, nil, fmt.Errorf("a host port for SWE-ReX: %w", err)
			}
			swxPort, swxHost = p, l.Host
		}
		tok := spec.SWEReX.Token
		if tok == "" {
			tok = ids.UUID()
		}
		env[launch.EnvSWEReXAddr] = net.JoinHostPort(swxHost, strconv.Itoa(swxPort))
		env[launch.EnvSWEReXToken] = tok
	}
	if egress != nil && !egress.none {
		// Programs that read proxy variables use the proxy; those that
		// do not still reach it, through the resolver's answers.
		u := "http://" + net.JoinHostPort(egress.proxyIP.String(), strconv.Itoa(egressProxyPort))
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			env[k] = u
		}
		env["NO_PROXY"], env["no_proxy"] = "localhost,127.0.0.1,::1", "localhost,127.0.0.1,::1"
	}
	if !spec.Network.HostNetwork && !spec.Network.NoAppPorts {
		env["APP_PORT_1"] = strconv.Itoa(AppPort1)
		env["APP_PORT_2"] = strconv.Itoa(AppPort2)
	}
	if _, set := env["DEBUG"]; spec.Debug && !set {
		env["DEBUG"] = "true"
	}
	l.Env = env
	envList := l.Environ()

	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[driver.LabelManaged] = "true"
	labels[driver.LabelSession] = spec.ID
	labels[driver.LabelVersion] = version.Version
	if swxPort != 0 {
		labels[labelSWEReX] = strconv.Itoa(swxPort)
	} else {
		delete(labels, labelSWEReX)
	}
	delete(labels, labelEgress)
	delete(labels, labelEgressPolicy)
	if egress != nil {
		labels[labelEgress] = egress.key
		labels[labelEgressPolicy] = spec.Network.Policy.String()
	}

	cfg := &container.Config{
		Image:      spec.Image,
		Entrypoint: []string{driver.SandboxdPath},
		Cmd:        cmd,
		Env:        envList,
		Labels:     labels,
		// sandboxd ends its shells on SIGTERM within milliseconds; a long
		// stop timeout only delays `sbx stop` when something hangs.
		StopTimeout: intPtr(10),
	}
	hc := &container.HostConfig{
		AutoRemove: spec.AutoRemove,
		ShmSize:    spec.Resources.ShmBytes,
	}
	if egress != nil {
		// Raw sockets could forge anything; nothing a policed sandbox
		// runs needs them (ping is the one casualty).
		hc.CapDrop = append(hc.CapDrop, "NET_RAW")
		// An internal network publishes nothing: the host reaches
		// sandboxd through the proxy's relay (toSandbox).
		hc.NetworkMode = container.NetworkMode(egress.network)
		// The engine's resolver would forward to the host's resolvers;
		// the proxy answers allowed names (none: no name) and logs the
		// rest.
		hc.DNS = []netip.Addr{egress.proxyIP}
		cfg.ExposedPorts = network.PortSet{}
		for _, p := range []int{ServerPort, swxPort} {
			if p != 0 {
				cfg.ExposedPorts[network.MustParsePort(strconv.Itoa(p)+"/tcp")] = struct{}{}
			}
		}
	} else if spec.Network.HostNetwork {
		hc.NetworkMode = "host"
	} else {
		bind, err := bindAddr(spec.Network.BindAddress)
		if err != nil {
			return nil, nil, err
		}
		cfg.ExposedPorts = network.PortSet{}
		hc.PortBindings = network.PortMap{}
		ports := []int{ServerPort}
		if !spec.Network.NoAppPorts {
			ports = append(ports, AppPort1, AppPort2)
		}
		if swxPort != 0 {
			ports = append(ports, swxPort)
		}
		for _, p := range ports {
			np := network.MustParsePort(strconv.Itoa(p) + "/tcp")
			cfg.ExposedPorts[np] = struct{}{}
			// An empty host port lets the engine choose a free one, which
			// is race-free, unlike probing for a free port first.
			hc.PortBindings[np] = []network.PortBinding{{HostIP: bind}}
		}
	}
	if vol != "" {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: vol, Target: "/opt/sbx", ReadOnly: true,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	if len(guards) > 0 {
		labels[driver.LabelGuard] = "true"
	}
	hc.Mounts = append(hc.Mounts, guardMounts(guards)...)
	hc.Mounts = append(hc.Mounts, plainMounts(spec)...)
	applyResources(hc, spec.Resources)
	return cfg, hc, nil
}

func bindAddr(s string) (netip.Addr, error) {
	if s == "" {
		s = "127.0.0.1"
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("runtime_binding_address %q is not an IP address", s), err)
	}
	return a, nil
}

// Inspect implements driver.Driver.
func (d *Driver) Inspect(ctx context.Context, id string) (driver.Sandbox, error) {
	if err := validID(id); err != nil {
		return driver.Sandbox{}, err
	}
	_, sb, err := d.own(ctx, id)
	return sb, err
}

// own finds a session's container and checks sbx made it, so that no
// operation by id ever touches a container of someone else's that happens
// to be called sbx-<id>. It returns the container's id.
func (d *Driver) own(ctx context.Context, id string) (string, driver.Sandbox, error) {
	cid, c, err := d.ownContainer(ctx, id)
	if err != nil {
		return "", driver.Sandbox{}, err
	}
	return cid, d.toSandbox(ctx, c), nil
}

func (d *Driver) ownContainer(ctx context.Context, id string) (string, container.InspectResponse, error) {
	if err := validID(id); err != nil {
		return "", container.InspectResponse{}, err
	}
	ins, err := d.api.ContainerInspect(ctx, ContainerName(id), client.ContainerInspectOptions{})
	if err != nil {
		return "", container.InspectResponse{}, classify(err, "sandbox "+id)
	}
	if ins.Container.Config == nil || ins.Container.Config.Labels[driver.LabelManaged] != "true" {
		return "", container.InspectResponse{}, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %s: container %s is not one of sbx's", id, ContainerName(id)))
	}
	return ins.Container.ID, ins.Container, nil
}

// discardOwned removes container name if this Create made it, which only
// the token in its environment tells: a sandbox of the same name that was
// there before is someone else's. A create call that was given up on may
// still be under way in the engine, so the name is watched for a while.
func (d *Driver) discardOwned(ctx context.Context, name, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for deadline := time.Now().Add(5 * time.Second); ; {
		ins, err := d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err == nil {
			c := ins.Container
			if c.Config != nil && c.Config.Labels[driver.LabelManaged] == "true" && envValue(c.Config.Env, "SESSION_API_KEY") == token {
				d.discard(ctx, c.ID)
			}
			return
		}
		if !cerrdefs.IsNotFound(err) || time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context, match map[string]string) ([]driver.Sandbox, error) {
	// Only sandboxes carry a session label (the short-lived container that
	// fills the sandboxd volume does not).
	f := client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", driver.LabelSession)
	for k, v := range match {
		f = f.Add("label", k+"="+v)
	}
	res, err := d.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, classify(err, "list sandboxes")
	}
	out := make([]driver.Sandbox, 0, len(res.Items))
	var relays map[string]*proxyInfo // proxy key -> its proxy, when needed
	for _, c := range res.Items {
		sb := fromSummary(c, d.urlHost)
		if key := c.Labels[labelEgress]; key != "" && sb.State == driver.StateRunning && c.NetworkSettings != nil {
			if relays == nil {
				relays = d.relayProxies(ctx)
			}
			if ep := c.NetworkSettings.Networks[sandboxNetName(sb.ID)]; ep != nil && ep.IPAddress.IsValid() && relays[key] != nil {
				px := relays[key]
				swx, _ := strconv.Atoi(c.Labels[labelSWEReX])
				sb.Endpoint.URL = relayURL(px.control, px.token, ep.IPAddress, ServerPort)
				if swx != 0 {
					sb.SWEReX.URL = relayURL(px.control, px.token, ep.IPAddress, swx)
				}
			}
		}
		out = append(out, sb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Start implements driver.Restarter.
func (d *Driver) Start(ctx context.Context, id string) (driver.Sandbox, error) {
	cid, sb, err := d.own(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	switch sb.State {
	case driver.StatePaused:
		return d.Resume(ctx, id)
	case driver.StateRunning:
	default:
		// A policed sandbox's proxy is on its network and knows it
		// before it runs (a proxy removed meanwhile is made anew).
		if _, c, err := d.ownContainer(ctx, id); err == nil {
			if err := d.restartEgress(ctx, id, c); err != nil {
				return driver.Sandbox{}, err
			}
		}
		if _, err := d.api.ContainerStart(ctx, cid, client.ContainerStartOptions{}); err != nil {
			return driver.Sandbox{}, classify(err, "start "+id)
		}
	}
	if sb.Labels[labelWorkload] == "true" {
		return d.Inspect(ctx, id)
	}
	return d.waitReady(ctx, id, cid, nil)
}

// Stop implements driver.Restarter.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if err := validID(id); err != nil {
		return err
	}
	cid, _, err := d.own(ctx, id)
	if err != nil {
		return err
	}
	secs := int((grace + time.Second - 1) / time.Second)
	_, err = d.api.ContainerStop(ctx, cid, client.ContainerStopOptions{Timeout: &secs})
	return classify(err, "stop "+id)
}

// Kill implements driver.Killer: it asks a sandbox created with
// AutoRemove to end now and lets the engine delete it, which is how `sbx
// run --rm` ends as fast as `docker run --rm`. It sends SIGTERM, not
// SIGKILL: the engine answers a SIGKILL only once the container is gone
// (about 200 ms), a SIGTERM at once, and sandboxd ends every process of
// the sandbox on SIGTERM within milliseconds. The removal finishes in the
// background; a Create of the same id waits for it (pendingRemoval). A
// sandbox without AutoRemove is removed.
func (d *Driver) Kill(ctx context.Context, id string) error {
	cid, c, err := d.ownContainer(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.HostConfig == nil || !c.HostConfig.AutoRemove {
		return d.Remove(ctx, id)
	}
	d.unregister(ctx, id, c)
	_, err = d.api.ContainerKill(ctx, cid, client.ContainerKillOptions{Signal: "TERM"})
	if cerrdefs.IsNotFound(err) || isNotRunning(err) {
		err = nil
	}
	_, policed := policedOf(c)
	if err == nil && c.Config != nil && (c.Config.Labels[driver.LabelGuard] == "true" || policed) {
		// The guard's changes are applied right after a `--rm` run ends,
		// which needs the overlay unmounted: the container gone. A
		// policed sandbox's network goes once its container has.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := d.waitRemoved(wctx, cid); err != nil {
			return err
		}
		if policed {
			return d.dropSandboxNet(ctx, id)
		}
		return nil
	}
	return classify(err, "kill "+id)
}

// pendingRemoval waits, when the container called name is an sbx sandbox
// on its way out (auto-removed, and killed or exited), until the engine
// has deleted it, and reports whether it did: then a Create that found
// the name taken may try again. Anything else (created but never started,
// paused, still running after a short grace) is someone's sandbox, and
// the name stays taken at once.
func (d *Driver) pendingRemoval(ctx context.Context, name string) bool {
	ins, err := d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return true
	}
	c := ins.Container
	if err != nil || c.Config == nil || c.Config.Labels[driver.LabelManaged] != "true" ||
		c.HostConfig == nil || !c.HostConfig.AutoRemove || c.State == nil {
		return false
	}
	switch c.State.Status {
	case container.StateRunning:
		// Killed a moment ago, sandboxd takes milliseconds to exit.
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := d.wait(gctx, c.ID, container.WaitConditionNotRunning)
		cancel()
		if cerrdefs.IsNotFound(err) {
			return true
		}
		if err != nil {
			return false
		}
	case container.StateExited, container.StateDead, container.StateRemoving:
	default:
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return d.waitRemoved(rctx, c.ID) == nil
}

// waitRemoved returns once the engine has deleted container cid; a removal
// the engine reports as failed is an error.
func (d *Driver) waitRemoved(ctx context.Context, cid string) error {
	err := d.wait(ctx, cid, container.WaitConditionRemoved)
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return classify(err, "waiting for the removal of "+cid)
}

// wait is one ContainerWait, read to its end: the client's goroutine
// sends on an unbuffered channel, so a wait left unread would leak it and
// its connection. A cancelled ctx ends the wait through its error channel.
func (d *Driver) wait(ctx context.Context, cid string, cond container.WaitCondition) error {
	w := d.api.ContainerWait(ctx, cid, client.ContainerWaitOptions{Condition: cond})
	select {
	case r := <-w.Result:
		if r.Error != nil && r.Error.Message != "" {
			return errors.New(r.Error.Message)
		}
		return nil
	case err := <-w.Error:
		return err
	}
}

// Remove implements driver.Driver.
func (d *Driver) Remove(ctx context.Context, id string) error {
	// A container named sbx-<id> that sbx did not make is not removed:
	// for sbx it does not exist.
	cid, c, err := d.ownContainer(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		// Guard volumes and a policed sandbox's network outlive an
		// auto-removed container.
		return errors.Join(d.dropSandboxNet(ctx, id), d.removeGuardVolumes(ctx, id))
	}
	if err != nil {
		return err
	}
	d.unregister(ctx, id, c)
	guarded := c.Config != nil && c.Config.Labels[driver.LabelGuard] == "true"
	_, err = d.api.ContainerRemove(ctx, cid, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		if _, ok := policedOf(c); ok {
			if err := d.dropSandboxNet(ctx, id); err != nil {
				return err
			}
		}
		if !guarded {
			return nil
		}
		return d.removeGuardVolumes(ctx, id)
	}
	// A removal already under way (AutoRemove after a kill) is waited
	// for: the name is free when Remove returns.
	if isRemovalInProgress(err) {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := d.waitRemoved(wctx, cid); err != nil {
			return err
		}
		return errors.Join(d.dropSandboxNet(ctx, id), d.removeGuardVolumes(ctx, id))
	}
	return classify(err, "remove "+id)
}

// Pause implements driver.Pauser with the engine's cgroup freezer: every
// process keeps its state and resumes where it was.
func (d *Driver) Pause(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return err
	}
	cid, _, err := d.own(ctx, id)
	if err != nil {
		return err
	}
	_, err = d.api.ContainerPause(ctx, cid, client.ContainerPauseOptions{})
	return classify(err, "pause "+id)
}

// Resume implements driver.Pauser.
func (d *Driver) Resume(ctx context.Context, id string) (driver.Sandbox, error) {
	if err := validID(id); err != nil {
		return driver.Sandbox{}, err
	}
	cid, sb, err := d.own(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	if _, err := d.api.ContainerUnpause(ctx, cid, client.ContainerUnpauseOptions{}); err != nil {
		return driver.Sandbox{}, classify(err, "resume "+id)
	}
	if sb.Labels[labelWorkload] == "true" {
		return d.Inspect(ctx, id)
	}
	return d.waitReady(ctx, id, cid, nil)
}

// Logs implements driver.Driver.
func (d *Driver) Logs(ctx context.Context, id string, w io.Writer, tail int) error {
	if err := validID(id); err != nil {
		return err
	}
	cid, _, err := d.own(ctx, id)
	if err != nil {
		return err
	}
	return d.copyLogs(ctx, cid, w, tail)
}

func (d *Driver) copyLogs(ctx context.Context, cid string, w io.Writer, tail int) error {
	o := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all"}
	if tail > 0 {
		o.Tail = strconv.Itoa(tail)
	}
	rc, err := d.api.ContainerLogs(ctx, cid, o)
	if err != nil {
		return classify(err, "logs of "+cid)
	}
	defer rc.Close()
	_, err = stdcopy.StdCopy(w, w, rc)
	return err
}

// toSandbox describes a container, with direct addresses where the
// driver has them.
func (d *Driver) toSandbox(ctx context.Context, c container.InspectResponse) driver.Sandbox {
	sb := toSandbox(c, d.urlHost)
	if pol, ok := policedOf(c); ok {
		if (sb.State == driver.StateRunning || sb.State == driver.StatePaused) && pol.ip.IsValid() {
			ins, err := d.api.ContainerInspect(ctx, egressPrefix+pol.key, client.ContainerInspectOptions{})
			if err == nil {
				if px, err := proxyOf(ins.Container); err == nil {
					d.relayed(&sb, px, pol.ip, c.Config)
				}
			}
		}
		return sb
	}
	if !d.direct || c.NetworkSettings == nil || sb.Endpoint.URL == "" && len(sb.AppPorts) == 0 {
		return sb
	}
	var ip netip.Addr
	for name, ep := range c.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress.IsValid() && (!ip.IsValid() || name == "bridge") {
			ip = ep.IPAddress
		}
	}
	if !ip.IsValid() {
		return sb
	}
	at := func(port int) string { return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(port)) }
	if sb.Endpoint.URL != "" && !strings.Contains(sb.Endpoint.URL, ip.String()) {
		port := ServerPort
		if p := envValue(c.Config.Env, "port"); p != "" {
			port, _ = strconv.Atoi(p)
		}
		sb.Endpoint.Direct = at(port)
	}
	for i := range sb.AppPorts {
		sb.AppPorts[i].Direct = at(sb.AppPorts[i].Sandbox)
	}
	return sb
}

func toSandbox(c container.InspectResponse, urlHost string) driver.Sandbox {
	sb := driver.Sandbox{Name: strings.TrimPrefix(c.Name, "/"), Driver: "docker"}
	if c.Config != nil {
		sb.Image = c.Config.Image
		sb.Labels = c.Config.Labels
		sb.ID = c.Config.Labels[driver.LabelSession]
	}
	if t, err := time.Parse(time.RFC3339Nano, c.Created); err == nil {
		sb.Created = t
	}
	sb.State = driver.StateUnknown
	if c.State != nil {
		sb.State = mapState(c.State.Status)
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && t.Year() > 1 {
			sb.Started = t
		}
	}
	if sb.State != driver.StateRunning && sb.State != driver.StatePaused {
		return sb
	}
	host := urlHost
	var token string
	if c.Config != nil {
		token = envValue(c.Config.Env, "SESSION_API_KEY")
	}
	swxPort, swxToken := swerexOf(c.Config)
	if c.HostConfig != nil && c.HostConfig.NetworkMode == "host" {
		if c.Config != nil {
			h := hostOr(host, "127.0.0.1")
			if p := envValue(c.Config.Env, "port"); p != "" {
				sb.Endpoint = driver.Endpoint{URL: "http://" + net.JoinHostPort(h, p), Token: token}
			}
			if swxPort != 0 {
				sb.SWEReX = driver.Endpoint{URL: "http://" + net.JoinHostPort(h, strconv.Itoa(swxPort)), Token: swxToken}
			}
		}
		return sb
	}
	if c.NetworkSettings == nil {
		return sb
	}
	if _, ok := policedOf(c); ok {
		// Nothing is published from an internal network: the driver
		// fills in the relay through the proxy (Driver.toSandbox).
		sb.Endpoint.Token, sb.SWEReX.Token = token, swxToken
		return sb
	}
	for p, binds := range c.NetworkSettings.Ports {
		if len(binds) == 0 || p.Proto() != "tcp" {
			continue
		}
		b := binds[0]
		h := host
		if h == "" {
			h = "127.0.0.1"
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				h = b.HostIP.String()
			}
		}
		url := "http://" + net.JoinHostPort(h, b.HostPort)
		hp, _ := strconv.Atoi(b.HostPort)
		switch int(p.Num()) {
		case ServerPort:
			sb.Endpoint = driver.Endpoint{URL: url, Token: token}
		case swxPort:
			sb.SWEReX = driver.Endpoint{URL: url, Token: swxToken}
		default:
			sb.AppPorts = append(sb.AppPorts, driver.PortMapping{Sandbox: int(p.Num()), Host: hp, URL: url})
		}
	}
	sort.Slice(sb.AppPorts, func(i, j int) bool { return sb.AppPorts[i].Sandbox < sb.AppPorts[j].Sandbox })
	return sb
}

func fromSummary(c container.Summary, urlHost string) driver.Sandbox {
	sb := driver.Sandbox{Driver: "docker", Image: c.Image, Labels: c.Labels, State: mapState(c.State),
		Created: time.Unix(c.Created, 0), ID: c.Labels[driver.LabelSession]}
	if len(c.Names) > 0 {
		sb.Name = strings.TrimPrefix(c.Names[0], "/")
	}
	swxPort, _ := strconv.Atoi(c.Labels[labelSWEReX])
	if c.Labels[labelEgress] != "" {
		// The endpoints go through the proxy's relay: List fills them in.
		return sb
	}
	for _, p := range c.Ports {
		if p.PublicPort == 0 || p.Type != "tcp" {
			continue
		}
		h := urlHost
		if h == "" {
			h = "127.0.0.1"
			if p.IP.IsValid() && !p.IP.IsUnspecified() {
				h = p.IP.String()
			}
		}
		url := "http://" + net.JoinHostPort(h, strconv.Itoa(int(p.PublicPort)))
		switch {
		case p.PrivatePort == ServerPort:
			sb.Endpoint.URL = url
		case swxPort != 0 && int(p.PrivatePort) == swxPort:
			// A listing carries no environment: the token is Inspect's.
			sb.SWEReX.URL = url
		default:
			sb.AppPorts = append(sb.AppPorts, driver.PortMapping{Sandbox: int(p.PrivatePort), Host: int(p.PublicPort), URL: url})
		}
	}
	sort.Slice(sb.AppPorts, func(i, j int) bool { return sb.AppPorts[i].Sandbox < sb.AppPorts[j].Sandbox })
	return sb
}

// swerexOf is the SWE-ReX listener's port inside the sandbox and its
// token, from what Create recorded (labelSWEReX, the environment); 0 for
// a sandbox without one.
func swerexOf(cfg *container.Config) (int, string) {
	if cfg == nil {
		return 0, ""
	}
	p, err := strconv.Atoi(cfg.Labels[labelSWEReX])
	if err != nil || p <= 0 {
		return 0, ""
	}
	return p, envValue(cfg.Env, launch.EnvSWEReXToken)
}

func mapState(s container.ContainerState) driver.State {
	switch s {
	case container.StateRunning, container.StateRestarting:
		return driver.StateRunning
	case container.StatePaused:
		return driver.StatePaused
	case container.StateCreated:
		return driver.StateCreated
	case container.StateExited, container.StateDead, container.StateRemoving:
		return driver.StateStopped
	}
	return driver.StateUnknown
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func hostOr(h, def string) string {
	if h == "" {
		return def
	}
	return h
}

func validID(id string) error { return driver.CheckID(id) }

// classify maps an engine error to sbx's classes, keeping the engine's
// text, and says what to do when the engine cannot be reached.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	switch {
	case cerrdefs.IsNotFound(err):
		return errdefs.Wrap(errdefs.ErrNotFound, what+": not found", err)
	case cerrdefs.IsConflict(err):
		return errdefs.Wrap(errdefs.ErrConflict, what+": "+err.Error(), err)
	case cerrdefs.IsInvalidArgument(err):
		return errdefs.Wrap(errdefs.ErrInvalidArgument, what+": "+err.Error(), err)
	case client.IsErrConnectionFailed(err):
		return errdefs.Wrap(errdefs.ErrUnavailable, what+": cannot reach the Docker engine ("+err.Error()+"); is it running, and is DOCKER_HOST right? Without Docker, RUNTIME=local runs sandboxes as host processes", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func freeHostPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func intPtr(i int) *int { return &i }

func int64Ptr(i int64) *int64 { return &i }

func boolPtr(b bool) *bool { return &b }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// plainMounts are spec's bind and volume mounts, guarded ones left out
// (they are made by guard.go).
func plainMounts(spec driver.Spec) []mount.Mount {
	var out []mount.Mount
	for _, m := range spec.Mounts {
		if m.Guard {
			continue
		}
		mm := mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.Volume {
			mm.Type = mount.TypeVolume
		}
		out = append(out, mm)
	}
	return out
}

// applyResources sets spec's limits on hc, with the default pids limit.
func applyResources(hc *container.HostConfig, r driver.Resources) {
	hc.NanoCPUs = int64(r.CPUs * 1e9)
	hc.Memory = r.MemoryBytes
	hc.MemorySwap = r.MemorySwapBytes
	hc.CpusetCpus = r.CpusetCPUs
	pids := r.PidsLimit
	if pids == 0 {
		pids = DefaultPidsLimit
	}
	if pids > 0 {
		hc.PidsLimit = &pids
	}
	if r.GPU || len(r.GPUDevices) > 0 {
		req := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}, Count: -1}
		if len(r.GPUDevices) > 0 {
			req.Count, req.DeviceIDs = 0, r.GPUDevices
		}
		hc.DeviceRequests = []container.DeviceRequest{req}
	}
}
