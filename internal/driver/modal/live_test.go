package modal_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/modal"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// TestLive runs one sandbox on Modal itself: create (base image from a
// registry, sandboxd copied in), a command through the tunnel, logs,
// terminate. It needs Modal credentials (MODAL_TOKEN_ID/_SECRET,
// MODAL_API_TOKEN_ID/_SECRET, or a profile in ~/.modal.toml) and skips,
// saying so, without them. It costs a few cents of Modal time.
// SBX_MODAL_LIVE_IMAGE picks the base image (default debian:bookworm-slim).
func TestLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no live Modal test")
	}
	cfg := config.Default()
	cfg.Host.ModalTokenID, cfg.Host.ModalTokenSecret = os.Getenv("MODAL_TOKEN_ID"), os.Getenv("MODAL_TOKEN_SECRET")
	cfg.ModalAPITokenID, cfg.ModalAPITokenSecret = os.Getenv("MODAL_API_TOKEN_ID"), os.Getenv("MODAL_API_TOKEN_SECRET")
	home, _ := os.UserHomeDir()
	if _, err := modal.ResolveCredentials(cfg, os.Getenv, home); err != nil {
		if errors.Is(err, errdefs.ErrUnauthorized) {
			t.Skipf("no Modal credentials, so nothing is checked against Modal itself: %v", err)
		}
		t.Fatal(err)
	}
	cfg.Runtime = modal.Name
	cfg.Sandbox.BaseContainerImage = "debian:bookworm-slim"
	if img := os.Getenv("SBX_MODAL_LIVE_IMAGE"); img != "" {
		cfg.Sandbox.BaseContainerImage = img
	}
	cfg.Sandbox.CloseDelay = 600 // an abandoned sandbox ends by itself
	d, closer, err := modal.Open(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	id := "live-" + ids.New(5)
	start := time.Now()
	sb, err := d.Create(ctx, driver.Spec{ID: id, Labels: map[string]string{"dev.sbx.test": "live"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Logf("Create on Modal: %v, endpoint %s", time.Since(start).Round(time.Millisecond), sb.Endpoint.URL)
	defer func() {
		if err := d.Remove(context.WithoutCancel(ctx), id); err != nil {
			t.Errorf("Remove: %v", err)
		}
		if _, err := d.Inspect(context.WithoutCancel(ctx), id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Inspect after Remove: %v, want ErrNotFound", err)
		}
	}()
	obs, _, err := sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token).Run(ctx, sandboxapi.NewRunAction("echo hi from modal", 60))
	if err != nil || strings.TrimSpace(obs.Content) != "hi from modal" {
		t.Fatalf("run: %q, %v", obs.Content, err)
	}
	list, err := d.List(ctx, map[string]string{driver.LabelSession: id})
	if err != nil || len(list) != 1 {
		t.Errorf("List by session = %v, %v", list, err)
	}
	var logs strings.Builder
	if err := d.Logs(ctx, id, &logs, 0); err != nil {
		t.Errorf("Logs: %v", err)
	}
	t.Logf("logs:\n%s", logs.String())
}
