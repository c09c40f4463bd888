package clients

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// SDKOptions are APIRemoteWorkspace's fields (§2, §4.1).
type SDKOptions struct {
	Config
	// ServerImage is `server_image`.
	ServerImage string
	// SessionID defaults to "agent-server-<uuid4>" (§3).
	SessionID string
	// ImagePullPolicy defaults to "IfNotPresent" (§4.1).
	ImagePullPolicy string
	// ResourceFactor defaults to 1, which is not sent (§4.1).
	ResourceFactor int
	// RuntimeClass is sent when non-empty; nil means the SDK's default,
	// "sysbox-runc" (§4.1).
	RuntimeClass *string
	// TargetType "binary" (default) or "source" picks the command (§4.1).
	TargetType string
	// Environment is what forward_env would copy from the host (§4.1).
	Environment map[string]string
	// KeepAlive and PauseOnClose are the cleanup switches (§4.6).
	KeepAlive, PauseOnClose bool
}

// SDKWorkspace is one APIRemoteWorkspace after model_post_init.
type SDKWorkspace struct {
	opts SDKOptions
	hc   *http.Client
	// sessionHeader is the client's default X-Session-API-Key, set once
	// the runtime is ready (§3, stray headers): from then on the SDK's
	// runtime-API calls carry it too.
	sessionHeader string

	RuntimeID     string
	URL           string // the host, `url` without a trailing "/" (§7)
	SessionAPIKey string
	// Attached says the workspace found its session running or paused
	// instead of starting it.
	Attached bool
}

// NewSDKWorkspace does what APIRemoteWorkspace's model_post_init does:
// check the resource factor, strip one "/" off the API URL, attach to the
// session's runtime or start one, and wait until it is ready (§4.2, §6.1).
// On failure it cleans up, as the SDK does, and returns the error.
func NewSDKWorkspace(ctx context.Context, opts SDKOptions) (*SDKWorkspace, error) {
	if opts.ResourceFactor == 0 {
		opts.ResourceFactor = 1
	}
	switch opts.ResourceFactor { // §4.1: the SDK rejects other values
	case 1, 2, 4, 8:
	default:
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("resource_factor must be 1, 2, 4, or 8, got %d", opts.ResourceFactor))
	}
	if opts.SessionID == "" {
		opts.SessionID = "agent-server-" + uuid4()
	}
	if opts.ImagePullPolicy == "" {
		opts.ImagePullPolicy = "IfNotPresent"
	}
	if opts.TargetType == "" {
		opts.TargetType = "binary"
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/") // §3: one trailing "/"
	w := &SDKWorkspace{opts: opts, hc: opts.httpClient()}
	if err := w.startOrAttach(ctx); err != nil {
		if cerr := w.Cleanup(context.WithoutCancel(ctx)); cerr != nil {
			w.opts.log().Warn("cleanup after a failed start", "err", cerr)
		}
		return nil, err
	}
	return w, nil
}

// SessionID is the workspace's session_id.
func (w *SDKWorkspace) SessionID() string { return w.opts.SessionID }

// apiHeaders: X-API-Key only when the key is non-empty (§3), plus the
// client's default X-Session-API-Key once known (§3, stray headers).
func (w *SDKWorkspace) apiHeaders() http.Header {
	h := http.Header{}
	if w.opts.APIKey != "" {
		h.Set("X-API-Key", w.opts.APIKey)
	}
	if w.sessionHeader != "" {
		h.Set("X-Session-API-Key", w.sessionHeader)
	}
	return h
}

func (w *SDKWorkspace) api(ctx context.Context, method, path string, body any, timeout time.Duration) ([]byte, error) {
	b, _, err := do(ctx, w.hc, request{method: method, url: w.opts.BaseURL + path, header: w.apiHeaders(), body: body, timeout: timeout})
	return b, err
}

func (w *SDKWorkspace) startOrAttach(ctx context.Context) error {
	ok, err := w.checkExisting(ctx)
	if err != nil {
		return err
	}
	if !ok {
		if err := w.start(ctx); err != nil {
			return err
		}
	} else {
		w.Attached = true
	}
	if err := w.waitAlive(ctx); err != nil {
		return err
	}
	// §7: host = url.rstrip('/'); the client is rebuilt with the session key.
	w.URL = strings.TrimRight(w.URL, "/")
	w.sessionHeader = w.SessionAPIKey
	return nil
}

