package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestInterruptLeaksNothing interrupts real `sbx run` processes at random
// points of their create with one Ctrl-C or two, and then checks that no
// container of theirs is left behind: none at all with --rm, none but a
// stopped one (the documented outcome of a run without --rm) otherwise.
func TestInterruptLeaksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts a dozen sandboxes")
	}
	needDocker(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", bin+"/", "github.com/sbx-dev/sbx/cmd/sbx", "github.com/sbx-dev/sbx/cmd/sandboxd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sbx and sandboxd: %v\n%s", err, out)
	}
	var nonce [5]byte
	rand.Read(nonce[:])
	label := "sbx-leaktest=" + hex.EncodeToString(nonce[:])
	prefix := "leaktest-" + hex.EncodeToString(nonce[:])

	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ours := func() []containerState {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", label)})
		if err != nil {
			t.Fatalf("listing the test's containers: %v", err)
		}
		var out []containerState
		for _, it := range res.Items {
			name := ""
			if len(it.Names) > 0 {
				name = strings.TrimPrefix(it.Names[0], "/")
			}
			out = append(out, containerState{id: it.ID, name: name, state: string(it.State)})
		}
		return out
	}
	t.Cleanup(func() {
		for _, s := range ours() {
			_, _ = c.ContainerRemove(context.Background(), s.id, client.ContainerRemoveOptions{Force: true})
		}
	})

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, label %s", seed, label)
	rng := mrand.New(mrand.NewPCG(seed, 0))
	const trials = 12
	type trial struct {
		args   []string
		keeps  bool // without --rm: a stopped sandbox is what is left
		delay  time.Duration
		second time.Duration // 0: one SIGINT only
	}
	var ts []trial
	for i := range trials {
		tr := trial{delay: time.Duration(rng.IntN(600)) * time.Millisecond}
		if rng.IntN(2) == 0 {
			tr.second = time.Duration(10+rng.IntN(150)) * time.Millisecond
		}
		name := fmt.Sprintf("%s-%d", prefix, i)
		switch i % 3 {
		case 0:
			tr.args = []string{"run", "--rm", "-l", label, "--", "echo", "hi"}
		case 1:
			tr.args = []string{"run", "--rm", "--name", name, "-l", label, "--", "echo", "hi"}
		case 2:
			tr.args = []string{"run", "--name", name, "-l", label, "--", "echo", "hi"}
			tr.keeps = true
		}
		ts = append(ts, tr)
	}
	keeps := map[string]bool{}
	for i, tr := range ts {
		if tr.keeps {
			keeps[fmt.Sprintf("sbx-%s-%d", prefix, i)] = true
		}
	}

	environ := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"SANDBOX_BASE_CONTAINER_IMAGE=" + testImage,
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		environ = append(environ, "DOCKER_HOST="+h)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // a shared engine: a few at a time
	for i, tr := range ts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command(filepath.Join(bin, "sbx"), tr.args...)
			cmd.Env = environ
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Errorf("trial %d: %v", i, err)
				return
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(tr.delay)
			cmd.Process.Signal(syscall.SIGINT)
			if tr.second > 0 {
				time.Sleep(tr.second)
				cmd.Process.Signal(syscall.SIGINT)
			}
			select {
			case <-done:
			case <-time.After(45 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Errorf("trial %d (%q): did not exit within 45s of SIGINT", i, tr.args)
			}
			if strings.Contains(stderr.String(), "without cleaning up") {
				t.Errorf("trial %d (%q): %s", i, tr.args, stderr.String())
			}
			t.Logf("trial %d: %q, SIGINT after %v, again after %v: %v %q", i, tr.args, tr.delay, tr.second, cmd.ProcessState, strings.TrimSpace(stderr.String()))
		})
	}
	wg.Wait()

	// --rm leaves removal to the engine (auto-remove), which may take a
	// moment after sbx has exited.
	var left []containerState
	deadline := time.Now().Add(10 * time.Second)
	for {
		left = left[:0]
		for _, s := range ours() {
			if keeps[s.name] && s.state == "exited" {
				continue
			}
			left = append(left, s)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range left {
		t.Errorf("left behind: container %s (%s) in state %s", s.name, s.id[:12], s.state)
	}
}

type containerState struct{ id, name, state string }
