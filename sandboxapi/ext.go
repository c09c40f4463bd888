package sandboxapi

import "time"

// sbx's own routes, under one versioned prefix (docs/sandboxd-extensions.md).
// None of them waits for the one-action lock of /execute_action.
const (
	PathExtPrefix = "/sbx/v1/"
	PathSessions  = PathExtPrefix + "sessions"

	// HeaderCancelOnDisconnect, true on a run request, interrupts the
	// command (C-c) when the client goes away.
	HeaderCancelOnDisconnect = "X-Sbx-Cancel-On-Disconnect"
)

// SessionInfo describes a shell session.
type SessionInfo struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Busy is true while a command runs in it.
	Busy bool   `json:"busy"`
	Cwd  string `json:"cwd"`
	PID  int    `json:"pid"`
}

// CreateSessionRequest starts a named shell. An empty name gets one.
type CreateSessionRequest struct {
	Name string            `json:"name,omitempty"`
	Cwd  string            `json:"cwd,omitempty"`
	Env  map[string]string `json:"env,omitempty"`
}

// SessionRunRequest is a run action's args in a named session.
type SessionRunRequest struct {
	Command  string `json:"command"`
	IsInput  bool   `json:"is_input,omitempty"`
	Blocking bool   `json:"blocking,omitempty"`
	Hidden   bool   `json:"hidden,omitempty"`
	// Timeout is the hard timeout in seconds; absent or 0: none.
	Timeout *float64 `json:"timeout,omitempty"`
	// Stream answers an event stream of the output, ending with the
	// observation.
	Stream bool `json:"stream,omitempty"`
}

// InterruptResult says whether a running command got SIGINT.
type InterruptResult struct {
	Interrupted bool `json:"interrupted"`
}

// Events of a streamed run. Each is a JSON object with a "type" field: one
// per line (application/x-ndjson), or Server-Sent Events with the type as
// the event name when the client accepts text/event-stream.
const (
	EventStart       = "start"
	EventOutput      = "output"
	EventLost        = "lost"
	EventObservation = "observation"
	EventError       = "error"
)

// RunStart is the first event of a streamed run: the id to reconnect with
// (GET /sbx/v1/sessions/{name}/runs/{id}?offset=N).
type RunStart struct {
	Session string `json:"session"`
	RunID   string `json:"run_id"`
}

// StreamOutput is output as the terminal produced it (escape sequences
// and carriage returns included; invalid UTF-8 replaced). Offset is the
// terminal byte offset of its first byte.
type StreamOutput struct {
	Offset int64  `json:"offset"`
	Data   string `json:"data"`
}

// StreamLost says a slow client missed bytes [Offset, Offset+Skipped).
type StreamLost struct {
	Offset  int64 `json:"offset"`
	Skipped int64 `json:"skipped"`
}

// StreamObservation ends a streamed run: the observation the same request
// without streaming returns. Next is the offset after the run's output.
type StreamObservation struct {
	RunID       string      `json:"run_id"`
	Next        int64       `json:"next"`
	Observation Observation `json:"observation"`
}
