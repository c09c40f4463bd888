package sandboxdbin

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func noExe() (string, error) { return "", errors.New("none") }

// The build fallback produces a static binary and remembers it.
func TestBuildFallback(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	l := &Locator{Getenv: env(nil), Executable: noExe, CacheDir: t.TempDir()}
	b, err := l.Locate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Digest) != 64 || b.Size < 1<<20 || !strings.HasPrefix(filepath.Base(b.Path), "sandboxd-") {
		t.Fatalf("%+v", b)
	}
	again, err := l.Locate(context.Background())
	if err != nil || again != b {
		t.Fatalf("second Locate: %+v %v", again, err)
	}
}

func TestExplicitPathMustBeStaticExecutable(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o644)
	for name, p := range map[string]string{
		"missing":     filepath.Join(dir, "nope"),
		"not exec":    plain,
		"not ELF":     script,
		"dynamic ELF": "/bin/sh",
	} {
		l := &Locator{Getenv: env(map[string]string{EnvPath: p}), Executable: noExe}
		_, err := l.Locate(context.Background())
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), EnvPath) {
			t.Errorf("%s: %v", name, err)
		}
		if name == "dynamic ELF" && !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Errorf("dynamic binary error gives no fix: %v", err)
		}
	}
}

// A failure is not remembered: the next call tries again.
func TestFailureNotCached(t *testing.T) {
	vals := map[string]string{EnvPath: "/nonexistent/sandboxd"}
	l := &Locator{Getenv: func(k string) string { return vals[k] }, Executable: noExe}
	if _, err := l.Locate(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	vals[EnvPath] = ""
	l.CacheDir = t.TempDir()
	if _, err := l.Locate(context.Background()); err != nil {
		t.Fatalf("second try: %v", err)
	}
}

// A dynamic sandboxd beside sbx is reported as such, with the build that
// makes it static, not as missing.
func TestDynamicBesideSbx(t *testing.T) {
	dir := t.TempDir()
	dyn, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sandboxd"), dyn, 0o755); err != nil {
		t.Fatal(err)
	}
	if checkStatic(strings.NewReader(string(dyn))) == nil {
		t.Skip("/bin/sh is static here")
	}
	// No Go toolchain, so the build fallback cannot hide the problem.
	t.Setenv("PATH", t.TempDir())
	self := func() (string, error) { return filepath.Join(dir, "sbx"), nil }
	l := &Locator{Getenv: env(nil), Executable: self, CacheDir: t.TempDir()}
	_, err = l.Locate(context.Background())
	if !errors.Is(err, errdefs.ErrNotFound) || strings.Contains(err.Error(), "not at") ||
		!strings.Contains(err.Error(), filepath.Join(dir, "sandboxd")+": dynamically linked") ||
		!strings.Contains(err.Error(), "CGO_ENABLED=0 go build -o bin/ ./cmd/...") {
		t.Errorf("error: %v", err)
	}
	// Truly missing is still "not at".
	os.Remove(filepath.Join(dir, "sandboxd"))
	if _, err = l.Locate(context.Background()); err == nil || !strings.Contains(err.Error(), "not at "+filepath.Join(dir, "sandboxd")) {
		t.Errorf("missing: %v", err)
	}
}
