// Package sandboxapi is the wire contract of sandboxd, the server inside
// every sbx sandbox, and a Go client for it.
//
// The contract is OpenHands' action execution protocol: the same routes,
// JSON shapes, status codes and observation texts, so that OpenHands' own
// client and agents built for OpenHands work unchanged. This package
// imports only the standard library.
//
// Actions go in as {"action": {...}}; observations come back as
// {"message", "observation", "content", "extras", "success"}.
package sandboxapi

import (
	"encoding/json"
	"fmt"
)

// Routes of the in-sandbox server (spec §1).
const (
	PathAlive           = "/alive"
	PathServerInfo      = "/server_info"
	PathExecuteAction   = "/execute_action"
	PathUploadFile      = "/upload_file"
	PathDownloadFiles   = "/download_files"
	PathListFiles       = "/list_files"
	PathVSCodeToken     = "/vscode/connection_token"
	PathUpdateMCPServer = "/update_mcp_server"

	// HeaderSessionAPIKey carries SESSION_API_KEY.
	HeaderSessionAPIKey = "X-Session-API-Key"

	// HeaderWaitReady (an sbx extension) on GET /alive holds the answer
	// until the server is ready or the duration it gives (Go syntax,
	// e.g. "5s", at most 30s) has passed, so a starting sandbox is seen
	// ready the moment it is instead of at the next poll.
	HeaderWaitReady = "X-Sbx-Wait-Ready"
)

// Action types the server executes.
const (
	ActionRun               = "run"
	ActionRunIPython        = "run_ipython"
	ActionRead              = "read"
	ActionWrite             = "write"
	ActionEdit              = "edit"
	ActionBrowse            = "browse"
	ActionBrowseInteractive = "browse_interactive"
)

// Observation types.
const (
	ObservationRun      = "run"
	ObservationIPython  = "run_ipython"
	ObservationRead     = "read"
	ObservationWrite    = "write"
	ObservationEdit     = "edit"
	ObservationError    = "error"
	ObservationBrowse   = "browse"
	ObservationDownload = "download"
	ObservationNull     = "null"
)

// Action is one serialized action. Args stays raw: its shape depends on
// Action, and the server decodes it leniently (see the server's decoder).
type Action struct {
	Action  string          `json:"action"`
	Args    json.RawMessage `json:"args,omitempty"`
	Timeout *float64        `json:"timeout,omitempty"`
	// Informational envelope fields, accepted and ignored by the server.
	ID      *int64 `json:"id,omitempty"`
	Message string `json:"message,omitempty"`
	Source  string `json:"source,omitempty"`
}

// ActionRequest is the body of POST /execute_action.
type ActionRequest struct {
	Action Action `json:"action"`
}

// CmdRunArgs are the args of a "run" action.
type CmdRunArgs struct {
	Command           string  `json:"command"`
	IsInput           bool    `json:"is_input"`
	Thought           string  `json:"thought"`
	Blocking          bool    `json:"blocking"`
	IsStatic          bool    `json:"is_static"`
	Cwd               *string `json:"cwd"`
	Hidden            bool    `json:"hidden"`
	ConfirmationState string  `json:"confirmation_state"`
	SecurityRisk      int     `json:"security_risk"`
	// Session (an sbx extension) names the shell session to run in;
	// empty is the default one, OpenHands' shell.
	Session string `json:"session,omitempty"`
}

// IPythonArgs are the args of a "run_ipython" action.
type IPythonArgs struct {
	Code              string `json:"code"`
	Thought           string `json:"thought"`
	IncludeExtra      bool   `json:"include_extra"`
	ConfirmationState string `json:"confirmation_state"`
	SecurityRisk      int    `json:"security_risk"`
	KernelInitCode    string `json:"kernel_init_code"`
}

// FileReadArgs are the args of a "read" action.
type FileReadArgs struct {
	Path         string `json:"path"`
	Start        int    `json:"start"`
	End          int    `json:"end"`
	Thought      string `json:"thought"`
	SecurityRisk int    `json:"security_risk"`
	ImplSource   string `json:"impl_source"`
	ViewRange    []int  `json:"view_range"`
}

// FileWriteArgs are the args of a "write" action.
type FileWriteArgs struct {
	Path         string `json:"path"`
	Content      string `json:"content"`
	Start        int    `json:"start"`
	End          int    `json:"end"`
	Thought      string `json:"thought"`
	SecurityRisk int    `json:"security_risk"`
}

// FileEditArgs are the args of an "edit" action (OpenHands ACI editor).
type FileEditArgs struct {
	Path         string  `json:"path"`
	Command      string  `json:"command"`
	FileText     *string `json:"file_text"`
	OldStr       *string `json:"old_str"`
	NewStr       *string `json:"new_str"`
	InsertLine   any     `json:"insert_line"`
	Content      string  `json:"content"`
	Start        int     `json:"start"`
	End          int     `json:"end"`
	Thought      string  `json:"thought"`
	SecurityRisk int     `json:"security_risk"`
	ImplSource   string  `json:"impl_source"`
}

// NewRunAction builds a "run" action with OpenHands' defaults. timeout is
// the hard timeout in seconds; 0 sends none.
func NewRunAction(command string, timeout float64) Action {
	return mustAction(ActionRun, CmdRunArgs{Command: command, ConfirmationState: "confirmed", SecurityRisk: -1}, timeout)
}

// NewBlockingRunAction builds a "run" action that waits for the command to
// end however quiet it is (blocking), up to timeout seconds; 0 sends none.
func NewBlockingRunAction(command string, timeout float64) Action {
	return mustAction(ActionRun, CmdRunArgs{Command: command, Blocking: true, ConfirmationState: "confirmed", SecurityRisk: -1}, timeout)
}

