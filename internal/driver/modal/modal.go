// Package modal is the driver for RUNTIME=modal: each sandbox is a Modal
// Sandbox, made and ended through Modal's official Go SDK
// (github.com/modal-labs/modal-client/go), with sandboxd as its
// entrypoint and sandboxd's port reached through an encrypted Modal
// tunnel. Actions, files and shells go from the host to that tunnel; the
// SDK does lifecycle and the one copy of sandboxd into a base image.
//
// Image: runtime_container_image (an image made by `sbx image build` and
// pushed to a registry) runs as is, sandboxd already in it. Otherwise the
// base image runs and sandboxd is copied in after creation, through one
// exec of the SDK: Modal's image builder cannot COPY a local file, and
// copying in keeps sbx free of a registry of its own. The entrypoint waits
// on a FIFO that the copy opens once the binary is in place, so nothing
// polls.
//
// A Modal sandbox keeps nothing when it ends, so the driver has no
// Restarter; Modal's memory snapshots restore into a new sandbox with new
// tunnels, not the same one frozen, so it has no Pauser either. Closing a
// session terminates the sandbox unless keep_runtime_alive is set (the
// SDK's rule for drivers without Restarter).
//
// Everything the driver must find again from another process lives in the
// sandbox's Modal tags: sbx's labels, and under tagPrefix the session key,
// the image and the creation time, which Labels never show.
package modal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	modalsdk "github.com/modal-labs/modal-client/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/internal/version"
)

// Name is the driver's name, RUNTIME=modal.
const Name = "modal"

// DefaultApp is the Modal App sbx's sandboxes are created in.
const DefaultApp = "sbx"

// ServerPort is sandboxd's port inside the sandbox, the one tunnelled.
const ServerPort = 30000

// errNoTunnel: Modal has not (yet) opened sandboxd's tunnel.
var errNoTunnel = errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("no tunnel to port %d yet", ServerPort))

// Tags that are the driver's own records, not sbx labels.
const (
	tagPrefix  = "dev.sbx.modal."
	tagKey     = tagPrefix + "key"
	tagImage   = tagPrefix + "image"
	tagCreated = tagPrefix + "created"
)

// Images are the images the driver starts sandboxes from.
type Images struct {
	// Runtime is a registry image with sandboxd at driver.SandboxdPath
	// (runtime_container_image); when set it is used as is.
	Runtime string
	// Base is the image sandboxd is copied into (base_container_image).
	Base string
}

// Resources are what a sandbox asks Modal for when its Spec sets none.
type Resources struct {
	CPU       float64
	MemoryMiB int
}

// Options configure a Driver.
type Options struct {
	// Client is the Modal SDK client; the Driver does not close it.
	Client *modalsdk.Client
	// App is the Modal App sandboxes are made in; "" is DefaultApp.
	App string
	// Sandboxd finds the binary copied into base images; nil is the
	// default search.
	Sandboxd  *sandboxdbin.Locator
	Logger    *slog.Logger
	Images    Images
	Resources Resources
	// Timeout is Modal's hard lifetime of a sandbox; 0 is DefaultTimeout.
	Timeout time.Duration
	// IdleTimeout lets Modal end a sandbox nobody uses; 0 is none.
	IdleTimeout time.Duration
	// StartTimeout bounds Create after Modal accepted the sandbox
	// (copy-in and readiness), on top of ctx; 0 is three minutes.
	StartTimeout time.Duration
	// HTTPClient probes /alive through the tunnel; nil is a client of its
	// own.
	HTTPClient *http.Client
}

// Driver runs sandboxes on Modal. It is safe for concurrent use.
type Driver struct {
	c            *modalsdk.Client
	appName      string
	sandboxd     *sandboxdbin.Locator
	log          *slog.Logger
	images       Images
	res          Resources
	timeout      time.Duration
	idle         time.Duration
	startTimeout time.Duration
	hc           *http.Client

	appMu sync.Mutex
	app   *modalsdk.App
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.ImageResolver = (*Driver)(nil)
)

