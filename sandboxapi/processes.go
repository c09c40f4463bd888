package sandboxapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PathProcesses is the background-process routes' root
// (docs/sandboxd-extensions.md, "Processes").
const PathProcesses = PathExtPrefix + "processes"

// ProcessSpec starts a background process: Argv as given, or Command
// through bash -c.
type ProcessSpec struct {
	Command string            `json:"command,omitempty"`
	Argv    []string          `json:"argv,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Stdin   bool              `json:"stdin,omitempty"`
	Tag     string            `json:"tag,omitempty"`
}

// ProcessInfo describes a background process.
type ProcessInfo struct {
	ID        int        `json:"id"`
	PID       int        `json:"pid"`
	Argv      []string   `json:"argv"`
	Cwd       string     `json:"cwd"`
	Tag       string     `json:"tag,omitempty"`
	Stdin     bool       `json:"stdin"`
	StartedAt time.Time  `json:"started_at"`
	State     string     `json:"state"` // "running" or "exited"
	ExitCode  *int       `json:"exit_code,omitempty"`
	Signal    string     `json:"signal,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// ProcessChunk is output of one stream ("stdout" or "stderr") at a byte
// offset of the process's output.
type ProcessChunk struct {
	Stream string `json:"stream"`
	Offset int64  `json:"offset"`
	Data   string `json:"data"`
}

// ProcessOutput is a read of a process's output from an offset.
type ProcessOutput struct {
	Chunks   []ProcessChunk `json:"chunks"`
	Next     int64          `json:"next"`
	Lost     int64          `json:"lost"`
	EOF      bool           `json:"eof"`
	Exited   bool           `json:"exited"`
	ExitCode *int           `json:"exit_code,omitempty"`
	Signal   string         `json:"signal,omitempty"`
}

// ProcessExit is the last event of a followed process.
type ProcessExit struct {
	ExitCode *int   `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	Next     int64  `json:"next"`
}

// ProcessEvent is one event of a followed process: "output" (Stream,
// Offset, Data), "lost" (Offset, Skipped) or "exit" (ExitCode, Signal,
// Next).
type ProcessEvent struct {
	Type     string `json:"type"`
	Stream   string `json:"stream,omitempty"`
	Offset   int64  `json:"offset,omitempty"`
	Data     string `json:"data,omitempty"`
	Skipped  int64  `json:"skipped,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Next     int64  `json:"next,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

func procPath(id int, rest string) string {
	return PathProcesses + "/" + strconv.Itoa(id) + rest
}

// StartProcess starts a background process.
func (c *Client) StartProcess(ctx context.Context, s ProcessSpec) (ProcessInfo, error) {
	var out ProcessInfo
	return out, c.postJSON(ctx, PathProcesses, s, &out)
}

// Processes lists the background processes, running and recently exited.
func (c *Client) Processes(ctx context.Context) ([]ProcessInfo, error) {
	req, err := c.newRequest(ctx, http.MethodGet, PathProcesses, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Processes []ProcessInfo `json:"processes"`
	}
	return out.Processes, c.do(req, &out)
}

// Process describes one process.
func (c *Client) Process(ctx context.Context, id int) (ProcessInfo, error) {
	req, err := c.newRequest(ctx, http.MethodGet, procPath(id, ""), nil)
	if err != nil {
		return ProcessInfo{}, err
	}
	var out ProcessInfo
	return out, c.do(req, &out)
}

// ProcessOutput reads a process's output from offset, at most max bytes
// (0: the server's default), without waiting.
func (c *Client) ProcessOutput(ctx context.Context, id int, offset, max int64) (ProcessOutput, error) {
	q := url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	if max > 0 {
		q.Set("max", strconv.FormatInt(max, 10))
	}
	req, err := c.newRequest(ctx, http.MethodGet, procPath(id, "/output?"+q.Encode()), nil)
	if err != nil {
		return ProcessOutput{}, err
	}
	var out ProcessOutput
	return out, c.do(req, &out)
}

// FollowProcess streams a process's output from offset until it exits,
// calling fn for each event, and returns the exit. The process does not
// depend on the connection: after an error (ctx ended, the connection
// dropped) follow again from the offset after the last byte seen
// (Offset + len(Data) of the last output event).
func (c *Client) FollowProcess(ctx context.Context, id int, offset int64, fn func(ProcessEvent) error) (ProcessExit, error) {
	req, err := c.newRequest(ctx, http.MethodGet, procPath(id, "/output?follow=1&offset="+strconv.FormatInt(offset, 10)), nil)
	if err != nil {
		return ProcessExit{}, err
	}
	var exit ProcessExit
	done := false
	err = c.readEvents(req, func(line []byte) (bool, error) {
		var ev ProcessEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return false, fmt.Errorf("sandboxd: bad process event %.200q: %w", line, err)
		}
		switch ev.Type {
		case "error":
			return false, &HTTPError{Status: http.StatusInternalServerError, Detail: ev.Detail}
		case "exit":
			exit, done = ProcessExit{ExitCode: ev.ExitCode, Signal: ev.Signal, Next: ev.Next}, true
		}
		if fn != nil {
			if err := fn(ev); err != nil {
				return false, err
			}
		}
		return done, nil
	})
	return exit, err
}

// WriteProcessInput writes to the stdin of a process started with Stdin.
func (c *Client) WriteProcessInput(ctx context.Context, id int, data string) error {
	return c.postJSON(ctx, procPath(id, "/input"), map[string]string{"data": data}, nil)
}

// CloseProcessStdin closes a process's stdin (it then reads EOF).
func (c *Client) CloseProcessStdin(ctx context.Context, id int) error {
	return c.postJSON(ctx, procPath(id, "/stdin/close"), struct{}{}, nil)
}

// SignalProcess signals a process's group: "SIGTERM", "TERM" or "15".
func (c *Client) SignalProcess(ctx context.Context, id int, sig string) error {
	return c.postJSON(ctx, procPath(id, "/signal"), map[string]string{"signal": sig}, nil)
}

// WaitProcess waits up to timeout for a process to exit (the server
// answers 412 if it is still running then).
func (c *Client) WaitProcess(ctx context.Context, id int, timeout time.Duration) (ProcessInfo, error) {
	var out ProcessInfo
	path := procPath(id, "/wait?timeout="+strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	return out, c.postJSON(ctx, path, struct{}{}, &out)
}

// RemoveProcess forgets an exited process and its log; kill ends a running
// one first.
func (c *Client) RemoveProcess(ctx context.Context, id int, kill bool) error {
	path := procPath(id, "")
	if kill {
		path += "?kill=1"
	}
	req, err := c.newRequest(ctx, http.MethodDelete, path, nil)
	if err != nil {
		return err
	}
	return c.do(req, nil)
}
