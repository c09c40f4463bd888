package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// runtimeIDPrefix starts every runtime id, so that the proxy's paths
// (/<runtime_id>/…) never meet an API route.
const runtimeIDPrefix = "rt-"

// Container ports of OpenHands' agent-server image (spec §7) and the
// service names of path mode.
const (
	portAgentServer = 60000
	portVSCode      = 60001
	portWorker1     = 12000
	portWorker2     = 12001
)

// Kinds of workload.
const (
	kindV1 = "v1" // the image's own program (OpenHands' agent-server), run as given
	kindV0 = "v0" // OpenHands' action execution server, run as sandboxd
)

// workloadSpec is what a runtime runs, as stored in its record: enough
// to start it again after a restart of the service.
type workloadSpec struct {
	Kind           string            `json:"kind"`
	Image          string            `json:"image"`
	Command        []string          `json:"command"`
	WorkingDir     string            `json:"working_dir,omitempty"`
	Env            map[string]string `json:"environment,omitempty"`
	RunAsUser      *int              `json:"run_as_user,omitempty"`
	RunAsGroup     *int              `json:"run_as_group,omitempty"`
	FSGroup        *int              `json:"fs_group,omitempty"`
	ResourceFactor float64           `json:"resource_factor,omitempty"`
	RuntimeClass   string            `json:"runtime_class,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
}

// specOf turns a /start request into the stored spec. A command that
// starts OpenHands' action execution server is V0's: sandboxd serves it,
// so the image needs no OpenHands inside.
func specOf(req startRequest) (workloadSpec, error) {
	ws := workloadSpec{Kind: kindV1, Image: req.Image, Command: req.Command, WorkingDir: req.WorkingDir,
		Env: req.Environment, RunAsUser: req.RunAsUser, RunAsGroup: req.RunAsGroup, FSGroup: req.FSGroup, ResourceFactor: 1,
		Labels: req.Labels}
	if req.ResourceFactor != nil {
		ws.ResourceFactor = *req.ResourceFactor
	}
	if req.RuntimeClass != nil {
		ws.RuntimeClass = *req.RuntimeClass
	}
	if isV0Command(req.Command) {
		if _, err := launch.ParseV0Command(req.Command, req.Environment); err != nil {
			return ws, err
		}
		ws.Kind = kindV0
	}
	return ws, nil
}

func isV0Command(argv []string) bool {
	for _, a := range argv {
		if a == "openhands.runtime.action_execution_server" {
			return true
		}
	}
	return false
}

// driverSpec is how the backend runs a stored spec.
func (s *Server) driverSpec(rec store.Runtime, ws workloadSpec) (driver.Spec, error) {
	spec := driver.Spec{ID: rec.ID, Image: ws.Image, Labels: map[string]string{}, AutoRemove: false}
	for k, v := range s.cfg.Labels {
		spec.Labels[k] = v
	}
	spec.Labels[LabelRuntime] = rec.ID
	spec.Labels[LabelTenant] = rec.Tenant
	// The service owns its sandboxes' lives: `sbx gc` leaves them alone.
	spec.Labels[driver.LabelKeep] = "true"
	// A resource unit is one CPU and 2 GiB; the factor multiplies it.
	f := ws.ResourceFactor
	if f <= 0 {
		f = 1
	}
	spec.Resources = driver.Resources{CPUs: f, MemoryBytes: int64(f * float64(2<<30))}
	env := map[string]string{}
	for k, v := range ws.Env {
		env[k] = v
	}
	switch ws.Kind {
	case kindV0:
		l, err := launch.ParseV0Command(ws.Command, ws.Env)
		if err != nil {
			return spec, err
		}
		spec.WorkDir, spec.User, spec.UserID, spec.Plugins = l.WorkDir, l.Username, l.UserID, l.Plugins
		for k, v := range l.Env {
			env[k] = v
		}
		env[launch.EnvSessionAPIKey] = rec.SessionAPIKey
		if _, ok := env["VSCODE_PORT"]; !ok {
			env["VSCODE_PORT"] = strconv.Itoa(portVSCode)
		}
	default:
		if !s.cfg.Caps.Workloads {
			return spec, errdefs.New(errdefs.ErrNotImplemented, "this sandbox-api's backend runs only OpenHands V0 action execution servers, not an image's own command")
		}
		// Without a key in its environment the agent-server binds only
		// 127.0.0.1 and nothing outside can reach it (spec §8.1).
		env["SESSION_API_KEY"] = rec.SessionAPIKey
		env["OH_SESSION_API_KEYS_0"] = rec.SessionAPIKey
		if _, ok := env["OH_VSCODE_PORT"]; !ok {
			env["OH_VSCODE_PORT"] = strconv.Itoa(portVSCode)
		}
		w := &driver.Workload{Command: ws.Command, Ports: []int{portAgentServer, portVSCode, portWorker1, portWorker2}}
		if ws.RunAsUser != nil {
			w.User = strconv.Itoa(*ws.RunAsUser)
			if ws.RunAsGroup != nil {
				w.User += ":" + strconv.Itoa(*ws.RunAsGroup)
			}
		}
		if ws.FSGroup != nil {
			w.Groups = []string{strconv.Itoa(*ws.FSGroup)}
		}
		spec.WorkDir = ws.WorkingDir
		spec.Workload = w
	}
	spec.Env = env
	return spec, nil
}

// Labels the service puts on its sandboxes, beside the driver's own.
const (
	LabelRuntime = "dev.sbx.runtimeapi.runtime"
	LabelTenant  = "dev.sbx.runtimeapi.tenant"
)

func (s *Server) object(rec store.Runtime) runtimeObject {
	var ws workloadSpec
	_ = json.Unmarshal(rec.Spec, &ws)
	url := s.urls.runtime(rec.ID)
	w1, w2 := portWorker1, portWorker2
	if ws.Kind == kindV0 {
		w1, w2 = appPort1, appPort2
	}
	return runtimeObject{
		RuntimeID: rec.ID, SessionID: rec.SessionID, URL: url, SessionAPIKey: rec.SessionAPIKey,
		Status: string(rec.State), PodStatus: rec.PodStatus, RestartCount: rec.RestartCount, RestartReasons: []string{},
		WorkHosts: map[string]int{s.urls.service(rec.ID, svcWorker1): w1, s.urls.service(rec.ID, svcWorker2): w2},
		Image:     ws.Image, Reason: rec.Reason, Labels: ws.Labels,
		CreatedAt: rec.Created.Format(time.RFC3339Nano), UpdatedAt: rec.Updated.Format(time.RFC3339Nano),
	}
}

// sandboxd's app ports inside a sandbox (the Docker driver's APP_PORT_1/2).
const (
	appPort1 = 50000
	appPort2 = 55000
)

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	var body json.RawMessage
	if err := readJSON(r, &body); err != nil {
		writeError(w, err)
		return
	}
	req, err := decodeStart(body)
	if err != nil {
		writeError(w, err)
		return
	}
	ws, err := specOf(req)
	if err != nil {
		writeError(w, err)
		return
	}
	tenant := tenantOf(r)
	ctx := r.Context()
	for attempt := 0; ; attempt++ {
		prev, err := s.cfg.Store.BySession(ctx, tenant, req.SessionID)
		switch {
		case err == nil && prev.State.Live():
			// A second /start for a live session is the same runtime.
			writeJSON(w, http.StatusOK, s.object(prev))
			return
		case err == nil && prev.State == store.Error:
			// Its sandbox goes; the session gets a new runtime.
			if err := s.removeSandbox(ctx, prev); err != nil {
				writeError(w, err)
				return
			}
			if _, err := s.setState(ctx, prev.ID, store.Stopped, prev.Reason); err != nil && !errors.Is(err, errdefs.ErrConflict) {
				writeError(w, err)
				return
			}
		case err != nil && !errors.Is(err, errdefs.ErrNotFound):
			s.log.Error("start: reading the session", "err", err)
			writeError(w, err)
			return
		}
		raw, _ := json.Marshal(ws)
		rec := store.Runtime{ID: runtimeIDPrefix + ids.New(12), Tenant: tenant, SessionID: req.SessionID,
			SessionAPIKey: ids.Token(), Spec: raw, Backend: s.cfg.Backend}
		rec.BackendID = rec.ID
		rec, err = s.cfg.Store.CreateRuntime(ctx, rec)
		if errors.Is(err, errdefs.ErrAlreadyExists) && attempt < 3 {
			continue // another /start for this session won: answer with its runtime
		}
		if err != nil {
			s.log.Error("start: recording the runtime", "err", err)
			writeError(w, err)
			return
		}
		s.log.Info("runtime starting", "runtime", rec.ID, "tenant", tenant, "session", rec.SessionID, "kind", ws.Kind, "image", ws.Image)
		s.boot(rec, ws, false)
		writeJSON(w, http.StatusOK, s.object(rec))
		return
	}
}

// boot starts (or, with resumed, only watches) a runtime in the
// background: the sandbox, its route, then its health route, and the
// record follows (starting → running, or error with the reason).
func (s *Server) boot(rec store.Runtime, ws workloadSpec, resumed bool) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StartTimeout)
		defer cancel()
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			s.failStart(rec, ctx.Err())
			return
		}
		sb, err := s.bootSandbox(ctx, rec, ws, resumed)
		<-s.slots
		if err != nil {
			s.failStart(rec, err)
			return
		}
		if err := s.watchHealth(ctx, rec, ws, sb); err != nil {
			s.failStart(rec, err)
			return
		}
		if _, err := s.cfg.Store.Update(s.ctx, rec.ID, func(x *store.Runtime) error {
			if x.State != store.Starting {
				return errStale
			}
			x.State, x.PodStatus, x.Reason = store.Running, store.Running.PodStatus(), ""
			return nil
		}); err != nil && !errors.Is(err, errStale) {
			s.log.Error("runtime ready, but recording it failed", "runtime", rec.ID, "err", err)
			return
		}
		s.routes.setState(rec.ID, store.Running)
		s.log.Info("runtime running", "runtime", rec.ID)
	}()
}

// errStale: the record moved on (stopped meanwhile); nothing to write.
var errStale = errors.New("stale")

func (s *Server) bootSandbox(ctx context.Context, rec store.Runtime, ws workloadSpec, resumed bool) (driver.Sandbox, error) {
	if resumed {
		return s.cfg.Driver.Inspect(ctx, rec.BackendID)
	}
	spec, err := s.driverSpec(rec, ws)
	if err != nil {
		return driver.Sandbox{}, err
	}
	sb, err := s.cfg.Driver.Create(ctx, spec)
	if err != nil {
		return driver.Sandbox{}, err
	}
	// The process is up; the port may not answer yet.
	if _, err := s.cfg.Store.Update(ctx, rec.ID, func(x *store.Runtime) error {
		if x.State != store.Starting {
			return errStale
		}
		x.PodStatus = "running"
		return nil
	}); errors.Is(err, errStale) {
		// Stopped while the sandbox was being made: /stop found nothing
		// to remove, so this is the last chance to.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.cfg.Driver.Remove(rctx, rec.BackendID); err != nil {
			s.log.Error("removing the sandbox of a runtime stopped while starting", "runtime", rec.ID, "err", err)
		}
		return driver.Sandbox{}, errStale
	}
	return sb, nil
}

// watchHealth installs the runtime's route and polls its health route
// (V1 /health, V0 /alive) at the backend until it answers 2xx, the
// sandbox dies, or ctx ends. The route is in place before the record says
// running, so a client that reads "ready" finds the proxy working.
func (s *Server) watchHealth(ctx context.Context, rec store.Runtime, ws workloadSpec, sb driver.Sandbox) error {
	rt, err := routeOf(rec, ws, sb)
	if err != nil {
		return err
	}
	s.routes.set(rt)
	health := rt.targets[svcMain].String() + "/health"
	if ws.Kind == kindV0 {
		health = rt.targets[svcMain].String() + "/alive"
	}
	delay := 20 * time.Millisecond
	lastInspect := time.Now()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
		if resp, err := s.hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
		}
		if time.Since(lastInspect) > time.Second {
			lastInspect = time.Now()
			cur, err := s.cfg.Driver.Inspect(ctx, rec.BackendID)
			if err != nil {
				return err
			}
			if cur.State != driver.StateRunning {
				return fmt.Errorf("the sandbox is %s%s", cur.State, s.logTail(ctx, rec.BackendID))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("its health route %s did not answer: %w", strings.TrimPrefix(health, rt.targets[svcMain].String()), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

func (s *Server) logTail(ctx context.Context, id string) string {
	var b strings.Builder
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := s.cfg.Driver.Logs(lctx, id, &limitWriter{w: &b, n: 4 << 10}, 20); err != nil || b.Len() == 0 {
		return ""
	}
	return "; its last output:\n" + strings.TrimSpace(b.String())
}

type limitWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.WriteString(string(p[:k]))
		l.n -= k
	}
	return len(p), nil
}

// failStart records why a start failed and removes what it left.
func (s *Server) failStart(rec store.Runtime, cause error) {
	if errors.Is(cause, errStale) {
		return
	}
	if s.ctx.Err() != nil {
		// The service is shutting down: the start is not the runtime's
		// fault; the next service reconciles it.
		return
	}
	reason := "start failed: " + cause.Error()
	s.log.Warn("runtime failed", "runtime", rec.ID, "reason", reason)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.cfg.Store.Update(ctx, rec.ID, func(x *store.Runtime) error {
		if !x.State.Live() {
			return errStale
		}
		x.State, x.PodStatus, x.Reason = store.Error, store.Error.PodStatus(), reason
		return nil
	}); err != nil && !errors.Is(err, errStale) {
		s.log.Error("recording a failed start", "runtime", rec.ID, "err", err)
	}
	s.routes.setState(rec.ID, store.Error)
}

// setState moves a runtime to st with a reason, as one write.
func (s *Server) setState(ctx context.Context, id string, st store.State, reason string) (store.Runtime, error) {
	return s.cfg.Store.Update(ctx, id, func(x *store.Runtime) error {
		x.State, x.PodStatus, x.Reason = st, st.PodStatus(), reason
		return nil
	})
}

func (s *Server) removeSandbox(ctx context.Context, rec store.Runtime) error {
	s.routes.delete(rec.ID)
	if err := s.cfg.Driver.Remove(ctx, rec.BackendID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	return nil
}

// lookup is a tenant's runtime from a {"runtime_id"} body.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (store.Runtime, bool) {
	var b runtimeIDBody
	if err := readJSON(r, &b); err != nil {
		writeError(w, err)
		return store.Runtime{}, false
	}
	if b.RuntimeID == "" {
		writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "runtime_id is required"))
		return store.Runtime{}, false
	}
	rec, err := s.cfg.Store.Runtime(r.Context(), tenantOf(r), b.RuntimeID)
	if err != nil {
		writeError(w, notFound(err, "runtime "+b.RuntimeID))
		return store.Runtime{}, false
	}
	return rec, true
}

// notFound words a store miss for the client (never saying whether the
// runtime exists for another tenant).
func notFound(err error, what string) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.New(errdefs.ErrNotFound, what+" not found")
	}
	return err
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("session_id")
	rec, err := s.cfg.Store.BySession(r.Context(), tenantOf(r), sid)
	if err != nil {
		writeError(w, notFound(err, "session "+sid))
		return
	}
	s.objects.write(w, s, rec)
}

func (s *Server) runtime(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("runtime_id")
	rec, err := s.cfg.Store.Runtime(r.Context(), tenantOf(r), id)
	if err != nil {
		writeError(w, notFound(err, "runtime "+id))
		return
	}
	s.objects.write(w, s, rec)
}

func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["ids"]
	if len(ids) > 1000 {
		writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "at most 1000 ids"))
		return
	}
	out := []runtimeObject{}
	if len(ids) > 0 {
		recs, err := s.cfg.Store.List(r.Context(), store.Filter{Tenant: tenantOf(r), SessionIDs: ids})
		if err != nil {
			writeError(w, err)
			return
		}
		for _, rec := range recs {
			out = append(out, s.object(rec))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// list holds the tenant's runtimes that are not stopped (paused ones
// included: the app server counts them against its sandbox limit).
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	recs, err := s.cfg.Store.List(r.Context(), store.Filter{Tenant: tenantOf(r), States: []store.State{store.Starting, store.Running, store.Paused, store.Error}})
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]runtimeObject, 0, len(recs))
	for _, rec := range recs {
		out = append(out, s.object(rec))
	}
	writeJSON(w, http.StatusOK, map[string]any{"runtimes": out})
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if s.cfg.Caps.Pause == nil {
		writeError(w, errdefs.New(errdefs.ErrNotImplemented, "this backend cannot pause"))
		return
	}
	switch rec.State {
	case store.Paused:
		writeJSON(w, http.StatusOK, s.object(rec))
		return
	case store.Running:
	default:
		writeError(w, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("runtime %s is %s: only a running runtime pauses", rec.ID, rec.State)))
		return
	}
	if err := s.cfg.Caps.Pause.Pause(r.Context(), rec.BackendID); err != nil {
		writeError(w, err)
		return
	}
	rec, err := s.setState(r.Context(), rec.ID, store.Paused, "")
	if err != nil {
		writeError(w, err)
		return
	}
	s.routes.setState(rec.ID, store.Paused)
	writeJSON(w, http.StatusOK, s.object(rec))
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lookup(w, r)
	if !ok {
		return
	}
	rec, err := s.resumeRuntime(r.Context(), rec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.object(rec))
}

// resumeRuntime thaws a paused runtime and leaves it starting until its
// health route answers (every client waits for readiness again).
func (s *Server) resumeRuntime(ctx context.Context, rec store.Runtime) (store.Runtime, error) {
	switch rec.State {
	case store.Running, store.Starting:
		return rec, nil
	case store.Paused:
	default:
		return rec, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("runtime %s is %s: only a paused runtime resumes", rec.ID, rec.State))
	}
	if s.cfg.Caps.Pause == nil {
		return rec, errdefs.New(errdefs.ErrNotImplemented, "this backend cannot resume")
	}
	if _, err := s.cfg.Caps.Pause.Resume(ctx, rec.BackendID); err != nil {
		return rec, err
	}
	rec, err := s.cfg.Store.Update(ctx, rec.ID, func(x *store.Runtime) error {
		x.State, x.PodStatus, x.Reason = store.Starting, "running", ""
		return nil
	})
	if err != nil {
		return rec, err
	}
	s.routes.setState(rec.ID, store.Starting)
	var ws workloadSpec
	_ = json.Unmarshal(rec.Spec, &ws)
	s.boot(rec, ws, true)
	return rec, nil
}

// logs is sbx's extension route: the sandbox's own output (sandboxd's
// log, or the workload's), for `sbx logs` and the remote driver.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("runtime_id")
	rec, err := s.cfg.Store.Runtime(r.Context(), tenantOf(r), id)
	if err != nil {
		writeError(w, notFound(err, "runtime "+id))
		return
	}
	tail := 0
	if v := r.URL.Query().Get("tail"); v != "" {
		if tail, err = strconv.Atoi(v); err != nil || tail < 0 {
			writeError(w, errdefs.New(errdefs.ErrInvalidArgument, "tail must be a whole number"))
			return
		}
	}
	var b strings.Builder
	if err := s.cfg.Driver.Logs(r.Context(), rec.BackendID, &limitWriter{w: &b, n: 8 << 20}, tail); err != nil {
		writeError(w, notFound(err, "the sandbox of runtime "+id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"logs": b.String()})
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if rec.State == store.Stopped {
		writeJSON(w, http.StatusOK, s.object(rec))
		return
	}
	if err := s.removeSandbox(r.Context(), rec); err != nil {
		writeError(w, err)
		return
	}
	rec, err := s.setState(r.Context(), rec.ID, store.Stopped, "")
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("runtime stopped", "runtime", rec.ID)
	writeJSON(w, http.StatusOK, s.object(rec))
}
