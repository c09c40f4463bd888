// Command sbx starts and manages sandboxes for AI coding agents: `sbx run`
// gives a shell or runs a command in a fresh sandbox, `sbx exec` runs one in
// a sandbox that is already there, and the other subcommands manage their
// lifecycle, files and images. Configuration is OpenHands' (RUNTIME,
// SANDBOX_* variables, config.toml); see `sbx config`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Getenv, os.Environ, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalError is the cause of a context cancelled by a signal, so that the
// exit status can say which one (128+n, as shells report it).
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string {
	switch e.sig {
	case syscall.SIGINT:
		return "interrupted"
	case syscall.SIGTERM:
		return "terminated (SIGTERM)"
	}
	return "stopped by " + e.sig.String()
}

// signalContext cancels its context on the first SIGINT or SIGTERM, so that
// whatever is under way cleans up (an `sbx run --rm` sandbox is removed).
// Further signals do not cut the cleanup short: exiting then is what
// leaked sandboxes, and the cleanup is bounded anyway (cleanupContext), so
// they only say that it is still going on. The context carries an
// interrupts value through which the interactive shell takes SIGINT over
// to forward it as Ctrl-C.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	intr := &interrupts{}
	ctx = context.WithValue(ctx, interruptsKey{}, intr)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		cancelled := false
		var first time.Time
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				sig, _ := s.(syscall.Signal)
				if sig == syscall.SIGINT && intr.deliver() {
					continue
				}
				if cancelled {
					// timeout(1) and a terminal's process group deliver one
					// Ctrl-C twice within microseconds: that is not a
					// second request to stop.
					if time.Since(first) > 200*time.Millisecond {
						fmt.Fprintln(os.Stderr, "sbx: still cleaning up, please wait")
					}
					continue
				}
				cancelled, first = true, time.Now()
				cancel(signalError{sig})
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

type interruptsKey struct{}

// interrupts routes SIGINT to a handler instead of cancelling the context
// while one is installed.
type interrupts struct {
	mu      sync.Mutex
	handler func()
}

func (i *interrupts) deliver() bool {
	i.mu.Lock()
	h := i.handler
	i.mu.Unlock()
	if h == nil {
		return false
	}
	h()
	return true
}

// interceptInterrupts makes SIGINT call h instead of cancelling ctx until
// the returned function is called. Without a signal-handling main (tests)
// it does nothing.
func interceptInterrupts(ctx context.Context, h func()) (restore func()) {
	i, ok := ctx.Value(interruptsKey{}).(*interrupts)
	if !ok {
		return func() {}
	}
	i.mu.Lock()
	prev := i.handler
	i.handler = h
	i.mu.Unlock()
	return func() {
		i.mu.Lock()
		i.handler = prev
		i.mu.Unlock()
	}
}
