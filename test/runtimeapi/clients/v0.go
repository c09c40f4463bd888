package clients

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// V0Options are RemoteRuntime's settings (§2, §4.1, §8.2;
// openhands-runtime.md §10.1).
type V0Options struct {
	Config
	// SessionID is the conversation id `sid` (default "default", §3).
	SessionID string
	// Image is sandbox.runtime_container_image; V0 starts it as given.
	Image string
	// WorkspaceMount is the workspace path in the sandbox (default
	// /workspace), passed as --working-dir (§8.2).
	WorkspaceMount string
	// Plugins defaults to CodeActAgent's, agent_skills and jupyter
	// (openhands-runtime.md §2.1); vscode is added only when not headless.
	Plugins []string
	// RunAsRoot picks --username root --user-id 0 instead of openhands/1000.
	RunAsRoot bool
	// DisableBrowser appends --no-enable-browser (core enable_browser false).
	DisableBrowser bool
	// ResourceFactor defaults to 1 and is always sent (§4.1).
	ResourceFactor int
	// RuntimeClass: "sysbox" sends runtime_class "sysbox-runc"; "" or
	// "gvisor" sends none (§2, §4.1).
	RuntimeClass string
	// StartupEnv is sandbox.runtime_startup_env_vars, sent in /start's
	// environment and set again through bash (§4.1; openhands-runtime.md §7).
	StartupEnv map[string]string
	Debug      bool // adds DEBUG=true to /start's environment
	// KeepRuntimeAlive makes a 503 from the workload mean "paused" (§9)
	// and makes Close pause (with PauseClosedRuntimes) or do nothing.
	KeepRuntimeAlive bool
	// NoPauseClosedRuntimes is pause_closed_runtimes=false (default true).
	NoPauseClosedRuntimes bool
	// AttachToExisting fails when the session has no runtime, skips the
	// initial env set-up and makes Close do nothing (§4.6).
	AttachToExisting bool
}

// V0Runtime is a connected RemoteRuntime.
type V0Runtime struct {
	opts V0Options
	hc   *http.Client
	// session is V0's shared HTTP session headers (§3): X-API-Key from
	// the start, X-Session-API-Key added once a runtime is known. Both go
	// to the runtime API and to the workload.
	session http.Header

	RuntimeID     string
	URL           string
	SessionAPIKey string
	WorkHosts     map[string]int
	// Attached says the session's runtime was found running or paused.
	Attached bool
}

func (o *V0Options) defaults() {
	if o.SessionID == "" {
		o.SessionID = "default"
	}
	if o.WorkspaceMount == "" {
		o.WorkspaceMount = "/workspace"
	}
	if o.Plugins == nil {
		o.Plugins = []string{"agent_skills", "jupyter"}
	}
	if o.ResourceFactor == 0 {
		o.ResourceFactor = 1
	}
}

// V0Command is the action execution server's argv (§8.2;
// openhands-runtime.md §2.1), port 60000.
func V0Command(o V0Options) []string {
	o.defaults()
	argv := []string{"/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run",
		"python", "-u", "-m", "openhands.runtime.action_execution_server", "60000",
		"--working-dir", o.WorkspaceMount}
	if len(o.Plugins) > 0 {
		argv = append(append(argv, "--plugins"), o.Plugins...)
	}
	user, uid := "openhands", "1000"
	if o.RunAsRoot {
		user, uid = "root", "0"
	}
	argv = append(argv, "--username", user, "--user-id", uid)
	if o.DisableBrowser {
		argv = append(argv, "--no-enable-browser")
	}
	return argv
}

// V0StartBody is V0's /start payload (§4.1): command an argv, working_dir
// /openhands/code/, environment DEBUG and the startup vars,
// resource_factor always, runtime_class only for sysbox; no user fields.
func V0StartBody(o V0Options) map[string]any {
	o.defaults()
	env := map[string]string{}
	if o.Debug {
		env["DEBUG"] = "true"
	}
	for k, v := range o.StartupEnv {
		env[k] = v
	}
	p := map[string]any{
		"image":           o.Image,
		"command":         V0Command(o),
		"working_dir":     "/openhands/code/",
		"environment":     env,
		"session_id":      o.SessionID,
		"resource_factor": o.ResourceFactor,
	}
	if o.RuntimeClass == "sysbox" {
		p["runtime_class"] = "sysbox-runc"
	}
	return p
}

