package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// testImage is the local image the container tests run, built by
// scripts/mkimage-debian.sh; no registry is needed.
const testImage = "sbx-test/debian:bookworm"

// sandboxdPath is the sandboxd binary TestMain builds once for all tests
// (the Locator would otherwise run `go build` in every invocation).
var sandboxdPath string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if p := os.Getenv("SBX_SANDBOXD"); p != "" {
		sandboxdPath = p
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "sbx-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sandboxdPath = filepath.Join(dir, "sandboxd")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", sandboxdPath, "github.com/sbx-dev/sbx/cmd/sandboxd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building sandboxd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// env is an injected environment: only what a test puts in it reaches
// config.Load, so the developer's own settings cannot leak in.
type env []string

func baseEnv(extra ...string) env {
	e := env{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"SBX_SANDBOXD=" + sandboxdPath,
		"SANDBOX_BASE_CONTAINER_IMAGE=" + testImage,
	}
	return append(e, extra...)
}

func (e env) getenv(k string) string {
	v := ""
	for _, kv := range e {
		if name, val, ok := strings.Cut(kv, "="); ok && name == k {
			v = val
		}
	}
	return v
}

func (e env) environ() []string { return e }

type result struct {
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

// sbxIn runs the CLI in-process with stdin.
func sbxIn(t testing.TB, e env, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errw bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := run(ctx, args, e.getenv, e.environ, stdin, &out, &errw)
	return result{code: code, stdout: out.String(), stderr: errw.String()}
}

func sbxCmd(t testing.TB, e env, args ...string) result {
	t.Helper()
	return sbxIn(t, e, nil, args...)
}

// mustSbx runs the CLI and fails the test unless it exits 0.
func mustSbx(t testing.TB, e env, args ...string) result {
	t.Helper()
	r := sbxCmd(t, e, args...)
	if r.code != 0 {
		t.Fatalf("sbx %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// needDocker skips the test when no engine answers, unless
// SBX_REQUIRE_DOCKER=1 says the run must cover Docker.
func needDocker(t testing.TB) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("SBX_REQUIRE_DOCKER") == "1" {
		fail = t.Fatalf
	}
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fail("no docker client: %v", err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		fail("no docker engine: %v", err)
		return
	}
	if _, err := c.ImageInspect(ctx, testImage); err != nil {
		fail("image %s is missing (scripts/mkimage-debian.sh builds it): %v", testImage, err)
	}
}

// sandboxName is a fresh id that is removed when the test ends.
func sandboxName(t testing.TB, e env) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := "clitest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { sbxCmd(t, e, "rm", "-f", id) })
	return id
}
