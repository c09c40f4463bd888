package sbx

import (
	"context"
	"errors"
	"fmt"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/sandboxapi"
	"github.com/sbx-dev/sbx/sandboxapi/attach"
)

// TerminalOptions say what terminal AttachTerminal opens: a new one (a
// login shell, or Command or Script run by one) or a session's.
type TerminalOptions = attach.Options

// AttachTerminal opens a terminal in the sandbox, as `docker exec -it`
// does: raw bytes both ways, Resize, and Wait for the exit code. Closing
// the connection ends a new terminal's program; a session goes on. ctx
// bounds the connection, not only the dial.
func (s *Sandbox) AttachTerminal(ctx context.Context, o TerminalOptions) (*attach.Conn, error) {
	c, err := attach.Dial(ctx, s.info.URL, s.token, o)
	if err != nil {
		var he *sandboxapi.HTTPError
		if errors.As(err, &he) {
			return nil, fmt.Errorf("attach to sandbox %s: %w", s.info.ID, errdefs.FromHTTP(he.Status, he.Detail))
		}
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("attach to sandbox %s: %v", s.info.ID, err), err)
	}
	return c, nil
}

// AttachTerminal opens a terminal in the running sandbox id, as `sbx
// attach` and `sbx exec -it` do. Like Exec, it does not start or resume a
// sandbox behind the caller's back: that is ErrConflict, with what to do.
func (r *Runtime) AttachTerminal(ctx context.Context, id string, o TerminalOptions) (*attach.Conn, error) {
	ds, err := r.be.Driver.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	switch ds.State {
	case driver.StateRunning:
	case driver.StatePaused:
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s is paused; resume it with `sbx resume %s`", id, id))
	default:
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s is %s; start it with `sbx start %s`", id, ds.State, id))
	}
	return r.wrap(ds, false, true, true).AttachTerminal(ctx, o)
}