// ConnectV0 is RemoteRuntime.connect (§4.2, §4.4, §6.2;
// openhands-runtime.md §10.4): look the session up; running attaches,
// paused resumes (a failure starts anew), anything else starts; wait
// until /runtime/{id} says ready and {url}/alive answers; then set up the
// initial environment unless attach_to_existing.
func ConnectV0(ctx context.Context, opts V0Options) (*V0Runtime, error) {
	opts.defaults()
	r := &V0Runtime{opts: opts, hc: opts.httpClient(), session: http.Header{"X-Api-Key": {opts.APIKey}}}
	found, err := r.checkExisting(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		if opts.AttachToExisting {
			return nil, errdefs.New(errdefs.ErrNotFound, "V0: AgentRuntimeNotFoundError: no runtime for session "+opts.SessionID)
		}
		if err := r.start(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.waitAlive(ctx); err != nil {
		return nil, err
	}
	if !opts.AttachToExisting {
		if err := r.setupInitialEnv(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *V0Runtime) api(ctx context.Context, method, path string, body any) ([]byte, error) {
	// remote_runtime_api_timeout, 180 s on every API call (§3).
	b, _, err := do(ctx, r.hc, request{method: method, url: r.opts.BaseURL + path, header: r.session.Clone(), body: body, timeout: 180 * time.Second})
	return b, err
}

// checkExisting: 404 is none; other errors and non-JSON bodies fail;
// running attaches; paused resumes; others are none (§4.2).
func (r *V0Runtime) checkExisting(ctx context.Context) (bool, error) {
	b, err := r.api(ctx, "GET", "/sessions/"+r.opts.SessionID, nil)
	if err != nil {
		if StatusOf(err) == http.StatusNotFound {
			return false, nil
		}
		return false, fmt.Errorf("V0: looking up session %s: %w", r.opts.SessionID, err)
	}
	rt, err := decodeRuntime(b)
	if err != nil {
		return false, fmt.Errorf("V0: looking up session %s: %w", r.opts.SessionID, err)
	}
	switch rt.Status {
	case "running":
		r.parse(rt)
		r.Attached = true
		return true, nil
	case "paused":
		r.parse(rt)
		if err := r.resume(ctx); err != nil {
			r.opts.log().Error("V0: resume of paused runtime failed; starting a new one", "err", err)
			return false, nil
		}
		r.Attached = true
		return true, nil
	case "stopped", "starting", "error":
	default:
		r.opts.log().Warn("V0: Invalid response from runtime API", "status", rt.Status)
	}
	return false, nil
}

// parse reads runtime_id and url (indexed: required), work_hosts
// (default {}) and session_api_key (used when present), which goes into
// the shared session (§4.1, §3).
func (r *V0Runtime) parse(rt *Runtime) {
	r.RuntimeID, r.URL = rt.RuntimeID, rt.URL
	r.WorkHosts = rt.WorkHosts
	if r.WorkHosts == nil {
		r.WorkHosts = map[string]int{}
	}
	if rt.SessionAPIKey != "" {
		r.SessionAPIKey = rt.SessionAPIKey
		r.session.Set("X-Session-API-Key", rt.SessionAPIKey)
	}
}

func (r *V0Runtime) start(ctx context.Context) error {
	b, err := r.api(ctx, "POST", "/start", V0StartBody(r.opts))
	if err != nil {
		return errdefs.Wrap(errdefs.ErrUnavailable, "V0: AgentRuntimeUnavailableError: starting a runtime: "+err.Error(), err)
	}
	rt, err := decodeRuntime(b)
	if err != nil {
		return err
	}
	if _, ok := rt.Raw["runtime_id"]; !ok {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("V0: /start reply lacks runtime_id (KeyError): %.300s", b))
	}
	if _, ok := rt.Raw["url"]; !ok {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("V0: /start reply lacks url (KeyError): %.300s", b))
	}
	r.parse(rt)
	r.Attached = false
	return nil
}

// waitAlive is §6.2: GET /runtime/{runtime_id}; runtime_id must echo and
// pod_status must exist (asserted, not retried); ready → GET {url}/alive,
// where 404, 502, 504 (and 503 unless keep-alive) fail at once; not
// found, pending, running and unknown strings retry; failed, unknown and
// crashloopbackoff fail.
func (r *V0Runtime) waitAlive(ctx context.Context) error {
	return retryUntil(ctx, r.opts.poll(), r.opts.readyTimeout(180*time.Second), "V0: waiting for "+r.RuntimeID, func(ctx context.Context) error {
		b, err := r.api(ctx, "GET", "/runtime/"+r.RuntimeID, nil)
		if err != nil {
			return err
		}
		rt, err := decodeRuntime(b)
		if err != nil {
			return err
		}
		if rt.RuntimeID != r.RuntimeID {
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("V0: AssertionError: /runtime/%s answered runtime_id %q", r.RuntimeID, rt.RuntimeID))
		}
		if _, ok := rt.Raw["pod_status"]; !ok {
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("V0: AssertionError: /runtime/%s has no pod_status: %.300s", r.RuntimeID, b))
		}
		switch pod := strings.ToLower(rt.PodStatus); pod {
		case "ready":
			// check_if_alive goes through the workload wrapper, so 404,
			// 502, 504 (and 503 without keep-alive) are fatal here. With
			// keep-alive V0 would call _resume_runtime from inside its own
			// readiness wait, recursing while the 503 lasts; this stops
			// at one level and treats the 503 as disconnected.
			_, err := r.workload(ctx, "GET", "/alive", nil, 5*time.Second, false)
			if err != nil {
				if _, disconnected := err.(*V0DisconnectedError); disconnected {
					return err
				}
				return &errNotReady{"V0: /alive: " + err.Error()}
			}
			return nil
		case "not found", "pending", "running":
			return &errNotReady{"V0: pod_status " + pod}
		case "crashloopbackoff":
			return errdefs.New(errdefs.ErrUnavailable, "V0: AgentRuntimeUnavailableError: Runtime crashed and is being restarted, potentially due to memory usage. Please try again.")
		case "failed", "unknown":
			return errdefs.New(errdefs.ErrUnavailable, "V0: AgentRuntimeUnavailableError: Runtime is unavailable (status: "+pod+")")
		default:
			r.opts.log().Warn("V0: unknown pod_status", "pod_status", pod)
			return &errNotReady{"V0: pod_status " + pod}
		}
	})
}

