package main

import (
	"io"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether r is a terminal, which decides whether the
// interactive shell shows a prompt and takes Ctrl-C over.
func isTerminal(r io.Reader) bool {
	f, ok := r.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
