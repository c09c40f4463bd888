package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/sbx-dev/sbx/internal/procstat"
)

// procID names one process for good: a pid alone may be reused by an
// unrelated process once the original exits, the pair with its start time
// (in clock ticks since boot) cannot.
type procID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procInfo is what sbx reads from /proc/<pid>/stat.
type procInfo struct {
	procID
	PPID  int
	State byte // R, S, D, T, t, Z, X, ...
}

// stopped reports a process frozen by a signal (or a tracer), which is what
// a paused sandbox looks like.
func (p procInfo) stopped() bool { return p.State == 'T' || p.State == 't' }

// dead reports a process that has exited, whether or not it was reaped.
func (p procInfo) dead() bool { return p.State == 'Z' || p.State == 'X' }

var errNoProc = procstat.ErrNoProcess

func readStat(pid int) (procInfo, error) {
	st, err := procstat.Read(pid)
	return toInfo(st), err
}

func parseStat(pid int, b []byte) (procInfo, error) {
	st, err := procstat.Parse(pid, b)
	return toInfo(st), err
}

func toInfo(st procstat.Stat) procInfo {
	return procInfo{procID: procID{PID: st.PID, Start: st.Start}, PPID: st.PPID, State: st.State}
}

// stopPending reports whether pid has a SIGSTOP waiting for delivery. A
// process blocked in the kernel stops only on its way back to user space
// (a shell in vfork, say, until its stopped child execs), but it cannot
// run a single instruction of its own before, so for freezing a tree it
// is as good as stopped.
// frozen is the one test for "this process is paused": stopped, or about
// to stop with nothing of its own run before. Pause waits for it and
// Inspect reports it, so the two cannot disagree.
func (p procInfo) frozen() bool { return p.stopped() || stopPending(p.PID) }

func stopPending(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	const bit = uint64(1) << (syscall.SIGSTOP - 1)
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(k) != "SigPnd" && string(k) != "ShdPnd") {
			continue
		}
		if mask, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64); err == nil && mask&bit != 0 {
			return true
		}
	}
	return false
}

// lookup returns the process id names, or errNoProc when that process no
// longer exists (gone, reaped, or its pid now belongs to another).
func lookup(id procID) (procInfo, error) {
	if id.PID <= 0 {
		return procInfo{}, errNoProc
	}
	p, err := readStat(id.PID)
	if err != nil {
		return p, err
	}
	if p.Start != id.Start || p.dead() {
		return p, errNoProc
	}
	return p, nil
}

// tree returns the live processes among roots and all their descendants,
// parents before children, or errNoProc when no root is alive.
// sandboxd's shells run in sessions of their own, so a process group or
// session does not cover them, but sandboxd is a child subreaper:
// everything the agent starts stays below it in the parent chain.
func tree(roots ...procID) ([]procInfo, error) {
	var out []procInfo
	in := map[int]bool{}
	for _, r := range roots {
		if p, err := lookup(r); err == nil && !in[p.PID] {
			out = append(out, p)
			in[p.PID] = true
		}
	}
	if len(out) == 0 {
		return nil, errNoProc
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]procInfo{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || in[pid] {
			continue
		}
		p, err := readStat(pid)
		if err != nil || p.dead() {
			continue // exited while we looked
		}
		children[p.PPID] = append(children[p.PPID], p)
	}
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i].PID] {
			if !in[c.PID] {
				out = append(out, c)
				in[c.PID] = true
			}
		}
	}
	return out, nil
}

// signalProc sends sig to the process id names unless its pid has been taken
// over by another.
func signalProc(id procID, sig syscall.Signal) error {
	if _, err := lookup(id); err != nil {
		return err
	}
	if err := syscall.Kill(id.PID, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return errNoProc
		}
		return err
	}
	return nil
}