// V0DisconnectedError is AgentRuntimeDisconnectedError: what V0 raises
// for 404, 502, 504, and 503 when not keeping runtimes alive (§9).
type V0DisconnectedError struct {
	Status int
	Err    error
}

func (e *V0DisconnectedError) Error() string {
	if e.Status == http.StatusNotFound {
		return fmt.Sprintf("V0: AgentRuntimeDisconnectedError: Runtime is not responding (HTTP %d): %v", e.Status, e.Err)
	}
	return fmt.Sprintf("V0: AgentRuntimeDisconnectedError: Runtime is temporarily unavailable (HTTP %d): %v", e.Status, e.Err)
}

func (e *V0DisconnectedError) Unwrap() error { return e.Err }

// workload sends a request to {url}{path} with the shared session's
// headers and §9's status handling. With keep-alive a 503 means paused:
// resume, wait, set up again and retry once (retried=false allows it).
func (r *V0Runtime) workload(ctx context.Context, method, path string, body any, timeout time.Duration, retry bool) ([]byte, error) {
	b, _, err := do(ctx, r.hc, request{method: method, url: r.URL + path, header: r.session.Clone(), body: body, timeout: timeout})
	if err == nil {
		return b, nil
	}
	switch st := StatusOf(err); st {
	case http.StatusNotFound, http.StatusBadGateway, http.StatusGatewayTimeout:
		return nil, &V0DisconnectedError{Status: st, Err: err}
	case http.StatusServiceUnavailable:
		if !r.opts.KeepRuntimeAlive || !retry {
			return nil, &V0DisconnectedError{Status: st, Err: err}
		}
		r.opts.log().Info("V0: runtime answered 503; resuming it", "runtime_id", r.RuntimeID)
		if err := r.Resume(ctx); err != nil {
			return nil, fmt.Errorf("V0: resuming after 503: %w", err)
		}
		return r.workload(ctx, method, path, body, timeout, false)
	}
	return nil, err
}

