package clients

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// AgentServer talks to a V1 workload at a runtime's url with
// X-Session-API-Key (§6.3, §8.1). Conversation is what the app server
// does; the counter, Whoami, Stream and Echo use the stand-in's test routes
// (test/runtimeapi/agentserver), which the real agent-server does not have
// in this form.
type AgentServer struct {
	URL           string
	SessionAPIKey string
	HTTP          *http.Client
}

func (a *AgentServer) hc() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return http.DefaultClient
}

func (a *AgentServer) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	h := http.Header{}
	if a.SessionAPIKey != "" {
		h.Set("X-Session-API-Key", a.SessionAPIKey)
	}
	b, _, err := do(ctx, a.hc(), request{method: method, url: strings.TrimRight(a.URL, "/") + path, header: h, body: body})
	return b, err
}

// CreateConversation is the app server's POST {AGENT_SERVER}/api/conversations
// (§6.3); it returns the conversation id.
func (a *AgentServer) CreateConversation(ctx context.Context, body any) (string, error) {
	b, err := a.call(ctx, "POST", "/api/conversations", body)
	if err != nil {
		return "", fmt.Errorf("agent-server: creating a conversation: %w", err)
	}
	var c struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return "", fmt.Errorf("agent-server: conversation reply without id: %.200s", b)
	}
	return c.ID, nil
}

// PollConversation is what the app server's poller sends for a known
// conversation (§4.5): GET /api/conversations/{hex id} and
// /api/conversations/{hex id}/events/search.
func (a *AgentServer) PollConversation(ctx context.Context, id string) error {
	hexID := strings.ReplaceAll(id, "-", "")
	if _, err := a.call(ctx, "GET", "/api/conversations/"+hexID, nil); err != nil {
		return fmt.Errorf("agent-server: polling conversation: %w", err)
	}
	if _, err := a.call(ctx, "GET", "/api/conversations/"+hexID+"/events/search", nil); err != nil {
		return fmt.Errorf("agent-server: polling events: %w", err)
	}
	return nil
}

// Conversation creates one conversation and polls it.
func (a *AgentServer) Conversation(ctx context.Context) error {
	id, err := a.CreateConversation(ctx, map[string]any{})
	if err != nil {
		return err
	}
	return a.PollConversation(ctx, id)
}

// counterPath is the stand-in's in-process counter (POST starts it, GET
// reads it); the image is FROM scratch, so there is no shell to run one.
const counterPath = "/api/sbx-standin/counter"

// StartCounter starts the stand-in's background counter: a goroutine in
// the agent-server process adding one every 100 ms. A paused (frozen)
// process does not count and a restarted one has no counter, so reads
// before and after a pause prove the process survived it. Starting it
// again keeps the running one.
func (a *AgentServer) StartCounter(ctx context.Context) error {
	if _, err := a.call(ctx, "POST", counterPath, nil); err != nil {
		return fmt.Errorf("agent-server: starting the counter: %w", err)
	}
	// Let it tick past 0, so a later read shows it moved.
	return sleep(ctx, 300*time.Millisecond)
}

// ReadCounter reads the counter's current value; a server that never
// started one (a restarted process) answers HTTP 404.
func (a *AgentServer) ReadCounter(ctx context.Context) (int, error) {
	b, err := a.call(ctx, "GET", counterPath, nil)
	if err != nil {
		return 0, fmt.Errorf("agent-server: reading the counter: %w", err)
	}
	var r struct {
		Value *int `json:"value"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Value == nil {
		return 0, fmt.Errorf("agent-server: counter reply without a value: %.200s", b)
	}
	return *r.Value, nil
}

// ReadCounterPast reads the counter until it exceeds prev. A process that
// survived a pause has a counter at or past prev and, once thawed, moves
// on within a tick; but it may have run for less than one tick between the
// read before the pause and the one after the resume, so a single read can
// show the same value on a slow machine. A restarted process has no counter
// (404), which fails at once. The wait is bounded: a counter still stuck
// after 5 s is a frozen process.
func (a *AgentServer) ReadCounterPast(ctx context.Context, prev int) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := a.ReadCounter(ctx)
		if err != nil || n > prev {
			return n, err
		}
		if time.Now().After(deadline) {
			return n, nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return n, err
		}
	}
}

// Whoami is the identity the stand-in runs as (/api/sbx-standin/whoami).
type Whoami struct {
	UID      int             `json:"uid"`
	GID      int             `json:"gid"`
	Cwd      string          `json:"cwd"`
	Writable map[string]bool `json:"writable"`
}

// Whoami asks the stand-in for its uid, gid, working directory and
// whether /workspace and /tmp are writable to it.
func (a *AgentServer) Whoami(ctx context.Context) (Whoami, error) {
	var w Whoami
	b, err := a.call(ctx, "GET", "/api/sbx-standin/whoami", nil)
	if err != nil {
		return w, fmt.Errorf("agent-server: whoami: %w", err)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, fmt.Errorf("agent-server: whoami reply: %w", err)
	}
	return w, nil
}

// Stream reads n events of the stand-in's SSE route and returns when each
// arrived: a hop that buffers shows as events arriving together.
func (a *AgentServer) Stream(ctx context.Context, n int) ([]time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/stream?count=%d", strings.TrimRight(a.URL, "/"), n), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Session-API-Key", a.SessionAPIKey)
	resp, err := a.hc().Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent-server: stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("agent-server: stream: HTTP %d", resp.StatusCode)
	}
	var at []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			at = append(at, time.Now())
		}
	}
	return at, sc.Err()
}

// Echo sends msg over the stand-in's WebSocket (/sockets/events/{id},
// the key as the session_api_key query parameter, as browsers must) and
// returns what came back.
func (a *AgentServer) Echo(ctx context.Context, conversationID, msg string) (string, error) {
	u := "ws" + strings.TrimPrefix(strings.TrimRight(a.URL, "/"), "http") + "/sockets/events/" + conversationID + "?session_api_key=" + a.SessionAPIKey
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: a.HTTP})
	if err != nil {
		return "", fmt.Errorf("agent-server: websocket: %w", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return "", fmt.Errorf("agent-server: websocket write: %w", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		return "", fmt.Errorf("agent-server: websocket read: %w", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	return string(got), nil
}

// CheckStreaming proves a hop between the client and the stand-in streams
// rather than buffers: n Server-Sent Events sent 100 ms apart must arrive
// spread over at least half that time, and a WebSocket message must echo.
func (a *AgentServer) CheckStreaming(ctx context.Context, n int) error {
	at, err := a.Stream(ctx, n)
	if err != nil {
		return err
	}
	if len(at) != n {
		return fmt.Errorf("agent-server: stream gave %d events, want %d", len(at), n)
	}
	if span, want := at[n-1].Sub(at[0]), time.Duration(n-1)*50*time.Millisecond; span < want {
		return fmt.Errorf("agent-server: %d events sent 100 ms apart arrived within %s: the stream was buffered", n, span)
	}
	got, err := a.Echo(ctx, "stream-check", "ping")
	if err != nil {
		return err
	}
	if got != "ping" {
		return fmt.Errorf("agent-server: websocket echoed %q, want %q", got, "ping")
	}
	return nil
}
