// Package guardbench measures the workspace guard through the SDK on the
// real engine, each figure against a bind mount of the same folder in the
// same run:
//
//	go test ./bench/guardbench -run XXX -bench . -benchtime 5x
//
// The folder is a git repository of 20 000 files (SBX_BENCH_IMAGE, default
// sbx-test/debian:bookworm, built by scripts/mkimage-debian.sh).
package guardbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
)

const repoFiles = 20000

func image() string {
	if s := os.Getenv("SBX_BENCH_IMAGE"); s != "" {
		return s
	}
	return "sbx-test/debian:bookworm"
}

func runtime(b *testing.B) *sbx.Runtime {
	b.Helper()
	env := []string{"SANDBOX_BASE_CONTAINER_IMAGE=" + image()}
	if p := os.Getenv("SBX_SANDBOXD"); p != "" {
		env = append(env, "SBX_SANDBOXD="+p)
	}
	cfg, err := config.Load(config.Source{Environ: func() []string { return env }, File: os.DevNull})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := sbx.Open(context.Background(), sbx.Options{Config: cfg, Scope: map[string]string{"dev.sbx.bench": "guard"}})
	if err != nil {
		if os.Getenv("SBX_REQUIRE_DOCKER") == "" {
			b.Skip(err)
		}
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	return rt
}

// repo makes a committed git repository of repoFiles files in 100
// directories.
func repo(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	for d := range 100 {
		sub := filepath.Join(dir, fmt.Sprintf("pkg%02d", d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range repoFiles / 100 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%03d.go", f)), fmt.Appendf(nil, "package p%d\n\nconst F%d = %d\n", d, f, f), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Packed now, and no automatic gc later: a commit of 20 000 loose
	// objects starts git's gc in the background, which packed and
	// deleted objects while the benchmarks ran (and copied) the folder.
	cmd := exec.Command("bash", "-c", "git init -q -b main . && git config gc.auto 0 && git add -A && git -c user.name=b -c user.email=b@x commit -qm init && git gc -q")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git: %v %s", err, out)
	}
	return dir
}

var modes = []struct {
	name  string
	guard bool
	mode  string
}{{"bind", false, ""}, {"guard-overlay", true, "overlay"}, {"guard-copy", true, "copy"}}

func start(b *testing.B, rt *sbx.Runtime, dir string, guard bool, mode string) *sbx.Sandbox {
	b.Helper()
	id := fmt.Sprintf("gbench-%d", time.Now().UnixNano())
	sb, err := rt.Create(context.Background(), sbx.CreateOptions{ID: id, Guard: guard, GuardMode: mode, NoAppPorts: true,
		Volumes: []config.Volume{{Source: dir, Target: "/workspace", Mode: "rw"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.RemoveWith(context.Background(), id, sbx.RemoveOptions{Force: true}) })
	return sb
}

func run(b *testing.B, sb *sbx.Sandbox, cmd string) {
	b.Helper()
	out, code, err := sb.Exec(context.Background(), cmd, 5*time.Minute)
	if err != nil || code != 0 {
		b.Fatalf("%s: %d %v %s", cmd, code, err, out)
	}
}

// BenchmarkGitStatus: `git status` in the 20 000-file repository, warm.
func BenchmarkGitStatus(b *testing.B) {
	rt := runtime(b)
	dir := repo(b)
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			sb := start(b, rt, dir, m.guard, m.mode)
			run(b, sb, "cd /workspace && git config --global --add safe.directory '*' && git status --porcelain >/dev/null")
			for b.Loop() {
				run(b, sb, "git status --porcelain >/dev/null")
			}
		})
	}
}

// BenchmarkBuild10k: a build step writing 10 000 files (and removing the
// previous output first).
func BenchmarkBuild10k(b *testing.B) {
	rt := runtime(b)
	dir := repo(b)
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			sb := start(b, rt, dir, m.guard, m.mode)
			for b.Loop() {
				run(b, sb, `cd /workspace && rm -rf out && mkdir out && for i in $(seq 10000); do echo "obj $i" > out/o$i.o; done`)
			}
		})
	}
}

// BenchmarkStart: create → first command → remove, with the repository
// mounted.
func BenchmarkStart(b *testing.B) {
	rt := runtime(b)
	dir := repo(b)
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				id := fmt.Sprintf("gbench-%d", time.Now().UnixNano())
				sb, err := rt.Create(context.Background(), sbx.CreateOptions{ID: id, Guard: m.guard, GuardMode: m.mode, NoAppPorts: true,
					Volumes: []config.Volume{{Source: dir, Target: "/workspace", Mode: "rw"}}})
				if err != nil {
					b.Fatal(err)
				}
				run(b, sb, "true")
				b.StopTimer()
				if err := rt.RemoveWith(context.Background(), id, sbx.RemoveOptions{Force: true}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
