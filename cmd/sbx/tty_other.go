//go:build !linux

package main

import "io"

// isTerminal is false where sbx has no terminal check: the shell then
// works as if fed from a pipe, without a prompt.
func isTerminal(io.Reader) bool { return false }