// New returns a driver on an SDK client.
func New(o Options) (*Driver, error) {
	if o.Client == nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "modal driver: no Modal client")
	}
	d := &Driver{c: o.Client, appName: o.App, sandboxd: o.Sandboxd, log: o.Logger, images: o.Images, res: o.Resources,
		timeout: o.Timeout, idle: o.IdleTimeout, startTimeout: o.StartTimeout, hc: o.HTTPClient}
	if d.appName == "" {
		d.appName = DefaultApp
	}
	if d.sandboxd == nil {
		d.sandboxd = &sandboxdbin.Locator{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.timeout <= 0 {
		d.timeout = DefaultTimeout
	}
	if d.startTimeout <= 0 {
		d.startTimeout = 3 * time.Minute
	}
	if d.hc == nil {
		d.hc = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}}
	}
	return d, nil
}

// NewClient makes the SDK client for creds. The server is Modal's unless
// MODAL_SERVER_URL or the profile's server_url says otherwise (the SDK
// reads both).
func NewClient(creds Credentials, log *slog.Logger) (*modalsdk.Client, error) {
	p := &modalsdk.ClientParams{Logger: log}
	if !creds.FromProfile {
		p.TokenID, p.TokenSecret = creds.TokenID, creds.TokenSecret
	}
	c, err := modalsdk.NewClientWithOptions(p)
	if err != nil {
		return nil, classify(err, "RUNTIME=modal: Modal client ("+creds.Source+")")
	}
	return c, nil
}

func sandboxName(id string) string { return "sbx-" + id }

func checkID(id string) error {
	if err := driver.CheckID(id); err != nil {
		return err
	}
	// Modal's object names stop at 64 characters.
	if len(sandboxName(id)) > 64 {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("sandbox id %q is too long for Modal: at most 60 characters", id))
	}
	return nil
}

// appHandle finds (or makes) the App once per Driver. A failure is not
// remembered: the next call tries again.
func (d *Driver) appHandle(ctx context.Context) (*modalsdk.App, error) {
	d.appMu.Lock()
	defer d.appMu.Unlock()
	if d.app != nil {
		return d.app, nil
	}
	app, err := d.c.Apps.FromName(ctx, d.appName, &modalsdk.AppFromNameParams{CreateIfMissing: true})
	if err != nil {
		return nil, classify(err, "modal: app "+d.appName)
	}
	d.app = app
	return app, nil
}

// ResolveImage implements driver.ImageResolver: an override or the base
// image gets sandboxd copied in; runtime_container_image has it already.
func (d *Driver) ResolveImage(_ context.Context, override string) (driver.Image, error) {
	switch {
	case override != "":
		return driver.Image{Ref: override, Prebuilt: override == d.images.Runtime}, nil
	case d.images.Runtime != "":
		return driver.Image{Ref: d.images.Runtime, Prebuilt: true, Kind: "runtime"}, nil
	case d.images.Base != "":
		return driver.Image{Ref: d.images.Base}, nil
	}
	return driver.Image{}, errdefs.New(errdefs.ErrInvalidArgument, "RUNTIME=modal: no image: set base_container_image or runtime_container_image")
}

// entryScript is the entrypoint of a sandbox whose image lacks sandboxd:
// it waits on a FIFO until the copy-in says the binary is in place, then
// becomes sandboxd. Whichever of the two comes first makes the FIFO, and
// opening it blocks until the other side does, so neither polls.
const entryScript = `set -e
d=/opt/sbx
mkdir -p "$d"
[ -p "$d/start" ] || mkfifo "$d/start" 2>/dev/null || [ -p "$d/start" ]
read _ < "$d/start"
exec "$d/sandboxd" "$@"`

// copyScript is the exec that receives sandboxd on its stdin.
const copyScript = `set -e
d=/opt/sbx
mkdir -p "$d"
cat > "$d/.sandboxd.part"
chmod 0755 "$d/.sandboxd.part"
mv -f "$d/.sandboxd.part" "$d/sandboxd"
[ -p "$d/start" ] || mkfifo "$d/start" 2>/dev/null || [ -p "$d/start" ]
echo go > "$d/start"`

