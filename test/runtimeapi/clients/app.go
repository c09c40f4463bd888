package clients

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// SandboxStatus is the app server's SandboxStatus (§6.3).
type SandboxStatus string

const (
	StatusStarting SandboxStatus = "STARTING"
	StatusRunning  SandboxStatus = "RUNNING"
	StatusPaused   SandboxStatus = "PAUSED"
	StatusError    SandboxStatus = "ERROR"
	StatusMissing  SandboxStatus = "MISSING"
)

// AppVariant picks which copy of remote_sandbox_service.py to behave as
// (§0): APP-a reads pod_status first; APP-b and APP-c read status only,
// look runtimes up before pause/resume/stop and use /sessions/batch; APP-c
// also knows "provisioning" and takes session_api_key from /resume.
type AppVariant string

const (
	AppA AppVariant = "APP-a"
	AppB AppVariant = "APP-b"
	AppC AppVariant = "APP-c"
)

// MapStatusAppA is APP-a's mapping (§6.3): pod_status first (ready →
// RUNNING; pending, running → STARTING; failed, unknown,
// crashloopbackoff → ERROR), then status; no runtime is MISSING.
func MapStatusAppA(rt *Runtime) SandboxStatus {
	if rt == nil {
		return StatusMissing
	}
	switch strings.ToLower(rt.PodStatus) {
	case "ready":
		return StatusRunning
	case "pending", "running":
		return StatusStarting
	case "failed", "unknown", "crashloopbackoff":
		return StatusError
	}
	return mapStatus(rt.Status, false)
}

// MapStatusAppBC is APP-b's and APP-c's mapping (§6.3): status only;
// provisioning is STARTING in APP-c.
func MapStatusAppBC(rt *Runtime, c bool) SandboxStatus {
	if rt == nil {
		return StatusMissing
	}
	// APP-b lower-cases status before the table.
	return mapStatus(strings.ToLower(rt.Status), c)
}

func mapStatus(s string, provisioning bool) SandboxStatus {
	switch s {
	case "running":
		return StatusRunning
	case "paused":
		return StatusPaused
	case "stopped":
		return StatusMissing
	case "starting":
		return StatusStarting
	case "error":
		return StatusError
	case "provisioning":
		if provisioning {
			return StatusStarting
		}
	}
	return StatusMissing
}

// AppOptions configure a RemoteSandboxService (§2, §4.1, §8.1).
type AppOptions struct {
	Config
	Variant AppVariant // default AppB
	// Image is the sandbox spec id (§4.1).
	Image string
	// Command defaults to the spec's agent-server argv (§4.1).
	Command []string
	// WebURL is the app server's public URL. Empty means none, which
	// turns the /list poller on (§4.5) and leaves out the webhook and
	// CORS variables (§8.1).
	WebURL string
	// ResourceFactor defaults to 1 and is always sent (§4.1).
	ResourceFactor int
	// RuntimeClass is the configured class; only "sysbox" sends
	// runtime_class "sysbox-runc" (§4.1). Default "gvisor".
	RuntimeClass string
	// MaxNumSandboxes is the per-user limit (default 10, §2).
	MaxNumSandboxes int
}

// SandboxInfo is what get_sandbox builds from a runtime object.
type SandboxInfo struct {
	ID            string
	Status        SandboxStatus
	SessionAPIKey string
	// ExposedURLs are set only when RUNNING (§6.3): AGENT_SERVER, VSCODE,
	// WORKER_1, WORKER_2.
	ExposedURLs map[string]string
	Runtime     *Runtime
}

// AppService is the app server's RemoteSandboxService for one user.
type AppService struct {
	opts AppOptions
	hc   *http.Client
	// keys is the session key the app holds per sandbox: from /start and,
	// in APP-c, from /resume; APP-c clears it on pause (§4.6).
	keys map[string]string
	// order is the app's stored sandboxes, oldest first (its created_at).
	order []string
}

// NewAppService returns the service with the app server's defaults.
func NewAppService(opts AppOptions) *AppService {
	if opts.Variant == "" {
		opts.Variant = AppB
	}
	if len(opts.Command) == 0 {
		opts.Command = []string{"/usr/local/bin/openhands-agent-server", "--port", "60000"}
	}
	if opts.ResourceFactor == 0 {
		opts.ResourceFactor = 1
	}
	if opts.RuntimeClass == "" {
		opts.RuntimeClass = "gvisor"
	}
	if opts.MaxNumSandboxes == 0 {
		opts.MaxNumSandboxes = 10
	}
	return &AppService{opts: opts, hc: opts.httpClient(), keys: map[string]string{}}
}

