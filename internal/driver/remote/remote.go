// Package remote is RUNTIME=remote: sandboxes started by a runtime API
// service (sbx's sandbox-api, or any service speaking
// spec/runtime-api.md), selected with the variables OpenHands users
// already set (SANDBOX_REMOTE_RUNTIME_API_URL, SANDBOX_API_KEY). A
// sandbox is an OpenHands V0 runtime: the driver asks for the action
// execution server's command line, which sandbox-api serves with
// sandboxd, and reaches it at the runtime's URL through the service's
// proxy with the runtime's session key. Like every driver it only does
// lifecycle; actions go to the URL.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/launch"
)

// Name is the RUNTIME value.
const Name = "remote"

// Options configure a Driver.
type Options struct {
	// URL is the runtime API's base URL (remote_runtime_api_url).
	URL string
	// APIKey is sent as X-API-Key (api_key).
	APIKey string
	// ResourceFactor is remote_runtime_resource_factor (1, 2, 4 or 8).
	ResourceFactor int
	// RuntimeClass is remote_runtime_class ("", "gvisor", "sysbox").
	RuntimeClass string
	// InitTimeout bounds a start (remote_runtime_init_timeout); 0 is 180 s.
	InitTimeout time.Duration
	// APITimeout bounds each API call (remote_runtime_api_timeout); 0 is 180 s.
	APITimeout time.Duration
	// PollInterval is how often readiness is polled; 0 is 100 ms (OpenHands
	// polls every 2 s; sbx's service answers sooner than that).
	PollInterval time.Duration
	// HTTPClient, if set, is used for every call.
	HTTPClient *http.Client
	// RuntimeImage and BaseImage are runtime_container_image and
	// base_container_image: the image a sandbox starts from, the first
	// that is set. The service's engine must have it; sandbox-api puts
	// sandboxd into it, so any image works (no build, no OpenHands inside).
	RuntimeImage, BaseImage string
}

// Driver talks to one runtime API with one key.
type Driver struct {
	o    Options
	base string
	hc   *http.Client
}

// New checks the options and makes a driver; it does not call the API.
func New(o Options) (*Driver, error) {
	if o.URL == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "RUNTIME=remote needs the runtime API's URL: set SANDBOX_REMOTE_RUNTIME_API_URL (sandbox.remote_runtime_api_url)")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("SANDBOX_REMOTE_RUNTIME_API_URL %q is not an http(s) URL", o.URL))
	}
	if o.APIKey == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "RUNTIME=remote needs an API key: set SANDBOX_API_KEY (sandbox.api_key); sandbox-api prints one with `sandbox-api keys create NAME`")
	}
	switch o.ResourceFactor {
	case 0:
		o.ResourceFactor = 1
	case 1, 2, 4, 8:
	default:
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("remote_runtime_resource_factor %d: must be 1, 2, 4 or 8", o.ResourceFactor))
	}
	if o.InitTimeout <= 0 {
		o.InitTimeout = 180 * time.Second
	}
	if o.APITimeout <= 0 {
		o.APITimeout = 180 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	// The SDK strips one trailing slash; so do we (spec §3).
	return &Driver{o: o, base: strings.TrimSuffix(o.URL, "/"), hc: hc}, nil
}

// runtimeObject is what the API returns for a runtime (spec §5), with
// sbx's extension field labels.
type runtimeObject struct {
	RuntimeID     string            `json:"runtime_id"`
	SessionID     string            `json:"session_id"`
	URL           string            `json:"url"`
	SessionAPIKey string            `json:"session_api_key"`
	Status        string            `json:"status"`
	PodStatus     string            `json:"pod_status"`
	Image         string            `json:"image"`
	Reason        string            `json:"reason"`
	Labels        map[string]string `json:"labels"`
	CreatedAt     string            `json:"created_at"`
	WorkHosts     map[string]int    `json:"work_hosts"`
}

