package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bootstrapSupported is false where debootstrap cannot run (it needs
// chroot and Linux binaries).
const bootstrapSupported = true

// fileIdentity is what the tar writer needs beyond fs.FileInfo.
type fileIdentity struct {
	uid, gid  int
	dev, ino  uint64
	nlink     uint64
	available bool
}

func identityOf(fi fs.FileInfo) fileIdentity {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{}
	}
	return fileIdentity{
		uid: int(st.Uid), gid: int(st.Gid),
		dev: st.Dev, ino: st.Ino, nlink: st.Nlink,
		available: true,
	}
}

// inOwnGroup makes cmd the leader of a new process group, and makes
// cancelling its context signal the whole group: debootstrap's work is
// done by children (wget, dpkg in the chroot) that must stop with it.
func inOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return killGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
}

func killGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// lockFile takes an exclusive lock on path, waiting (and calling onWait
// once) while another process holds it. The lock dies with the process,
// so a crashed bootstrap never leaves it stuck.
func lockFile(ctx context.Context, path string, onWait func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	waited := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !waited && onWait != nil {
			onWait()
		}
		waited = true
		// flock(2) cannot be interrupted by a context; polling can.
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// unmountUnder lazily unmounts everything mounted below dir, deepest
// first. debootstrap mounts proc and sys inside the target while it
// configures packages, and a run that was killed can leave them mounted;
// removing the target through a live mount would reach the host's files.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		p := unescapeMountPath(fields[1])
		if strings.HasPrefix(p, prefix) {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath undoes the octal escapes (\040 for a space) the kernel
// uses in /proc/self/mounts.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeTree removes dir without crossing into another file system (like
// rm --one-file-system): anything still mounted inside is left alone and
// reported, never emptied.
func removeTree(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	dev := identityOf(fi).dev
	var errs []error
	var rm func(path string)
	rm = func(path string) {
		entries, err := os.ReadDir(path)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range entries {
			p := filepath.Join(path, e.Name())
			if e.IsDir() {
				fi, err := os.Lstat(p)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if identityOf(fi).dev != dev {
					errs = append(errs, fmt.Errorf("%s is on another file system (still mounted?); left in place", p))
					continue
				}
				rm(p)
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !e.IsDir() {
				errs = append(errs, err)
			}
		}
	}
	rm(dir)
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