// headers: APP always sends X-API-Key (§3).
func (a *AppService) headers() http.Header { return http.Header{"X-Api-Key": {a.opts.APIKey}} }

func (a *AppService) api(ctx context.Context, method, path string, body any) ([]byte, error) {
	b, _, err := do(ctx, a.hc, request{method: method, url: a.opts.BaseURL + path, header: a.headers(), body: body})
	return b, err
}

// Environment is §8.1's list for the default spec, plus the web-URL and
// worker variables where the variant sends them.
func (a *AppService) Environment(sandboxID string) map[string]string {
	env := map[string]string{
		"OPENVSCODE_SERVER_ROOT": "/openhands/.openvscode-server",
		"LOG_JSON":               "true",
		"OH_ENABLE_VNC":          "0",
		"OH_CONVERSATIONS_PATH":  "/workspace/conversations",
		"OH_BASH_EVENTS_DIR":     "/workspace/bash_events",
		"OH_VSCODE_PORT":         "60001",
	}
	if a.opts.WebURL != "" {
		hook := a.opts.WebURL + "/api/v1/webhooks"
		if a.opts.Variant == AppA {
			hook += "/" + sandboxID
		}
		env["OH_WEBHOOKS_0_BASE_URL"] = hook
		env["OH_ALLOW_CORS_ORIGINS_0"] = a.opts.WebURL
	}
	if a.opts.Variant != AppA {
		env["WORKER_1"] = "12000"
		env["WORKER_2"] = "12001"
	}
	return env
}

// StartBody is the app server's /start payload (§4.1): command a LIST,
// working_dir /workspace, run_as_user/run_as_group/fs_group 10001,
// resource_factor always, runtime_class only for sysbox.
func (a *AppService) StartBody(sandboxID string) map[string]any {
	p := map[string]any{
		"image":           a.opts.Image,
		"command":         a.opts.Command,
		"working_dir":     "/workspace",
		"environment":     a.Environment(sandboxID),
		"session_id":      sandboxID,
		"resource_factor": a.opts.ResourceFactor,
		"run_as_user":     10001,
		"run_as_group":    10001,
		"fs_group":        10001,
	}
	if a.opts.RuntimeClass == "sysbox" {
		p["runtime_class"] = "sysbox-runc"
	}
	return p
}

// NewSandboxID is base62 of 16 random bytes (§3).
func NewSandboxID() string {
	var b [16]byte
	rand.Read(b[:])
	return new(big.Int).SetBytes(b[:]).Text(62)
}

// StartSandbox is start_sandbox: POST /start with a new id; the reply's
// session_api_key is required (APP indexes it, §4.1), and APP-a writes
// pod_status "pending" into the reply it keeps.
func (a *AppService) StartSandbox(ctx context.Context) (SandboxInfo, error) {
	if a.opts.Variant != AppA {
		a.PauseOldSandboxes(ctx)
	}
	id := NewSandboxID()
	b, err := a.api(ctx, "POST", "/start", a.StartBody(id))
	if err != nil {
		return SandboxInfo{}, fmt.Errorf("App: Failed to start sandbox: %w", err)
	}
	rt, err := decodeRuntime(b)
	if err != nil {
		return SandboxInfo{}, fmt.Errorf("App: Failed to start sandbox: %w", err)
	}
	if _, ok := rt.Raw["session_api_key"]; !ok {
		return SandboxInfo{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("App: /start reply lacks session_api_key (KeyError): %.300s", b))
	}
	if a.opts.Variant == AppA {
		rt.PodStatus = "pending"
	}
	a.keys[id] = rt.SessionAPIKey
	a.order = append(a.order, id)
	return a.info(id, rt), nil
}

// getRuntime is _get_runtime: GET /sessions/{id}.
func (a *AppService) getRuntime(ctx context.Context, id string) (*Runtime, error) {
	b, err := a.api(ctx, "GET", "/sessions/"+id, nil)
	if err != nil {
		return nil, err
	}
	return decodeRuntime(b)
}

