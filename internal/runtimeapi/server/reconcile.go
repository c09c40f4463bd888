package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// Reconcile makes the store and the backend agree, at start-up (after a
// crash, a kill -9 at any moment): a live record whose sandbox is gone is
// marked error with the reason, a sandbox carrying the service's labels
// without a live record is removed, and the live ones get their routes
// back (a starting one is watched again). It returns what it changed.
func (s *Server) Reconcile(ctx context.Context) (Reconciled, error) {
	var out Reconciled
	sandboxes, err := s.cfg.Driver.List(ctx, s.cfg.Labels)
	if err != nil {
		return out, fmt.Errorf("reconcile: listing sandboxes: %w", err)
	}
	bySandbox := map[string]driver.Sandbox{}
	for _, sb := range sandboxes {
		if sb.Labels[LabelRuntime] != "" {
			bySandbox[sb.ID] = sb
		}
	}
	live, err := s.cfg.Store.List(ctx, store.Filter{States: []store.State{store.Starting, store.Running, store.Paused}})
	if err != nil {
		return out, fmt.Errorf("reconcile: listing runtimes: %w", err)
	}
	kept := map[string]bool{}
	for _, rec := range live {
		sb, ok := bySandbox[rec.BackendID]
		if ok && (sb.State == driver.StateRunning || sb.State == driver.StatePaused) {
			kept[rec.BackendID] = true
			if err := s.adopt(ctx, rec, sb); err != nil {
				return out, err
			}
			out.Adopted = append(out.Adopted, rec.ID)
			continue
		}
		reason := "its sandbox was gone when sandbox-api started"
		if ok {
			reason = fmt.Sprintf("its sandbox was %s when sandbox-api started", sb.State)
		}
		if _, err := s.setState(ctx, rec.ID, store.Error, reason); err != nil {
			return out, fmt.Errorf("reconcile %s: %w", rec.ID, err)
		}
		out.Failed = append(out.Failed, rec.ID)
	}
	for id, sb := range bySandbox {
		if kept[id] {
			continue
		}
		if err := s.cfg.Driver.Remove(ctx, sb.ID); err != nil {
			return out, fmt.Errorf("reconcile: removing %s: %w", sb.Name, err)
		}
		out.Removed = append(out.Removed, sb.ID)
	}
	s.startSweeper()
	if len(out.Failed)+len(out.Removed) > 0 {
		s.log.Warn("reconciled the store with the backend", "adopted", len(out.Adopted), "failed", out.Failed, "removed", out.Removed)
	}
	return out, nil
}

// Reconciled says what Reconcile did.
type Reconciled struct {
	Adopted []string // runtimes whose sandboxes run on
	Failed  []string // runtimes marked error: their sandbox was gone
	Removed []string // sandboxes without a live runtime, removed
}

func (s *Server) adopt(ctx context.Context, rec store.Runtime, sb driver.Sandbox) error {
	var ws workloadSpec
	_ = json.Unmarshal(rec.Spec, &ws)
	// A listing has no environment; Inspect has the whole picture.
	full, err := s.cfg.Driver.Inspect(ctx, sb.ID)
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", rec.ID, err)
	}
	st := rec.State
	switch {
	case full.State == driver.StatePaused && st != store.Paused:
		if st == store.Starting {
			// A booting runtime is not paused: thaw it and watch it.
			if s.cfg.Caps.Pause != nil {
				if _, err := s.cfg.Caps.Pause.Resume(ctx, sb.ID); err != nil {
					return fmt.Errorf("reconcile %s: %w", rec.ID, err)
				}
			}
		} else if _, err := s.setState(ctx, rec.ID, store.Paused, ""); err != nil {
			return fmt.Errorf("reconcile %s: %w", rec.ID, err)
		} else {
			st = store.Paused
		}
	case full.State == driver.StateRunning && st == store.Paused:
		// Thawed behind the service's back: watch it to running.
		if _, err := s.cfg.Store.Update(ctx, rec.ID, func(x *store.Runtime) error {
			x.State, x.PodStatus = store.Starting, "running"
			return nil
		}); err != nil {
			return fmt.Errorf("reconcile %s: %w", rec.ID, err)
		}
		st = store.Starting
	}
	rec.State = st
	rt, err := routeOf(rec, ws, full)
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", rec.ID, err)
	}
	s.routes.set(rt)
	if st == store.Starting {
		s.boot(rec, ws, true)
	}
	return nil
}

// startSweeper removes, every SweepInterval, sandboxes carrying the
// service's labels whose runtime is not live. Reconcile alone is not
// enough after a kill -9: the engine finishes the creates a dead service
// had asked for after the new one has listed its sandboxes, so strays
// appear later.
func (s *Server) startSweeper() {
	s.sweepOnce.Do(func() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(s.cfg.SweepInterval)
			defer t.Stop()
			for {
				select {
				case <-s.ctx.Done():
					return
				case <-t.C:
				}
				if n, err := s.sweep(s.ctx); err != nil && s.ctx.Err() == nil {
					s.log.Warn("sweeping stray sandboxes", "err", err)
				} else if n > 0 {
					s.log.Warn("removed stray sandboxes (no live runtime)", "count", n)
				}
			}
		}()
	})
}

// sweep removes this service's sandboxes that no live runtime owns.
func (s *Server) sweep(ctx context.Context) (int, error) {
	sandboxes, err := s.cfg.Driver.List(ctx, s.cfg.Labels)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sb := range sandboxes {
		id := sb.Labels[LabelRuntime]
		if id == "" {
			continue
		}
		rec, err := s.cfg.Store.Runtime(ctx, "", id)
		if err == nil && rec.State.Live() {
			continue
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return n, err
		}
		if err := s.cfg.Driver.Remove(ctx, sb.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