func (r *V0Runtime) resume(ctx context.Context) error {
	if _, err := r.api(ctx, "POST", "/resume", map[string]string{"runtime_id": r.RuntimeID}); err != nil {
		return fmt.Errorf("V0: resuming %s: %w", r.RuntimeID, err)
	}
	return nil
}

// Resume is V0's resume sequence (§4.6): /resume, the readiness wait, the
// initial environment again.
func (r *V0Runtime) Resume(ctx context.Context) error {
	if err := r.resume(ctx); err != nil {
		return err
	}
	if err := r.waitAlive(ctx); err != nil {
		return err
	}
	return r.setupInitialEnv(ctx)
}

// Pause posts /pause (V0 does so only on close; exported for tests that
// pause behind V0's back to see the 503 path).
func (r *V0Runtime) Pause(ctx context.Context) error {
	if _, err := r.api(ctx, "POST", "/pause", map[string]string{"runtime_id": r.RuntimeID}); err != nil {
		return fmt.Errorf("V0: pausing %s: %w", r.RuntimeID, err)
	}
	return nil
}

// Close is close() (§4.6): nothing when attach_to_existing, or keep-alive
// without pause_closed_runtimes; /pause with both; /stop otherwise.
// Errors are returned (V0 re-raises).
func (r *V0Runtime) Close(ctx context.Context) error {
	switch {
	case r.opts.AttachToExisting:
		return nil
	case r.opts.KeepRuntimeAlive && r.opts.NoPauseClosedRuntimes:
		return nil
	case r.opts.KeepRuntimeAlive:
		return r.Pause(ctx)
	}
	if _, err := r.api(ctx, "POST", "/stop", map[string]string{"runtime_id": r.RuntimeID}); err != nil {
		return fmt.Errorf("V0: stopping %s: %w", r.RuntimeID, err)
	}
	return nil
}

// RunAction is a CmdRunAction as V0 serialises it (openhands-runtime.md
// §3.1, §3.3), with the default hard timeout, non-blocking.
func RunAction(command string, timeout float64) map[string]any {
	return map[string]any{"action": map[string]any{
		"message": "Running command: " + command,
		"action":  "run",
		"args": map[string]any{
			"command": command, "is_input": false, "thought": "", "blocking": false,
			"is_static": false, "cwd": nil, "hidden": false,
			"confirmation_state": "confirmed", "security_risk": -1,
		},
		"timeout": timeout,
	}}
}

// Observation is the part of a run observation tests read.
type Observation struct {
	Observation string `json:"observation"`
	Content     string `json:"content"`
	Extras      struct {
		Metadata struct {
			ExitCode int `json:"exit_code"`
		} `json:"metadata"`
	} `json:"extras"`
}

// Run POSTs a run action to {url}/execute_action with timeout+5 s (§9;
// openhands-runtime.md §7), sandbox.timeout 120 s.
func (r *V0Runtime) Run(ctx context.Context, command string) (Observation, error) {
	const timeout = 120.0
	b, err := r.workload(ctx, "POST", "/execute_action", RunAction(command, timeout), (timeout+5)*time.Second, true)
	if err != nil {
		return Observation{}, fmt.Errorf("V0: running %q: %w", command, err)
	}
	var o Observation
	if err := json.Unmarshal(b, &o); err != nil || o.Observation == "" {
		return o, fmt.Errorf("V0: running %q: reply is not an observation: %.300s", command, b)
	}
	return o, nil
}