// params turns a Spec into the SDK's create parameters and the session
// key. It is pure, so the mapping is tested without Modal.
func (d *Driver) params(spec driver.Spec, token string, now time.Time) (modalsdk.SandboxCreateParams, error) {
	if len(spec.Mounts) > 0 {
		m := spec.Mounts[0]
		return modalsdk.SandboxCreateParams{}, errdefs.New(errdefs.ErrNotImplemented,
			fmt.Sprintf("RUNTIME=modal cannot mount %s at %s: a Modal sandbox does not see this machine's files; copy them in with `sbx cp`", m.Source, m.Target))
	}
	if spec.SWEReX != nil {
		return modalsdk.SandboxCreateParams{}, errdefs.New(errdefs.ErrNotImplemented, "RUNTIME=modal does not serve SWE-ReX yet")
	}
	if spec.Image == "" {
		return modalsdk.SandboxCreateParams{}, errdefs.New(errdefs.ErrInvalidArgument, "modal: the spec names no image")
	}
	workDir := spec.WorkDir
	if workDir == "" {
		workDir = "/workspace"
	}
	user := spec.User
	if user == "" {
		user = "root"
	}
	l := launch.Default()
	l.Port, l.WorkDir, l.Username, l.UserID, l.Plugins = ServerPort, workDir, user, spec.UserID, spec.Plugins
	l.SessionAPIKey = token
	env := maps.Clone(spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["port"] = strconv.Itoa(ServerPort)
	if _, set := env["DEBUG"]; spec.Debug && !set {
		env["DEBUG"] = "true"
	}
	l.Env = env
	sbEnv := map[string]string{}
	for _, kv := range l.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		sbEnv[k] = v
	}

	cmd := append([]string{driver.SandboxdPath}, l.Argv()...)
	if !spec.Prebuilt {
		cmd = append([]string{"/bin/sh", "-c", entryScript, "sbx-entry"}, l.Argv()...)
	}

	tags := map[string]string{}
	for k, v := range spec.Labels {
		if strings.HasPrefix(k, tagPrefix) {
			return modalsdk.SandboxCreateParams{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("label %q: the prefix %s is the modal driver's own", k, tagPrefix))
		}
		tags[k] = v
	}
	tags[driver.LabelManaged] = "true"
	tags[driver.LabelSession] = spec.ID
	tags[driver.LabelVersion] = version.Version
	tags[tagKey] = token
	tags[tagImage] = spec.Image
	tags[tagCreated] = now.UTC().Format(time.RFC3339Nano)

	p := modalsdk.SandboxCreateParams{
		Command:        cmd,
		Env:            sbEnv,
		EncryptedPorts: []int{ServerPort},
		Name:           sandboxName(spec.ID),
		Tags:           tags,
		Timeout:        d.timeout.Truncate(time.Second),
		IdleTimeout:    d.idle.Truncate(time.Second),
		CPU:            d.res.CPU,
		MemoryMiB:      d.res.MemoryMiB,
	}
	if r := spec.Resources; r.CPUs > 0 {
		p.CPU = r.CPUs
	}
	if r := spec.Resources; r.MemoryBytes > 0 {
		p.MemoryMiB = int((r.MemoryBytes + 1<<20 - 1) >> 20)
	}
	if spec.Resources.GPU || len(spec.Resources.GPUDevices) > 0 {
		return modalsdk.SandboxCreateParams{}, errdefs.New(errdefs.ErrNotImplemented, "RUNTIME=modal: GPUs are not supported by sbx's Modal driver yet")
	}
	return p, nil
}

// Create makes a Modal sandbox for spec, copies sandboxd in where the image
// lacks it, and returns once sandboxd answers /alive through the tunnel.
// On any failure after Modal accepted it, the sandbox is terminated.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) (driver.Sandbox, error) {
	if spec.ID == "" {
		spec.ID = ids.New(8)
	}
	sb, err := d.create(ctx, spec)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// The SDK reports a call its context ended as a gRPC status
		// (Canceled, DeadlineExceeded), which reads as Modal failing;
		// the caller gave up (Ctrl-C, a timeout), and errors.Is must say
		// so.
		d.log.Debug("modal: create given up", "id", spec.ID, "err", err)
		return driver.Sandbox{}, fmt.Errorf("modal: create sandbox %s: %w", sandboxName(spec.ID), ctx.Err())
	}
	return sb, err
}

