//go:build !linux

package watch

import (
	"context"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Watcher is unavailable off Linux: sandboxd runs in Linux sandboxes, and
// this stub only keeps the package compiling on a developer's machine.
type Watcher struct{}

// Watch reports that file watching needs Linux's inotify.
func Watch(ctx context.Context, opts Options) (*Watcher, error) {
	return nil, errdefs.New(errdefs.ErrNotImplemented, "watch: file watching needs Linux (inotify)")
}

func (w *Watcher) Root() string         { return "" }
func (w *Watcher) Events() <-chan Event { return nil }
func (w *Watcher) Err() error           { return nil }
func (w *Watcher) Close() error         { return nil }
