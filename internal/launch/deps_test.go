package launch

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the contract linkable by everything: sandboxd inside
// every sandbox, and the drivers and sandbox-api outside. Anything beyond
// the standard library and the error vocabulary would be paid for by all
// of them.
func TestDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/sbx-dev/sbx/internal/launch"
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		switch {
		case pkg == self, pkg == "github.com/sbx-dev/sbx/internal/errdefs":
		case !strings.Contains(first, "."):
			// the standard library
		default:
			t.Errorf("internal/launch imports %s: only the standard library and internal/errdefs are allowed", pkg)
		}
	}
}
