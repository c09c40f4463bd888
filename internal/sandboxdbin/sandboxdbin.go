// Package sandboxdbin finds the sandboxd binary that sbx puts into
// sandboxes. sbx and sandboxd are separate binaries (sandboxd must stay
// small and free of Docker code), so the host side needs a way to get one:
// an explicit path, the copy installed next to sbx, or, inside a checkout
// or a Go module that depends on sbx, a build with the Go toolchain.
package sandboxdbin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// EnvPath names the variable that points at a sandboxd binary to use.
const EnvPath = "SBX_SANDBOXD"

// The egress proxy (cmd/sbx-egress) is found the same way: another static
// binary that runs in a container of its own, never in sbx's process.
const (
	EgressName    = "sbx-egress"
	EgressPackage = "github.com/sbx-dev/sbx/cmd/sbx-egress"
	EnvEgress     = "SBX_EGRESS"
)

// Binary is a located sandboxd.
type Binary struct {
	Path string
	// Digest is the hex sha256 of the file; it names the Docker volume the
	// binary is copied into, so two sbx versions never share one.
	Digest string
	Size   int64
}

// Locator finds sandboxd once and remembers it.
type Locator struct {
	// Getenv reads EnvPath; nil means os.Getenv.
	Getenv func(string) string
	// Executable is the running program, whose directory is searched;
	// nil means os.Executable.
	Executable func() (string, error)
	// CacheDir receives a binary built with `go build`; "" means
	// os.UserCacheDir()/sbx.
	CacheDir string

	// Name, Package and EnvVar say which program: its file name (beside
	// sbx, in the cache), its Go package, the variable naming a copy of
	// it. Zero values mean sandboxd.
	Name    string
	Package string
	EnvVar  string

	mu    sync.Mutex // guards sem and found
	sem   chan struct{}
	found *Binary
}

// Locate returns the binary. A success is remembered; a failure is not, so
// a build cut short by one caller's deadline is retried by the next.
//
// One search or build runs at a time; a caller waiting for another's
// build can still give up when its ctx ends.
func (l *Locator) Locate(ctx context.Context) (Binary, error) {
	l.mu.Lock()
	if l.found != nil {
		b := *l.found
		l.mu.Unlock()
		return b, nil
	}
	if l.sem == nil {
		l.sem = make(chan struct{}, 1)
	}
	sem := l.sem
	l.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return Binary{}, fmt.Errorf("waiting for sandboxd: %w", ctx.Err())
	}
	defer func() { <-sem }()
	l.mu.Lock()
	found := l.found
	l.mu.Unlock()
	if found != nil {
		return *found, nil
	}
	b, err := l.locate(ctx)
	if err != nil {
		return Binary{}, err
	}
	l.mu.Lock()
	l.found = &b
	l.mu.Unlock()
	return b, nil
}

func (l *Locator) locate(ctx context.Context) (Binary, error) {
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	name, _, envVar := l.program()
	if p := getenv(envVar); p != "" {
		b, err := describe(p)
		if err != nil {
			return Binary{}, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("%s=%s: %v", envVar, p, err), err)
		}
		return b, nil
	}
	exe := l.Executable
	if exe == nil {
		exe = os.Executable
	}
	beside := "" // what is wrong with the copy beside sbx
	if self, err := exe(); err == nil {
		if r, err := filepath.EvalSymlinks(self); err == nil {
			self = r
		}
		p := filepath.Join(filepath.Dir(self), name)
		b, err := describe(p)
		if err == nil {
			return b, nil
		}
		beside = "not at " + p
		if !errors.Is(err, fs.ErrNotExist) {
			// It is there but unusable: saying "not at" would send the
			// user looking for a file they can see.
			beside = err.Error()
		}
	}
	b, err := l.build(ctx)
	if err == nil {
		return b, nil
	}
	if beside == "" {
		beside = "the sbx executable is unknown"
	}
	return Binary{}, errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf(
		"no %s binary: %s, and building it failed (%v); build them static side by side (%s) or set %s to a %s's path",
		name, beside, err, buildHint, envVar, name), err)
}

// buildHint is how a checkout builds sbx and sandboxd as they ship.
const buildHint = "CGO_ENABLED=0 go build -o bin/ ./cmd/..."

func (l *Locator) program() (name, pkg, envVar string) {
	if l.Name == "" {
		return "sandboxd", "github.com/sbx-dev/sbx/cmd/sandboxd", EnvPath
	}
	return l.Name, l.Package, l.EnvVar
}

// build compiles cmd/sandboxd the way it ships: static, stripped, for the
// Linux of the sandbox whatever the host runs.
func (l *Locator) build(ctx context.Context) (Binary, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return Binary{}, errors.New("no Go toolchain on PATH")
	}
	dir := l.CacheDir
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return Binary{}, err
		}
		dir = filepath.Join(c, "sbx")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binary{}, err
	}
	name, pkg, _ := l.program()
	tmp, err := os.CreateTemp(dir, name+"-*.tmp")
	if err != nil {
		return Binary{}, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Binary{}, fmt.Errorf("go build %s: %w: %s", pkg, err, bytes.TrimSpace(out.Bytes()))
	}
	b, err := describe(tmp.Name())
	if err != nil {
		return Binary{}, err
	}
	// Content-addressed, so concurrent sbx processes agree on the file and
	// a rename over an identical one is harmless.
	final := filepath.Join(dir, name+"-"+b.Digest[:16])
	if err := os.Rename(tmp.Name(), final); err != nil {
		return Binary{}, err
	}
	b.Path = final
	return b, nil
}

func describe(p string) (Binary, error) {
	f, err := os.Open(p)
	if err != nil {
		return Binary{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Binary{}, err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return Binary{}, fmt.Errorf("%s is not an executable file", p)
	}
	// sandboxd runs in images whose C library sbx knows nothing about
	// (or that have none), so only a static Linux binary will do; a
	// dynamic one would fail inside the sandbox with a cryptic "no such
	// file or directory".
	if err := checkStatic(f); err != nil {
		return Binary{}, fmt.Errorf("%s: %w", p, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Binary{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Binary{}, err
	}
	return Binary{Path: p, Digest: hex.EncodeToString(h.Sum(nil)), Size: st.Size()}, nil
}

func checkStatic(r io.ReaderAt) error {
	ef, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("not a Linux executable: %w", err)
	}
	defer ef.Close()
	if ef.OSABI != elf.ELFOSABI_NONE && ef.OSABI != elf.ELFOSABI_LINUX {
		return errors.New("not a Linux executable")
	}
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			return errors.New("dynamically linked, but it must be static to run in any image: build it with " + buildHint)
		}
	}
	return nil
}
