package sandboxapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Sessions lists the shell sessions, the default (OpenHands) one first.
func (c *Client) Sessions(ctx context.Context) ([]SessionInfo, error) {
	req, err := c.newRequest(ctx, http.MethodGet, PathSessions, nil)
	if err != nil {
		return nil, err
	}
	var out []SessionInfo
	return out, c.do(req, &out)
}

// CreateSession starts a named shell session.
func (c *Client) CreateSession(ctx context.Context, r CreateSessionRequest) (SessionInfo, error) {
	var out SessionInfo
	return out, c.postJSON(ctx, PathSessions, r, &out)
}

// CloseSession ends a session and everything it runs.
func (c *Client) CloseSession(ctx context.Context, name string) error {
	req, err := c.newRequest(ctx, http.MethodDelete, PathSessions+"/"+url.PathEscape(name), nil)
	if err != nil {
		return err
	}
	return c.do(req, nil)
}

// Interrupt sends C-c to the command running in a session ("" is the
// default one), without waiting for the request that runs it.
func (c *Client) Interrupt(ctx context.Context, session string) (bool, error) {
	var out InterruptResult
	err := c.postJSON(ctx, PathSessions+"/"+url.PathEscape(sessionOrDefault(session))+"/interrupt", struct{}{}, &out)
	return out.Interrupted, err
}

func sessionOrDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// RunOptions tune a run in a session.
type RunOptions struct {
	// Session is the session to run in; "" is the default one.
	Session string
	// CancelOnDisconnect interrupts the command when ctx ends before it
	// does, as `docker exec` ends its process.
	CancelOnDisconnect bool
}

// RunIn runs a command in a session and returns its observation, as
// Execute of a run action does.
func (c *Client) RunIn(ctx context.Context, r SessionRunRequest, o RunOptions) (Observation, error) {
	r.Stream = false
	req, err := c.runRequest(ctx, r, o)
	if err != nil {
		return Observation{}, err
	}
	var obs Observation
	return obs, c.do(req, &obs)
}

func (c *Client) runRequest(ctx context.Context, r SessionRunRequest, o RunOptions) (*http.Request, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, PathSessions+"/"+url.PathEscape(sessionOrDefault(o.Session))+"/run", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if o.CancelOnDisconnect {
		req.Header.Set(HeaderCancelOnDisconnect, "1")
	}
	return req, nil
}

// StreamEvent is one event of a streamed run: Output (with Offset) as it is
// produced, Lost when the client fell behind, and finally Observation.
type StreamEvent struct {
	Type        string      `json:"type"`
	Session     string      `json:"session,omitempty"`
	RunID       string      `json:"run_id,omitempty"`
	Offset      int64       `json:"offset,omitempty"`
	Data        string      `json:"data,omitempty"`
	Skipped     int64       `json:"skipped,omitempty"`
	Next        int64       `json:"next,omitempty"`
	Detail      string      `json:"detail,omitempty"`
	Observation Observation `json:"observation"`
}

// RunStream runs a command in a session with its output streamed: fn is
// called for every event, in order, and the final observation is
// returned. The run id (in the start event) lets a client that lost its
// connection come back with ResumeRun.
func (c *Client) RunStream(ctx context.Context, r SessionRunRequest, o RunOptions, fn func(StreamEvent) error) (Observation, error) {
	r.Stream = true
	req, err := c.runRequest(ctx, r, o)
	if err != nil {
		return Observation{}, err
	}
	return c.readStream(req, fn)
}

// ResumeRun follows a streamed run again from offset (< 0: its start).
func (c *Client) ResumeRun(ctx context.Context, session, runID string, offset int64, fn func(StreamEvent) error) (Observation, error) {
	path := PathSessions + "/" + url.PathEscape(sessionOrDefault(session)) + "/runs/" + url.PathEscape(runID)
	if offset >= 0 {
		path += "?offset=" + strconv.FormatInt(offset, 10)
	}
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return Observation{}, err
	}
	return c.readStream(req, fn)
}

func (c *Client) readStream(req *http.Request, fn func(StreamEvent) error) (Observation, error) {
	var obs Observation
	err := c.readEvents(req, func(line []byte) (bool, error) {
		var ev StreamEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return false, fmt.Errorf("sandboxd: bad stream event %.200q: %w", line, err)
		}
		switch ev.Type {
		case EventError:
			return false, &HTTPError{Status: http.StatusInternalServerError, Detail: ev.Detail}
		case EventObservation:
			obs = ev.Observation
		}
		if fn != nil {
			if err := fn(ev); err != nil {
				return false, err
			}
		}
		return ev.Type == EventObservation, nil
	})
	return obs, err
}

// readEvents reads an NDJSON event stream, giving each line to fn until
// fn says it was the last; a stream that ends before is an error.
func (c *Client) readEvents(req *http.Request, fn func(line []byte) (last bool, err error)) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readHTTPError(resp)
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 {
			last, ferr := fn(line)
			if ferr != nil || last {
				return ferr
			}
		}
		if err == io.EOF {
			return fmt.Errorf("sandboxd: the stream ended before its last event: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
	}
}