// GetSandbox is get_sandbox: an HTTP error is logged and the sandbox is
// MISSING (§4.2).
func (a *AppService) GetSandbox(ctx context.Context, id string) (SandboxInfo, error) {
	rt, err := a.getRuntime(ctx, id)
	if err != nil {
		if StatusOf(err) == 0 && ctx.Err() != nil {
			return SandboxInfo{}, err
		}
		a.opts.log().Info("App: sandbox lookup failed; MISSING", "id", id, "err", err)
		return SandboxInfo{ID: id, Status: StatusMissing}, nil
	}
	if err := errNoKey(rt); err != nil {
		return SandboxInfo{}, err
	}
	return a.info(id, rt), nil
}

func (a *AppService) mapStatus(rt *Runtime) SandboxStatus {
	if a.opts.Variant == AppA {
		return MapStatusAppA(rt)
	}
	return MapStatusAppBC(rt, a.opts.Variant == AppC)
}

// errNoKey is APP's KeyError: _to_sandbox_info indexes
// runtime['session_api_key'] whenever a runtime object exists.
func errNoKey(rt *Runtime) error {
	if _, ok := rt.Raw["session_api_key"]; !ok {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("App: runtime object lacks session_api_key (KeyError): %v", rt.Raw))
	}
	return nil
}

func (a *AppService) info(id string, rt *Runtime) SandboxInfo {
	si := SandboxInfo{ID: id, Status: a.mapStatus(rt), Runtime: rt}
	if rt != nil {
		// The key passes through whenever a runtime exists (§6.3).
		si.SessionAPIKey = rt.SessionAPIKey
	}
	if si.Status == StatusRunning {
		pathMode := a.opts.Variant != AppA
		// The VS Code link carries the key and the folder (§7); APP-a puts
		// "/" before the "?".
		vscode := ServiceURL(rt.URL, rt.RuntimeID, "vscode", pathMode)
		if !pathMode {
			vscode += "/"
		}
		si.ExposedURLs = map[string]string{
			"AGENT_SERVER": rt.URL,
			"VSCODE":       vscode + "?tkn=" + rt.SessionAPIKey + "&folder=%2Fworkspace%2Fproject",
			"WORKER_1":     ServiceURL(rt.URL, rt.RuntimeID, "work-1", pathMode),
			"WORKER_2":     ServiceURL(rt.URL, rt.RuntimeID, "work-2", pathMode),
		}
	}
	return si
}

// ServiceURL derives a service's URL from a runtime's url (§7, APP-b's
// _build_service_url): path mode (when allowed and the path starts with
// "/"+runtime_id, a plain string prefix as APP-b tests it) gives
// scheme://netloc/{runtime_id}/{service}; otherwise subdomain mode gives
// scheme://{service}-{netloc}{path}, an empty path being "/".
func ServiceURL(runtimeURL, runtimeID, service string, pathMode bool) string {
	u, err := url.Parse(runtimeURL)
	if err != nil {
		return ""
	}
	if u.Path == "" {
		u.Path = "/"
	}
	if pathMode && strings.HasPrefix(u.Path, "/"+runtimeID) {
		return u.Scheme + "://" + u.Host + "/" + runtimeID + "/" + service
	}
	return u.Scheme + "://" + service + "-" + u.Host + u.Path
}

// BatchGetSandboxes is APP-b/c's batch read (§4.3): one
// GET /sessions/batch with ids repeated; null entries and entries without
// session_id are skipped; ids not in the reply are MISSING.
func (a *AppService) BatchGetSandboxes(ctx context.Context, ids []string) (map[string]SandboxInfo, error) {
	q := url.Values{}
	for _, id := range ids {
		q.Add("ids", id)
	}
	b, err := a.api(ctx, "GET", "/sessions/batch?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("App: batch lookup: %w", err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("App: batch reply is not a JSON array: %w (%.200s)", err, b)
	}
	got := map[string]*Runtime{}
	for _, r := range raw {
		if string(r) == "null" {
			continue
		}
		rt, err := decodeRuntime(r)
		if err != nil || rt.SessionID == "" {
			continue
		}
		got[rt.SessionID] = rt
	}
	out := map[string]SandboxInfo{}
	for _, id := range ids {
		if rt := got[id]; rt != nil {
			if err := errNoKey(rt); err != nil {
				return nil, err
			}
		}
		out[id] = a.info(id, got[id])
	}
	return out, nil
}

