// Package attach is the client of sandboxd's terminal attach: a WebSocket
// to a program on a PTY in the sandbox, a new one or a session's
// (docs/sandboxd-extensions.md, "Terminal attach").
//
//	c, err := attach.Dial(ctx, "http://127.0.0.1:8000", key, attach.Options{Rows: 24, Cols: 80})
//	go io.Copy(c, os.Stdin)
//	go io.Copy(os.Stdout, c)
//	code, err := c.Wait()
//
// It is a package of its own, not part of sandboxapi, because it needs a
// WebSocket library and sandboxapi is standard library only.
package attach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// Options say what to attach to.
type Options struct {
	// Session attaches to that shell session's terminal ("default": the
	// OpenHands shell, watch only); empty starts a new terminal.
	Session string
	// Command is the argv a new terminal runs (through a login shell, so
	// the profile's PATH applies); Script is a shell command line instead.
	// With neither, the new terminal is an interactive login shell.
	Command []string
	Script  string
	// Cwd is the new terminal's directory (default: the working dir).
	Cwd string
	// Term is TERM in the new terminal (default xterm-256color).
	Term string
	// Rows and Cols are the new terminal's size (default 24x80).
	Rows, Cols uint16
	// HTTPClient replaces http.DefaultClient for the handshake.
	HTTPClient *http.Client
	// OnNotice is told the server's "lost" and "error" messages (a slow
	// client missed output; input or a resize was refused). It runs on
	// the reading goroutine and must not block. Nil drops them.
	OnNotice func(sandboxapi.Control)
}

// Conn is an attached terminal. Read is the program's output, Write its
// input; both are raw bytes. Read until io.EOF (or Close) for Wait to
// return: output is not read ahead without bound.
type Conn struct {
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	pr     *io.PipeReader
	notice func(sandboxapi.Control)

	done     chan struct{}
	code     int
	err      error // set before done is closed
	closeOne sync.Once
}

// Dial connects to sandboxd at baseURL (http or https) with the session
// API key (empty: none). ctx bounds the handshake and the connection: its
// end closes the connection. An answer other than the upgrade is a
// *sandboxapi.HTTPError.
func Dial(ctx context.Context, baseURL, key string, o Options) (*Conn, error) {
	u, err := attachURL(baseURL, o)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	if key != "" {
		h.Set(sandboxapi.HeaderSessionAPIKey, key)
	}
	ctx, cancel := context.WithCancel(ctx)
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: o.HTTPClient, HTTPHeader: h})
	if err != nil {
		cancel()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, httpError(resp)
		}
		return nil, fmt.Errorf("attach to %s: %w", baseURL, err)
	}
	ws.SetReadLimit(1 << 20)
	pr, pw := io.Pipe()
	c := &Conn{ws: ws, ctx: ctx, cancel: cancel, pr: pr, notice: o.OnNotice, done: make(chan struct{}), code: -1}
	go c.readLoop(pw)
	return c, nil
}

func attachURL(baseURL string, o Options) (string, error) {
	base, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return "", fmt.Errorf("sandboxd URL %q: %w", baseURL, err)
	}
	q := url.Values{}
	if o.Session != "" {
		if len(o.Command) > 0 || o.Script != "" || o.Cwd != "" {
			return "", errors.New("attach: a session runs its own shell; Command, Script and Cwd are for a new terminal")
		}
		if strings.Contains(o.Session, "/") {
			return "", fmt.Errorf("attach: session name %q: a name has no '/'", o.Session)
		}
		// Path is the unescaped form; String escapes it.
		base.Path += sandboxapi.PathSessions + "/" + o.Session + sandboxapi.AttachSuffix
	} else {
		base.Path += sandboxapi.PathAttach
		switch {
		case len(o.Command) > 0 && o.Script != "":
			return "", errors.New("attach: give Command or Script, not both")
		case o.Script != "":
			q.Set("cmd", o.Script)
		default:
			for _, a := range o.Command {
				q.Add("arg", a)
			}
		}
		if o.Cwd != "" {
			q.Set("cwd", o.Cwd)
		}
		if o.Term != "" {
			q.Set("term", o.Term)
		}
		if o.Rows > 0 && o.Cols > 0 {
			q.Set("rows", strconv.Itoa(int(o.Rows)))
			q.Set("cols", strconv.Itoa(int(o.Cols)))
		}
	}
	base.RawQuery = q.Encode()
	return base.String(), nil
}

