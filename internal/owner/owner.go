// Package owner names the process that holds a sandbox, so that `sbx gc`
// can tell a sandbox whose creator is gone from one still in use.
package owner

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/internal/procstat"
)

// Self describes the running process as
// "<host>/<pid namespace>/<pid>/<start ticks>". The start time guards
// against a reused pid; the namespace tells apart a process in a container
// that shares the host's name (--network host) from a host process.
func Self() string { return Of(os.Getpid()) }

// Of describes another process of this host and pid namespace.
func Of(pid int) string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%s/%d/%d", h, pidNS(), pid, startTicks(pid))
}

// Alive reports whether the process an owner string names may still run.
// Whatever cannot be checked from here (another host, another pid
// namespace, no /proc, a malformed label) counts as alive: gc must never
// remove what it cannot prove is abandoned.
func Alive(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 4 {
		return true
	}
	h, _ := os.Hostname()
	ns := pidNS()
	if parts[0] != h || ns == "" || parts[1] != ns {
		return true
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil || pid <= 0 {
		return true
	}
	ticks, err := strconv.ParseUint(parts[3], 10, 64)
	if err != nil || ticks == 0 {
		return true
	}
	now := startTicks(pid)
	return now != 0 && now == ticks
}

// pidNS is the identity of this process's pid namespace, "" where /proc
// does not tell.
func pidNS() string {
	l, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.NewReplacer("/", "_", ":", "_", "[", "", "]", "").Replace(l)
}

// startTicks is the process's start time, 0 if it is gone.
func startTicks(pid int) uint64 {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	return st.Start
}
