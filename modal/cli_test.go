package modal_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/driver/modal/modalfake"
)

// TestCLIOnFake is `RUNTIME=modal sbx run --rm` as a user types it, with
// the built sbx binary, against the FAKE Modal API: credentials from
// MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, the server from MODAL_SERVER_URL,
// the fake's tunnel certificate trusted through SSL_CERT_FILE.
func TestCLIOnFake(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the sbx binary")
	}
	fake := modalfake.StartDocker(t, tunnelCert)

	dir := t.TempDir()
	bctx, bcancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer bcancel()
	build := groupCommand(bctx, "go", "build", "-o", filepath.Join(dir, "sbx"), "github.com/sbx-dev/sbx/cmd/sbx")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build sbx: %v\n%s", err, out)
	}
	home := t.TempDir()
	run := func(args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := groupCommand(ctx, filepath.Join(dir, "sbx"), args...)
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + home, "SSL_CERT_FILE=" + os.Getenv("SSL_CERT_FILE"),
			"RUNTIME=modal", "MODAL_SERVER_URL=" + fake.URL,
			"MODAL_TOKEN_ID=" + fake.TokenID, "MODAL_TOKEN_SECRET=" + fake.TokenSecret,
			"SANDBOX_BASE_CONTAINER_IMAGE=" + modalConfig().Sandbox.BaseContainerImage,
			"SBX_SANDBOXD=" + os.Getenv("SBX_SANDBOXD"),
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("sbx %q: %v", args, err)
		}
		return out.String(), errb.String(), code
	}
	out, errs, code := run("run", "--rm", "--", "echo", "hi from modal")
	if code != 0 || out != "hi from modal\n" {
		t.Fatalf("sbx run: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, errs, code = run("run", "--rm", "--", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("sbx run of exit 3: exit %d, stderr %q", code, errs)
	}
	out, errs, code = run("ls", "--json")
	if code != 0 || strings.Contains(out, "sbx-") && strings.Contains(out, `"running"`) {
		t.Errorf("after run --rm: sbx ls = exit %d, %q, %q; want nothing running", code, out, errs)
	}
	_, errs, code = run("stop", "nosuch")
	if code != 125 || !strings.Contains(errs, "RUNTIME=modal cannot") {
		t.Errorf("sbx stop on modal: exit %d, %q; want 125 saying the runtime cannot", code, errs)
	}
}

// groupCommand runs name in a process group of its own, all of it killed
// when ctx ends (the test's end or a timeout): go build's compilers and
// linker, sbx's children, none outlives the test.
func groupCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output pipes a killed grandchild might hold open do not block Wait.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}
