package sandboxapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// PathWatch is the file-watch route (docs/sandboxd-extensions.md).
const PathWatch = PathExtPrefix + "watch"

// WatchEvent is a change under a watched directory. Type is "event" (Op
// one of create, write, remove, rename, chmod; OldPath for a rename) or
// "overflow" (Dropped events were lost: look again).
type WatchEvent struct {
	Type    string    `json:"type"`
	Op      string    `json:"op,omitempty"`
	Path    string    `json:"path"`
	OldPath string    `json:"old_path,omitempty"`
	IsDir   bool      `json:"is_dir,omitempty"`
	Dropped int64     `json:"dropped,omitempty"`
	Time    time.Time `json:"time"`
	Detail  string    `json:"detail,omitempty"`
}

// Watch follows the changes under a directory of the sandbox. WatchDir
// returns once the watch is in place, so every change made after it is
// seen.
type Watch struct {
	events chan WatchEvent
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// WatchDir starts watching path (relative: the server's working
// directory), recursively if asked. Close it when done.
func (c *Client) WatchDir(ctx context.Context, path string, recursive bool) (*Watch, error) {
	q := url.Values{"path": {path}}
	if recursive {
		q.Set("recursive", "1")
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := c.newRequest(ctx, http.MethodGet, PathWatch+"?"+q.Encode(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	w := &Watch{events: make(chan WatchEvent, 256), cancel: cancel, done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(w.done)
		defer close(w.events)
		started := false
		w.err = c.readEvents(req, func(line []byte) (bool, error) {
			var ev WatchEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				return false, fmt.Errorf("sandboxd: bad watch event %.200q: %w", line, err)
			}
			switch ev.Type {
			case "ready":
				started = true
				ready <- nil
				return false, nil
			case "keepalive":
				return false, nil
			case "error":
				return false, &HTTPError{Status: http.StatusInternalServerError, Detail: ev.Detail}
			}
			select {
			case w.events <- ev:
			case <-ctx.Done():
				return false, ctx.Err()
			}
			return false, nil
		})
		if !started {
			ready <- w.err
		}
	}()
	if err := <-ready; err != nil {
		cancel()
		<-w.done
		return nil, err
	}
	return w, nil
}

// Events delivers the changes; it is closed when the watch ends.
func (w *Watch) Events() <-chan WatchEvent { return w.events }

// Err is why the watch ended, once Events is closed (context.Canceled
// after Close).
func (w *Watch) Err() error {
	<-w.done
	return w.err
}

// Close ends the watch.
func (w *Watch) Close() {
	w.cancel()
	<-w.done
}