// setupInitialEnv is setup_initial_env (openhands-runtime.md §7): the
// startup variables exported and appended to ~/.bashrc, then the git
// identity. A failing git config is only logged, as V0 does.
func (r *V0Runtime) setupInitialEnv(ctx context.Context) error {
	if len(r.opts.StartupEnv) > 0 {
		keys := make([]string, 0, len(r.opts.StartupEnv))
		for k := range r.opts.StartupEnv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var export, bashrc strings.Builder
		for _, k := range keys {
			q, _ := json.Marshal(r.opts.StartupEnv[k])
			fmt.Fprintf(&export, "export %s=%s; ", strings.ToUpper(k), q)
			fmt.Fprintf(&bashrc, "if ! grep -q '^export %s=' ~/.bashrc; then echo 'export %s=%s' >> ~/.bashrc; fi; ", strings.ToUpper(k), strings.ToUpper(k), q)
		}
		for _, cmd := range []string{strings.TrimSpace(export.String()), strings.TrimSpace(bashrc.String())} {
			o, err := r.Run(ctx, cmd)
			if err != nil {
				return err
			}
			if o.Extras.Metadata.ExitCode != 0 {
				return fmt.Errorf("V0: setting up the environment: %q exited %d: %s", cmd, o.Extras.Metadata.ExitCode, o.Content)
			}
		}
	}
	o, err := r.Run(ctx, `git config --global user.name "openhands" && git config --global user.email "openhands@all-hands.dev"`)
	if err != nil {
		return err
	}
	if o.Extras.Metadata.ExitCode != 0 {
		r.opts.log().Warn("V0: git config failed", "exit_code", o.Extras.Metadata.ExitCode)
	}
	return nil
}

// V0BuildOptions is one remote build (§4.7).
type V0BuildOptions struct {
	Config
	// Context is the gzip-compressed tar of the build folder.
	Context []byte
	// Tags are the tags under prefix/runtime (V0's §9 tags, e.g.
	// "oh_v0.62.0_<lock>_<source>"); the first is target_image.
	Tags []string
	// RetryAfter429 is the wait after a 429 from /build (V0: 30 s).
	RetryAfter429 time.Duration
	// Timeout bounds the /build_status polling (V0: 30 min).
	Timeout time.Duration
}

// V0BuildResult says what the build flow did.
type V0BuildResult struct {
	Image   string
	BuildID string // "" when the image existed and nothing was built
	Prefix  string
}