func (d *Driver) create(ctx context.Context, spec driver.Spec) (driver.Sandbox, error) {
	if err := checkID(spec.ID); err != nil {
		return driver.Sandbox{}, err
	}
	// Modal has CIDR allow-lists of its own but no domain allow-list sbx
	// could map a policy onto; say so rather than run unpoliced.
	if err := driver.CheckPolicy("modal", "sbx does not map egress policies onto Modal's network settings yet", spec); err != nil {
		return driver.Sandbox{}, err
	}
	if spec.Image == "" {
		// A caller that did not ask ResolveImage gets what it would have.
		img, err := d.ResolveImage(ctx, "")
		if err != nil {
			return driver.Sandbox{}, err
		}
		spec.Image, spec.Prebuilt = img.Ref, img.Prebuilt
	}
	// A key the caller chose (sandbox-api, a warm pool) is the sandbox's;
	// otherwise a random one, as every driver does.
	token := spec.Env[launch.EnvSessionAPIKey]
	if token == "" {
		token = ids.Token()
	}
	now := time.Now()
	p, err := d.params(spec, token, now)
	if err != nil {
		return driver.Sandbox{}, err
	}
	var bin sandboxdbin.Binary
	if !spec.Prebuilt {
		// Found before anything is made on Modal, so a missing binary
		// costs no sandbox.
		if bin, err = d.sandboxd.Locate(ctx); err != nil {
			return driver.Sandbox{}, fmt.Errorf("modal sandbox %s: %w", spec.ID, err)
		}
	}
	app, err := d.appHandle(ctx)
	if err != nil {
		return driver.Sandbox{}, err
	}
	img := d.c.Images.FromRegistry(spec.Image, nil)
	sb, err := d.c.Sandboxes.Create(ctx, app, img, &p)
	if err != nil {
		if ctx.Err() != nil {
			// Modal may have made it before the call was given up: a
			// sandbox of this name and key is this Create's, and goes.
			d.discard(context.WithoutCancel(ctx), spec.ID, token)
		}
		return driver.Sandbox{}, classify(err, "modal: create sandbox "+sandboxName(spec.ID))
	}
	// The handle's command-router connection (used by the copy-in) is
	// released when Create returns; the sandbox itself is not touched.
	defer sb.Detach()
	fail := func(err error) (driver.Sandbox, error) {
		// The caller's ctx may be over: the sandbox must go all the same.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, terr := sb.Terminate(tctx, &modalsdk.SandboxTerminateParams{Wait: true}); terr != nil {
			d.log.Warn("modal: terminate after a failed create", "id", spec.ID, "sandbox", sb.SandboxID, "err", terr)
		}
		return driver.Sandbox{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, d.startTimeout)
	defer cancel()
	if !spec.Prebuilt {
		if err := d.copyIn(sctx, sb, bin); err != nil {
			return fail(d.startFailure(ctx, sb, spec.ID, err))
		}
	}
	url, err := d.tunnelURL(sctx, sb, 50*time.Second)
	if err != nil {
		return fail(d.startFailure(ctx, sb, spec.ID, err))
	}
	gone := func(ctx context.Context) error { return d.exited(ctx, sb, spec.ID) }
	if err := driver.WaitAlive(sctx, d.hc, url, gone); err != nil {
		return fail(err)
	}
	return driver.Sandbox{
		ID: spec.ID, Name: sandboxName(spec.ID), Driver: Name, Image: spec.Image, State: driver.StateRunning,
		Created: now.UTC(), Started: now.UTC(), Labels: labelsOf(p.Tags),
		Endpoint: driver.Endpoint{URL: url, Token: token},
	}, nil
}

