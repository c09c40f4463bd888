package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The proxy runs FROM scratch and decides what leaves every sandbox of a
// policy: it must be static, small, and link nothing of the host side.
func TestStaticSmallAndAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/moby/", "github.com/sbx-dev/sbx/internal/driver", "github.com/sbx-dev/sbx/config", "github.com/BurntSushi/", "k8s.io/"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("sbx-egress links %s", pkg)
			}
		}
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "sbx-egress")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("sbx-egress has a program interpreter: it is not static")
		}
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stripped static sbx-egress: %.1f MiB", float64(st.Size())/(1<<20))
	if st.Size() > 8<<20 {
		t.Errorf("sbx-egress is %d bytes, over the 8 MiB budget", st.Size())
	}
}
