// Package backend turns configuration into a driver and its capabilities.
// It is the one place that knows which drivers exist: the SDK, the CLI and
// sandbox-api open a Backend and never name a driver themselves.
//
// A driver whose client library is heavy (Kubernetes, Modal) is not in
// Default: a program links it by passing its Factory in Options.Drivers,
// so the SDK alone never pays for it.
package backend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/docker"
	"github.com/sbx-dev/sbx/internal/driver/docker/image"
	"github.com/sbx-dev/sbx/internal/driver/local"
	"github.com/sbx-dev/sbx/internal/driver/remote"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
)

// Options are what every factory may use.
type Options struct {
	Logger *slog.Logger
	// Progress receives one-line reports of long steps; nil discards.
	Progress io.Writer
	// Sandboxd finds the binary drivers inject; nil is the default search.
	Sandboxd *sandboxdbin.Locator
	// Drivers adds factories to Default's, or replaces them by name.
	Drivers map[string]Factory
	// PullFailures is where the Docker driver remembers images that could
	// not be pulled; "" is image.DefaultPullFailuresPath.
	PullFailures string
}

// Factory makes a driver from the configuration. The returned closer, if
// any, releases the driver's connections.
type Factory func(ctx context.Context, cfg *config.Config, o Options) (driver.Driver, io.Closer, error)

// Backend is an opened driver with what it can do.
type Backend struct {
	// Name is the RUNTIME that chose it.
	Name   string
	Driver driver.Driver
	Caps   driver.Capabilities
	closer io.Closer
}

// Close releases the driver's connections; sandboxes are not touched.
func (b *Backend) Close() error {
	if b.closer == nil {
		return nil
	}
	return b.closer.Close()
}

// Default is the drivers every sbx has: docker and local.
func Default() map[string]Factory {
	return map[string]Factory{"docker": openDocker, local.Name: openLocal, remote.Name: openRemote}
}

// Names lists the runtimes Open accepts with o.
func Names(o Options) []string {
	f := factories(o)
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func factories(o Options) map[string]Factory {
	f := Default()
	for n, fn := range o.Drivers {
		f[n] = fn
	}
	return f
}

// Open makes the driver cfg.Runtime names ("" is docker).
func Open(ctx context.Context, cfg *config.Config, o Options) (*Backend, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Sandboxd == nil {
		o.Sandboxd = &sandboxdbin.Locator{}
	}
	name := cfg.Runtime
	if name == "" {
		name = config.DefaultRuntime
	}
	fs := factories(o)
	f, ok := fs[name]
	if !ok {
		known := make([]string, 0, len(fs)+1)
		for n := range fs {
			known = append(known, n)
		}
		if _, ok := fs["modal"]; !ok {
			known = append(known, "modal") // named, with how to link it, below
		}
		sort.Strings(known)
		// Runtimes OpenHands users configure that this sbx does not
		// implement yet get a clear answer instead of "unknown".
		if name == "modal" {
			// The driver exists but links Modal's client: only programs
			// that ask for it have it.
			return nil, errdefs.New(errdefs.ErrNotImplemented, "RUNTIME=modal is not linked into this program: pass modal.Drivers() (package github.com/sbx-dev/sbx/modal) in sbx.Options.Drivers, as the sbx CLI does")
		}
		if slices.Contains([]string{"kubernetes"}, name) {
			return nil, errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("RUNTIME=%s is not available in this sbx yet; use one of %s (docker is the default)", name, strings.Join(known, ", ")))
		}
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("RUNTIME=%q is not a runtime sbx knows; use one of %s (docker is the default; local runs without Docker)", name, strings.Join(known, ", ")))
	}
	d, closer, err := f(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	return &Backend{Name: name, Driver: d, Caps: driver.CapabilitiesOf(d), closer: closer}, nil
}

func openDocker(_ context.Context, cfg *config.Config, o Options) (driver.Driver, io.Closer, error) {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, nil, errdefs.Wrap(errdefs.ErrUnavailable, "docker client: "+err.Error(), err)
	}
	path := o.PullFailures
	if path == "" {
		path = image.DefaultPullFailuresPath()
	}
	var subnets netip.Prefix
	if v := cfg.Sandbox.EgressSubnets; v != "" {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is4() {
			c.Close()
			return nil, nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("egress_subnets %q: want an IPv4 CIDR such as 10.213.0.0/16", v))
		}
		subnets = p
	}
	d, err := docker.New(docker.Options{
		Client: c, Sandboxd: o.Sandboxd, Logger: o.Logger, Progress: o.Progress, URLHost: urlHost(cfg),
		// An engine on a unix socket runs here: its bridge addresses are
		// reachable, and callers may skip its port proxy.
		DirectAddresses: strings.HasPrefix(c.DaemonHost(), "unix://"),
		Images: docker.Images{
			Runtime: cfg.Sandbox.RuntimeContainerImage, Base: cfg.Sandbox.BaseContainerImage,
			ExtraDeps: cfg.Sandbox.RuntimeExtraDeps, ForceRebuild: cfg.Sandbox.ForceRebuildRuntime,
		},
		PullFailures: &image.PullFailures{Path: path, Engine: c.DaemonHost()},
		Egress:       docker.EgressOptions{Upstream: cfg.Sandbox.EgressNetworks, DNS: cfg.Sandbox.EgressDNS, Subnets: subnets},
	})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return d, c, nil
}

func openLocal(_ context.Context, _ *config.Config, o Options) (driver.Driver, io.Closer, error) {
	d, err := local.New(local.Options{Sandboxd: o.Sandboxd, Logger: o.Logger})
	if err != nil {
		return nil, nil, err
	}
	return d, nil, nil
}

// urlHost is the host part of DOCKER_HOST_ADDR / local_runtime_url when it
// names something other than this machine's loopback.
func urlHost(cfg *config.Config) string {
	u, err := url.Parse(cfg.LocalRuntimeURL())
	if err != nil {
		return ""
	}
	switch h := u.Hostname(); h {
	case "", "localhost", "127.0.0.1", "::1":
		return ""
	default:
		return h
	}
}

// openRemote is RUNTIME=remote with OpenHands' settings for it.
func openRemote(_ context.Context, cfg *config.Config, _ Options) (driver.Driver, io.Closer, error) {
	sc := cfg.Sandbox
	d, err := remote.New(remote.Options{
		URL: sc.RemoteRuntimeAPIURL, APIKey: sc.APIKey, ResourceFactor: sc.RemoteRuntimeResourceFactor,
		RuntimeClass: sc.RemoteRuntimeClass, RuntimeImage: sc.RuntimeContainerImage, BaseImage: sc.BaseContainerImage,
		InitTimeout: time.Duration(sc.RemoteRuntimeInitTimeout) * time.Second,
		APITimeout:  time.Duration(sc.RemoteRuntimeAPITimeout) * time.Second,
	})
	if err != nil {
		return nil, nil, err
	}
	return d, nil, nil
}
