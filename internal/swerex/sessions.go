package swerex

import (
	"context"
	"net/http"
	"time"

	"github.com/sbx-dev/sbx/internal/pyrepr"
	"github.com/sbx-dev/sbx/internal/swerex/session"
)

type isAliveResponse struct {
	IsAlive bool   `json:"is_alive"`
	Message string `json:"message"`
}

type createSessionResponse struct {
	Output      string `json:"output"`
	SessionType string `json:"session_type"`
}

type bashObservation struct {
	Output        string `json:"output"`
	ExitCode      *int   `json:"exit_code"`
	FailureReason string `json:"failure_reason"`
	ExpectString  string `json:"expect_string"`
	SessionType   string `json:"session_type"`
}

type closeSessionResponse struct {
	SessionType string `json:"session_type"`
}

func (s *Server) createSession(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	o, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	if _, err := o.tagged("session_type", "bash"); err != nil {
		return nil, err
	}
	src := o.strList("startup_source")
	name := o.str("session", "default", false)
	timeout := o.float("startup_timeout", 1.0)
	if err := o.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if _, ok := s.sessions[name]; ok {
		s.mu.Unlock()
		return nil, exc("swerex.exceptions.SessionExistsError", "session "+name+" already exists")
	}
	e := &entry{ready: make(chan struct{})}
	s.sessions[name] = e
	s.mu.Unlock()

	d := time.Duration(timeout * float64(time.Second))
	if timeout <= 0 {
		d = 0
	}
	// Start-up outlives the request: the session stays registered
	// whatever happens to the client, as upstream's.
	sess, out, err := session.Start(context.WithoutCancel(ctx), session.Config{
		Env: s.env(), Dir: s.cfg.Dir, Credential: s.cfg.Credential, Starter: s.cfg.Starter, Logger: s.log,
		StartupSource: src, StartupTimeout: max(d, time.Millisecond),
	})
	e.s = sess
	close(e.ready)
	if err != nil {
		return nil, err
	}
	return createSessionResponse{Output: out, SessionType: "bash"}, nil
}

// lookup finds a started session: unknown names and names /close left
// behind fail as upstream's.
func (s *Server) lookup(ctx context.Context, name string) (*session.Session, error) {
	s.mu.Lock()
	e, ok := s.sessions[name]
	s.mu.Unlock()
	if !ok {
		return nil, exc("swerex.exceptions.SessionDoesNotExistError", "session "+pyrepr.Str(name)+" does not exist")
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.s == nil {
		return nil, exc("builtins.RuntimeError", "shell not initialized")
	}
	return e.s, nil
}

func (s *Server) runInSession(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	o, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	kind, err := o.tagged("action_type", "bash", "bash_interrupt")
	if err != nil {
		return nil, err
	}
	name := o.str("session", "default", false)
	if kind == "bash_interrupt" {
		in := session.Interrupt{Timeout: o.float("timeout", 0.2), NRetry: o.int("n_retry", 3), Expect: o.strList("expect")}
		if err := o.err(); err != nil {
			return nil, err
		}
		sess, err := s.lookup(ctx, name)
		if err != nil {
			return nil, err
		}
		obs, err := sess.Interrupt(ctx, in)
		if err != nil {
			return nil, err
		}
		return observation(obs), nil
	}
	a := session.Action{
		Command:         o.str("command", "", true),
		Timeout:         o.optFloat("timeout"),
		Interactive:     o.bool("is_interactive_command", false),
		InteractiveQuit: o.bool("is_interactive_quit", false),
		Check:           o.literal("check", "raise", "silent", "raise", "ignore"),
		ErrorMsg:        o.str("error_msg", "", false),
		Expect:          o.strList("expect"),
	}
	if err := o.err(); err != nil {
		return nil, err
	}
	sess, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	obs, err := sess.Run(ctx, a)
	if err != nil {
		return nil, err
	}
	return observation(obs), nil
}

func observation(o session.Observation) bashObservation {
	return bashObservation{Output: o.Output, ExitCode: o.ExitCode, ExpectString: o.ExpectString, SessionType: "bash"}
}

func (s *Server) closeSession(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	o, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	if _, err := o.tagged("session_type", "bash"); err != nil {
		return nil, err
	}
	name := o.str("session", "default", false)
	if err := o.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.sessions[name]
	if ok {
		delete(s.sessions, name)
	}
	s.mu.Unlock()
	if !ok {
		return nil, exc("swerex.exceptions.SessionDoesNotExistError", "session "+pyrepr.Str(name)+" does not exist")
	}
	<-e.ready
	if e.s != nil {
		e.s.Close()
	}
	return closeSessionResponse{SessionType: "bash"}, nil
}

// closeAll is /close: every shell ends, the names stay (upstream's
// LocalRuntime.close), and the server goes on serving.
func (s *Server) closeAll(context.Context, *http.Request, []byte) (any, error) {
	s.mu.Lock()
	var all []*entry
	for name, e := range s.sessions {
		all = append(all, e)
		s.sessions[name] = &entry{ready: e.ready}
	}
	s.mu.Unlock()
	for _, e := range all {
		<-e.ready
		if e.s != nil {
			e.s.Close()
		}
	}
	return struct{}{}, nil
}
