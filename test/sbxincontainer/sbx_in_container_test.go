// Package sbxincontainer runs sbx itself inside a container that has only
// the Docker socket (OpenHands' `docker run -v /var/run/docker.sock…`
// set-up) and checks it starts a sibling sandbox with a workspace mount:
// sandboxd must come from the engine-side volume, since no host path of
// sbx's is visible to the engine, and the workspace path must be the host
// path as the daemon sees it (WORKSPACE_MOUNT_PATH).
//
// It uses the docker CLI and the local image sbx-test/debian:bookworm. It
// skips without a daemon unless SBX_REQUIRE_DOCKER is set.
package sbxincontainer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const baseImage = "sbx-test/debian:bookworm"

func docker(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func need(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := docker(t, ctx, "image", "inspect", "--format", "{{.Id}}", baseImage); err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") != "" {
			t.Fatalf("docker and %s are required: %v %s", baseImage, err, out)
		}
		t.Skipf("no docker or no %s: %v", baseImage, err)
	}
}

func TestSbxInAContainerStartsASibling(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The image: sbx and sandboxd side by side, as an install puts them.
	ctxDir := t.TempDir()
	for _, p := range []string{"sbx", "sandboxd"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ctxDir, p), "github.com/sbx-dev/sbx/cmd/"+p)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", p, err, out)
		}
	}
	df := "FROM " + baseImage + "\nCOPY sbx sandboxd /usr/local/bin/\nENTRYPOINT [\"/usr/local/bin/sbx\"]\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	tag := "sbx-test/sbx-cli:" + hex.EncodeToString(b[:])
	if out, err := docker(t, ctx, "build", "-q", "-t", tag, ctxDir); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { docker(t, context.Background(), "rmi", "-f", tag) })

	ws := t.TempDir()
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	uid := 4242
	label := "sbxincontainer-" + hex.EncodeToString(b[:])
	// --network host: the sibling's ports are published on the host's
	// 127.0.0.1, which this container then shares.
	out, err := docker(t, ctx, "run", "--rm", "--network", "host",
		"-v", "/var/run/docker.sock:/var/run/docker.sock",
		"-v", ws+":/ws",
		"-e", "WORKSPACE_BASE=/ws",
		"-e", "WORKSPACE_MOUNT_PATH="+ws,
		"-e", "SANDBOX_BASE_CONTAINER_IMAGE="+baseImage,
		"-e", "SANDBOX_USER_ID="+strconv.Itoa(uid),
		tag, "run", "--rm", "--name", label, "--",
		"echo from-sibling > /workspace/out.txt && id -u && cat /workspace/out.txt")
	if err != nil {
		t.Fatalf("sbx in a container: %v\n%s", err, out)
	}
	if !strings.Contains(out, strconv.Itoa(uid)+"\nfrom-sibling") {
		t.Fatalf("output: %q", out)
	}
	// The file is on the host, owned by SANDBOX_USER_ID.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ws, "out.txt"), &st); err != nil {
		t.Fatalf("the sibling's file is not on the host: %v", err)
	}
	if st.Uid != uint32(uid) {
		t.Errorf("owner %d, want %d", st.Uid, uid)
	}
	// --rm: nothing is left. The engine removes a killed --rm sandbox
	// asynchronously, so give it a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := docker(t, ctx, "ps", "-a", "-q", "--filter", "name=sbx-"+label)
		if strings.TrimSpace(out) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox container left behind: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
