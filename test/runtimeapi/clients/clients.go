// Package clients sends, for sandbox-api's tests, exactly what each of
// OpenHands' three runtime-API clients sends (../../../../shared/spec/
// runtime-api.md, cited as §N below): the V1 SDK's APIRemoteWorkspace
// (SDK), the V1 app server's RemoteSandboxService (App) and V0's
// RemoteRuntime with its remote builder (V0).
//
// Paths, headers, body fields and the way each client reads a status are
// the clients'; each is commented with the section it comes from. What is
// ours: the poll intervals and timeouts are configurable (tests use
// ~100 ms where the clients wait 2–30 s), errors are returned with context
// instead of logged, and the workload calls a test needs (the stand-in's
// bash and stream routes) are added where the real client would drive an
// agent.
//
// Each client has building blocks (start, poll, pause, …) and a Run…
// function that takes a runtime through its whole life, for `go test`
// against a real sandbox-api. fake_test.go has a fake of the service, used
// only to test these clients.
package clients

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Config is what every client needs to reach the runtime API.
type Config struct {
	// BaseURL is the runtime API's URL (SANDBOX_REMOTE_RUNTIME_API_URL,
	// RUNTIME_API_URL).
	BaseURL string
	// APIKey is the runtime API key (SANDBOX_API_KEY).
	APIKey string
	// HTTPClient is used for every request (default: one with a 60 s
	// timeout, the SDK's api_timeout, §3).
	HTTPClient *http.Client
	// Poll is the wait between readiness attempts. The clients wait 2 s
	// (V0, APP) or 2–10 s exponentially (SDK) (§6); tests pass ~100 ms.
	Poll time.Duration
	// ReadyTimeout bounds each readiness wait (SDK 300 s, V0 180 s, APP
	// 120 s; §6).
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

func (c Config) poll() time.Duration { return cmp.Or(c.Poll, 2*time.Second) }

func (c Config) readyTimeout(def time.Duration) time.Duration { return cmp.Or(c.ReadyTimeout, def) }

func (c Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{Timeout: 60 * time.Second}
}

func (c Config) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Runtime is the runtime object (§5): every field a client reads. Raw
// holds the whole decoded object, for the checks that are about a key's
// presence (V0 asserts pod_status exists, §4.4).
type Runtime struct {
	RuntimeID      string         `json:"runtime_id"`
	ID             string         `json:"id"`
	SessionID      string         `json:"session_id"`
	URL            string         `json:"url"`
	SessionAPIKey  string         `json:"session_api_key"`
	Status         string         `json:"status"`
	PodStatus      string         `json:"pod_status"`
	RestartCount   int            `json:"restart_count"`
	RestartReasons []any          `json:"restart_reasons"`
	PodLogs        string         `json:"pod_logs"`
	WorkHosts      map[string]int `json:"work_hosts"`
	Raw            map[string]any `json:"-"`
}

func decodeRuntime(b []byte) (*Runtime, error) {
	var rt Runtime
	if err := json.Unmarshal(b, &rt); err != nil {
		return nil, fmt.Errorf("decoding a runtime object: %w (body %.200q)", err, b)
	}
	if err := json.Unmarshal(b, &rt.Raw); err != nil {
		return nil, fmt.Errorf("decoding a runtime object: %w", err)
	}
	return &rt, nil
}

// HTTPError is a non-2xx answer; every client calls raise_for_status
// (§3). It unwraps to the errdefs class of its status, so
// errors.Is(err, errdefs.ErrNotFound) tests for 404.
type HTTPError struct {
	Method, URL string
	Status      int
	Detail      string // the FastAPI "detail" field, when the body has one
	Body        string
}

func (e *HTTPError) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = strings.TrimSpace(e.Body)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %.300s", e.Method, e.URL, e.Status, msg)
}

func (e *HTTPError) Unwrap() error { return errdefs.FromHTTP(e.Status, e.Detail) }

// StatusOf returns the HTTP status of an HTTPError in err's chain, or 0.
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// request is one HTTP exchange. body is JSON-encoded unless it is an
// io.Reader (then contentType names it). A non-2xx answer is an
// *HTTPError carrying the body.
type request struct {
	method, url string
	header      http.Header
	body        any
	contentType string
	timeout     time.Duration
}

func do(ctx context.Context, hc *http.Client, r request) ([]byte, http.Header, error) {
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	var rd io.Reader
	ct := r.contentType
	switch b := r.body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: encoding the body: %w", r.method, r.url, err)
		}
		rd, ct = bytes.NewReader(enc), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, rd)
	if err != nil {
		return nil, nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("%s %s: %v", r.method, r.url, err), err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the reply: %w", r.method, r.url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := &HTTPError{Method: r.method, URL: r.url, Status: resp.StatusCode, Body: string(b)}
		var d struct {
			Detail any `json:"detail"`
		}
		if json.Unmarshal(b, &d) == nil && d.Detail != nil {
			if s, ok := d.Detail.(string); ok {
				he.Detail = s
			} else {
				dj, _ := json.Marshal(d.Detail)
				he.Detail = string(dj)
			}
		}
		return b, resp.Header, he
	}
	return b, resp.Header, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errNotReady is a readiness attempt that should be retried; any other
// error ends the wait at once (tenacity retries only one exception type
// in each client, §6.1, §6.2).
type errNotReady struct{ msg string }

func (e *errNotReady) Error() string { return e.msg }

// retryUntil runs attempt every poll until it succeeds, fails with an
// error that is not errNotReady, or timeout passes.
func retryUntil(ctx context.Context, poll, timeout time.Duration, what string, attempt func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		var nr *errNotReady
		if !errors.As(err, &nr) {
			if ctx.Err() != nil && last != nil {
				return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("%s: not ready within %s (last: %v)", what, timeout, last), err)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		last = err
		if sleep(ctx, poll) != nil {
			return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("%s: not ready within %s (last: %v)", what, timeout, last), ctx.Err())
		}
	}
}

// Counter is the probe V0's lifecycle uses to prove a process survives
// pause and resume: a bash loop writing an increasing number to a file
// every 100 ms. (V1's lifecycles use the stand-in's in-process counter,
// AgentServer.StartCounter: its image has no shell.) It ends after 10 minutes, or as soon as CounterRunFile is
// removed, so neither a lost container nor a host-side test leaves it
// looping.
const (
	counterFile    = "/tmp/sbx-rtclients-counter"
	CounterRunFile = counterFile + ".run"
)

func counterStart() string {
	return "touch " + CounterRunFile + "; (i=0; while [ -e " + CounterRunFile + " ] && [ $i -lt 6000 ]; do i=$((i+1)); echo $i > " +
		counterFile + "; sleep 0.1; done) >/dev/null 2>&1 &"
}

func counterRead() string { return "cat " + counterFile }
