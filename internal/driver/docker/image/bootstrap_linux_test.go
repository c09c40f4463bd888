package image

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestBootstrapOptions(t *testing.T) {
	pkgs, err := checkBootstrapOptions("sbx/debian:bookworm", "bookworm", []string{"python3", " bash", "bash", "g++", "libc6.1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bash", "g++", "libc6.1", "python3"}; !slices.Equal(pkgs, want) {
		t.Errorf("packages = %q, want %q", pkgs, want)
	}
	for _, bad := range [][]string{{"--foreign"}, {"Bash"}, {"a b"}, {"x"}} {
		if _, err := checkBootstrapOptions("sbx/debian:bookworm", "bookworm", bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("packages %q: %v", bad, err)
		}
	}
	if _, err := checkBootstrapOptions("sbx/debian:bookworm", "../etc", nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad suite: %v", err)
	}
	if _, err := checkBootstrapOptions("Bad Tag", "bookworm", nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad tag: %v", err)
	}
	for _, m := range []string{"http://deb.debian.org/debian", "https://m.example/debian/", "file:///srv/debian"} {
		if err := checkMirror(m); err != nil {
			t.Errorf("mirror %s: %v", m, err)
		}
	}
	for _, m := range []string{"--foreign", "deb.debian.org/debian", "ftp://m/debian", "http:///debian"} {
		if err := checkMirror(m); !errdefs.IsInvalidArgument(err) {
			t.Errorf("mirror %s: %v", m, err)
		}
	}
}

func TestBootstrapMissingDebootstrap(t *testing.T) {
	_, err := Bootstrap(t.Context(), missingImageAPI{}, BootstrapOptions{Debootstrap: "/nonexistent/debootstrap", TmpDir: t.TempDir()})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	if _, err := findDebootstrap(""); err != nil && !strings.Contains(err.Error(), "apt-get install debootstrap") {
		t.Errorf("not installed: %v", err)
	}
}

// missingImageAPI answers that no image exists.
type missingImageAPI struct{ noAPI }

func (missingImageAPI) ImageInspect(context.Context, string, ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return client.ImageInspectResult{}, cerrdefs.ErrNotFound
}

func (missingImageAPI) ImageList(context.Context, client.ImageListOptions) (client.ImageListResult, error) {
	return client.ImageListResult{}, nil
}

// fakeDebootstrap writes a script that stands in for debootstrap: it
// records its arguments in calls, speaks the progress protocol on fd 3
// and runs body with $target set to the target directory.
func fakeDebootstrap(t *testing.T, body string) (prog, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	prog = filepath.Join(dir, "debootstrap")
	script := `#!/bin/sh
set -e
echo "$*" >> '` + calls + `'
target=$5
echo 'P: 0 100 DOWNREL' >&3
echo 'I: RETRIEVING' >&3; echo 'IA: InRelease' >&3; echo 'IF: Retrieving %s' >&3
echo "debootstrap log line"
` + body
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, calls
}

// fakeRootfs makes a tiny tree where debootstrap would make Debian.
const fakeRootfs = `
mkdir -p "$target/usr/bin" "$target/etc" "$target/var/lib/apt/lists" "$target/proc" "$target/dev"
ln -s usr/bin "$target/bin"
printf '#!/bin/sh\n' > "$target/usr/bin/sh"; chmod 755 "$target/usr/bin/sh"
printf 'hello\n' > "$target/usr/bin/hello"; chmod 4755 "$target/usr/bin/hello"
echo stale > "$target/var/lib/apt/lists/junk"
echo 'P: 1 1 SIZEDEBS' >&3
echo 'P: 1 1 CONFBASE' >&3
echo 'I: BASESUCCESS' >&3; echo 'IF: Base system installed successfully.' >&3
`

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Bootstrap needs root")
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// leftovers lists what a bootstrap left in its temporary directory
// besides the lock file.
func leftovers(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != "sbx-bootstrap.lock" {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestBootstrapWithFakeDebootstrap(t *testing.T) {
	needRoot(t)
	cli := dockerClient(t)
	prog, calls := fakeDebootstrap(t, fakeRootfs)
	tmp := t.TempDir()
	tag := uniqueTag(t)
	removeImageAtCleanup(t, cli, tag)
	progress := &testWriter{t: t}
	// A package of this run's own makes the inputs unique: Bootstrap reuses
	// an image of the same inputs under any name, and the engine is shared
	// with other runs of this test.
	own := "sbx-fake-" + randomHex(4)
	opts := BootstrapOptions{
		Tag:         tag,
		Mirror:      "http://mirror.invalid/debian",
		Packages:    []string{"python3", own, "bash"},
		TmpDir:      tmp,
		Debootstrap: prog,
		Progress:    progress,
	}

	img, err := Bootstrap(t.Context(), cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	if img.Reused || img.Ref != tag || img.Kind != KindBase || img.Inputs == "" || img.Labels[driver.LabelManaged] != "true" {
		t.Errorf("image = %+v", img)
	}
	args, _ := os.ReadFile(calls)
	f := strings.Fields(string(args))
	if len(f) != 6 || f[0] != "--debian-installer" || f[1] != "--variant=minbase" || f[2] != "--include=bash,python3,"+own ||
		f[3] != "bookworm" || !strings.HasPrefix(f[4], filepath.Join(tmp, "sbx-bootstrap-")) || f[5] != opts.Mirror {
		t.Errorf("debootstrap arguments: %q", f)
	}
	if left := leftovers(t, tmp); len(left) > 0 {
		t.Errorf("left in the temporary directory: %q", left)
	}
	for _, want := range []string{"[bootstrap] retrieving package lists…", "[bootstrap] base system installed successfully", "[bootstrap] " + tag + " ready:"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q", want)
		}
	}

	res, err := cli.ImageInspect(t.Context(), tag)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Config.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") ||
		!slices.Equal(res.Config.Cmd, []string{"/bin/bash"}) {
		t.Errorf("config: env %q cmd %q", res.Config.Env, res.Config.Cmd)
	}
	if data, hdr := fileInImage(t, cli, tag, "/usr/bin/hello"); hdr == nil || string(data) != "hello\n" || hdr.Mode&0o7777 != 0o4755 {
		t.Errorf("/usr/bin/hello: %+v %q", hdr, data)
	}
	if _, hdr := fileInImage(t, cli, tag, "/var/lib/apt/lists/junk"); hdr != nil {
		t.Error("apt lists were not tidied away")
	}

	// Same inputs (package order does not matter): reused, debootstrap
	// not run.
	opts.Packages = []string{"bash", own, "python3", "bash"}
	again, err := Bootstrap(t.Context(), cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.ID != img.ID || countLines(t, calls) != 1 {
		t.Errorf("second bootstrap: reused %v, id %s (first %s), debootstrap runs %d", again.Reused, again.ID, img.ID, countLines(t, calls))
	}
	if !strings.Contains(progress.String(), tag+" is up to date") {
		t.Error("progress does not say the image is up to date")
	}

	// Forced: a new image, and the one it replaced is removed.
	opts.Force = true
	forced, err := Bootstrap(t.Context(), cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	if forced.Reused || forced.ID == img.ID || countLines(t, calls) != 2 {
		t.Errorf("forced: %+v", forced)
	}
	if _, err := cli.ImageInspect(t.Context(), img.ID); err == nil {
		removeImageAtCleanup(t, cli, img.ID)
		t.Errorf("the replaced image %s was kept", img.ID)
	}

	// The same inputs asked for under another name: the image is named so,
	// not made again.
	opts.Force = false
	opts.Tag = uniqueTag(t)
	removeImageAtCleanup(t, cli, opts.Tag)
	named, err := Bootstrap(t.Context(), cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !named.Reused || named.ID != forced.ID || named.Ref != opts.Tag || countLines(t, calls) != 2 {
		t.Errorf("under another name: reused %v, id %s (want %s), ref %s, debootstrap runs %d", named.Reused, named.ID, forced.ID, named.Ref, countLines(t, calls))
	}
	if !strings.Contains(progress.String(), "tagged it "+opts.Tag) {
		t.Error("progress does not say the image was tagged")
	}
}

func TestBootstrapDebootstrapFails(t *testing.T) {
	needRoot(t)
	cli := dockerClient(t)
	prog, _ := fakeDebootstrap(t, `
mkdir -p "$target/usr"
echo 'E: LEFTOVERDEBS' >&3; echo 'EA: nosuchpkg' >&3; echo "EF: Couldn't find these debs: %s" >&3
echo "last words"
exit 1
`)
	tmp := t.TempDir()
	tag := uniqueTag(t)
	_, err := Bootstrap(t.Context(), cli, BootstrapOptions{Tag: tag, Mirror: "http://m.invalid/debian", Packages: []string{"nosuchpkg"}, TmpDir: tmp, Debootstrap: prog})
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err = %v, want ErrInvalidArgument", err)
	}
	for _, want := range []string{"Couldn't find these debs: nosuchpkg", "package names", "last words"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if left := leftovers(t, tmp); len(left) > 0 {
		t.Errorf("left in the temporary directory: %q", left)
	}
	if _, err := cli.ImageInspect(t.Context(), tag); err == nil {
		removeImageAtCleanup(t, cli, tag)
		t.Errorf("%s exists after a failed bootstrap", tag)
	}
}

// lineSignal closes ready when a progress line contains want.
type lineSignal struct {
	want  string
	ready chan struct{}
	once  sync.Once
}

func (s *lineSignal) Write(p []byte) (int, error) {
	if strings.Contains(string(p), s.want) {
		s.once.Do(func() { close(s.ready) })
	}
	return len(p), nil
}

// Cancelling stops debootstrap and everything it started, even a child
// that ignores SIGTERM, and still removes the temporary root file system.
func TestBootstrapCancel(t *testing.T) {
	needRoot(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	prog, _ := fakeDebootstrap(t, `
mkdir -p "$target/usr"
sh -c 'trap "" TERM; sleep 300' &
echo $! > '`+pidFile+`'
echo 'P: 0 1 SIZEDEBS' >&3
wait
`)
	tmp := t.TempDir()
	sig := &lineSignal{want: "resolving packages", ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := Bootstrap(ctx, missingImageAPI{}, BootstrapOptions{
			Tag: uniqueTag(t), Mirror: "http://m.invalid/debian", TmpDir: tmp, Debootstrap: prog, Progress: sig,
		})
		errc <- err
	}()
	select {
	case <-sig.ready:
	case err := <-errc:
		t.Fatalf("Bootstrap ended before it was cancelled: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the fake debootstrap never reported progress")
	}
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-errc:
	case <-time.After(20 * time.Second):
		t.Fatal("Bootstrap did not return after cancellation")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v", d)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !processGone(pid, 5*time.Second) {
		exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
		t.Errorf("debootstrap's child %d survived the cancellation", pid)
	}
	if left := leftovers(t, tmp); len(left) > 0 {
		t.Errorf("left in the temporary directory: %q", left)
	}
}

// processGone waits for pid to be dead (or a zombie, which is dead but
// not yet reaped by its new parent).
func processGone(pid int, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if _, rest, ok := strings.Cut(string(b), ") "); ok && strings.HasPrefix(rest, "Z") {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBootstrapReal checks the image `sbx image bootstrap` makes with the
// default inputs (SBX_TEST_BOOTSTRAP=1). An image of the same inputs that
// is already there (the user's, or the one .ci/run bootstraps before the
// test images) is what a debootstrap would make, so the test checks that
// one under a name of its own and debootstraps (about a minute, and a
// Debian mirror) only when there is none: a fresh machine runs the real
// path once. SBX_TEST_BOOTSTRAP=force debootstraps in any case.
func TestBootstrapReal(t *testing.T) {
	mode := os.Getenv("SBX_TEST_BOOTSTRAP")
	if mode != "1" && mode != "force" {
		t.Skip("checks the bootstrapped image, running debootstrap for about a minute when there is none; set SBX_TEST_BOOTSTRAP=1 (or force)")
	}
	cli := dockerClient(t)
	tag := uniqueTag(t)
	removeImageAtCleanup(t, cli, tag)
	progress := &testWriter{t: t}
	pkgs, err := checkBootstrapOptions(tag, "bookworm", DefaultPackages())
	if err != nil {
		t.Fatal(err)
	}
	inputs := bootstrapInputs("bookworm", pkgs)
	existing, err := cli.ImageList(t.Context(), client.ImageListOptions{Filters: client.Filters{}.
		Add("label", LabelKind+"="+KindBase).Add("label", LabelInputs+"="+inputs)})
	if err != nil {
		t.Fatal(err)
	}
	opts := BootstrapOptions{Tag: tag, Progress: progress, Force: mode == "force"}
	fresh := opts.Force || len(existing.Items) == 0
	if fresh {
		needRoot(t)
	}
	start := time.Now()
	img, err := Bootstrap(t.Context(), cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	if img.Reused == fresh || img.Inputs != inputs {
		t.Errorf("bootstrap (a real debootstrap expected: %v): %+v", fresh, img)
	}
	t.Logf("bootstrapped %s (%s, reused %v) in %v", tag, humanBytes(img.Size), img.Reused, time.Since(start))
	out, err := exec.CommandContext(t.Context(), "docker", "run", "--rm", "--network", "none", "--label", "sbx.test=1", tag,
		"bash", "-c", "python3 -c 'import venv, sys; print(sys.version_info[0])' && git --version && curl --version >/dev/null && sudo --version >/dev/null && ps -p 1 >/dev/null && less --version >/dev/null && echo ok").CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Errorf("the image does not have the tools: %v\n%s", err, out)
	}
	if _, hdr := fileInImage(t, cli, tag, "/var/lib/apt/lists/lock"); hdr != nil {
		t.Error("apt lists were kept")
	}

	start = time.Now()
	again, err := Bootstrap(t.Context(), cli, BootstrapOptions{Tag: tag, Progress: progress})
	if err != nil || !again.Reused || again.ID != img.ID {
		t.Errorf("second bootstrap: %+v, %v", again, err)
	}
	t.Logf("reuse took %v", time.Since(start))
}
