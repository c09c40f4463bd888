//go:build !linux

package image

import (
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"syscall"
)

// Bootstrap needs debootstrap, chroot and Linux binaries; elsewhere it
// reports ErrNotImplemented before touching any of these stubs.
const bootstrapSupported = false

var errNoBootstrap = errors.New("bootstrapping images is only supported on Linux")

type fileIdentity struct {
	uid, gid  int
	dev, ino  uint64
	nlink     uint64
	available bool
}

func identityOf(fs.FileInfo) fileIdentity { return fileIdentity{} }

func inOwnGroup(*exec.Cmd) {}

func killGroup(int, syscall.Signal) error { return nil }

func lockFile(context.Context, string, func()) (func(), error) { return nil, errNoBootstrap }

func unmountUnder(string) error { return nil }

func removeTree(string) error { return errNoBootstrap }