// discard terminates the running sandbox of id if it carries key, the
// mark of the Create that gave up on it (another Create's sandbox of the
// same id has another key).
func (d *Driver) discard(ctx context.Context, id, key string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sb, err := d.find(ctx, id)
	if err != nil {
		return
	}
	tags, err := sb.GetTags(ctx, nil)
	if err != nil || tags[tagKey] != key {
		return
	}
	if _, err := sb.Terminate(ctx, &modalsdk.SandboxTerminateParams{Wait: true}); err != nil {
		d.log.Warn("modal: terminate after an abandoned create", "id", id, "sandbox", sb.SandboxID, "err", err)
	}
}

// copyIn streams sandboxd into the sandbox through one exec and releases
// the entrypoint waiting for it.
func (d *Driver) copyIn(ctx context.Context, sb *modalsdk.Sandbox, bin sandboxdbin.Binary) error {
	f, err := os.Open(bin.Path)
	if err != nil {
		return classifyLocal(err, "modal: sandboxd")
	}
	defer f.Close()
	timeout := d.startTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	p, err := sb.Exec(ctx, []string{"/bin/sh", "-c", copyScript}, &modalsdk.SandboxExecParams{
		Stdout: modalsdk.Ignore, Timeout: max(timeout.Truncate(time.Second), time.Second)})
	if err != nil {
		return classify(err, "modal: copy sandboxd in")
	}
	// The SDK's stdin writes take no context; one goroutine carries them
	// so that ctx still ends the wait.
	werr := make(chan error, 1)
	go func() {
		// Chunks well under gRPC's message limit, few enough round trips.
		_, err := io.CopyBuffer(p.Stdin, f, make([]byte, 4<<20))
		if cerr := p.Stdin.Close(); err == nil {
			err = cerr
		}
		werr <- err
	}()
	select {
	case err := <-werr:
		if err != nil {
			return classify(err, "modal: copy sandboxd in")
		}
	case <-ctx.Done():
		return fmt.Errorf("modal: copy sandboxd in: %w", ctx.Err())
	}
	code, err := p.Wait(ctx, nil)
	if err != nil {
		return classify(err, "modal: copy sandboxd in")
	}
	if code != 0 {
		msg, _ := io.ReadAll(io.LimitReader(p.Stderr, 4096))
		return errdefs.New(errdefs.ErrInternal, fmt.Sprintf("modal: copying sandboxd into the sandbox exited %d: %s (the image needs /bin/sh, mkfifo, cat, chmod and mv)", code, strings.TrimSpace(string(msg))))
	}
	return nil
}

// tunnelURL is sandboxd's tunnel, waiting up to wait for Modal to open it.
func (d *Driver) tunnelURL(ctx context.Context, sb *modalsdk.Sandbox, wait time.Duration) (string, error) {
	t, err := sb.Tunnels(ctx, wait, nil)
	if err != nil {
		return "", classify(err, "modal: tunnels of "+sb.SandboxID)
	}
	tn, ok := t[ServerPort]
	if !ok {
		return "", fmt.Errorf("modal: sandbox %s: %w", sb.SandboxID, errNoTunnel)
	}
	return tn.URL(), nil
}

// exited is WaitAlive's check: an error quoting sandboxd's output once
// the sandbox has finished.
func (d *Driver) exited(ctx context.Context, sb *modalsdk.Sandbox, id string) error {
	code, err := sb.Poll(ctx, nil)
	if err != nil || code == nil {
		return nil
	}
	return errdefs.New(errdefs.ErrInternal, fmt.Sprintf("modal sandbox %s exited with code %d while starting: %s", id, *code, d.tail(ctx, sb, 20)))
}

// startFailure prefers the sandbox's own exit, with its output, over the
// step that noticed it.
func (d *Driver) startFailure(ctx context.Context, sb *modalsdk.Sandbox, id string, err error) error {
	if gerr := d.exited(context.WithoutCancel(ctx), sb, id); gerr != nil {
		return gerr
	}
	return err
}

func (d *Driver) tail(ctx context.Context, sb *modalsdk.Sandbox, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b strings.Builder
	if err := writeLogs(ctx, sb, &b, n); err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	s := strings.TrimSpace(b.String())
	if s == "" {
		return "(no output)"
	}
	return s
}