// checkExisting is §4.2's attach logic: running attaches, paused resumes
// (a failed resume starts anew), anything else or 404 starts anew; any
// other HTTP error fails.
func (w *SDKWorkspace) checkExisting(ctx context.Context) (bool, error) {
	b, err := w.api(ctx, "GET", "/sessions/"+w.opts.SessionID, nil, 0)
	if err != nil {
		if StatusOf(err) == http.StatusNotFound {
			return false, nil
		}
		return false, fmt.Errorf("SDK: looking up session %s: %w", w.opts.SessionID, err)
	}
	var data struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		return false, fmt.Errorf("SDK: GET /sessions/%s: %w", w.opts.SessionID, err)
	}
	if data.Status != "running" && data.Status != "paused" {
		return false, nil
	}
	if err := w.parse(b); err != nil {
		return false, err
	}
	if data.Status == "paused" {
		if err := w.resumeRuntime(ctx); err != nil {
			w.opts.log().Error("SDK: resume failed", "err", err)
			return false, nil
		}
	}
	return true, nil
}

// StartBody is the SDK's /start payload (§4.1): command is a STRING,
// working_dir "/", run_as_user and fs_group 10001 (no run_as_group),
// image_pull_policy always, runtime_class when set, resource_factor only
// when not 1.
func (w *SDKWorkspace) StartBody() map[string]any {
	exe := "/usr/local/bin/openhands-agent-server"
	if w.opts.TargetType == "source" {
		exe = "/agent-server/.venv/bin/python -m openhands.agent_server"
	}
	env := map[string]string{}
	for k, v := range w.opts.Environment {
		env[k] = v
	}
	p := map[string]any{
		"image":             w.opts.ServerImage,
		"command":           exe + " --port 60000",
		"working_dir":       "/",
		"environment":       env,
		"session_id":        w.opts.SessionID,
		"run_as_user":       10001,
		"fs_group":          10001,
		"image_pull_policy": w.opts.ImagePullPolicy,
	}
	rc := "sysbox-runc"
	if w.opts.RuntimeClass != nil {
		rc = *w.opts.RuntimeClass
	}
	if rc != "" {
		p["runtime_class"] = rc
	}
	if w.opts.ResourceFactor != 1 {
		p["resource_factor"] = w.opts.ResourceFactor
	}
	return p
}

func (w *SDKWorkspace) start(ctx context.Context) error {
	// init_timeout 300 s (§3).
	b, err := w.api(ctx, "POST", "/start", w.StartBody(), 300*time.Second)
	if err != nil {
		return fmt.Errorf("SDK: starting a runtime for session %s: %w", w.opts.SessionID, err)
	}
	w.Attached = false
	return w.parse(b)
}

// parse reads runtime_id (falling back to id), url and session_api_key;
// a missing id or url is "Invalid runtime response" (§4.1).
func (w *SDKWorkspace) parse(b []byte) error {
	rt, err := decodeRuntime(b)
	if err != nil {
		return err
	}
	w.RuntimeID = cmpOr(rt.RuntimeID, rt.ID)
	w.URL = rt.URL
	w.SessionAPIKey = rt.SessionAPIKey
	if w.RuntimeID == "" || w.URL == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("SDK: Invalid runtime response: %.300s", b))
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (w *SDKWorkspace) resumeRuntime(ctx context.Context) error {
	_, err := w.api(ctx, "POST", "/resume", map[string]string{"runtime_id": w.RuntimeID}, 300*time.Second)
	if err != nil {
		return fmt.Errorf("SDK: resuming %s: %w", w.RuntimeID, err)
	}
	return nil
}

