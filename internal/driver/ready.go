package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// WaitAlive polls GET <url>/alive until it answers 200 with status ok, the
// context ends, or gone reports that the sandbox died (its error is
// returned at once, so a container that exits at start-up fails in
// milliseconds instead of at a timeout). The backoff starts at 1 ms and
// doubles to 10 ms; once connected, the probe waits for readiness in sandboxd (HeaderWaitReady): sandboxd is usually up within 10 ms of its process
// starting, and fixed sleeps are what make other runtimes slow to start.
func WaitAlive(ctx context.Context, hc *http.Client, url string, gone func(context.Context) error) error {
	delay := time.Millisecond
	var last error
	nextCheck := time.Now().Add(100 * time.Millisecond)
	dnsFails := 0
	for {
		err := probe(ctx, hc, url)
		if err == nil {
			return nil
		}
		last = err
		// A host name that does not resolve will not start to: say so
		// now, not at the end of the start timeout (a runtime API in
		// subdomain mode whose wildcard name is not in DNS).
		var de *net.DNSError
		if errors.As(err, &de) {
			dnsFails++
			if de.IsNotFound || dnsFails >= maxDNSFails {
				return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("sandboxd at %s: its host name %s does not resolve here (%v)", url, de.Name, de), err)
			}
		}
		// Asking the engine on every try would load it most exactly when
		// it is busiest, in a burst of creates; every 200 ms still turns
		// an exit into an error in a fraction of a second.
		if gone != nil && time.Now().After(nextCheck) {
			if gerr := gone(ctx); gerr != nil {
				return gerr
			}
			nextCheck = time.Now().Add(200 * time.Millisecond)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if gone != nil {
				if gerr := gone(context.WithoutCancel(ctx)); gerr != nil {
					return gerr
				}
			}
			return fmt.Errorf("sandboxd at %s did not become ready: %w (last error: %v)", url, ctx.Err(), last)
		case <-t.C:
		}
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

// maxDNSFails is how many failed lookups (timeouts, a resolver that does
// not answer) end the wait; a name that is not found ends it at once.
const maxDNSFails = 3

func probe(ctx context.Context, hc *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+sandboxapi.PathAlive, nil)
	if err != nil {
		return err
	}
	req.Header.Set(sandboxapi.HeaderWaitReady, "1500ms")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/alive answered %s", resp.Status)
	}
	// sandboxd answers {"status":"not initialized"} while it sets up.
	var body struct{ Status string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body); err != nil {
		return fmt.Errorf("/alive: %w", err)
	}
	if body.Status != "ok" {
		return fmt.Errorf("/alive answered status %q", body.Status)
	}
	return nil
}
