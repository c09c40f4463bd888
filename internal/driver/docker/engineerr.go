package docker

import (
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/sbx-dev/sbx/internal/driver"
)

// The engine gives some answers sbx must tell apart only a class (409, say)
// that they share with others, so the driver has to read their text. Every
// such reading is here, next to engineerr_test.go, which feeds the texts the
// engine really sends (observed with Docker Engine 20.10.24), so that an
// engine that rewords one fails a unit test instead of a user's sandbox.

// isRemovalInProgress reports a ContainerRemove refused because the engine
// is already removing the container (an auto-removed container after a kill,
// or a concurrent rm): a 409 "removal of container <name> is already in
// progress".
func isRemovalInProgress(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "is already in progress")
}

// isNotRunning reports a ContainerKill of a container that is not running
// (it exited, or is being removed): "Cannot kill container: <name>:
// Container <id> is not running", a 409 on 20.10. The class is not checked:
// the text alone is what older engines share.
func isNotRunning(err error) bool {
	return err != nil && strings.Contains(err.Error(), "is not running")
}

// isMissingSandboxd reports a ContainerStart whose entrypoint, sandboxd in
// its volume, does not exist: the runtime's `exec: "/opt/sbx/sandboxd": stat
// /opt/sbx/sandboxd: no such file or directory` inside a 500 (the volume was
// created but never filled, or emptied).
func isMissingSandboxd(err error) bool {
	return err != nil && strings.Contains(err.Error(), driver.SandboxdPath) && strings.Contains(err.Error(), "no such file")
}

// isVolumeMountFailure reports a container start the engine refused
// because it could not mount a volume: "error while mounting volume
// '<path>': failed to mount local volume: mount overlay:…" (20.10). It
// is the only sign that overlay volumes do not work on this engine:
// creating one checks nothing.
func isVolumeMountFailure(err error) bool {
	return err != nil && strings.Contains(err.Error(), "error while mounting volume")
}