// waitAlive is §6.1: GET /sessions/{session_id}, read pod_status
// lower-cased; ready → GET {url}/health with no auth header; failed,
// unknown and crashloopbackoff end the wait; everything else retries.
func (w *SDKWorkspace) waitAlive(ctx context.Context) error {
	return retryUntil(ctx, w.opts.poll(), w.opts.readyTimeout(300*time.Second), "SDK: waiting for "+w.RuntimeID, func(ctx context.Context) error {
		b, err := w.api(ctx, "GET", "/sessions/"+w.opts.SessionID, nil, 0)
		if err != nil {
			return err // raise_for_status: not a RuntimeError, not retried
		}
		rt, err := decodeRuntime(b)
		if err != nil {
			return err
		}
		if v, ok := rt.Raw["pod_status"]; ok && v != nil {
			if _, isString := v.(string); !isString {
				return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("pod_status %v is not a string", v))
			}
		} else if ok {
			// data.get("pod_status", "").lower() on a null raises.
			return errdefs.New(errdefs.ErrInvalidArgument, "pod_status is null")
		}
		pod := strings.ToLower(rt.PodStatus)
		switch pod {
		case "ready":
			// urllib.urlopen, no auth header, 5 s timeout.
			_, _, err := do(ctx, w.hc, request{method: "GET", url: rt.urlOr(w.URL) + "/health", timeout: 5 * time.Second})
			if err != nil {
				return &errNotReady{"Runtime /health failed: " + err.Error()}
			}
			return nil
		case "failed", "unknown", "crashloopbackoff":
			msg := "Runtime failed (status: " + pod + ")"
			if rt.PodLogs != "" {
				msg += "\nPod logs: " + rt.PodLogs
			}
			if pod == "crashloopbackoff" {
				msg = "Runtime crashed and is restarting (possibly OOM). Try again."
			}
			return errdefs.New(errdefs.ErrUnavailable, msg)
		default: // not found, pending, running, "" and unknown strings
			return &errNotReady{"Runtime not yet ready (status: " + pod + ")"}
		}
	})
}

// urlOr is the SDK's self._runtime_url: the readiness poll checks the url
// it parsed from /start or the attach lookup, not the poll's own.
func (rt *Runtime) urlOr(parsed string) string {
	if parsed != "" {
		return parsed
	}
	return rt.URL
}

// Pause is the public pause(): POST /pause, 30 s (§4.6).
func (w *SDKWorkspace) Pause(ctx context.Context) error {
	if w.RuntimeID == "" {
		return errdefs.New(errdefs.ErrConflict, "Cannot pause: runtime is not running")
	}
	if _, err := w.api(ctx, "POST", "/pause", map[string]string{"runtime_id": w.RuntimeID}, 30*time.Second); err != nil {
		return fmt.Errorf("SDK: pausing %s: %w", w.RuntimeID, err)
	}
	return nil
}

// Resume is the public resume(): POST /resume, then the full readiness
// wait again (§4.6).
func (w *SDKWorkspace) Resume(ctx context.Context) error {
	if w.RuntimeID == "" {
		return errdefs.New(errdefs.ErrConflict, "Cannot resume: runtime is not running")
	}
	if err := w.resumeRuntime(ctx); err != nil {
		return err
	}
	return w.waitAlive(ctx)
}

// Cleanup is cleanup(): nothing with keep_alive, else /pause when
// pause_on_close, else /stop (§4.6). The SDK only logs a failure; this
// returns it so a test sees it.
func (w *SDKWorkspace) Cleanup(ctx context.Context) error {
	if w.RuntimeID == "" {
		return nil
	}
	defer func() { w.RuntimeID, w.URL, w.SessionAPIKey = "", "", "" }()
	if w.opts.KeepAlive {
		return nil
	}
	action := "stop"
	if w.opts.PauseOnClose {
		action = "pause"
	}
	if _, err := w.api(ctx, "POST", "/"+action, map[string]string{"runtime_id": w.RuntimeID}, 30*time.Second); err != nil {
		return fmt.Errorf("SDK: cleanup (%s) of %s: %w", action, w.RuntimeID, err)
	}
	return nil
}

// Agent is the agent-server client of a ready workspace.
func (w *SDKWorkspace) Agent() *AgentServer {
	return &AgentServer{URL: w.URL, SessionAPIKey: w.sessionHeader, HTTP: w.hc}
}

func uuid4() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// SDKReport is what RunSDK saw.
type SDKReport struct {
	SessionID string
	// RuntimeIDs are the runtimes the session had: the first, and the one
	// /start made after the stop.
	RuntimeIDs []string
	// Counter values read before pause, after attach-resume, and after
	// the explicit pause/resume; each must be larger than the last.
	Counter []int
}