// ListRuntimes is GET /list → {"runtimes": […]} (§4.5).
func (a *AppService) ListRuntimes(ctx context.Context) ([]*Runtime, error) {
	b, err := a.api(ctx, "GET", "/list", nil)
	if err != nil {
		return nil, fmt.Errorf("App: /list: %w", err)
	}
	var l struct {
		Runtimes []json.RawMessage `json:"runtimes"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("App: /list reply: %w (%.200s)", err, b)
	}
	out := make([]*Runtime, 0, len(l.Runtimes))
	for _, r := range l.Runtimes {
		rt, err := decodeRuntime(r)
		if err != nil {
			return nil, fmt.Errorf("App: /list entry: %w", err)
		}
		out = append(out, rt)
	}
	return out, nil
}

// PollAgentServers is one round of the poller (§4.5): from /list keep the
// runtimes whose status is exactly "running" and GET each known
// conversation and its events with the runtime's session key. It returns
// how many conversations it polled.
func (a *AppService) PollAgentServers(ctx context.Context, conversations map[string][]string) (int, error) {
	rts, err := a.ListRuntimes(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rt := range rts {
		if rt.Status != "running" {
			continue
		}
		for _, c := range conversations[rt.SessionID] {
			ag := &AgentServer{URL: rt.URL, SessionAPIKey: rt.SessionAPIKey, HTTP: a.hc}
			if err := ag.PollConversation(ctx, c); err != nil {
				return n, fmt.Errorf("App poller: sandbox %s: %w", rt.SessionID, err)
			}
			n++
		}
	}
	return n, nil
}

// PauseOldSandboxes is APP-b/c's limit (§4.5), pause_old_sandboxes(max−1):
// /list without raise_for_status; every listed session of the user counts
// as running; when there are more than max−1, the first len−(max−1) in
// created_at DESCENDING order are paused. That is the newest, although the
// source's comment says "oldest": this copies the code. It returns the
// ids it paused. The user's sandboxes are those this service started.
func (a *AppService) PauseOldSandboxes(ctx context.Context) []string {
	b, _, _ := do(ctx, a.hc, request{method: "GET", url: a.opts.BaseURL + "/list", header: a.headers()})
	var l struct {
		Runtimes []struct {
			SessionID string `json:"session_id"`
		} `json:"runtimes"`
	}
	if json.Unmarshal(b, &l) != nil {
		return nil
	}
	listed := map[string]bool{}
	for _, r := range l.Runtimes {
		listed[r.SessionID] = true
	}
	var mine []string // newest first
	for i := len(a.order) - 1; i >= 0; i-- {
		if id := a.order[i]; listed[id] {
			mine = append(mine, id)
		}
	}
	limit := a.opts.MaxNumSandboxes - 1
	if len(mine) <= limit {
		return nil
	}
	var paused []string
	for _, id := range mine[:len(mine)-limit] {
		if ok, _ := a.PauseSandbox(ctx, id); ok {
			paused = append(paused, id)
		}
	}
	return paused
}

// lifecycle looks the runtime up and posts {"runtime_id"} to path
// (§4.2, §4.6). APP-b catches every httpx error here, a 404 included, and
// returns False; so an HTTP error status is (false, nil), and only a
// transport failure is also returned, for the test to see.
func (a *AppService) lifecycle(ctx context.Context, id, path string) (bool, []byte, error) {
	if !slices.Contains(a.order, id) {
		return false, nil, nil // no stored sandbox: no request
	}
	rt, err := a.getRuntime(ctx, id)
	if err != nil {
		if StatusOf(err) != 0 {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("App: %s %s: %w", path, id, err)
	}
	b, err := a.api(ctx, "POST", path, map[string]string{"runtime_id": rt.RuntimeID})
	if err != nil {
		if StatusOf(err) != 0 {
			a.opts.log().Info("App: lifecycle call failed", "path", path, "id", id, "err", err)
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("App: %s %s: %w", path, id, err)
	}
	return true, b, nil
}

// PauseSandbox is pause_sandbox (§4.6); APP-c forgets the key first.
func (a *AppService) PauseSandbox(ctx context.Context, id string) (bool, error) {
	if a.opts.Variant == AppC {
		delete(a.keys, id)
	}
	ok, _, err := a.lifecycle(ctx, id, "/pause")
	return ok, err
}

// ResumeSandbox is resume_sandbox (§4.6); APP-c reads session_api_key
// from the reply, which must then carry it.
func (a *AppService) ResumeSandbox(ctx context.Context, id string) (bool, error) {
	if a.opts.Variant != AppA {
		a.PauseOldSandboxes(ctx)
	}
	ok, b, err := a.lifecycle(ctx, id, "/resume")
	if !ok || err != nil {
		return ok, err
	}
	if a.opts.Variant == AppC {
		var r struct {
			SessionAPIKey *string `json:"session_api_key"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.SessionAPIKey == nil {
			return false, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("App-c: /resume reply lacks session_api_key: %.300s", b))
		}
		a.keys[id] = *r.SessionAPIKey
	}
	return true, nil
}

