package store

import (
	"errors"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// The lifecycle table, every pair: a change to Allowed must change this.
func TestAllowedTable(t *testing.T) {
	want := map[State][]State{
		Starting: {Running, Error, Stopped},
		Running:  {Starting, Paused, Error, Stopped},
		Paused:   {Starting, Error, Stopped},
		Error:    {Stopped},
		Stopped:  {},
	}
	for _, from := range States() {
		for _, to := range append(States(), State("bogus")) {
			allowed := false
			for _, w := range want[from] {
				allowed = allowed || w == to
			}
			if got := Allowed(from, to); got != allowed {
				t.Errorf("Allowed(%s, %s) = %v, want %v", from, to, got, allowed)
			}
		}
	}
	if Allowed("bogus", Running) {
		t.Error("an unknown state allows a transition")
	}
	for _, s := range States() {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
		if got, want := s.Live(), s == Starting || s == Running || s == Paused; got != want {
			t.Errorf("%s.Live() = %v", s, got)
		}
	}
	var err error = &TransitionError{ID: "r", From: Stopped, To: Running}
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Error("TransitionError is not ErrConflict")
	}
}

// pod_status per state, as the clients read it (spec §6).
func TestPodStatus(t *testing.T) {
	for s, want := range map[State]string{Starting: "pending", Running: "ready", Paused: "not found", Error: "failed", Stopped: "not found"} {
		if got := s.PodStatus(); got != want {
			t.Errorf("%s.PodStatus() = %q, want %q", s, got, want)
		}
	}
}
