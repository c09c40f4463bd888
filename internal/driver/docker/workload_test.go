package docker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// A Spec.Workload runs the image's own program as given: its command,
// user, groups, working directory and environment, its ports published,
// nothing injected, no wait for sandboxd; pause, resume, stop and start
// work on it as on any sandbox.
func TestWorkload(t *testing.T) {
	d := newDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := "wl-" + ids.New(4)
	t.Cleanup(func() { d.Remove(context.Background(), id) })
	spec := driver.Spec{
		ID: id, Image: testImage(), WorkDir: "/tmp", Env: map[string]string{"GREETING": "hello"},
		Labels: map[string]string{"sbx.test": "1"},
		Workload: &driver.Workload{
			Command: []string{"sh", "-c", `mkdir -p /tmp/www && { id; pwd; echo "$GREETING"; ls /opt/sbx 2>&1 || true; } > /tmp/www/facts && cd /tmp/www && exec python3 -m http.server 8080`},
			User:    "1234:2345", Groups: []string{"3456"}, Ports: []int{8080, 9090},
		},
	}
	sb, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Endpoint.URL != "" {
		t.Errorf("a workload has no sandboxd endpoint: %q", sb.Endpoint.URL)
	}
	url := ""
	for _, p := range sb.AppPorts {
		if p.Sandbox == 8080 {
			url = p.URL
		}
	}
	if len(sb.AppPorts) != 2 || url == "" || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("ports %+v", sb.AppPorts)
	}
	facts := get(t, ctx, url+"/facts")
	for _, want := range []string{"uid=1234", "gid=2345", "3456", "/tmp\n", "hello\n", "No such file"} {
		if !strings.Contains(facts, want) {
			t.Errorf("facts %q lack %q", facts, want)
		}
	}
	if err := d.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if sb, err := d.Resume(ctx, id); err != nil || sb.State != driver.StateRunning {
		t.Fatalf("resume: %+v %v", sb.State, err)
	}
	get(t, ctx, url+"/facts")
	if err := d.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	sb, err = d.Start(ctx, id)
	if err != nil || sb.State != driver.StateRunning {
		t.Fatalf("start: %+v %v", sb.State, err)
	}
	// A missing program is a clear error and leaves nothing behind.
	bad := spec
	bad.ID = "wl-bad-" + ids.New(4)
	bad.Workload = &driver.Workload{Command: []string{"/no/such/program"}}
	if _, err := d.Create(ctx, bad); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("missing program: %v", err)
	}
	if _, err := d.Inspect(ctx, bad.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the failed workload is still there: %v", err)
	}
	// A guarded folder or an egress policy would be a silent downgrade.
	guarded := bad
	guarded.Workload = &driver.Workload{Command: []string{"true"}}
	guarded.Mounts = []driver.Mount{{Source: t.TempDir(), Target: "/w", Guard: true}}
	if _, err := d.Create(ctx, guarded); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("a guarded workload: %v", err)
	}
	policed := bad
	policed.Workload = &driver.Workload{Command: []string{"true"}}
	none, _ := netpolicy.Parse("none")
	policed.Network.Policy = &none
	if _, err := d.Create(ctx, policed); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("a policed workload: %v", err)
	}
	for _, w := range []*driver.Workload{{}, {Command: []string{"x"}, Ports: []int{70000}}} {
		bad.Workload = w
		if _, err := d.Create(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("workload %+v: %v", w, err)
		}
	}
}

// get fetches url, retrying while the program comes up.
func get(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: %v", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