// DeleteSandbox is delete_sandbox: the local record goes first, then
// POST /stop; 404 counts as success, a failed lookup or another error
// status is false (§4.6).
func (a *AppService) DeleteSandbox(ctx context.Context, id string) (bool, error) {
	if _, ok := a.keys[id]; !ok && !slices.Contains(a.order, id) {
		return false, nil // no stored sandbox
	}
	delete(a.keys, id)
	a.order = slices.DeleteFunc(a.order, func(s string) bool { return s == id })
	rt, err := a.getRuntime(ctx, id)
	if err != nil {
		if StatusOf(err) != 0 {
			return false, nil
		}
		return false, fmt.Errorf("App: deleting %s: %w", id, err)
	}
	if _, err := a.api(ctx, "POST", "/stop", map[string]string{"runtime_id": rt.RuntimeID}); err != nil && StatusOf(err) != http.StatusNotFound {
		if StatusOf(err) != 0 {
			return false, nil
		}
		return false, fmt.Errorf("App: deleting %s: %w", id, err)
	}
	return true, nil
}

// WaitRunning is the conversation start's wait (§6.3): PAUSED resumes,
// ERROR fails at once, otherwise poll get_sandbox every Poll (2 s) for up
// to ReadyTimeout (120 s) until RUNNING.
func (a *AppService) WaitRunning(ctx context.Context, id string) (SandboxInfo, error) {
	var si SandboxInfo
	resumed := false
	err := retryUntil(ctx, a.opts.poll(), a.opts.readyTimeout(120*time.Second), "App: waiting for sandbox "+id, func(ctx context.Context) error {
		var err error
		si, err = a.GetSandbox(ctx, id)
		if err != nil {
			return err
		}
		switch si.Status {
		case StatusRunning:
			return nil
		case StatusError:
			return errdefs.New(errdefs.ErrUnavailable, "Sandbox status: ERROR")
		case StatusMissing:
			return errdefs.New(errdefs.ErrNotFound, "Sandbox not startable: MISSING")
		case StatusPaused:
			if !resumed {
				resumed = true
				if ok, err := a.ResumeSandbox(ctx, id); err != nil || !ok {
					return fmt.Errorf("resuming: ok=%v: %w", ok, err)
				}
			}
		}
		return &errNotReady{"sandbox " + string(si.Status)}
	})
	return si, err
}

// Key is the session key the app holds for a sandbox.
func (a *AppService) Key(id string) string { return a.keys[id] }

// AppReport is what RunApp saw.
type AppReport struct {
	SandboxID, RuntimeID string
	Conversation         string
	Counter              []int
}

