package sandboxapi

// Terminal attach (docs/sandboxd-extensions.md, "Terminal attach"): a
// WebSocket whose binary messages carry raw terminal bytes both ways and
// whose text messages are the JSON control messages below.
const (
	// PathAttach starts a new terminal: a login shell, or ?cmd= run by
	// one, or the argv in repeated ?arg=.
	PathAttach = PathExtPrefix + "attach"
	// PathSessions + "/{name}/attach" attaches to a session's terminal.
	AttachSuffix = "/attach"
)

// Control message types. The client sends "resize"; the server sends
// "lost", "error" and, last, "exit".
const (
	ControlResize = "resize"
	ControlExit   = "exit"
	ControlLost   = "lost"
	ControlError  = "error"
)

// Control is one text message of an attach WebSocket.
type Control struct {
	Type string `json:"type"`
	// Rows and Cols are the window size of a "resize".
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// ExitCode is the program's exit status in "exit" (128+N after
	// signal N).
	ExitCode *int `json:"exit_code,omitempty"`
	// Skipped is how many output bytes a slow client missed ("lost").
	Skipped int64 `json:"skipped,omitempty"`
	// Detail says why a control message was refused ("error").
	Detail string `json:"detail,omitempty"`
}
