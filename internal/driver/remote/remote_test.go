package remote_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/backend"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/drivertest"
	"github.com/sbx-dev/sbx/internal/driver/remote"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/runtimeapi/server"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

func testImage() string {
	if s := os.Getenv("SBX_TEST_IMAGE"); s != "" {
		return s
	}
	return "sbx-test/debian:bookworm"
}

// service is a real sandbox-api (the server package on the Docker
// backend, a SQLite store) for the remote driver to talk to; its
// sandboxes carry a label of this test only.
func service(t *testing.T) (url, key string) {
	t.Helper()
	cfg := config.Default()
	cfg.Runtime = "docker"
	ctx := context.Background()
	be, err := backend.Open(ctx, cfg, backend.Options{})
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = be.Driver.List(cctx, map[string]string{"dev.sbx.none": "x"})
		cancel()
	}
	if err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			t.Fatalf("docker engine required: %v", err)
		}
		t.Skipf("no docker engine: %v", err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, key, err = st.CreateKey(ctx, "remote-test")
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"dev.sbx.runtimeapi": "test-" + ids.New(6), "sbx.test": "1"}
	ts := httptest.NewUnstartedServer(nil)
	url = "http://" + ts.Listener.Addr().String()
	srv, err := server.New(server.Config{Store: st, Driver: be.Driver, Caps: be.Caps, Backend: be.Name, PublicURL: url, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if sbs, err := be.Driver.List(cctx, labels); err == nil {
			for _, sb := range sbs {
				be.Driver.Remove(cctx, sb.ID)
			}
		}
		st.Close()
		be.Close()
	})
	return url, key
}

// The driver conformance suite, against a real sandbox-api started here.
func TestConformance(t *testing.T) {
	url, key := service(t)
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := remote.New(remote.Options{URL: url + "/", APIKey: key, InitTimeout: 90 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, drivertest.Options{Name: remote.Name, Image: testImage(), Concurrent: 4})
}

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		o    remote.Options
		want string
	}{
		{remote.Options{APIKey: "k"}, "SANDBOX_REMOTE_RUNTIME_API_URL"},
		{remote.Options{URL: "localhost:8000", APIKey: "k"}, "not an http(s) URL"},
		{remote.Options{URL: "ftp://x", APIKey: "k"}, "not an http(s) URL"},
		{remote.Options{URL: "http://x"}, "SANDBOX_API_KEY"},
		{remote.Options{URL: "http://x", APIKey: "k", ResourceFactor: 3}, "1, 2, 4 or 8"},
	} {
		_, err := remote.New(c.o)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	// The registry builds it from OpenHands' configuration.
	cfg := config.Default()
	cfg.Runtime = "remote"
	cfg.Sandbox.APIKey = ""
	if _, err := backend.Open(context.Background(), cfg, backend.Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "SANDBOX_API_KEY") {
		t.Errorf("RUNTIME=remote without a key: %v", err)
	}
	cfg.Sandbox.APIKey = "k"
	be, err := backend.Open(context.Background(), cfg, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !be.Caps.Traits.PauseKept || be.Caps.Pause == nil || be.Caps.Restart != nil {
		t.Errorf("remote capabilities %v traits %+v", be.Caps.Names(), be.Caps.Traits)
	}
}

// A service that cannot be reached is ErrUnavailable, quickly.
func TestUnreachable(t *testing.T) {
	d, err := remote.New(remote.Options{URL: "http://127.0.0.1:1", APIKey: "k", APITimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(context.Background(), "x"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Inspect: %v", err)
	}
}
