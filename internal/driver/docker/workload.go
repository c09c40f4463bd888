package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/version"
)

// createWorkload starts spec.Workload's program in spec.Image: no
// sandboxd, no readiness wait. A container that cannot start is removed;
// one that starts and then exits is the caller's to notice (Inspect).
func (d *Driver) createWorkload(ctx context.Context, spec driver.Spec) (driver.Sandbox, error) {
	w := spec.Workload
	if len(w.Command) == 0 {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrInvalidArgument, "a workload needs a command")
	}
	if spec.SWEReX != nil {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrInvalidArgument, "a workload sandbox runs no sandboxd, so it serves no SWE-ReX")
	}
	// Not yet for workloads: a guarded folder and an egress policy need
	// sandboxd's side of the work; refusing beats running unguarded.
	for _, m := range spec.Mounts {
		if m.Guard {
			return driver.Sandbox{}, errdefs.New(errdefs.ErrNotImplemented, "a workload sandbox cannot guard a folder yet")
		}
	}
	if err := driver.CheckPolicy("docker", "a workload sandbox (sandbox-api's V1 runtimes) is not policed yet", spec); err != nil {
		return driver.Sandbox{}, err
	}
	if spec.Network.HostNetwork && len(w.Ports) > 0 {
		return driver.Sandbox{}, errdefs.New(errdefs.ErrInvalidArgument, "a workload in the host's network publishes no ports")
	}
	name := ContainerName(spec.ID)
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[driver.LabelManaged] = "true"
	labels[driver.LabelSession] = spec.ID
	labels[driver.LabelVersion] = version.Version
	labels[labelWorkload] = "true"
	delete(labels, labelSWEReX)
	cfg := &container.Config{
		Image:       spec.Image,
		Entrypoint:  w.Command,
		Env:         env,
		Labels:      labels,
		User:        w.User,
		WorkingDir:  spec.WorkDir,
		StopTimeout: intPtr(10),
	}
	hc := &container.HostConfig{AutoRemove: spec.AutoRemove, ShmSize: spec.Resources.ShmBytes, GroupAdd: w.Groups}
	if spec.Network.HostNetwork {
		hc.NetworkMode = "host"
	} else {
		bind, err := bindAddr(spec.Network.BindAddress)
		if err != nil {
			return driver.Sandbox{}, err
		}
		cfg.ExposedPorts = network.PortSet{}
		hc.PortBindings = network.PortMap{}
		for _, p := range w.Ports {
			if p <= 0 || p > 65535 {
				return driver.Sandbox{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("port %d is not a TCP port", p))
			}
			np := network.MustParsePort(strconv.Itoa(p) + "/tcp")
			cfg.ExposedPorts[np] = struct{}{}
			hc.PortBindings[np] = []network.PortBinding{{HostIP: bind}}
		}
	}
	hc.Mounts = plainMounts(spec)
	applyResources(hc, spec.Resources)
	res, err := d.createContainer(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	if err != nil {
		if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
			return driver.Sandbox{}, errdefs.Wrap(errdefs.ErrAlreadyExists, fmt.Sprintf("sandbox %q already exists (container %s)", spec.ID, name), err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			d.discardOwned(ctx, name, spec.Env["SESSION_API_KEY"])
		}
		if cerrdefs.IsNotFound(err) {
			return driver.Sandbox{}, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("image %s: %v", spec.Image, err), err)
		}
		return driver.Sandbox{}, classify(err, "create container "+name)
	}
	ok := false
	defer func() {
		if !ok {
			d.discard(ctx, res.ID)
		}
	}()
	if err := ctx.Err(); err != nil {
		return driver.Sandbox{}, fmt.Errorf("create container %s: %w", name, err)
	}
	if _, err := d.api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		// "exec: no such file", a user that does not exist: the engine
		// says so here, and the caller shows it.
		return driver.Sandbox{}, errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("start container %s: %v", name, err), err)
	}
	for _, n := range spec.Network.Additional {
		if _, err := d.api.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: res.ID}); err != nil {
			return driver.Sandbox{}, classify(err, fmt.Sprintf("connect %s to network %s", name, n))
		}
	}
	ins, err := d.api.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		return driver.Sandbox{}, classify(err, "inspect "+name)
	}
	ok = true
	return d.toSandbox(ctx, ins.Container), nil
}
