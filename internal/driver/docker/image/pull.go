package image

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// pullInterval is how often a pull in progress prints a line. The engine
// sends a message per layer per chunk (hundreds a second); one line a
// second is what a person can read.
const pullInterval = time.Second

// Pull pulls ref and writes condensed progress to progress (nil: discard):
// one line a second such as
//
//	[pull] nikolaik/python-nodejs:python3.12-nodejs22: 3/7 layers, 120 MB/380 MB
//
// An image that does not exist or may not be pulled is ErrNotFound; a
// registry that cannot be reached is ErrUnavailable.
func Pull(ctx context.Context, api API, ref string, progress io.Writer) error {
	if err := pull(ctx, api, ref, orDiscard(progress)); err != nil {
		return pullError(ref, err)
	}
	return nil
}

// pull does the pulling and returns the engine's error unclassified, so
// callers can word their own message around its short reason.
func pull(ctx context.Context, api API, ref string, w io.Writer) error {
	start := time.Now()
	fmt.Fprintf(w, "[pull] pulling %s…\n", ref)
	resp, err := api.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	tr := newPullTracker(ref, pullInterval, time.Now)
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading the pull progress: %w", err)
		}
		if msg.Error != nil {
			return streamError{msg.Error}
		}
		if line, ok := tr.update(msg); ok {
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w, tr.final(time.Since(start)))
	return nil
}

// streamError is an error the engine reported inside a JSON message
// stream, after it had already answered 200.
type streamError struct{ e *jsonstream.Error }

func (e streamError) Error() string { return e.e.Message }

// Is classifies the error by the HTTP code the engine put in the message,
// which is all a mid-stream failure has to go by.
func (e streamError) Is(target error) bool {
	switch e.e.Code {
	case 404:
		return target == cerrdefs.ErrNotFound
	case 401:
		return target == cerrdefs.ErrUnauthenticated
	case 403:
		return target == cerrdefs.ErrPermissionDenied
	}
	return false
}

// pullError classifies a failed pull. A registry answering "no such
// image" or "access denied" means the name is wrong (or private); any
// other failure is taken to mean the registry cannot be reached, which is
// what a machine without network access produces.
func pullError(ref string, err error) error {
	if fatal := fatalPullError(ref, err); fatal != nil {
		return fatal
	}
	class := errdefs.ErrUnavailable
	if cerrdefs.IsNotFound(err) || cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) {
		class = errdefs.ErrNotFound
	}
	return errdefs.Wrap(class, fmt.Sprintf("image %s cannot be pulled: %s", ref, pullReason(err)), err)
}

// pullReason is shortReason for a failed pull. The engine reports an
// unreachable registry as the HTTP request it failed to make
// (Get "https://host/v2/": dial tcp: ...); naming the host reads better.
func pullReason(err error) string {
	s := shortReason(err)
	rest, ok := strings.CutPrefix(s, `Get "`)
	if !ok {
		return s
	}
	u, detail, ok := strings.Cut(rest, `": `)
	if !ok {
		return s
	}
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	host, _, _ := strings.Cut(u, "/")
	return fmt.Sprintf("cannot reach the registry %s: %s", host, detail)
}

// fatalPullError returns the error to stop at when pulling ref failed
// with err for a reason no fallback can help with (cancellation, an engine
// that does not answer, a malformed name), and nil when the image simply
// cannot be had from a registry.
func fatalPullError(ref string, err error) error {
	if ctxErr := contextError(err); ctxErr != nil {
		return fmt.Errorf("pulling %s: %w", ref, ctxErr)
	}
	if client.IsErrConnectionFailed(err) {
		return engineError(err, "pulling "+ref)
	}
	if cerrdefs.IsInvalidArgument(err) {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("pulling %s: %s", ref, shortReason(err)), err)
	}
	return nil
}

// pullTracker condenses the engine's per-layer pull messages into lines.
type pullTracker struct {
	ref      string
	every    time.Duration
	now      func() time.Time
	last     time.Time
	layers   map[string]*layerProgress
	upToDate bool
}

type layerProgress struct {
	current, total int64
	done           bool
}

func newPullTracker(ref string, every time.Duration, now func() time.Time) *pullTracker {
	return &pullTracker{ref: ref, every: every, now: now, layers: map[string]*layerProgress{}}
}

// update records msg and returns a line to print when one is due.
func (p *pullTracker) update(msg jsonstream.Message) (string, bool) {
	if strings.HasPrefix(msg.Status, "Status: Image is up to date") {
		p.upToDate = true
		return "", false
	}
	if msg.ID == "" {
		return "", false
	}
	// Only these statuses are about a layer; "Pulling from <repo>" also
	// carries an ID (the tag) and must not count as one.
	var l *layerProgress
	switch msg.Status {
	case "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum",
		"Download complete", "Extracting", "Pull complete", "Already exists":
		l = p.layers[msg.ID]
		if l == nil {
			l = &layerProgress{}
			p.layers[msg.ID] = l
		}
	default:
		return "", false
	}
	switch msg.Status {
	case "Downloading":
		if msg.Progress != nil {
			l.current = msg.Progress.Current
			if msg.Progress.Total > 0 {
				l.total = msg.Progress.Total
			}
		}
	case "Verifying Checksum", "Download complete", "Extracting":
		l.current = l.total
	case "Pull complete", "Already exists":
		l.current = l.total
		l.done = true
	}
	now := p.now()
	if now.Sub(p.last) < p.every {
		return "", false
	}
	p.last = now
	return p.line(), true
}

func (p *pullTracker) line() string {
	var done int
	var cur, total int64
	for _, l := range p.layers {
		if l.done {
			done++
		}
		cur += l.current
		total += l.total
	}
	s := fmt.Sprintf("[pull] %s: %d/%d layers", p.ref, done, len(p.layers))
	if total > 0 {
		s += fmt.Sprintf(", %s/%s", humanBytes(cur), humanBytes(total))
	}
	return s
}

func (p *pullTracker) final(elapsed time.Duration) string {
	if p.upToDate && len(p.layers) == 0 {
		return fmt.Sprintf("[pull] %s is up to date", p.ref)
	}
	var total int64
	for _, l := range p.layers {
		total += l.total
	}
	s := fmt.Sprintf("[pull] pulled %s in %s (%d layers", p.ref, roundDuration(elapsed), len(p.layers))
	if total > 0 {
		s += ", " + humanBytes(total) + " downloaded"
	}
	return s + ")"
}
