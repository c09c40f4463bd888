// Package userinit prepares the sandbox user and the working directory
// before the agent's shell starts (spec §2.2): it creates the user when it
// is missing — with useradd when the image has it, and by writing the
// account files itself when it does not (minimal images) — and creates the
// working directory with the right owner.
package userinit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/reaper"
)

// User is a resolved account.
type User struct {
	Name   string
	UID    int
	GID    int // primary group
	Home   string
	Groups []int // supplementary groups
	Shell  string
}

// Runner runs a helper program to completion (the reaper in sandboxd).
type Runner interface {
	Output(cmd *exec.Cmd, timeout time.Duration) ([]byte, reaper.Status, error)
}

// Options say where the account files live; tests point them elsewhere.
type Options struct {
	Root   string // "" or "/": the real system
	Runner Runner
	Logger *slog.Logger
}

func (o Options) path(p string) string {
	if o.Root == "" || o.Root == "/" {
		return p
	}
	return filepath.Join(o.Root, p)
}

// Lookup finds a user by name in the account files.
func Lookup(o Options, name string) (User, bool, error) {
	f, err := os.Open(o.path("/etc/passwd"))
	if err != nil {
		return User{}, false, fmt.Errorf("read passwd: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			return User{}, false, fmt.Errorf("passwd entry of %s is malformed", name)
		}
		u := User{Name: name, UID: uid, GID: gid, Home: fields[5], Shell: fields[6]}
		u.Groups = supplementaryGroups(o, name, gid)
		return u, true, nil
	}
	return User{}, false, sc.Err()
}

func supplementaryGroups(o Options, name string, primary int) []int {
	b, err := os.ReadFile(o.path("/etc/group"))
	if err != nil {
		return nil
	}
	var gids []int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if m == name {
				if gid, err := strconv.Atoi(f[2]); err == nil && gid != primary {
					gids = append(gids, gid)
				}
			}
		}
	}
	return gids
}

// Ensure returns the user called name, creating it with uid when it does
// not exist. As OpenHands does, a new user's primary group is root, it is
// a member of sudo, and sudo needs no password; an existing user keeps its
// uid even when another was asked for.
func Ensure(ctx context.Context, o Options, name string, uid int) (User, error) {
	if u, ok, err := Lookup(o, name); err == nil && ok {
		return u, nil
	}
	if name == "root" {
		return User{Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/bash"}, nil
	}
	err := useradd(ctx, o, name, uid)
	switch {
	case errors.Is(err, errNoUseradd):
		if o.Logger != nil {
			o.Logger.Info("no useradd in this image: writing the account files directly")
		}
		if err := writeAccount(o, name, uid); err != nil {
			return User{}, fmt.Errorf("create user %s: %w", name, err)
		}
	case err != nil:
		// A real failure (a uid already taken, a read-only /etc) must not
		// be papered over with a second account of the same uid.
		return User{}, fmt.Errorf("create user %s with uid %d: %w", name, uid, err)
	}
	appendSudoers(o)
	u, ok, err := Lookup(o, name)
	if err != nil || !ok {
		return User{}, fmt.Errorf("create user %s: not in passwd afterwards (%v)", name, err)
	}
	return u, nil
}

func appendSudoers(o Options) {
	const line = "%sudo ALL=(ALL) NOPASSWD:ALL"
	p := o.path("/etc/sudoers")
	b, err := os.ReadFile(p)
	if err != nil || bytes.Contains(b, []byte(line)) {
		return // no sudo installed, or already there
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.WriteString(f, "\n"+line+"\n")
}

// errNoUseradd means the image has no useradd.
var errNoUseradd = errors.New("useradd not found")

func useradd(ctx context.Context, o Options, name string, uid int) error {
	if o.Root != "" && o.Root != "/" {
		return errNoUseradd // tests point Root at a directory tree
	}
	bin, err := exec.LookPath("useradd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/useradd", "/sbin/useradd"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return errNoUseradd
	}
	args := []string{"-rm", "-d", "/home/" + name, "-s", "/bin/bash", "-g", "root", "-u", strconv.Itoa(uid)}
	if groupExists(o, "sudo") {
		args = append(args, "-G", "sudo")
	}
	cmd := exec.Command(bin, append(args, name)...)
	out, st, err := o.Runner.Output(cmd, 30*time.Second)
	if err != nil {
		return err
	}
	if st.ExitCode != 0 {
		return fmt.Errorf("useradd exited with %d: %s", st.ExitCode, strings.TrimSpace(string(out)))
	}
	return nil
}

func groupExists(o Options, name string) bool {
	b, err := os.ReadFile(o.path("/etc/group"))
	if err != nil {
		return false
	}
	return bytes.Contains(append([]byte("\n"), b...), []byte("\n"+name+":"))
}

// writeAccount creates the user the way useradd -rm would, for images that
// lack the shadow tools.
func writeAccount(o Options, name string, uid int) error {
	if strings.ContainsAny(name, ":\n/") || name == "" {
		return fmt.Errorf("invalid user name %q", name)
	}
	home := "/home/" + name
	if err := appendLine(o.path("/etc/passwd"), fmt.Sprintf("%s:x:%d:0::%s:/bin/bash", name, uid, home)); err != nil {
		return err
	}
	if _, err := os.Stat(o.path("/etc/shadow")); err == nil {
		_ = appendLine(o.path("/etc/shadow"), name+":!:20000:0:99999:7:::")
	}
	if groupExists(o, "sudo") {
		_ = addGroupMember(o.path("/etc/group"), "sudo", name)
	}
	h := o.path(home)
	if err := os.MkdirAll(h, 0o755); err != nil {
		return err
	}
	_ = copySkel(o.path("/etc/skel"), h)
	return chownTree(h, uid, 0)
}

func appendLine(p, line string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		line = "\n" + line
	}
	_, err = io.WriteString(f, line+"\n")
	return err
}

// addGroupMember rewrites /etc/group atomically with name added to group.
func addGroupMember(p, group, name string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) == 4 && f[0] == group {
			if f[3] == "" {
				f[3] = name
			} else {
				f[3] += "," + name
			}
			lines[i] = strings.Join(f, ":")
		}
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	tmp := p + ".sbx-tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), st.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func copySkel(skel, home string) error {
	return filepath.WalkDir(skel, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(skel, p)
		dst := filepath.Join(home, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		}
		return nil
	})
}

func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// PrepareWorkDir creates dir if it is missing and, when it did and we are
// root, gives it to the user and group with group read/write (as
// OpenHands' mkdir under umask 002 and chmod g+rw give).
//
// A directory that already exists is left exactly as it is: it is
// usually a host directory mounted as the workspace, and its mode and
// owner are its owner's choice. OpenHands runs chown -R and chmod g+rw
// over it on every start; on a mounted project that rewrites the owner of
// every host file, opens a private directory to its group and costs
// seconds on a large tree.
func PrepareWorkDir(dir string, uid, gid int) error {
	switch _, err := os.Stat(dir); {
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist):
		if os.Geteuid() != 0 {
			// Not ours to judge: the shell, as this user, may still be
			// able to use it.
			return nil
		}
		return fmt.Errorf("working dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o775); err != nil {
		return fmt.Errorf("create working dir: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("chown working dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	// MkdirAll's mode is cut by the umask, which may not leave g+rw.
	return os.Chmod(dir, st.Mode().Perm()|0o060)
}

// Current returns the account sandboxd itself runs as.
func Current() (User, error) {
	u, err := user.Current()
	if err != nil {
		return User{}, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return User{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir, Shell: "/bin/bash"}, nil
}