func httpError(resp *http.Response) error {
	var b []byte
	if resp.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
	}
	var eb sandboxapi.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Detail != "" {
		return &sandboxapi.HTTPError{Status: resp.StatusCode, Detail: eb.Detail}
	}
	return &sandboxapi.HTTPError{Status: resp.StatusCode, Detail: strings.TrimSpace(string(b))}
}

// readLoop hands output to Read through a pipe, so that a reader that
// does not keep up slows the socket down (and the server tells it what it
// missed) instead of growing a buffer here.
func (c *Conn) readLoop(pw *io.PipeWriter) {
	err := c.loop(pw)
	if err == nil {
		pw.Close()
	} else {
		pw.CloseWithError(err)
	}
	c.err = err
	close(c.done)
}

func (c *Conn) loop(pw *io.PipeWriter) error {
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			if c.ctx.Err() != nil {
				return fmt.Errorf("attach: %w", context.Cause(c.ctx))
			}
			return fmt.Errorf("attach: the connection ended before the program exited: %w", err)
		}
		if typ == websocket.MessageBinary {
			if _, err := pw.Write(b); err != nil {
				return fmt.Errorf("attach: %w", err)
			}
			continue
		}
		var ctl sandboxapi.Control
		if err := json.Unmarshal(b, &ctl); err != nil {
			return fmt.Errorf("attach: a control message that is not JSON: %w", err)
		}
		if ctl.Type == sandboxapi.ControlExit {
			if ctl.ExitCode != nil {
				c.code = *ctl.ExitCode
			}
			// The server closes next; answer its close frame.
			go func() { _ = c.ws.Close(websocket.StatusNormalClosure, "") }()
			return nil
		}
		if c.notice != nil {
			c.notice(ctl)
		}
	}
}

// Read reads the program's output; it is io.EOF after the program exited.
func (c *Conn) Read(p []byte) (int, error) { return c.pr.Read(p) }

// Write sends input: keys, as a terminal would (C-c is "\x03").
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.ws.Write(c.ctx, websocket.MessageBinary, p); err != nil {
		return 0, fmt.Errorf("attach: send input: %w", err)
	}
	return len(p), nil
}

// Resize sets the terminal's window size; the program gets SIGWINCH. A
// session's terminal keeps its size (the server says so through OnNotice).
func (c *Conn) Resize(rows, cols uint16) error {
	b, err := json.Marshal(sandboxapi.Control{Type: sandboxapi.ControlResize, Rows: rows, Cols: cols})
	if err != nil {
		return fmt.Errorf("attach: encode resize: %w", err)
	}
	if err := c.ws.Write(c.ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("attach: resize: %w", err)
	}
	return nil
}

// Wait waits until the program exits and returns its exit code (128+N
// after signal N), or until the connection ends otherwise (code -1 and
// the error).
func (c *Conn) Wait() (int, error) {
	<-c.done
	if c.err != nil {
		return -1, c.err
	}
	return c.code, nil
}

// Done is closed when Wait would return.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close detaches. A new terminal's program is ended (SIGHUP, as a closed
// terminal does); a session goes on running.
func (c *Conn) Close() error {
	c.closeOne.Do(func() {
		c.pr.CloseWithError(io.ErrClosedPipe)
		_ = c.ws.Close(websocket.StatusNormalClosure, "detached")
		c.cancel()
	})
	return nil
}
