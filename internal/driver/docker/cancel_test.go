package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
)

// fakeEngine answers the calls a create makes; the rest of the interface
// is nil and panics if called.
type fakeEngine struct {
	engine
	mu       sync.Mutex
	create   func(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	existing map[string]container.InspectResponse // by name
	removed  []string
}

func (f *fakeEngine) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	return f.create(ctx, o)
}

func (f *fakeEngine) ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.existing[id]; ok {
		return client.ContainerInspectResult{Container: c}, nil
	}
	return client.ContainerInspectResult{}, cerrdefs.ErrNotFound.WithMessage("no such container " + id)
}

func (f *fakeEngine) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return client.ContainerRemoveResult{}, nil
}

func fakeDriver(f *fakeEngine) *Driver {
	return &Driver{api: f, log: slog.New(slog.DiscardHandler), volumes: map[string]bool{}}
}

// TestCreateCancelledDuringContainerCreate: Ctrl-C while the engine
// creates the container must not leave it behind. The engine call runs to
// its end, and what it made is removed.
func TestCreateCancelledDuringContainerCreate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeEngine{}
	f.create = func(cctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
		cancel() // the user's Ctrl-C, while the engine works
		if cctx.Err() != nil {
			// The engine would carry on regardless; the client would
			// never learn the id.
			return client.ContainerCreateResult{}, fmt.Errorf("create: %w", cctx.Err())
		}
		return client.ContainerCreateResult{ID: "c1"}, nil
	}
	_, err := fakeDriver(f).create(ctx, driver.Spec{ID: "x1", Image: "img", Prebuilt: true}, "", "tok", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if !slices.Equal(f.removed, []string{"c1"}) {
		t.Errorf("removed %q, want the created container c1", f.removed)
	}
}

// TestCreateGivenUpRemovesOnlyItsOwn: when the engine never answered the
// create, the container that may appear under the name is removed only if
// it carries this create's token; a sandbox of that name from before is
// someone else's.
func TestCreateGivenUpRemovesOnlyItsOwn(t *testing.T) {
	for _, tc := range []struct {
		token string
		want  []string
	}{{"tok", []string{"cid"}}, {"other", nil}} {
		f := &fakeEngine{existing: map[string]container.InspectResponse{
			ContainerName("x2"): {ID: "cid", Config: &container.Config{
				Labels: map[string]string{driver.LabelManaged: "true"},
				Env:    []string{"SESSION_API_KEY=" + tc.token},
			}},
		}}
		f.create = func(context.Context, client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
			return client.ContainerCreateResult{}, fmt.Errorf("create: %w", context.DeadlineExceeded)
		}
		if _, err := fakeDriver(f).create(context.Background(), driver.Spec{ID: "x2", Image: "img", Prebuilt: true}, "", "tok", nil); err == nil {
			t.Fatal("no error")
		}
		if !slices.Equal(f.removed, tc.want) {
			t.Errorf("token %s: removed %q, want %q", tc.token, f.removed, tc.want)
		}
	}
}

// TestCreateCancelledOnConflictKeepsTheOther: a create refused because
// the name is taken, cancelled meanwhile, must not remove the sandbox that
// holds the name.
func TestCreateCancelledOnConflictKeepsTheOther(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeEngine{existing: map[string]container.InspectResponse{
		ContainerName("x3"): {ID: "theirs", Config: &container.Config{Labels: map[string]string{driver.LabelManaged: "true"}}},
	}}
	f.create = func(context.Context, client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
		cancel()
		return client.ContainerCreateResult{}, cerrdefs.ErrConflict.WithMessage("name in use")
	}
	if _, err := fakeDriver(f).create(ctx, driver.Spec{ID: "x3", Image: "img", Prebuilt: true}, "", "tok", nil); err == nil {
		t.Fatal("no error")
	}
	if len(f.removed) > 0 {
		t.Errorf("removed %q, the sandbox that was there before", f.removed)
	}
}
