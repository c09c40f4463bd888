// Command sbx-egress is sbx's egress proxy (internal/egress), the only
// process of its container: static, so its image is FROM scratch.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sbx-dev/sbx/internal/egress"
	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// EnvToken carries the control endpoint's token: the environment of the
// proxy's container is readable only through the engine.
const EnvToken = "SBX_EGRESS_TOKEN"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sbx-egress:", err)
		os.Exit(1)
	}
}

func run() error {
	inside := flag.String("internal", "", "CIDR holding every sandbox network (the driver carves one per sandbox from it)")
	policy := flag.String("policy", "", "policy of sources that were not registered")
	dns := flag.String("dns", "", "resolver (host:port) for destination names; default: the container's")
	host := flag.String("host", "", "comma-separated addresses of the engine's host, never a destination unless the policy is open")
	state := flag.String("state", "/state/clients.json", "file keeping the registrations")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	pfx, err := netip.ParsePrefix(*inside)
	if err != nil {
		return fmt.Errorf("--internal: %w", err)
	}
	pol, err := netpolicy.Parse(*policy)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	token := os.Getenv(EnvToken)
	if token == "" {
		return fmt.Errorf("%s is not set", EnvToken)
	}
	os.Unsetenv(EnvToken)
	cfg := egress.Config{Default: pol, Pool: pfx.Masked(), Log: log, Token: token, StateFile: *state}
	for _, h := range strings.Split(*host, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		a, err := netip.ParseAddr(h)
		if err != nil {
			return fmt.Errorf("--host: %w", err)
		}
		cfg.Host = append(cfg.Host, a.Unmap())
	}
	if *dns != "" {
		addr := *dns
		cfg.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := egress.New(cfg)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, egress.Ports{})
}
