package sandboxd

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/watch"
)

// watchEvent is the body of an "event" event: E2B's FilesystemEvent
// fields (name, type) under sbx's names, with an absolute path.
type watchEvent struct {
	Op      watch.Op `json:"op"`
	Path    string   `json:"path"`
	OldPath string   `json:"old_path,omitempty"`
	IsDir   bool     `json:"is_dir"`
	Time    string   `json:"time"`
}

// defaultKeepalive is the interval of "keepalive" events when the client
// names none. A quiet directory would otherwise leave the stream silent,
// and a proxy's idle timeout cuts it; the write also finds a client that
// vanished without closing, whose watch would otherwise live on.
const defaultKeepalive = 30 * time.Second

// watchDir answers GET /sbx/v1/watch?path=DIR&recursive=1 with an event
// stream: "ready" once every watch is in place, then "event" and
// "overflow" events, and "error" if the watch fails. It ends when the
// client goes (the request's context ends, which closes the watcher).
func (s *Server) watchDir(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := q.Get("path")
	if p == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "watch: the path parameter is required")
	}
	recursive, err := flagValue(q.Get("recursive"))
	if err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("watch: recursive=%q: want 1, 0, true or false", q.Get("recursive")))
	}
	keepalive := defaultKeepalive
	if v := r.Header.Get("Keepalive-Ping-Interval"); v != "" {
		// E2B's header (seconds), so its clients' setting carries over.
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("watch: Keepalive-Ping-Interval %q: want a positive number of seconds", v))
		}
		keepalive = time.Duration(n) * time.Second
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.opts.WorkDir, p)
	}
	wt, err := watch.Watch(r.Context(), watch.Options{Path: p, Recursive: recursive, Logger: s.log})
	if err != nil {
		return err
	}
	defer wt.Close()

	st := startStream(w, r)
	if err := st.Send("ready", map[string]any{"path": wt.Root(), "recursive": recursive}); err != nil {
		return nil // the client is gone; there is no one to tell
	}
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		var e watch.Event
		var ok bool
		select {
		case e, ok = <-wt.Events():
		case <-tick.C:
			if err := st.Send("keepalive", struct{}{}); err != nil {
				return nil
			}
			continue
		}
		if !ok {
			break
		}
		var err error
		if e.Op == watch.Overflow {
			err = st.Send("overflow", map[string]any{"path": e.Path, "dropped": e.Dropped, "time": e.Time.UTC().Format(time.RFC3339Nano)})
		} else {
			err = st.Send("event", watchEvent{Op: e.Op, Path: e.Path, OldPath: e.OldPath, IsDir: e.IsDir, Time: e.Time.UTC().Format(time.RFC3339Nano)})
		}
		if err != nil {
			return nil
		}
	}
	if err := wt.Err(); err != nil && r.Context().Err() == nil {
		_ = st.sendError(err)
	}
	return nil
}
