package modal_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/driver/modal/modalfake"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/modal"
)

// tunnelCert is the FAKE Modal API's TLS identity, trusted for this
// process in TestMain (Go reads SSL_CERT_FILE once).
var tunnelCert modalfake.Cert

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "modalfake-roots-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if tunnelCert, err = modalfake.PrepareProcess(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// isolate keeps this machine's Modal settings out of a test.
func isolate(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	for _, k := range []string{"MODAL_CONFIG_PATH", "MODAL_SERVER_URL", "MODAL_PROFILE", "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_ENVIRONMENT", "MODAL_SANDBOX_V2"} {
		t.Setenv(k, "")
	}
}

func modalConfig() *config.Config {
	cfg := config.Default()
	cfg.Runtime = modal.Name
	cfg.Sandbox.BaseContainerImage = "sbx-test/debian:bookworm"
	if s := os.Getenv("SBX_TEST_IMAGE"); s != "" {
		cfg.Sandbox.BaseContainerImage = s
	}
	return cfg
}

// A program that does not link the driver is told how to.
func TestNotLinked(t *testing.T) {
	_, err := sbx.Open(t.Context(), sbx.Options{Config: modalConfig(), Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, sbx.ErrNotSupported) || !strings.Contains(err.Error(), "modal.Drivers()") {
		t.Fatalf("Open without the driver: %v", err)
	}
}

// Without any credentials Open fails at once, classified and saying where
// credentials go.
func TestNoCredentials(t *testing.T) {
	isolate(t)
	_, err := sbx.Open(t.Context(), sbx.Options{Config: modalConfig(), Drivers: modal.Drivers(), Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, errdefs.ErrUnauthorized) || !strings.Contains(err.Error(), "MODAL_TOKEN_ID") {
		t.Fatalf("Open without credentials: %v", err)
	}
}

// TestSDKOnFake drives RUNTIME=modal through the SDK, as the CLI does,
// against the FAKE Modal API (modalfake, Docker containers as sandboxes):
// Close terminates the sandbox, and keep_runtime_alive leaves it running
// for a later Attach.
func TestSDKOnFake(t *testing.T) {
	isolate(t)
	fake := modalfake.StartDocker(t, tunnelCert)
	profile, err := fake.ProfileFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MODAL_CONFIG_PATH", profile)
	ctx := t.Context()
	open := func(keep bool) *sbx.Runtime {
		cfg := modalConfig()
		cfg.Sandbox.KeepRuntimeAlive = keep
		rt, err := sbx.Open(ctx, sbx.Options{Config: cfg, Drivers: modal.Drivers(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close() })
		return rt
	}
	rt := open(false)
	if got := strings.Join(rt.Capabilities(), ","); got != "images" {
		t.Errorf("capabilities = %s", got)
	}
	id := "sdk-" + ids.New(4)
	sb, err := rt.Create(ctx, sbx.CreateOptions{ID: id, Env: map[string]string{"GREETING": "hi from the fake"}})
	if err != nil {
		t.Fatal(err)
	}
	out, code, err := sb.Exec(ctx, `echo "$GREETING"`, 30*time.Second)
	if err != nil || code != 0 || strings.TrimSpace(out) != "hi from the fake" {
		t.Errorf("exec: %q, %d, %v", out, code, err)
	}
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Get(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after Close: Get = %v, want ErrNotFound (terminated)", err)
	}

	kept := open(true)
	sb, err = kept.Create(ctx, sbx.CreateOptions{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	defer kept.Remove(context.WithoutCancel(ctx), id)
	again, err := kept.Attach(ctx, id)
	if err != nil {
		t.Fatalf("a kept sandbox is gone after Close: %v", err)
	}
	if out, _, err := again.Exec(ctx, "echo still here", 30*time.Second); err != nil || strings.TrimSpace(out) != "still here" {
		t.Errorf("exec after Attach: %q, %v", out, err)
	}
	if err := kept.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Get(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after Remove: %v", err)
	}
}