func writeLogs(ctx context.Context, sb *modalsdk.Sandbox, w io.Writer, n int) error {
	const most = 20000 // the SDK's limit on one tail
	if n <= 0 || n > most {
		n = most
	}
	entries, err := sb.Logs.Tail(ctx, &modalsdk.LogTailParams{Entries: n})
	if err != nil {
		return classify(err, "modal: logs")
	}
	// Entries are written as Modal stored them (lines or chunks); only a
	// final newline is added where the output lacks one.
	last := "\n"
	for e, err := range entries {
		if err != nil {
			return classify(err, "modal: logs")
		}
		if e.Message == "" {
			continue
		}
		if _, err := io.WriteString(w, e.Message); err != nil {
			return classifyLocal(err, "modal: writing logs")
		}
		last = e.Message
	}
	if !strings.HasSuffix(last, "\n") {
		if _, err := io.WriteString(w, "\n"); err != nil {
			return classifyLocal(err, "modal: writing logs")
		}
	}
	return nil
}

// find is the running sandbox named for id.
func (d *Driver) find(ctx context.Context, id string) (*modalsdk.Sandbox, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	sb, err := d.c.Sandboxes.FromName(ctx, d.appName, sandboxName(id), nil)
	if err != nil {
		return nil, classify(err, "modal sandbox "+id)
	}
	return sb, nil
}

// describe reads a sandbox's tags and tunnel into a driver.Sandbox. One
// still starting (no tunnel within wait) is StateCreated, without an
// endpoint.
func (d *Driver) describe(ctx context.Context, sb *modalsdk.Sandbox, wait time.Duration) (driver.Sandbox, error) {
	tags, err := sb.GetTags(ctx, nil)
	if err != nil {
		return driver.Sandbox{}, classify(err, "modal: tags of "+sb.SandboxID)
	}
	id := tags[driver.LabelSession]
	out := driver.Sandbox{ID: id, Name: sandboxName(id), Driver: Name, Image: tags[tagImage], State: driver.StateRunning, Labels: labelsOf(tags)}
	if t, err := time.Parse(time.RFC3339Nano, tags[tagCreated]); err == nil {
		out.Created = t
	}
	code, err := sb.Poll(ctx, nil)
	if err != nil {
		return driver.Sandbox{}, classify(err, "modal: state of "+sb.SandboxID)
	}
	if code != nil {
		out.State = driver.StateStopped
		return out, nil
	}
	url, err := d.tunnelURL(ctx, sb, wait)
	var notYet modalsdk.SandboxTimeoutError
	switch {
	case errors.As(err, &notYet) || errors.Is(err, errNoTunnel):
		out.State = driver.StateCreated
		return out, nil
	case err != nil:
		return driver.Sandbox{}, err
	}
	out.Endpoint = driver.Endpoint{URL: url, Token: tags[tagKey]}
	return out, nil
}

// labelsOf is the sbx labels among tags: the driver's records stay out.
func labelsOf(tags map[string]string) map[string]string {
	l := map[string]string{}
	for k, v := range tags {
		if !strings.HasPrefix(k, tagPrefix) {
			l[k] = v
		}
	}
	return l
}

// Inspect reports the running sandbox of id. A Modal sandbox that has
// finished is gone: nothing of it can be started again.
func (d *Driver) Inspect(ctx context.Context, id string) (driver.Sandbox, error) {
	sb, err := d.find(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	out, err := d.describe(ctx, sb, 10*time.Second)
	if err != nil {
		return driver.Sandbox{}, err
	}
	if out.State == driver.StateStopped {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrNotFound, "modal sandbox "+id+" has finished")
	}
	return out, nil
}

