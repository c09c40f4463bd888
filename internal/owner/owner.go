// Package owner names the process that holds a sandbox, so that `sbx gc`
// can tell a sandbox whose creator is gone from one still in use.
package owner

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Self describes the running process as "<host>/<pid>/<start ticks>".
// The start time guards against a reused pid.
func Self() string {
	h, _ := os.Hostname()
	pid := os.Getpid()
	return fmt.Sprintf("%s/%d/%d", h, pid, startTicks(pid))
}

// Alive reports whether the process an owner string names still runs. An
// owner on another host cannot be checked and counts as alive: gc must
// never remove what it cannot prove is abandoned.
func Alive(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return false
	}
	h, _ := os.Hostname()
	if parts[0] != h {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	ticks, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return false
	}
	now := startTicks(pid)
	return now != 0 && now == ticks
}

// startTicks is field 22 of /proc/<pid>/stat, 0 if the process is gone.
func startTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// The command name may hold spaces and parentheses; fields resume
	// after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
