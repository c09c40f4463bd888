package sbx_test

import (
	"os"
	osexec "os/exec"
	"strings"
	"testing"
)

// goListDeps is every package pkg links.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := osexec.Command("go", "list", "-deps", pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// goListImports is what pkg imports directly.
func goListImports(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := osexec.Command("go", "list", "-f", `{{join .Imports " "}}`, pkg).Output()
	if err != nil {
		t.Fatalf("go list -f .Imports %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestSDKDeps keeps the SDK what an SDK user pays for: the Docker and
// local drivers through the backend registry, never a driver named
// directly, and no Kubernetes, Modal or database client unless a program
// links that driver in itself (Options.Drivers).
func TestSDKDeps(t *testing.T) {
	forbidden := map[string]string{
		"k8s.io/":                "Kubernetes is linked only by programs that ask for it",
		"sigs.k8s.io/":           "Kubernetes is linked only by programs that ask for it",
		"github.com/modal-labs/": "Modal is linked only by programs that ask for it",
		"database/sql":           "state lives in sandbox-api",
		"github.com/jackc/":      "state lives in sandbox-api",
		"modernc.org/sqlite":     "state lives in sandbox-api",
		"github.com/spf13/":      "the CLI's flag library is the CLI's",
	}
	for _, pkg := range goListDeps(t, "github.com/sbx-dev/sbx") {
		for prefix, why := range forbidden {
			if pkg == prefix || strings.HasPrefix(pkg, prefix) {
				t.Errorf("the SDK links %s: %s", pkg, why)
			}
		}
	}
	// The SDK reaches drivers through the registry only, and the CLI
	// reaches everything through the SDK.
	for user, banned := range map[string][]string{
		"github.com/sbx-dev/sbx":         {"github.com/sbx-dev/sbx/internal/driver/", "github.com/moby/"},
		"github.com/sbx-dev/sbx/cmd/sbx": {"github.com/sbx-dev/sbx/internal/driver", "github.com/sbx-dev/sbx/internal/backend", "github.com/moby/"},
	} {
		for _, pkg := range goListImports(t, user) {
			for _, b := range banned {
				if strings.HasPrefix(pkg, b) {
					t.Errorf("%s imports %s directly; drivers are chosen by internal/backend, behind the SDK", user, pkg)
				}
			}
		}
	}
}

// TestWireDeps keeps the public wire packages to the standard library, so
// any Go program (a test harness, an agent) can use them without pulling
// in sbx's host side.
func TestWireDeps(t *testing.T) {
	// allowed is what a wire package may link besides the standard
	// library and the wire packages themselves.
	for wire, allowed := range map[string][]string{
		"github.com/sbx-dev/sbx/sandboxapi": nil,
		// Terminal attach is a WebSocket, which the standard library lacks.
		"github.com/sbx-dev/sbx/sandboxapi/attach": {"github.com/coder/websocket"},
	} {
	next:
		for _, pkg := range goListDeps(t, wire) {
			if pkg == wire || pkg == "github.com/sbx-dev/sbx/sandboxapi" {
				continue
			}
			for _, a := range allowed {
				if pkg == a || strings.HasPrefix(pkg, a+"/") {
					continue next
				}
			}
			// The standard library's import paths have no dot in their
			// first element.
			if first, _, _ := strings.Cut(pkg, "/"); strings.Contains(first, ".") {
				t.Errorf("%s links %s; wire packages use the standard library only", wire, pkg)
			}
		}
	}
}

// TestServiceDeps keeps sandbox-api on the backend seam: neither the
// service nor its command names a driver package (they get one from
// internal/backend), so a new backend (Kubernetes, Modal) needs no change
// to the service.
func TestServiceDeps(t *testing.T) {
	for _, pkg := range []string{"github.com/sbx-dev/sbx/internal/runtimeapi/server", "github.com/sbx-dev/sbx/internal/runtimeapi/store", "github.com/sbx-dev/sbx/cmd/sandbox-api"} {
		for _, imp := range goListImports(t, pkg) {
			if strings.HasPrefix(imp, "github.com/sbx-dev/sbx/internal/driver/") || strings.HasPrefix(imp, "github.com/moby/") {
				t.Errorf("%s imports %s: the service reaches drivers through internal/backend only", pkg, imp)
			}
		}
	}
}
