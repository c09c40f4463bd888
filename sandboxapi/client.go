package sandboxapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client talks to one sandboxd. It is safe for concurrent use; the server
// itself runs one action at a time.
//
//	c := sandboxapi.NewClient("http://127.0.0.1:8000", "")
//	obs, err := c.Run(ctx, sandboxapi.NewRunAction("echo hi", 120))
type Client struct {
	base string
	key  string
	hc   *http.Client
}

// NewClient returns a client for the server at baseURL. key is the
// session API key; empty sends none.
func NewClient(baseURL, key string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), key: key, hc: &http.Client{}}
}

// WithHTTPClient replaces the HTTP client (for custom transports). Deadlines
// belong on the contexts passed to each call, not on the HTTP client,
// because actions legitimately run for minutes.
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	cc := *c
	cc.hc = hc
	return &cc
}

// HTTPError is a non-2xx answer from the server.
type HTTPError struct {
	Status int
	Detail string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("sandboxd: HTTP %d: %s", e.Status, e.Detail)
}

// IsStatus reports whether err is an HTTPError with the given status.
func IsStatus(err error, status int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == status
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set(HeaderSessionAPIKey, c.key)
	}
	return req, nil
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readHTTPError(resp)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sandboxd: decode %s answer: %w", req.URL.Path, err)
	}
	return nil
}

func readHTTPError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Detail != "" {
		return &HTTPError{Status: resp.StatusCode, Detail: eb.Detail}
	}
	return &HTTPError{Status: resp.StatusCode, Detail: strings.TrimSpace(string(b))}
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, http.MethodPost, path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

// Alive returns the server's /alive status ("ok" once ready).
func (c *Client) Alive(ctx context.Context) (string, error) {
	req, err := c.newRequest(ctx, http.MethodGet, PathAlive, nil)
	if err != nil {
		return "", err
	}
	var a Alive
	err = c.do(req, &a)
	return a.Status, err
}

// ServerInfo returns uptime, idle time and resource use.
func (c *Client) ServerInfo(ctx context.Context) (ServerInfo, error) {
	req, err := c.newRequest(ctx, http.MethodGet, PathServerInfo, nil)
	if err != nil {
		return ServerInfo{}, err
	}
	var si ServerInfo
	err = c.do(req, &si)
	return si, err
}

// Execute runs one action and returns its observation.
func (c *Client) Execute(ctx context.Context, a Action) (Observation, error) {
	var o Observation
	err := c.postJSON(ctx, PathExecuteAction, ActionRequest{Action: a}, &o)
	return o, err
}

// Run runs a "run" action and decodes its extras. A non-"run" observation
// (e.g. the multiple-commands error) is returned with an error.
func (c *Client) Run(ctx context.Context, a Action) (Observation, CmdOutputExtras, error) {
	o, err := c.Execute(ctx, a)
	if err != nil {
		return o, CmdOutputExtras{}, err
	}
	e, err := o.CmdOutput()
	return o, e, err
}

// ListFiles lists a directory of the sandbox; "" lists the working dir.
func (c *Client) ListFiles(ctx context.Context, path string) ([]string, error) {
	body := map[string]string{}
	if path != "" {
		body["path"] = path
	}
	var names []string
	err := c.postJSON(ctx, PathListFiles, body, &names)
	return names, err
}

// Upload streams r as a file named filename into the directory dest of the
// sandbox. With recursive (or a .zip name) the file must be a zip archive
// and is extracted into dest.
func (c *Client) Upload(ctx context.Context, dest, filename string, r io.Reader, recursive bool) (UploadResult, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", filename)
		if err == nil {
			_, err = io.Copy(part, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	q := url.Values{"destination": {dest}, "recursive": {strconv.FormatBool(recursive)}}
	req, err := c.newRequest(ctx, http.MethodPost, PathUploadFile+"?"+q.Encode(), pr)
	if err != nil {
		pr.CloseWithError(err)
		return UploadResult{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var res UploadResult
	err = c.do(req, &res)
	pr.CloseWithError(io.ErrClosedPipe)
	return res, err
}

// Download streams a zip of path (a file or a directory) into w.
func (c *Client) Download(ctx context.Context, path string, w io.Writer) error {
	req, err := c.newRequest(ctx, http.MethodGet, PathDownloadFiles+"?"+url.Values{"path": {path}}.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readHTTPError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