// V0Build is the remote builder's flow (§4.7): GET /registry_prefix; the
// repository is prefix.rstrip('/') + '/runtime'; GET /image_exists for the
// first tag (existing → no build); POST /build multipart (context =
// context.tar.gz holding the base64 TEXT of the tar.gz, target_image,
// tags repeated; 429 waits and retries); poll /build_status until
// SUCCESS or a failure status; then /image_exists must say true.
func V0Build(ctx context.Context, o V0BuildOptions) (V0BuildResult, error) {
	if len(o.Tags) == 0 {
		return V0BuildResult{}, errdefs.New(errdefs.ErrInvalidArgument, "V0 build: no tags")
	}
	hc := o.httpClient()
	h := http.Header{"X-Api-Key": {o.APIKey}} // builder/remote.py sets it too (§3)
	api := func(method, path string, body any, ct string, timeout time.Duration) ([]byte, error) {
		b, _, err := do(ctx, hc, request{method: method, url: o.BaseURL + path, header: h, body: body, contentType: ct, timeout: timeout})
		return b, err
	}
	var res V0BuildResult
	b, err := api("GET", "/registry_prefix", nil, "", 0)
	if err != nil {
		return res, fmt.Errorf("V0 build: registry prefix: %w", err)
	}
	var pr struct {
		RegistryPrefix *string `json:"registry_prefix"`
	}
	if err := json.Unmarshal(b, &pr); err != nil || pr.RegistryPrefix == nil {
		return res, fmt.Errorf("V0 build: /registry_prefix reply %.200q lacks registry_prefix", b)
	}
	res.Prefix = *pr.RegistryPrefix
	repo := strings.TrimRight(res.Prefix, "/") + "/runtime"
	names := make([]string, len(o.Tags))
	for i, t := range o.Tags {
		names[i] = repo + ":" + t
	}
	exists := func(image string) (bool, error) {
		b, err := api("GET", "/image_exists?image="+url.QueryEscape(image), nil, "", 0)
		if err != nil {
			return false, fmt.Errorf("V0 build: image_exists %s: %w", image, err)
		}
		var r struct {
			Exists *bool `json:"exists"`
			Image  *struct {
				UploadTime     any      `json:"upload_time"`
				ImageSizeBytes *float64 `json:"image_size_bytes"`
			} `json:"image"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Exists == nil {
			return false, fmt.Errorf("V0 build: image_exists reply %.200q lacks exists", b)
		}
		if *r.Exists && (r.Image == nil || r.Image.ImageSizeBytes == nil) {
			// Read only when exists is true; V0 logs its size.
			return false, fmt.Errorf("V0 build: image_exists says %s exists without image.image_size_bytes: %.200s", image, b)
		}
		return *r.Exists, nil
	}
	ok, err := exists(names[0])
	if err != nil {
		return res, err
	}
	if ok {
		res.Image = names[0]
		return res, nil
	}

	var buildID string
	for {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, err := mw.CreateFormFile("context", "context.tar.gz")
		if err != nil {
			return res, err
		}
		fw.Write([]byte(base64.StdEncoding.EncodeToString(o.Context)))
		mw.WriteField("target_image", names[0])
		for _, t := range names[1:] {
			mw.WriteField("tags", t)
		}
		mw.Close()
		b, err := api("POST", "/build", &body, mw.FormDataContentType(), 30*time.Second)
		if StatusOf(err) == http.StatusTooManyRequests {
			if err := sleep(ctx, cmpDur(o.RetryAfter429, 30*time.Second)); err != nil {
				return res, err
			}
			continue
		}
		if err != nil {
			return res, fmt.Errorf("V0 build: POST /build: %w", err)
		}
		var br struct {
			BuildID string `json:"build_id"`
		}
		if err := json.Unmarshal(b, &br); err != nil || br.BuildID == "" {
			return res, fmt.Errorf("V0 build: /build reply %.200q lacks build_id", b)
		}
		buildID = br.BuildID
		break
	}
	res.BuildID = buildID

	err = retryUntil(ctx, o.poll(), cmpDur(o.Timeout, 30*time.Minute), "V0 build "+buildID, func(context.Context) error {
		b, err := api("GET", "/build_status?build_id="+url.QueryEscape(buildID), nil, "", 0)
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
			Image  string `json:"image"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("build_status reply: %w", err)
		}
		switch st.Status {
		case "SUCCESS":
			res.Image = st.Image
			return nil
		case "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED":
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("build %s ended %s: %s", buildID, st.Status, st.Error))
		}
		return &errNotReady{"build " + st.Status}
	})
	if err != nil {
		return res, err
	}
	if res.Image == "" {
		return res, fmt.Errorf("V0 build %s: SUCCESS without image", buildID)
	}
	// After the build V0 checks the final image again (§4.7).
	ok, err = exists(res.Image)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("V0 build %s: image %s does not exist after SUCCESS", buildID, res.Image))
	}
	return res, nil
}

func cmpDur(a, b time.Duration) time.Duration {
	if a > 0 {
		return a
	}
	return b
}

// V0Report is what RunV0 saw.
type V0Report struct {
	SessionID  string
	RuntimeIDs []string
	WorkHosts  map[string]int
	Counter    []int
}

