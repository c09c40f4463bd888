// Package driver is the contract between sbx and the things that start
// sandboxes: a small core every driver implements (create, inspect, list,
// remove, logs) and named capabilities that only some have (pause,
// stop/start with files kept, fast kill, pruning, images, host filesystem
// traits), discovered in one place, CapabilitiesOf. A driver only does
// lifecycle. Every action, file and shell byte goes to sandboxd
// through sandboxapi.Client at the Endpoint a driver returns, whichever
// driver started it: the control plane never carries sandbox traffic.
package driver

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// Label keys put on everything a driver creates, so that sbx can find its
// own objects (ls, gc, rm_all_containers) and nothing else.
const (
	LabelManaged = "dev.sbx.managed" // "true"
	LabelSession = "dev.sbx.session" // the session id
	LabelVersion = "dev.sbx.version" // sbx version that created it
	LabelKeep    = "dev.sbx.keep"    // "true" when keep_runtime_alive was set
	LabelRemove  = "dev.sbx.rm"      // "true" when the sandbox is removed on close
	LabelGuard   = "dev.sbx.guard"   // "true" when a mount is guarded (Mount.Guard)
)

// SandboxdPath is where sandboxd lives inside a sandbox, both when it is
// injected by a read-only volume and when it is baked into a runtime image
// by `sbx image build`, so a container's command is the same either way.
const SandboxdPath = "/opt/sbx/sandboxd"

// Spec says what to start. Zero values mean the driver's defaults.
type Spec struct {
	// ID is the session id. Names are derived from it deterministically
	// (sbx-<ID>), so a second Create with the same ID conflicts instead of
	// leaving a twin behind.
	ID string
	// Image is the image to run. With Prebuilt unset sandboxd is injected
	// into it (Docker: a read-only volume at /opt/sbx).
	Image    string
	Prebuilt bool

	// WorkDir is sandboxd's --working-dir inside the sandbox.
	WorkDir string
	// User and UserID are sandboxd's --username and --user-id.
	User    string
	UserID  int
	Plugins []string
	// Env is the environment of the sandboxd process (and so of its shell).
	Env    map[string]string
	Mounts []Mount
	Labels map[string]string

	Network   Network
	Resources Resources

	// AutoRemove asks the engine to delete the sandbox as soon as it stops
	// (docker run --rm), so closing it needs no separate removal round trip.
	AutoRemove bool
	// Debug starts sandboxd with DEBUG=true.
	Debug bool

	// SWEReX, when set, asks for a second listener speaking SWE-ReX's
	// protocol (spec/swerex-remote.md) beside OpenHands', published like
	// the server port; Sandbox.SWEReX reports where. Only drivers with
	// the SWEReXServer capability honour it; the others refuse it with
	// ErrNotImplemented.
	SWEReX *SWEReX

	// Workload, when set, runs this program as the sandbox's main process
	// instead of sandboxd (nothing is injected; Prebuilt, User, UserID,
	// Plugins, Debug and SWEReX do not apply). Create returns once it has
	// started, without waiting for it to answer anything: what "ready"
	// means is the workload's. Only drivers with the WorkloadRunner
	// capability honour it; the others refuse it with ErrNotImplemented.
	Workload *Workload

	// GuardMode picks how guarded mounts are made (GuardAuto,
	// GuardOverlay, GuardCopy).
	GuardMode string
}

// Workload is a program run in a sandbox's image as given.
type Workload struct {
	// Command replaces the image's entrypoint and command (Kubernetes'
	// `command`), so `tini` or another init in the entrypoint is dropped.
	Command []string
	// User is the process's user, "uid[:gid]" or a name; "" is the image's.
	User string
	// Groups are supplementary groups (OpenHands' fs_group).
	Groups []string
	// Ports are ports inside the sandbox to publish on
	// Network.BindAddress; Sandbox.AppPorts reports where.
	Ports []int
}

// SWEReX configures a sandbox's SWE-ReX listener.
type SWEReX struct {
	// Token is what clients send as X-API-Key; "" makes the driver pick a
	// random one. It is a secret: a driver keeps it where only those who
	// can already control the sandbox can read it back.
	Token string
}

// Mount is a host directory or named volume seen inside the sandbox.
type Mount struct {
	// Source is an absolute host path (as the engine sees it) or, with
	// Volume set, a volume name.
	Source   string
	Target   string
	ReadOnly bool
	Volume   bool
	// Guard gives the sandbox a copy-on-write view of the host directory
	// Source: its writes go to a change layer the host reviews and
	// applies later (WorkspaceGuard), the directory itself is never
	// written. Only drivers with the WorkspaceGuard capability honour it;
	// the others refuse it with ErrNotImplemented.
	Guard bool
}

// Guard modes: how a guarded mount's change layer is made.
const (
	// GuardAuto is an overlay where the engine can mount one, else a copy.
	GuardAuto = ""
	// GuardOverlay: the host directory is an overlay's lower layer and the
	// changes are its upper directory.
	GuardOverlay = "overlay"
	// GuardCopy: the directory is copied in at start and compared with
	// the manifest taken then.
	GuardCopy = "copy"
)

