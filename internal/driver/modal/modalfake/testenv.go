package modalfake

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/sandboxdbin"
)

// PrepareProcess readies a test process to talk to the fake: a tunnel
// certificate trusted beside the system's roots through SSL_CERT_FILE
// (Go reads the roots once per process, so call it from TestMain, before
// any TLS handshake) and one sandboxd for every driver the tests open
// (SBX_SANDBOXD; each Locator would otherwise build its own). The files
// live in dir, which the caller removes.
func PrepareProcess(ctx context.Context, dir string) (Cert, error) {
	cert, err := NewCert()
	if err != nil {
		return Cert{}, err
	}
	bundle, err := cert.RootsFile(dir)
	if err != nil {
		return Cert{}, err
	}
	if err := os.Setenv("SSL_CERT_FILE", bundle); err != nil {
		return Cert{}, err
	}
	bin, err := (&sandboxdbin.Locator{CacheDir: dir}).Locate(ctx)
	if err != nil {
		return Cert{}, fmt.Errorf("sandboxd for the fake's sandboxes: %w", err)
	}
	if err := os.Setenv("SBX_SANDBOXD", bin.Path); err != nil {
		return Cert{}, err
	}
	return cert, nil
}

// StartDocker starts a fake whose sandboxes are containers of the local
// Docker engine, closed (with the containers it still has) at the test's
// end. Without an engine the test is skipped, or fails when
// SBX_REQUIRE_DOCKER is set.
func StartDocker(tb testing.TB, cert Cert) *Server {
	tb.Helper()
	dc, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = dc.Ping(ctx, client.PingOptions{})
		cancel()
	}
	if err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			tb.Fatalf("docker engine required: %v", err)
		}
		tb.Skipf("no docker engine for the fake's sandboxes: %v", err)
	}
	tb.Cleanup(func() { dc.Close() })
	fake, err := Start(Options{Docker: dc, Cert: cert})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := fake.Close(); err != nil {
			tb.Errorf("fake: %v", err)
		}
	})
	return fake
}
