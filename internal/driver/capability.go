package driver

import (
	"context"
	"io"
	"time"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// Pauser freezes a sandbox with its processes kept (Docker's cgroup
// freezer, SIGSTOP of a process tree), which is better than OpenHands'
// stop/start: nothing restarts and no shell state is lost.
type Pauser interface {
	Pause(ctx context.Context, id string) error
	// Resume thaws the sandbox and waits until it answers.
	Resume(ctx context.Context, id string) (Sandbox, error)
}

// Restarter stops a sandbox and starts it again later with the files of
// its own filesystem kept (Docker's stop/start). A driver whose sandboxes
// lose their files when they stop (a Pod without a volume, a Modal
// sandbox) does not have it.
type Restarter interface {
	// Stop ends a sandbox's processes, giving them grace before a kill.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Start starts a stopped sandbox again and waits until it answers.
	Start(ctx context.Context, id string) (Sandbox, error)
}

// Killer ends a sandbox created with Spec.AutoRemove faster than Remove
// can: the engine deletes it as it exits. The removal may finish after
// Kill returns, but the id is free at once: a Create of the same id waits
// for it. A sandbox without AutoRemove is removed.
type Killer interface {
	Kill(ctx context.Context, id string) error
}

// Pruner removes what a driver keeps besides sandboxes (Docker: the
// sandboxd volumes of earlier sbx builds) once nothing uses it.
type Pruner interface {
	Prune(ctx context.Context, o PruneOptions) ([]string, error)
}

// PruneOptions tune Prune.
type PruneOptions struct {
	// MinAge keeps what is younger, so a build in use right now is safe.
	MinAge time.Duration
	DryRun bool
}

// ImageResolver picks the image a sandbox starts from, from the images the
// driver was configured with (runtime_container_image,
// base_container_image, runtime_extra_deps) or override; the caller puts
// it into Spec.Image and Spec.Prebuilt. Drivers without images (local)
// lack it.
type ImageResolver interface {
	ResolveImage(ctx context.Context, override string) (Image, error)
}

// Image is an image a driver can start sandboxes from.
type Image struct {
	Ref string
	ID  string
	// Prebuilt is true when sandboxd is already in the image (built by
	// ImageBuilder), so nothing needs injecting.
	Prebuilt bool
	// Kind is sbx's label for how the image was made ("bootstrap",
	// "runtime"), "" for others.
	Kind string
	Tags []string
	Base string
	// Version and Inputs are the sbx version that made the image and the
	// hash of what it was made from (empty for images sbx did not make).
	Version string
	Inputs  string
	Created time.Time
	Size    int64
	Labels  map[string]string
	// Reused is true when an image with the same inputs already existed.
	Reused bool
}

// ImageBuilder makes images ahead of time (`sbx image`).
type ImageBuilder interface {
	// BuildImage makes base + sandboxd + extra deps, reusing an image of
	// the same inputs.
	BuildImage(ctx context.Context, o BuildOptions) (Image, error)
	// BootstrapImage makes a base image without any registry.
	BootstrapImage(ctx context.Context, o BootstrapOptions) (Image, error)
	// Images lists the images sbx made.
	Images(ctx context.Context) ([]Image, error)
}

// BuildOptions say what ImageBuilder.BuildImage makes.
type BuildOptions struct {
	Base      string
	ExtraDeps string
	Tags      []string
	Force     bool
	Progress  io.Writer
}

// BootstrapOptions say what ImageBuilder.BootstrapImage makes.
type BootstrapOptions struct {
	Tag      string
	Suite    string
	Mirror   string
	Packages []string
	Force    bool
	Progress io.Writer
}

// SWEReXServer is a driver that honours Spec.SWEReX: it starts sandboxd
// with a SWE-ReX listener (launch.EnvSWEReXAddr, launch.EnvSWEReXToken),
// publishes it, and reports it in Sandbox.SWEReX, also to a later process
// that only inspects the sandbox. It is a marker: the work is Create's.
type SWEReXServer interface {
	ServesSWEReX()
}

// NetworkPolicer enforces Spec.Network.Policy from outside the sandbox,
// where root inside it cannot lift it, and changes it while the sandbox
// runs.
type NetworkPolicer interface {
	// NetworkPolicy is a sandbox's policy now.
	NetworkPolicy(ctx context.Context, id string) (netpolicy.Policy, error)
	// SetNetworkPolicy changes it; connections opened afterwards follow
	// the new policy, those already open are left alone. A change the
	// sandbox's network cannot take without a restart (to or from none,
	// or away from a plain open network) is ErrNotImplemented.
	SetNetworkPolicy(ctx context.Context, id string, p netpolicy.Policy) error
	// NetworkDenials are the sandbox's refused connections, oldest
	// first.
	NetworkDenials(ctx context.Context, id string) ([]netpolicy.Denial, error)
}

// WorkloadRunner is a driver that honours Spec.Workload: it runs the
// given program in the image instead of sandboxd (sandbox-api runs
// OpenHands' agent-server this way), publishes Workload.Ports in
// Sandbox.AppPorts, and leaves readiness to the caller. A marker, like
// SWEReXServer.
type WorkloadRunner interface {
	RunsWorkloads()
}

// ContextBuilder builds images from a client's own build context and
// answers whether an image exists, for sandbox-api's V0 build routes.
type ContextBuilder interface {
	// BuildContext builds the tar (optionally gzipped) under tags, adding
	// labels, and returns the image; a failing build is ErrInvalidArgument
	// with the step and the last lines of its output.
	BuildContext(ctx context.Context, buildContext io.Reader, tags []string, labels map[string]string) (Image, error)
	// ImageExists reports whether ref is an image the driver can start.
	ImageExists(ctx context.Context, ref string) (Image, bool, error)
	// TagImage gives the image src (an ID or a name) the name tag too.
	TagImage(ctx context.Context, src, tag string) error
}

// WorkspaceGuard is a driver that honours Mount.Guard: the sandbox sees
// a copy-on-write view of a host directory, and its changes stay in a
// layer the host reads (sbx diff) and applies (sbx apply) after the
// sandbox stopped. Each guarded mount keeps a manifest of the directory
// as it was at the start, against which an apply checks for host edits.
// The layers outlive the sandbox's container until Remove.
type WorkspaceGuard interface {
	// GuardLayers lists a sandbox's guarded mounts; none for a sandbox
	// without any. It works on a stopped sandbox and on one whose
	// container is gone but whose layers remain.
	GuardLayers(ctx context.Context, id string) ([]GuardLayer, error)
	// ResetGuard empties the change layers of a sandbox that is not
	// running and takes the manifests again (sbx discard, and after an
	// apply of everything).
	ResetGuard(ctx context.Context, id string) error
}

// GuardLayer is one guarded mount's change layer, as paths this process
// reads.
type GuardLayer struct {
	Target string // inside the sandbox
	Source string // the host directory
	Mode   string // GuardOverlay or GuardCopy
	// Dir is the overlay's upper directory, or the root of the copy.
	Dir string
	// Manifest is the file holding the start manifest.
	Manifest string
}

// Describer reports what the driver runs on, for `sbx version`.
type Describer interface {
	// Engine describes the engine; an unreachable one is ErrUnavailable.
	Engine(ctx context.Context) (EngineInfo, error)
}

// EngineInfo names what a driver runs sandboxes on.
type EngineInfo struct {
	Name       string // "docker"
	Version    string
	APIVersion string
}

// Traits are facts about a driver's sandboxes that change what sbx does
// around them, not calls it makes.
type Traits struct {
	// HostFilesystem: the sandbox runs on the host's own filesystem (the
	// local driver). Its working directory is the host workspace itself,
	// there is nothing to mount, and the shell's home is the user's own:
	// sbx must not write ~/.bashrc or the git identity there.
	HostFilesystem bool
	// PauseKept: a sandbox kept alive (keep_runtime_alive) is paused when
	// its session closes if pause_closed_runtimes is set, as OpenHands'
	// remote runtime does; elsewhere a kept sandbox is left running.
	PauseKept bool
}

// TraitsReporter is implemented by drivers whose Traits are not all zero.
type TraitsReporter interface {
	Traits() Traits
}

// Capabilities are what a driver can do beyond the core, each nil where it
// cannot. CapabilitiesOf is the one place that looks.
type Capabilities struct {
	Pause    Pauser
	Restart  Restarter
	Kill     Killer
	Prune    Pruner
	Images   ImageResolver
	Build    ImageBuilder
	Describe Describer
	Network  NetworkPolicer
	// SWEReX is true when Spec.SWEReX is honoured (SWEReXServer).
	SWEReX bool
	// ContextBuild builds clients' build contexts (ContextBuilder).
	ContextBuild ContextBuilder
	// Workloads is true when Spec.Workload is honoured (WorkloadRunner).
	Workloads bool
	// Guard is set when Mount.Guard is honoured.
	Guard  WorkspaceGuard
	Traits Traits
}

// CapabilitiesOf discovers what d can do.
func CapabilitiesOf(d Driver) Capabilities {
	var c Capabilities
	c.Pause, _ = d.(Pauser)
	c.Restart, _ = d.(Restarter)
	c.Kill, _ = d.(Killer)
	c.Prune, _ = d.(Pruner)
	c.Images, _ = d.(ImageResolver)
	c.Build, _ = d.(ImageBuilder)
	c.Describe, _ = d.(Describer)
	c.Network, _ = d.(NetworkPolicer)
	_, c.SWEReX = d.(SWEReXServer)
	_, c.Workloads = d.(WorkloadRunner)
	c.ContextBuild, _ = d.(ContextBuilder)
	c.Guard, _ = d.(WorkspaceGuard)
	if t, ok := d.(TraitsReporter); ok {
		c.Traits = t.Traits()
	}
	return c
}

// Names lists the capabilities present, for messages and `sbx version`.
func (c Capabilities) Names() []string {
	var n []string
	for _, x := range []struct {
		name string
		ok   bool
	}{
		{"pause", c.Pause != nil}, {"restart", c.Restart != nil}, {"kill", c.Kill != nil},
		{"prune", c.Prune != nil}, {"images", c.Images != nil}, {"build", c.Build != nil},
		{"describe", c.Describe != nil}, {"network-policy", c.Network != nil}, {"swerex", c.SWEReX}, {"workloads", c.Workloads},
		{"context-build", c.ContextBuild != nil}, {"guard", c.Guard != nil},
		{"host-filesystem", c.Traits.HostFilesystem},
	} {
		if x.ok {
			n = append(n, x.name)
		}
	}
	return n
}
