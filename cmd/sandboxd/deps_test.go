package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeps keeps the in-sandbox binary small and free of host-side
// concerns: it runs in every sandbox, so nothing that talks to Docker,
// Kubernetes or a database may creep into its import graph.
func TestDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := map[string]string{
		"github.com/docker/":                     "Docker belongs to the host-side driver",
		"github.com/moby/":                       "Docker belongs to the host-side driver",
		"k8s.io/":                                "Kubernetes belongs to the host-side driver",
		"sigs.k8s.io/":                           "Kubernetes belongs to the host-side driver",
		"database/sql":                           "state lives in sandbox-api, not in the sandbox",
		"github.com/mattn/go-sqlite3":            "state lives in sandbox-api",
		"modernc.org/sqlite":                     "state lives in sandbox-api",
		"github.com/jackc/":                      "state lives in sandbox-api",
		"github.com/lib/pq":                      "state lives in sandbox-api",
		"github.com/modal-labs/":                 "Modal belongs to the host-side driver",
		"github.com/sbx-dev/sbx/internal/driver": "drivers start sandboxes; sandboxd runs inside one",
		"runtime/cgo":                            "sandboxd must be a static binary",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for prefix, why := range forbidden {
			if pkg == prefix || strings.HasPrefix(pkg, prefix) {
				t.Errorf("sandboxd imports %s: %s", pkg, why)
			}
		}
	}
}

// TestStaticBinary builds sandboxd as it is shipped and checks that it is
// static (it is bind-mounted into arbitrary images, musl or glibc or none)
// and small.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "sandboxd")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("sandboxd has a program interpreter: it is not static")
		}
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 12 << 20
	t.Logf("stripped static sandboxd: %d bytes (%.1f MiB)", st.Size(), float64(st.Size())/(1<<20))
	if st.Size() > limit {
		t.Errorf("sandboxd is %d bytes, over the %d-byte budget", st.Size(), limit)
	}
}
