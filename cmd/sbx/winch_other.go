//go:build !unix

package main

// onWindowChange does nothing where there is no SIGWINCH: the remote
// terminal keeps the size it started with.
func onWindowChange(func()) (stop func()) { return func() {} }