// NewInputAction builds a "run" action that sends text, or a key such as
// "C-c", to the command that is running.
func NewInputAction(text string, timeout float64) Action {
	return mustAction(ActionRun, CmdRunArgs{Command: text, IsInput: true, ConfirmationState: "confirmed", SecurityRisk: -1}, timeout)
}

// NewAction builds an action of the given type from its args struct.
func NewAction(actionType string, args any, timeout float64) (Action, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return Action{}, fmt.Errorf("encode %s args: %w", actionType, err)
	}
	a := Action{Action: actionType, Args: b}
	if timeout != 0 {
		a.Timeout = &timeout
	}
	return a, nil
}

func mustAction(t string, args any, timeout float64) Action {
	a, err := NewAction(t, args, timeout)
	if err != nil {
		panic(err) // only fixed, encodable structs reach here
	}
	return a
}

// Observation is one serialized observation.
type Observation struct {
	Message     string          `json:"message"`
	Observation string          `json:"observation"`
	Content     string          `json:"content"`
	Extras      json.RawMessage `json:"extras"`
	Success     *bool           `json:"success,omitempty"`
}

// CmdOutputMetadata is extras.metadata of a "run" observation. Every key
// is always present on the wire.
type CmdOutputMetadata struct {
	ExitCode          int     `json:"exit_code"`
	PID               int     `json:"pid"`
	Username          *string `json:"username"`
	Hostname          *string `json:"hostname"`
	WorkingDir        *string `json:"working_dir"`
	PyInterpreterPath *string `json:"py_interpreter_path"`
	Prefix            string  `json:"prefix"`
	Suffix            string  `json:"suffix"`
}

// CmdOutputExtras are the extras of a "run" observation.
type CmdOutputExtras struct {
	Command  string            `json:"command"`
	Metadata CmdOutputMetadata `json:"metadata"`
	Hidden   bool              `json:"hidden"`
}

// IPythonExtras are the extras of a "run_ipython" observation.
type IPythonExtras struct {
	Code      string   `json:"code"`
	ImageURLs []string `json:"image_urls"`
}

// FileReadExtras are the extras of a "read" observation.
type FileReadExtras struct {
	Path       string `json:"path"`
	ImplSource string `json:"impl_source"`
}

// FileWriteExtras are the extras of a "write" observation.
type FileWriteExtras struct {
	Path string `json:"path"`
}

// FileEditExtras are the extras of an "edit" observation. DiffCache is the
// odd "_diff_cache" key OpenHands always sends as null.
type FileEditExtras struct {
	Path       string  `json:"path"`
	PrevExist  bool    `json:"prev_exist"`
	OldContent *string `json:"old_content"`
	NewContent *string `json:"new_content"`
	ImplSource string  `json:"impl_source"`
	Diff       *string `json:"diff"`
	DiffCache  any     `json:"_diff_cache"`
}

// ErrorExtras are the extras of an "error" observation.
type ErrorExtras struct {
	ErrorID string `json:"error_id"`
}

// DecodeExtras decodes o.Extras into v (one of the *Extras types).
func (o *Observation) DecodeExtras(v any) error {
	if err := json.Unmarshal(o.Extras, v); err != nil {
		return fmt.Errorf("decode %s extras: %w", o.Observation, err)
	}
	return nil
}

// CmdOutput returns the extras of a "run" observation.
func (o *Observation) CmdOutput() (CmdOutputExtras, error) {
	var e CmdOutputExtras
	if o.Observation != ObservationRun {
		return e, fmt.Errorf("observation is %q, not %q: %s", o.Observation, ObservationRun, o.Content)
	}
	return e, o.DecodeExtras(&e)
}

// Alive is the body of GET /alive.
type Alive struct {
	Status string `json:"status"`
}

// ServerInfo is the body of GET /server_info.
type ServerInfo struct {
	Uptime    float64   `json:"uptime"`
	IdleTime  float64   `json:"idle_time"`
	Resources Resources `json:"resources"`
	// Sbx (an extension OpenHands' clients ignore) says which sandboxd
	// this is and which of sbx's own routes it serves.
	Sbx *SbxInfo `json:"sbx,omitempty"`
}

// SbxInfo is sandboxd's version and the extension features it serves
// under PathExtPrefix ("sessions", "streaming", "interrupt", …).
type SbxInfo struct {
	Version      string   `json:"version"`
	API          string   `json:"api"`
	Capabilities []string `json:"capabilities"`
}

// Resources describes the server process (spec §2.4).
type Resources struct {
	CPUPercent float64     `json:"cpu_percent"`
	Memory     MemoryStats `json:"memory"`
	Disk       DiskStats   `json:"disk"`
	IO         IOStats     `json:"io"`
}

// MemoryStats is resources.memory.
type MemoryStats struct {
	RSS     int64   `json:"rss"`
	VMS     int64   `json:"vms"`
	Percent float64 `json:"percent"`
}

// DiskStats is resources.disk, for "/".
type DiskStats struct {
	Total   int64   `json:"total"`
	Used    int64   `json:"used"`
	Free    int64   `json:"free"`
	Percent float64 `json:"percent"`
}

// IOStats is resources.io.
type IOStats struct {
	ReadBytes  int64 `json:"read_bytes"`
	WriteBytes int64 `json:"write_bytes"`
}

// UploadResult is the body of a successful POST /upload_file.
type UploadResult struct {
	Filename    string `json:"filename"`
	Destination string `json:"destination"`
	Recursive   bool   `json:"recursive"`
}

// ErrorBody is the body of every non-2xx answer.
type ErrorBody struct {
	Detail string `json:"detail"`
	Errors string `json:"errors,omitempty"`
}