// RunSDK takes one session through the SDK's whole life (§4.1, §4.2,
// §4.6, §6.1): start (after a 404) and wait; a conversation, a stream
// (SSE and WebSocket, which must not be buffered) and bash through the
// agent-server; a background counter; pause; a second
// workspace with the same session_id finds it paused and resumes it; a
// third attaches to it running; pause and resume; stop; and a fourth
// workspace starts the session again with a new runtime. opts.ServerImage
// must be an agent-server (or the stand-in) image.
func RunSDK(ctx context.Context, opts SDKOptions) (SDKReport, error) {
	var rep SDKReport
	w1, err := NewSDKWorkspace(ctx, opts)
	if err != nil {
		return rep, err
	}
	rep.SessionID = w1.SessionID()
	rep.RuntimeIDs = append(rep.RuntimeIDs, w1.RuntimeID)
	opts.SessionID = w1.SessionID()
	if w1.Attached {
		return rep, fmt.Errorf("SDK: a new session %s attached to an existing runtime %s", rep.SessionID, w1.RuntimeID)
	}
	cleanup := func(w *SDKWorkspace) {
		if w != nil {
			w.Cleanup(context.WithoutCancel(ctx))
		}
	}

	ag := w1.Agent()
	if err := ag.Conversation(ctx); err != nil {
		cleanup(w1)
		return rep, err
	}
	if err := ag.CheckStreaming(ctx, 5); err != nil {
		cleanup(w1)
		return rep, err
	}
	if err := ag.StartCounter(ctx); err != nil {
		cleanup(w1)
		return rep, err
	}
	n, err := ag.ReadCounter(ctx)
	if err != nil {
		cleanup(w1)
		return rep, err
	}
	rep.Counter = append(rep.Counter, n)
	if err := w1.Pause(ctx); err != nil {
		cleanup(w1)
		return rep, err
	}

	// A second workspace on the same session finds it paused (§4.2).
	w2, err := NewSDKWorkspace(ctx, opts)
	if err != nil {
		cleanup(w1)
		return rep, fmt.Errorf("SDK: attaching to paused session: %w", err)
	}
	if !w2.Attached || w2.RuntimeID != w1.RuntimeID {
		cleanup(w2)
		return rep, fmt.Errorf("SDK: attaching to paused session %s gave runtime %s (attached %v), want %s resumed", rep.SessionID, w2.RuntimeID, w2.Attached, w1.RuntimeID)
	}
	if n, err = w2.Agent().ReadCounterPast(ctx, n); err != nil {
		cleanup(w2)
		return rep, err
	}
	rep.Counter = append(rep.Counter, n)

	// A third one finds it running and attaches.
	w3, err := NewSDKWorkspace(ctx, opts)
	if err != nil {
		cleanup(w2)
		return rep, fmt.Errorf("SDK: attaching to running session: %w", err)
	}
	if !w3.Attached || w3.RuntimeID != w1.RuntimeID {
		cleanup(w3)
		return rep, fmt.Errorf("SDK: attaching to running session %s gave runtime %s (attached %v), want %s", rep.SessionID, w3.RuntimeID, w3.Attached, w1.RuntimeID)
	}
	if err := w3.Pause(ctx); err != nil {
		cleanup(w3)
		return rep, err
	}
	if err := w3.Resume(ctx); err != nil {
		cleanup(w3)
		return rep, err
	}
	if n, err = w3.Agent().ReadCounterPast(ctx, n); err != nil {
		cleanup(w3)
		return rep, err
	}
	rep.Counter = append(rep.Counter, n)
	for i := 1; i < len(rep.Counter); i++ {
		if rep.Counter[i] <= rep.Counter[i-1] {
			cleanup(w3)
			return rep, fmt.Errorf("SDK: the background counter went %v: the process did not survive pause/resume", rep.Counter)
		}
	}
	if err := w3.Cleanup(ctx); err != nil { // /stop
		return rep, err
	}

	// After stop, the same session_id starts again (§4.1, same session id).
	w4, err := NewSDKWorkspace(ctx, opts)
	if err != nil {
		return rep, fmt.Errorf("SDK: starting stopped session %s again: %w", rep.SessionID, err)
	}
	rep.RuntimeIDs = append(rep.RuntimeIDs, w4.RuntimeID)
	if w4.Attached || w4.RuntimeID == w1.RuntimeID {
		cleanup(w4)
		return rep, fmt.Errorf("SDK: after stop, session %s gave runtime %s (attached %v), want a new one", rep.SessionID, w4.RuntimeID, w4.Attached)
	}
	if err := w4.Agent().Conversation(ctx); err != nil {
		cleanup(w4)
		return rep, err
	}
	if err := w4.Cleanup(ctx); err != nil {
		return rep, err
	}
	return rep, nil
}

func atoiTrim(s string) (int, error) { return strconv.Atoi(strings.TrimSpace(s)) }
