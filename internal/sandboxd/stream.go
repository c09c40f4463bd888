package sandboxd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// ExtPrefix is the one versioned prefix of sbx's own routes. Routes under
// it are sbx's, not OpenHands': their errors take their status from the
// errdefs table (writeError) and none of them waits for the action lock.
const ExtPrefix = "/sbx/v1/"

// eventStream writes a long answer as a sequence of JSON events, flushed
// one by one: NDJSON (one object a line) by default, Server-Sent Events
// when the client accepts text/event-stream. Each event is an object with
// a "type" field, so both framings carry the same bytes.
type eventStream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	sse bool
}

// startStream answers 200 with the stream's content type. Once it is
// called, errors can only be told as an event (sendError).
func startStream(w http.ResponseWriter, r *http.Request) *eventStream {
	e := &eventStream{w: w, rc: http.NewResponseController(w), sse: strings.Contains(r.Header.Get("Accept"), "text/event-stream")}
	h := w.Header()
	if e.sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-cache")
	// A proxy in front (nginx, sandbox-api) must not hold events back.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = e.rc.Flush()
	return e
}

// Send writes one event and flushes it. typ becomes the event's "type"
// field (and, with SSE, its event name); v must marshal to a JSON object.
// An error means the client is gone.
func (e *eventStream) Send(typ string, v any) error {
	b, err := marshalNoEscape(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	b = withType(typ, b)
	if e.sse {
		_, err = fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", typ, b)
	} else {
		b = append(b, '\n')
		_, err = e.w.Write(b)
	}
	if err != nil {
		return err
	}
	return e.rc.Flush()
}

// sendError ends a stream with an error event, the stream form of
// writeError's body.
func (e *eventStream) sendError(err error) error {
	return e.Send("error", map[string]any{"detail": err.Error()})
}

// withType puts "type":typ first in the JSON object b.
func withType(typ string, b []byte) []byte {
	t, _ := json.Marshal(typ)
	out := make([]byte, 0, len(b)+len(t)+9)
	out = append(out, `{"type":`...)
	out = append(out, t...)
	if len(b) > 2 { // not "{}"
		out = append(out, ',')
		out = append(out, b[1:]...)
	} else {
		out = append(out, '}')
	}
	return out
}

// flagValue reads a boolean flag of sbx's routes (a query parameter or a
// header): absent is false.
func flagValue(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("%q: want 1, 0, true or false", v))
}

// isSet is flagValue for a flag whose bad value reads as unset.
func isSet(v string) bool {
	b, _ := flagValue(v)
	return b
}