// RunV0 takes one session through V0's whole life (§4, §6.2, §9) with
// keep_runtime_alive: connect (after a 404), run actions, start a
// background counter; close (pauses); reconnect with the same sid (finds
// it paused, resumes); pause behind V0's back, so the next action meets
// 503, resumes and retries; the counter advanced each time; then a
// closing runtime without keep-alive stops it, and connecting again starts
// a new runtime for the same session. opts.Image must run the action
// execution server's command (sandbox-api recognises it, §8.2).
func RunV0(ctx context.Context, opts V0Options) (V0Report, error) {
	opts.defaults()
	opts.KeepRuntimeAlive = true
	rep := V0Report{SessionID: opts.SessionID}
	r1, err := ConnectV0(ctx, opts)
	if err != nil {
		return rep, err
	}
	rep.RuntimeIDs = append(rep.RuntimeIDs, r1.RuntimeID)
	rep.WorkHosts = r1.WorkHosts
	stop := func(r *V0Runtime) {
		r.api(context.WithoutCancel(ctx), "POST", "/stop", map[string]string{"runtime_id": r.RuntimeID})
	}
	if r1.Attached {
		stop(r1)
		return rep, fmt.Errorf("V0: a fresh session %s attached to runtime %s", opts.SessionID, r1.RuntimeID)
	}
	o, err := r1.Run(ctx, "echo hello-$((6*7))")
	if err != nil || o.Extras.Metadata.ExitCode != 0 || !strings.Contains(o.Content, "hello-42") {
		stop(r1)
		return rep, fmt.Errorf("V0: echo gave %+v: %w", o, err)
	}
	if _, err := r1.Run(ctx, counterStart()); err != nil {
		stop(r1)
		return rep, err
	}
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		stop(r1)
		return rep, err
	}
	// read waits (up to 5 s) for the counter to pass its last value: a
	// thawed loop moves on within a tick, but may not have run one yet.
	read := func(r *V0Runtime) error {
		deadline := time.Now().Add(5 * time.Second)
		for {
			o, err := r.Run(ctx, counterRead())
			if err != nil {
				return err
			}
			n, err := atoiTrim(o.Content)
			if err != nil {
				return fmt.Errorf("V0: counter read %q: %w", o.Content, err)
			}
			if len(rep.Counter) == 0 || n > rep.Counter[len(rep.Counter)-1] {
				rep.Counter = append(rep.Counter, n)
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("V0: the background counter went %v then %d: the process did not survive", rep.Counter, n)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	if err := read(r1); err != nil {
		stop(r1)
		return rep, err
	}
	if err := r1.Close(ctx); err != nil { // keep-alive: /pause
		stop(r1)
		return rep, err
	}

	r2, err := ConnectV0(ctx, opts)
	if err != nil {
		stop(r1)
		return rep, fmt.Errorf("V0: reconnecting to paused session: %w", err)
	}
	if !r2.Attached || r2.RuntimeID != r1.RuntimeID {
		stop(r2)
		return rep, fmt.Errorf("V0: reconnect gave runtime %s (attached %v), want %s resumed", r2.RuntimeID, r2.Attached, r1.RuntimeID)
	}
	if err := read(r2); err != nil {
		stop(r2)
		return rep, err
	}
	// Paused behind the client's back: the proxy's 503 makes V0 resume
	// and retry (§9).
	if err := r2.Pause(ctx); err != nil {
		stop(r2)
		return rep, err
	}
	if err := read(r2); err != nil {
		stop(r2)
		return rep, fmt.Errorf("V0: action on a paused runtime (503 → resume): %w", err)
	}

	opts.KeepRuntimeAlive = false
	r2.opts.KeepRuntimeAlive = false
	if err := r2.Close(ctx); err != nil { // /stop
		return rep, err
	}
	r3, err := ConnectV0(ctx, opts)
	if err != nil {
		return rep, fmt.Errorf("V0: starting stopped session again: %w", err)
	}
	rep.RuntimeIDs = append(rep.RuntimeIDs, r3.RuntimeID)
	if r3.Attached || r3.RuntimeID == r1.RuntimeID {
		stop(r3)
		return rep, fmt.Errorf("V0: after stop, session gave runtime %s (attached %v), want a new one", r3.RuntimeID, r3.Attached)
	}
	if _, err := r3.Run(ctx, "true"); err != nil {
		stop(r3)
		return rep, err
	}
	// Without keep-alive, 503 would be "disconnected": the old runtime's
	// URL is gone, which V0 reads as 404 → disconnected (§9).
	if _, err := r1.workload(ctx, "GET", "/alive", nil, 5*time.Second, false); err == nil {
		stop(r3)
		return rep, fmt.Errorf("V0: the stopped runtime %s still answers at %s", r1.RuntimeID, r1.URL)
	}
	if err := r3.Close(ctx); err != nil {
		return rep, err
	}
	return rep, nil
}