// call sends one API request; a non-2xx answer becomes an error of the
// class its status stands for, with the service's "detail".
func (d *Driver) call(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, d.o.APITimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, "runtime API request: "+err.Error(), err)
	}
	req.Header.Set("X-API-Key", d.o.APIKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("runtime API %s %s: %w", method, path, ctx.Err())
		}
		return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("runtime API %s: %v", d.base, err), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return errdefs.Wrap(errdefs.ErrUnavailable, "runtime API: reading the answer: "+err.Error(), err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Detail any `json:"detail"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Detail != nil {
			msg = fmt.Sprint(e.Detail)
		}
		return errdefs.FromHTTP(resp.StatusCode, fmt.Sprintf("runtime API %s %s: %s", method, path, msg))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("runtime API %s %s: not JSON: %v", method, path, err), err)
		}
	}
	return nil
}

// Create starts a V0 runtime for spec and waits until sandboxd answers
// through the service.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) (driver.Sandbox, error) {
	if err := driver.CheckID(spec.ID); err != nil {
		return driver.Sandbox{}, err
	}
	if spec.Image == "" {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrInvalidArgument, "no image given")
	}
	if spec.SWEReX != nil {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrNotImplemented, "RUNTIME=remote cannot serve SWE-ReX: the runtime API publishes one URL per runtime")
	}
	if spec.Workload != nil {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrNotImplemented, "RUNTIME=remote starts sandboxd only, not another program")
	}
	if err := driver.CheckPolicy("remote", "the runtime API carries no egress settings", spec); err != nil {
		return driver.Sandbox{}, err
	}
	if len(spec.Mounts) > 0 {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrNotImplemented, "RUNTIME=remote cannot mount host folders: the sandbox runs on the service's machine")
	}
	// A live runtime of this session is someone's sandbox: the runtime API
	// would hand it back, the driver contract says the id is taken.
	var cur runtimeObject
	err := d.call(ctx, http.MethodGet, "/sessions/"+url.PathEscape(spec.ID), nil, &cur)
	if err == nil && (cur.Status == "running" || cur.Status == "paused" || cur.Status == "starting") {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrAlreadyExists, fmt.Sprintf("sandbox %q already exists (runtime %s)", spec.ID, cur.RuntimeID))
	}
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return driver.Sandbox{}, err
	}
	body := d.startBody(spec)
	var o runtimeObject
	if err := d.call(ctx, http.MethodPost, "/start", body, &o); err != nil {
		return driver.Sandbox{}, err
	}
	if o.RuntimeID == "" || o.URL == "" {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrUnavailable, "runtime API /start answered without runtime_id or url")
	}
	sb, err := d.waitReady(ctx, o)
	if err != nil {
		// Nothing is left behind by a start that failed or was given up.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = d.call(rctx, http.MethodPost, "/stop", map[string]string{"runtime_id": o.RuntimeID}, nil)
		return driver.Sandbox{}, err
	}
	return sb, nil
}

// startBody is V0's /start (spec §4.1, §8.2): the action execution
// server's command line, which sbx's service runs as sandboxd.
func (d *Driver) startBody(spec driver.Spec) map[string]any {
	l := launch.Default()
	l.Port = 60000
	l.WorkDir = spec.WorkDir
	if l.WorkDir == "" {
		l.WorkDir = "/workspace"
	}
	l.Username = spec.User
	if l.Username == "" {
		l.Username = "root"
	}
	l.UserID, l.Plugins = spec.UserID, spec.Plugins
	argv := append([]string{"/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run", "python", "-u", "-m", "openhands.runtime.action_execution_server"}, l.Argv()...)
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	if spec.Debug {
		env["DEBUG"] = "true"
	}
	body := map[string]any{
		"image": spec.Image, "command": argv, "working_dir": "/openhands/code/", "environment": env,
		"session_id": spec.ID, "resource_factor": d.o.ResourceFactor, "labels": spec.Labels,
	}
	if d.o.RuntimeClass == "sysbox" {
		body["runtime_class"] = "sysbox-runc"
	}
	return body
}

// waitReady polls /runtime/{id} as V0 does until the runtime is running,
// then waits for sandboxd itself through the service's proxy.
func (d *Driver) waitReady(ctx context.Context, o runtimeObject) (driver.Sandbox, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.InitTimeout)
	defer cancel()
	for {
		var cur runtimeObject
		if err := d.call(ctx, http.MethodGet, "/runtime/"+url.PathEscape(o.RuntimeID), nil, &cur); err != nil {
			return driver.Sandbox{}, err
		}
		if cur.RuntimeID != o.RuntimeID {
			return driver.Sandbox{}, errdefs.New(errdefs.ErrUnavailable, "runtime API /runtime answered for another runtime")
		}
		switch strings.ToLower(cur.PodStatus) {
		case "ready":
			sb := d.toSandbox(cur)
			hc := &http.Client{Transport: keyTransport{key: cur.SessionAPIKey, base: d.hc.Transport}}
			if err := driver.WaitAlive(ctx, hc, sb.Endpoint.URL, nil); err != nil {
				return driver.Sandbox{}, err
			}
			sb.State = driver.StateRunning
			return sb, nil
		case "failed", "unknown", "crashloopbackoff":
			msg := "the runtime failed to start"
			if cur.Reason != "" {
				msg += ": " + cur.Reason
			}
			return driver.Sandbox{}, errdefs.New(errdefs.ErrUnavailable, msg)
		}
		if cur.Status == "stopped" {
			return driver.Sandbox{}, errdefs.New(errdefs.ErrUnavailable, "the runtime was stopped while starting")
		}
		select {
		case <-ctx.Done():
			return driver.Sandbox{}, fmt.Errorf("runtime %s not ready within %s (status %s, pod_status %s): %w", o.RuntimeID, d.o.InitTimeout, cur.Status, cur.PodStatus, ctx.Err())
		case <-time.After(d.o.PollInterval):
		}
	}
}

// keyTransport adds the session key V0 sends on its requests to the
// workload.
type keyTransport struct {
	key  string
	base http.RoundTripper
}

func (t keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Session-API-Key", t.key)
	if t.base == nil {
		return http.DefaultTransport.RoundTrip(r)
	}
	return t.base.RoundTrip(r)
}

func (d *Driver) toSandbox(o runtimeObject) driver.Sandbox {
	sb := driver.Sandbox{ID: o.SessionID, Name: o.RuntimeID, Driver: Name, Image: o.Image, Labels: o.Labels, State: mapState(o.Status)}
	if t, err := time.Parse(time.RFC3339Nano, o.CreatedAt); err == nil {
		sb.Created = t
	}
	if sb.State == driver.StateRunning || sb.State == driver.StatePaused {
		sb.Endpoint = driver.Endpoint{URL: o.URL, Token: o.SessionAPIKey}
		for host, port := range o.WorkHosts {
			sb.AppPorts = append(sb.AppPorts, driver.PortMapping{Sandbox: port, URL: host})
		}
	}
	return sb
}

func mapState(status string) driver.State {
	switch status {
	case "running":
		return driver.StateRunning
	case "paused":
		return driver.StatePaused
	case "starting":
		return driver.StateCreated
	case "stopped", "error":
		return driver.StateStopped
	}
	return driver.StateUnknown
}

// session is the current runtime of a session id; a stopped one is gone.
func (d *Driver) session(ctx context.Context, id string) (runtimeObject, error) {
	if err := driver.CheckID(id); err != nil {
		return runtimeObject{}, err
	}
	var o runtimeObject
	if err := d.call(ctx, http.MethodGet, "/sessions/"+url.PathEscape(id), nil, &o); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return o, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %q not found", id))
		}
		return o, err
	}
	if o.Status == "stopped" {
		return o, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %q not found (its runtime %s was stopped)", id, o.RuntimeID))
	}
	return o, nil
}

// Inspect implements driver.Driver.
func (d *Driver) Inspect(ctx context.Context, id string) (driver.Sandbox, error) {
	o, err := d.session(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	return d.toSandbox(o), nil
}

// List implements driver.Driver: the key's runtimes that are not
// stopped, filtered by the labels they were started with.
func (d *Driver) List(ctx context.Context, match map[string]string) ([]driver.Sandbox, error) {
	var l struct {
		Runtimes []runtimeObject `json:"runtimes"`
	}
	if err := d.call(ctx, http.MethodGet, "/list", nil, &l); err != nil {
		return nil, err
	}
	var out []driver.Sandbox
next:
	for _, o := range l.Runtimes {
		if o.Status == "stopped" {
			continue
		}
		for k, v := range match {
			if o.Labels[k] != v {
				continue next
			}
		}
		out = append(out, d.toSandbox(o))
	}
	return out, nil
}

// Remove implements driver.Driver with /stop.
func (d *Driver) Remove(ctx context.Context, id string) error {
	o, err := d.session(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = d.call(ctx, http.MethodPost, "/stop", map[string]string{"runtime_id": o.RuntimeID}, nil)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// Logs implements driver.Driver through sandbox-api's extension route; a
// service without it says so.
func (d *Driver) Logs(ctx context.Context, id string, w io.Writer, tail int) error {
	o, err := d.session(ctx, id)
	if err != nil {
		return err
	}
	path := "/sbx/v1/runtimes/" + url.PathEscape(o.RuntimeID) + "/logs"
	if tail > 0 {
		path += "?tail=" + strconv.Itoa(tail)
	}
	var out struct {
		Logs string `json:"logs"`
	}
	if err := d.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return errdefs.New(errdefs.ErrNotImplemented, "this runtime API serves no logs (sbx's sandbox-api does)")
		}
		return err
	}
	_, err = io.WriteString(w, out.Logs)
	return err
}

// Pause implements driver.Pauser with /pause.
func (d *Driver) Pause(ctx context.Context, id string) error {
	o, err := d.session(ctx, id)
	if err != nil {
		return err
	}
	return d.call(ctx, http.MethodPost, "/pause", map[string]string{"runtime_id": o.RuntimeID}, nil)
}

// Resume implements driver.Pauser with /resume and the readiness wait
// every client runs after it.
func (d *Driver) Resume(ctx context.Context, id string) (driver.Sandbox, error) {
	o, err := d.session(ctx, id)
	if err != nil {
		return driver.Sandbox{}, err
	}
	var r runtimeObject
	if err := d.call(ctx, http.MethodPost, "/resume", map[string]string{"runtime_id": o.RuntimeID}, &r); err != nil {
		return driver.Sandbox{}, err
	}
	return d.waitReady(ctx, o)
}

// ResolveImage implements driver.ImageResolver: the configured image, as
// named; the service resolves it on its own engine at /start.
func (d *Driver) ResolveImage(_ context.Context, override string) (driver.Image, error) {
	for _, ref := range []string{override, d.o.RuntimeImage, d.o.BaseImage} {
		if ref != "" {
			return driver.Image{Ref: ref}, nil
		}
	}
	return driver.Image{}, errdefs.New(errdefs.ErrInvalidArgument, "RUNTIME=remote needs an image the service's engine has: set SANDBOX_BASE_CONTAINER_IMAGE (or SANDBOX_RUNTIME_CONTAINER_IMAGE)")
}

// Traits implements driver.TraitsReporter.
func (d *Driver) Traits() driver.Traits { return driver.Traits{PauseKept: true} }