// List returns sbx's running sandboxes in the App whose labels include
// match; Modal filters by tags on its side.
func (d *Driver) List(ctx context.Context, match map[string]string) ([]driver.Sandbox, error) {
	for k := range match {
		if strings.HasPrefix(k, tagPrefix) {
			return nil, nil
		}
	}
	app, err := d.appHandle(ctx)
	if err != nil {
		return nil, err
	}
	tags := maps.Clone(match)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[driver.LabelManaged] = "true"
	seq, err := d.c.Sandboxes.List(ctx, &modalsdk.SandboxListParams{AppID: app.AppID, Tags: tags})
	if err != nil {
		return nil, classify(err, "modal: list sandboxes")
	}
	var out []driver.Sandbox
	for sb, err := range seq {
		if err != nil {
			return nil, classify(err, "modal: list sandboxes")
		}
		// A sandbox still starting is listed without waiting for it.
		s, err := d.describe(ctx, sb, time.Second)
		if errors.Is(err, errdefs.ErrNotFound) || err == nil && s.State == driver.StateStopped {
			continue // finished between the listing and the look
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Remove terminates the sandbox and waits until Modal reports it finished,
// so that its name is free for the next Create.
func (d *Driver) Remove(ctx context.Context, id string) error {
	sb, err := d.find(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := sb.Terminate(ctx, &modalsdk.SandboxTerminateParams{Wait: true}); err != nil {
		if errors.Is(classify(err, ""), errdefs.ErrNotFound) {
			return nil
		}
		return classify(err, "modal: terminate "+id)
	}
	return nil
}

// Logs copies the sandbox's entrypoint output (sandboxd's) to w.
func (d *Driver) Logs(ctx context.Context, id string, w io.Writer, tail int) error {
	sb, err := d.find(ctx, id)
	if err != nil {
		return err
	}
	return writeLogs(ctx, sb, w, tail)
}

// classifyLocal classes an error of this machine's (a file, the caller's
// writer). One that has a class already keeps it: a writer may refuse
// more for its own reasons (a size limit).
func classifyLocal(err error, what string) error {
	for _, c := range errdefs.Classes() {
		if errors.Is(err, c) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	msg := what + ": " + err.Error()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errdefs.Wrap(errdefs.ErrNotFound, msg, err)
	case errors.Is(err, fs.ErrPermission):
		return errdefs.Wrap(errdefs.ErrPermission, msg, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return errdefs.Wrap(errdefs.ErrInsufficientStorage, msg, err)
	}
	return errdefs.Wrap(errdefs.ErrInternal, msg, err)
}

// classify turns an SDK or gRPC error into sbx's classes.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if what != "" {
		msg = what + ": " + msg
	}
	var (
		nf  modalsdk.NotFoundError
		ae  modalsdk.AlreadyExistsError
		inv modalsdk.InvalidError
		rx  modalsdk.ResourceExhaustedError
		to  modalsdk.TimeoutError
		cf  modalsdk.ConflictError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if what == "" {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	case errors.As(err, &nf):
		return errdefs.Wrap(errdefs.ErrNotFound, msg, err)
	case errors.As(err, &ae):
		return errdefs.Wrap(errdefs.ErrAlreadyExists, msg, err)
	case errors.As(err, &inv):
		return errdefs.Wrap(errdefs.ErrInvalidArgument, msg, err)
	case errors.As(err, &rx), errors.As(err, &to):
		return errdefs.Wrap(errdefs.ErrUnavailable, msg, err)
	case errors.As(err, &cf):
		return errdefs.Wrap(errdefs.ErrConflict, msg, err)
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.NotFound:
			return errdefs.Wrap(errdefs.ErrNotFound, msg, err)
		case codes.AlreadyExists:
			return errdefs.Wrap(errdefs.ErrAlreadyExists, msg, err)
		case codes.InvalidArgument, codes.OutOfRange:
			return errdefs.Wrap(errdefs.ErrInvalidArgument, msg, err)
		case codes.Unauthenticated:
			return errdefs.Wrap(errdefs.ErrUnauthorized, msg+" (check the Modal token)", err)
		case codes.PermissionDenied:
			return errdefs.Wrap(errdefs.ErrPermission, msg, err)
		case codes.FailedPrecondition, codes.Aborted:
			return errdefs.Wrap(errdefs.ErrConflict, msg, err)
		case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
			return errdefs.Wrap(errdefs.ErrUnavailable, msg, err)
		case codes.Unimplemented:
			return errdefs.Wrap(errdefs.ErrNotImplemented, msg, err)
		}
	}
	return errdefs.Wrap(errdefs.ErrInternal, msg, err)
}
