package store

import (
	"fmt"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// State is where a runtime is in its life, with the names the runtime API's
// clients read in "status" (spec/runtime-api.md §6.4).
type State string

const (
	// Starting: the container is being created or booted, or resumed and
	// not yet answering its health route through the proxy.
	Starting State = "starting"
	// Running: the proxied health route answered.
	Running State = "running"
	// Paused: frozen; the proxy answers 503.
	Paused State = "paused"
	// Error: the start failed, or the workload died; Reason says why.
	Error State = "error"
	// Stopped: removed by /stop (or found gone); kept visible for a while.
	Stopped State = "stopped"
)

// States lists every state, in the order of a runtime's life.
func States() []State { return []State{Starting, Running, Paused, Error, Stopped} }

// Live reports whether a runtime in s holds (or is about to hold) a
// container: at most one live runtime per tenant and session id.
func (s State) Live() bool { return s == Starting || s == Running || s == Paused }

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	for _, v := range States() {
		if s == v {
			return true
		}
	}
	return false
}

// Allowed is the one table of lifecycle transitions. A transition to the
// same state is not a transition (callers treat it as a no-op).
//
//	starting → running (healthy), error, stopped (a booting runtime is not paused: nothing to freeze yet)
//	running  → starting (restarted by the service), paused, error, stopped
//	paused   → starting (/resume: unhealthy until the health route answers), error, stopped
//	error    → stopped (its container is removed; /start then makes a new runtime)
//	stopped  → nothing: a stopped runtime is history
func Allowed(from, to State) bool {
	switch from {
	case Starting:
		return to == Running || to == Error || to == Stopped
	case Running:
		return to == Starting || to == Paused || to == Error || to == Stopped
	case Paused:
		return to == Starting || to == Error || to == Stopped
	case Error:
		return to == Stopped
	}
	return false
}

// PodStatus is the "pod_status" each state reports (spec §6.4); Starting
// moves from "pending" to "running" (process up, port not yet answering)
// and is set by the service.
func (s State) PodStatus() string {
	switch s {
	case Starting:
		return "pending"
	case Running:
		return "ready"
	case Error:
		return "failed"
	}
	return "not found"
}

// TransitionError is a refused transition; it wraps errdefs.ErrConflict.
type TransitionError struct {
	ID       string
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("runtime %s is %s: it cannot become %s", e.ID, e.From, e.To)
}

func (e *TransitionError) Unwrap() error { return errdefs.ErrConflict }