// RunApp takes one sandbox through the app server's whole life (§4–§6):
// start; wait until RUNNING (both mappings must say RUNNING); batch read
// with a missing id; start a conversation; one poller round over /list;
// a background counter; pause (both mappings must say PAUSED); resume,
// reading the key from the reply in APP-c; wait; the counter advanced and
// the conversation still answers; delete; MISSING; delete again (404 is
// success); pause of a deleted sandbox is false.
func RunApp(ctx context.Context, opts AppOptions) (AppReport, error) {
	a := NewAppService(opts)
	var rep AppReport
	si, err := a.StartSandbox(ctx)
	if err != nil {
		return rep, err
	}
	rep.SandboxID = si.ID
	fail := func(err error) (AppReport, error) {
		a.DeleteSandbox(context.WithoutCancel(ctx), si.ID)
		return rep, err
	}
	if si, err = a.WaitRunning(ctx, si.ID); err != nil {
		return fail(err)
	}
	rep.RuntimeID = si.Runtime.RuntimeID
	if a, bc := MapStatusAppA(si.Runtime), MapStatusAppBC(si.Runtime, true); a != StatusRunning || bc != StatusRunning {
		return fail(fmt.Errorf("App: ready runtime maps to %s (APP-a) and %s (APP-b/c), want RUNNING for both: status %q pod_status %q", a, bc, si.Runtime.Status, si.Runtime.PodStatus))
	}
	if si.ExposedURLs["AGENT_SERVER"] == "" {
		return fail(fmt.Errorf("App: RUNNING sandbox without AGENT_SERVER url"))
	}
	if opts.Variant != AppA {
		missing := NewSandboxID()
		batch, err := a.BatchGetSandboxes(ctx, []string{si.ID, missing})
		if err != nil {
			return fail(err)
		}
		if batch[si.ID].Status != StatusRunning || batch[missing].Status != StatusMissing {
			return fail(fmt.Errorf("App: batch gave %s for the sandbox and %s for an unknown id, want RUNNING and MISSING", batch[si.ID].Status, batch[missing].Status))
		}
	}
	ag := &AgentServer{URL: si.ExposedURLs["AGENT_SERVER"], SessionAPIKey: a.Key(si.ID), HTTP: a.hc}
	if rep.Conversation, err = ag.CreateConversation(ctx, map[string]any{}); err != nil {
		return fail(err)
	}
	if n, err := a.PollAgentServers(ctx, map[string][]string{si.ID: {rep.Conversation}}); err != nil || n != 1 {
		return fail(fmt.Errorf("App: poller polled %d conversations, want 1: %w", n, err))
	}
	if err := ag.StartCounter(ctx); err != nil {
		return fail(err)
	}
	c, err := ag.ReadCounter(ctx)
	if err != nil {
		return fail(err)
	}
	rep.Counter = append(rep.Counter, c)

	if ok, err := a.PauseSandbox(ctx, si.ID); err != nil || !ok {
		return fail(fmt.Errorf("App: pause: ok=%v: %w", ok, err))
	}
	if ps, err := a.GetSandbox(ctx, si.ID); err != nil || ps.Status != StatusPaused || MapStatusAppA(ps.Runtime) != StatusPaused || MapStatusAppBC(ps.Runtime, true) != StatusPaused {
		st, pod := "", ""
		if ps.Runtime != nil {
			st, pod = ps.Runtime.Status, ps.Runtime.PodStatus
		}
		return fail(fmt.Errorf("App: paused sandbox reads %s (status %q pod_status %q), want PAUSED under every mapping: %v", ps.Status, st, pod, err))
	}
	if ok, err := a.ResumeSandbox(ctx, si.ID); err != nil || !ok {
		return fail(fmt.Errorf("App: resume: ok=%v: %w", ok, err))
	}
	if si, err = a.WaitRunning(ctx, si.ID); err != nil {
		return fail(err)
	}
	key := si.SessionAPIKey
	if opts.Variant == AppC {
		key = a.Key(si.ID)
	}
	ag = &AgentServer{URL: si.ExposedURLs["AGENT_SERVER"], SessionAPIKey: key, HTTP: a.hc}
	if err := ag.PollConversation(ctx, rep.Conversation); err != nil {
		return fail(fmt.Errorf("App: after resume: %w", err))
	}
	if c, err = ag.ReadCounterPast(ctx, c); err != nil {
		return fail(err)
	}
	rep.Counter = append(rep.Counter, c)
	if rep.Counter[1] <= rep.Counter[0] {
		return fail(fmt.Errorf("App: the background counter went %v: the process did not survive pause/resume", rep.Counter))
	}

	if ok, err := a.DeleteSandbox(ctx, si.ID); err != nil || !ok {
		return rep, fmt.Errorf("App: delete: ok=%v: %w", ok, err)
	}
	if gone, err := a.GetSandbox(ctx, si.ID); err != nil || gone.Status != StatusMissing {
		return rep, fmt.Errorf("App: deleted sandbox reads %s, want MISSING: %v", gone.Status, err)
	}
	// A second /stop of the same runtime: 404 is success (§4.6).
	if _, err := a.api(ctx, "POST", "/stop", map[string]string{"runtime_id": rep.RuntimeID}); err != nil && StatusOf(err) != http.StatusNotFound {
		return rep, fmt.Errorf("App: second stop: %w", err)
	}
	if ok, err := a.PauseSandbox(ctx, si.ID); err != nil || ok {
		return rep, fmt.Errorf("App: pausing a deleted sandbox gave ok=%v, want false: %v", ok, err)
	}
	return rep, nil
}