// Network says how the sandbox is reached.
type Network struct {
	// BindAddress is the host address ports are published on
	// (runtime_binding_address); default 127.0.0.1.
	BindAddress string
	// HostNetwork shares the host's network namespace; nothing is published.
	HostNetwork bool
	// Additional names networks the sandbox joins after it starts.
	Additional []string
	// Policy is the egress policy; nil or a plain open one is today's
	// network. Only a driver with the NetworkPolicer capability enforces
	// another; every other driver refuses it with ErrNotImplemented,
	// never starting a sandbox with less protection than asked for.
	Policy *netpolicy.Policy
	// NoAppPorts leaves OpenHands' two app ports (APP_PORT_1/2)
	// unpublished. Each published port costs the engine a proxy process
	// and firewall rules at start; evaluation runs that never open an app
	// save about 15% of a burst's start time.
	NoAppPorts bool
}

// Resources are limits; zero means unlimited except where a driver has a
// documented safe default (Docker: a pids limit).
type Resources struct {
	CPUs            float64
	CpusetCPUs      string
	MemoryBytes     int64
	MemorySwapBytes int64
	PidsLimit       int64
	ShmBytes        int64
	GPU             bool
	GPUDevices      []string
}

// State is where a sandbox is in its life.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StatePaused  State = "paused"
	StateStopped State = "stopped"
	StateUnknown State = "unknown"
)

// Sandbox is what a driver knows about one sandbox.
type Sandbox struct {
	ID      string // session id
	Name    string // engine-side name, e.g. sbx-<id>
	Driver  string
	Image   string
	State   State
	Created time.Time
	// Started is when it last started; zero where the driver cannot tell
	// (listings).
	Started time.Time
	Labels  map[string]string
	// Endpoint is set while the sandbox runs.
	Endpoint Endpoint
	// AppPorts maps a port inside the sandbox to where the host reaches it
	// (OpenHands' APP_PORT_1 and APP_PORT_2).
	AppPorts []PortMapping
	// SWEReX is where the SWE-ReX listener answers (Spec.SWEReX) while the
	// sandbox runs; its URL is "" for a sandbox started without one.
	// Listings may leave the token empty.
	SWEReX Endpoint
}

// Endpoint is where sandboxd answers and the key it wants.
type Endpoint struct {
	URL   string
	Token string
	// Direct reaches the same server at the sandbox's own address,
	// without the engine's port proxy, where the driver knows that
	// address is reachable from here (a local Docker engine's bridge);
	// "" elsewhere. A service on the engine's host (sandbox-api) dials it
	// to save the port proxy's hop.
	Direct string
}

// PortMapping is one published port.
type PortMapping struct {
	Sandbox int
	Host    int
	URL     string
	Direct  string // as Endpoint.Direct
}

// Driver is the core every driver implements: what sbx needs to run a
// sandbox at all. What only some drivers can do is a named capability
// (capability.go), found with CapabilitiesOf. Errors are classified with
// internal/errdefs: a sandbox that does not exist is ErrNotFound, a name
// already taken is ErrAlreadyExists, a driver that cannot be reached is
// ErrUnavailable.
type Driver interface {
	// Create makes and starts a sandbox and returns once sandboxd answers
	// /alive. If the sandbox dies while starting, the error says why (for
	// Docker, the tail of its logs) and nothing is left behind, also when
	// ctx ends half-way.
	Create(ctx context.Context, spec Spec) (Sandbox, error)
	Inspect(ctx context.Context, id string) (Sandbox, error)
	// List returns the sandboxes of this driver whose labels include all of
	// match (nil: all of sbx's).
	List(ctx context.Context, match map[string]string) ([]Sandbox, error)
	// Remove deletes a sandbox whatever its state, and returns once it is
	// gone: a Create with the same id may follow at once. Removing one
	// that does not exist is not an error.
	Remove(ctx context.Context, id string) error
	// Logs copies sandboxd's own output (not the shell's) to w.
	Logs(ctx context.Context, id string, w io.Writer, tail int) error
}

// CheckPolicy refuses an enforced egress policy for a driver without the
// NetworkPolicer capability: the caller asked for less network than the
// driver can take away, and a silent downgrade would be worse than no
// sandbox.
// why says what stands in the way, for the message.
func CheckPolicy(driverName, why string, spec Spec) error {
	if spec.Network.Policy != nil && spec.Network.Policy.Enforced() {
		return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf(
			"RUNTIME=%s cannot enforce the network policy %s: %s; use RUNTIME=docker, or network policy open", driverName, spec.Network.Policy, why))
	}
	return nil
}

// CheckID keeps session ids to what every driver can use as a name (a
// container name, a directory): letters, digits, '_', '.' and '-', starting
// with a letter or digit, at most 128. No separator or dot-dot can reach a
// path, and a name derived from an id can never address someone else's.
func CheckID(id string) error {
	ok := id != "" && len(id) <= 128
	for i, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '_' || r == '.' || r == '-')) {
			ok = false
			break
		}
	}
	if !ok {
		return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("invalid sandbox id %q: use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 128", id))
	}
	return nil
}
