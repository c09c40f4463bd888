// Package procstat reads the few fields of /proc/<pid>/stat that sbx
// needs: a process's state, parent and start time. The start time (clock
// ticks since boot) is what tells a process from a later one that reuses
// its pid; the local driver and gc's owner labels both rely on it.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Stat is one process's entry.
type Stat struct {
	PID   int
	PPID  int
	State byte   // R, S, D, T, t, Z, X, ...
	Start uint64 // clock ticks since boot
}

// ErrNoProcess says the process does not exist (any more).
var ErrNoProcess = errors.New("no such process")

// Read reads /proc/<pid>/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return Stat{}, ErrNoProcess
		}
		return Stat{}, err
	}
	return Parse(pid, b)
}

// Parse reads fields 3 (state), 4 (ppid) and 22 (starttime). The command
// name in field 2 may hold spaces and parentheses, so fields are counted
// from the last ')'.
func Parse(pid int, b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return Stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %d fields after the name, want 20 or more", pid, len(f))
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	start, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return Stat{PID: pid, PPID: ppid, State: f[0][0], Start: start}, nil
}
