package modal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	modalsdk "github.com/modal-labs/modal-client/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeProfile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "modal.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveCredentials(t *testing.T) {
	twoProfiles := "[a]\ntoken_id = \"ak-a\"\ntoken_secret = \"as-a\"\n[b]\ntoken_id = \"ak-b\"\ntoken_secret = \"as-b\"\nactive = true\n[half]\ntoken_id = \"ak-h\"\n"
	for _, tc := range []struct {
		name                string
		cfg                 func(*config.Config)
		profile             string // file text; "" is no file
		env                 map[string]string
		wantID, wantSecret  string
		wantProfile         bool
		wantSource, wantErr string
		wantClass           error
	}{
		{name: "modal's own variables", cfg: func(c *config.Config) { c.Host.ModalTokenID, c.Host.ModalTokenSecret = "ak-1", "as-1" },
			wantID: "ak-1", wantSecret: "as-1", wantSource: "MODAL_TOKEN_ID"},
		{name: "the seed's names", cfg: func(c *config.Config) { c.ModalAPITokenID, c.ModalAPITokenSecret = "ak-2", "as-2" },
			wantID: "ak-2", wantSecret: "as-2", wantSource: "MODAL_API_TOKEN_ID"},
		{name: "MODAL_TOKEN_* win over the seed's", cfg: func(c *config.Config) {
			c.ModalAPITokenID, c.ModalAPITokenSecret = "ak-2", "as-2"
			c.Host.ModalTokenID, c.Host.ModalTokenSecret = "ak-1", "as-1"
		}, wantID: "ak-1", wantSecret: "as-1"},
		{name: "variables win over the profile file", cfg: func(c *config.Config) { c.Host.ModalTokenID, c.Host.ModalTokenSecret = "ak-1", "as-1" },
			profile: twoProfiles, wantID: "ak-1", wantSecret: "as-1"},
		{name: "an id without a secret", cfg: func(c *config.Config) { c.Host.ModalTokenID = "ak-1" }, profile: twoProfiles,
			wantErr: "no token secret", wantClass: errdefs.ErrUnauthorized},
		{name: "a secret without an id", cfg: func(c *config.Config) { c.ModalAPITokenSecret = "as-2" },
			wantErr: "no token id", wantClass: errdefs.ErrUnauthorized},
		{name: "the active profile", profile: twoProfiles, wantProfile: true, wantSource: `profile "b"`},
		{name: "MODAL_PROFILE picks one", profile: twoProfiles, env: map[string]string{"MODAL_PROFILE": "a"}, wantProfile: true, wantSource: `profile "a"`},
		{name: "MODAL_PROFILE names none", profile: twoProfiles, env: map[string]string{"MODAL_PROFILE": "zz"},
			wantErr: `MODAL_PROFILE="zz"`, wantClass: errdefs.ErrInvalidArgument},
		{name: "a profile without a secret", profile: twoProfiles, env: map[string]string{"MODAL_PROFILE": "half"},
			wantErr: "has no token_id and token_secret", wantClass: errdefs.ErrUnauthorized},
		{name: "no active profile", profile: "[a]\ntoken_id = \"x\"\ntoken_secret = \"y\"\n",
			wantErr: "active = true", wantClass: errdefs.ErrUnauthorized},
		{name: "an empty profile file", profile: "# nothing yet\n",
			wantErr: "needs Modal credentials", wantClass: errdefs.ErrUnauthorized},
		{name: "nothing at all", wantErr: "needs Modal credentials", wantClass: errdefs.ErrUnauthorized},
		{name: "a broken profile file", profile: "[a\n", wantErr: "is not a Modal profile file", wantClass: errdefs.ErrInvalidArgument},
		{name: "an OAuth profile", profile: "[o]\noauth_refresh_token = \"r\"\noauth_client_id = \"oc-1\"\noauth_client_secret = \"ov-1\"\nactive = true\n",
			wantProfile: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			e := map[string]string{}
			for k, v := range tc.env {
				e[k] = v
			}
			if tc.profile != "" {
				e["MODAL_CONFIG_PATH"] = writeProfile(t, tc.profile)
			} else {
				e["MODAL_CONFIG_PATH"] = filepath.Join(t.TempDir(), "absent.toml")
			}
			got, err := ResolveCredentials(cfg, env(e), t.TempDir())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, tc.wantClass) {
					t.Fatalf("err = %v, want %q of class %v", err, tc.wantErr, tc.wantClass)
				}
				for _, secret := range []string{"as-1", "as-2", "as-a", "as-b"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error shows a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.TokenID != tc.wantID || got.TokenSecret != tc.wantSecret || got.FromProfile != tc.wantProfile || !strings.Contains(got.Source, tc.wantSource) {
				t.Errorf("got %+v, want id %q secret %q profile %v source ~%q", got, tc.wantID, tc.wantSecret, tc.wantProfile, tc.wantSource)
			}
		})
	}
}

// The profile file defaults to ~/.modal.toml, as Modal's own tools have it.
func TestResolveCredentialsHome(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".modal.toml"), []byte("[p]\ntoken_id=\"a\"\ntoken_secret=\"b\"\nactive=true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveCredentials(config.Default(), env(nil), home)
	if err != nil || !got.FromProfile || !strings.Contains(got.Source, filepath.Join(home, ".modal.toml")) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// A file whose profiles are complete but none active is what a hand-made
// file often looks like: the error names the file, the two ways to pick
// one and the profiles there are, rather than asking for credentials the
// user already has. Like the SDK, the driver does not pick one itself.
func TestResolveCredentialsNoActiveProfile(t *testing.T) {
	path := writeProfile(t, "[work]\ntoken_id = \"ak-w\"\ntoken_secret = \"as-w\"\n[home]\ntoken_id = \"ak-h\"\ntoken_secret = \"as-h\"\n")
	got, err := ResolveCredentials(config.Default(), env(map[string]string{"MODAL_CONFIG_PATH": path}), t.TempDir())
	if err == nil {
		t.Fatalf("got %+v, want an error: no profile is active", got)
	}
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("class of %v: want ErrUnauthorized", err)
	}
	for _, want := range []string{path, "active = true", "MODAL_PROFILE=<name>", `"home", "work"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, secret := range []string{"as-w", "as-h", "ak-w", "ak-h"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows a token: %v", err)
		}
	}
}

// MODAL_CONFIG_PATH naming no file: the error points at that path, where
// the user looks (and where `modal token new` writes), not at the default.
func TestResolveCredentialsMissingConfigPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "elsewhere", "modal.toml")
	_, err := ResolveCredentials(config.Default(), env(map[string]string{"MODAL_CONFIG_PATH": path}), t.TempDir())
	if !errors.Is(err, errdefs.ErrUnauthorized) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "MODAL_CONFIG_PATH") {
		t.Fatalf("err = %v, want ErrUnauthorized naming %s and MODAL_CONFIG_PATH", err, path)
	}
	if strings.Contains(err.Error(), "~/.modal.toml") {
		t.Errorf("the error names the default file, not the one given: %v", err)
	}
	// Without MODAL_CONFIG_PATH the file is the home's, spelled out.
	home := t.TempDir()
	_, err = ResolveCredentials(config.Default(), env(nil), home)
	if !errors.Is(err, errdefs.ErrUnauthorized) || !strings.Contains(err.Error(), filepath.Join(home, ".modal.toml")) {
		t.Errorf("err = %v, want ErrUnauthorized naming %s", err, filepath.Join(home, ".modal.toml"))
	}
}

func TestSettingsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		factor, closeDelay, initTimeout int
		runtime, base                   string
		want                            Settings
	}{
		{factor: 1, closeDelay: 3600, initTimeout: 180, base: "debian:12",
			want: Settings{Images: Images{Base: "debian:12"}, Resources: Resources{CPU: 1, MemoryMiB: 2048}, Timeout: DefaultTimeout, IdleTimeout: time.Hour, StartTimeout: 3 * time.Minute}},
		{factor: 4, closeDelay: 0, initTimeout: 10, runtime: "ghcr.io/x/sbx-runtime:1",
			want: Settings{Images: Images{Runtime: "ghcr.io/x/sbx-runtime:1", Base: config.DefaultBaseContainerImage}, Resources: Resources{CPU: 4, MemoryMiB: 8192}, Timeout: DefaultTimeout, StartTimeout: 10 * time.Second}},
		// An idle timeout longer than the lifetime would never fire.
		{factor: 8, closeDelay: 2 * 86400, base: "b",
			want: Settings{Images: Images{Base: "b"}, Resources: Resources{CPU: 8, MemoryMiB: 16384}, Timeout: DefaultTimeout}},
	} {
		cfg := config.Default()
		cfg.Sandbox.RemoteRuntimeResourceFactor = tc.factor
		cfg.Sandbox.CloseDelay = tc.closeDelay
		cfg.Sandbox.RemoteRuntimeInitTimeout = tc.initTimeout
		cfg.Sandbox.RuntimeContainerImage = tc.runtime
		cfg.Sandbox.BaseContainerImage = tc.base
		if got := SettingsFromConfig(cfg); got != tc.want {
			t.Errorf("factor %d close_delay %d: got %+v, want %+v", tc.factor, tc.closeDelay, got, tc.want)
		}
	}
}

func testDriver(t *testing.T, o Options) *Driver {
	t.Helper()
	// A client that is never dialled: params and ResolveImage make no call.
	c, err := modalsdk.NewClientWithOptions(&modalsdk.ClientParams{TokenID: "ak-x", TokenSecret: "as-x"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	o.Client = c
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestParams(t *testing.T) {
	d := testDriver(t, Options{Resources: Resources{CPU: 2, MemoryMiB: 4096}, Timeout: 90*time.Minute + 500*time.Millisecond, IdleTimeout: 10 * time.Minute})
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spec := driver.Spec{ID: "abc", Image: "debian:12", WorkDir: "/w", User: "openhands", UserID: 1000, Plugins: []string{"jupyter"},
		Env: map[string]string{"A": "1"}, Labels: map[string]string{"x.y": "a value"}, Debug: true}
	p, err := d.params(spec, "tok", now)
	if err != nil {
		t.Fatal(err)
	}
	if p.CPU != 2 || p.MemoryMiB != 4096 || p.Timeout != 90*time.Minute || p.IdleTimeout != 10*time.Minute {
		t.Errorf("resources/timeouts = %v CPU, %d MiB, %v, %v", p.CPU, p.MemoryMiB, p.Timeout, p.IdleTimeout)
	}
	if p.Name != "sbx-abc" || !slices.Equal(p.EncryptedPorts, []int{ServerPort}) || len(p.UnencryptedPorts) != 0 {
		t.Errorf("name %q, ports %v / %v", p.Name, p.EncryptedPorts, p.UnencryptedPorts)
	}
	if p.Env["SESSION_API_KEY"] != "tok" || p.Env["A"] != "1" || p.Env["DEBUG"] != "true" || p.Env["port"] != "30000" {
		t.Errorf("env = %v", p.Env)
	}
	// Not prebuilt: the entrypoint waits for the copy-in, then runs
	// sandboxd with the launch's argv.
	if len(p.Command) < 5 || p.Command[0] != "/bin/sh" || p.Command[2] != entryScript || p.Command[4] != "30000" ||
		!slices.Contains(p.Command, "--working-dir") || !slices.Contains(p.Command, "jupyter") {
		t.Errorf("command = %q", p.Command)
	}
	want := map[string]string{"x.y": "a value", driver.LabelManaged: "true", driver.LabelSession: "abc", tagKey: "tok", tagImage: "debian:12", tagCreated: "2026-01-02T03:04:05Z"}
	for k, v := range want {
		if p.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, p.Tags[k], v)
		}
	}
	if l := labelsOf(p.Tags); l[tagKey] != "" || l["x.y"] != "a value" {
		t.Errorf("labels shown = %v", l)
	}

	spec.Prebuilt = true
	spec.Resources = driver.Resources{CPUs: 0.5, MemoryBytes: 3<<20 + 1}
	p, err = d.params(spec, "tok", now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Command[0] != driver.SandboxdPath || p.CPU != 0.5 || p.MemoryMiB != 4 {
		t.Errorf("prebuilt with limits: command %q, %v CPU, %d MiB (want sandboxd, 0.5, 4 rounded up)", p.Command, p.CPU, p.MemoryMiB)
	}
}

func TestParamsRefuses(t *testing.T) {
	d := testDriver(t, Options{})
	base := driver.Spec{ID: "abc", Image: "debian:12"}
	for name, tc := range map[string]struct {
		edit  func(*driver.Spec)
		class error
		text  string
	}{
		"host mount": {func(s *driver.Spec) { s.Mounts = []driver.Mount{{Source: "/home/me/x", Target: "/workspace"}} }, errdefs.ErrNotImplemented, "sbx cp"},
		"swerex":     {func(s *driver.Spec) { s.SWEReX = &driver.SWEReX{} }, errdefs.ErrNotImplemented, "SWE-ReX"},
		"gpu":        {func(s *driver.Spec) { s.Resources.GPU = true }, errdefs.ErrNotImplemented, "GPU"},
		"our tag":    {func(s *driver.Spec) { s.Labels = map[string]string{tagKey: "x"} }, errdefs.ErrInvalidArgument, tagPrefix},
		"no image":   {func(s *driver.Spec) { s.Image = "" }, errdefs.ErrInvalidArgument, "no image"},
	} {
		s := base
		tc.edit(&s)
		_, err := d.params(s, "tok", time.Now())
		if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v mentioning %q", name, err, tc.class, tc.text)
		}
	}
	if err := checkID(strings.Repeat("a", 61)); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a 61-character id: %v, want ErrInvalidArgument (Modal names stop at 64)", err)
	}
	if err := checkID(strings.Repeat("a", 60)); err != nil {
		t.Errorf("a 60-character id: %v", err)
	}
}

func TestResolveImage(t *testing.T) {
	d := testDriver(t, Options{Images: Images{Base: "debian:12"}})
	if img, err := d.ResolveImage(t.Context(), ""); err != nil || img.Ref != "debian:12" || img.Prebuilt {
		t.Errorf("base: %+v, %v", img, err)
	}
	if img, _ := d.ResolveImage(t.Context(), "alpine:3"); img.Ref != "alpine:3" || img.Prebuilt {
		t.Errorf("override: %+v", img)
	}
	d = testDriver(t, Options{Images: Images{Base: "debian:12", Runtime: "r/sbx:1"}})
	if img, _ := d.ResolveImage(t.Context(), ""); img.Ref != "r/sbx:1" || !img.Prebuilt {
		t.Errorf("runtime image: %+v", img)
	}
	if img, _ := d.ResolveImage(t.Context(), "r/sbx:1"); !img.Prebuilt {
		t.Errorf("the runtime image named as override: %+v", img)
	}
}

// The capabilities are the core and images only: no stop/start keeping
// files, no freezer, no SWE-ReX listener.
func TestCapabilities(t *testing.T) {
	d := testDriver(t, Options{})
	if got := strings.Join(driver.CapabilitiesOf(d).Names(), ","); got != "images" {
		t.Errorf("capabilities = %s, want images", got)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err   error
		class error
	}{
		{modalsdk.NotFoundError{Exception: "x"}, errdefs.ErrNotFound},
		{modalsdk.AlreadyExistsError{Exception: "x"}, errdefs.ErrAlreadyExists},
		{modalsdk.InvalidError{Exception: "x"}, errdefs.ErrInvalidArgument},
		{modalsdk.ResourceExhaustedError{Exception: "x"}, errdefs.ErrUnavailable},
		{fmt.Errorf("wrapped: %w", modalsdk.ConflictError{Exception: "x"}), errdefs.ErrConflict},
		{status.Error(codes.Unauthenticated, "bad token"), errdefs.ErrUnauthorized},
		{status.Error(codes.PermissionDenied, "no"), errdefs.ErrPermission},
		{status.Error(codes.Unavailable, "down"), errdefs.ErrUnavailable},
		{status.Error(codes.NotFound, "gone"), errdefs.ErrNotFound},
		{errors.New("odd"), errdefs.ErrInternal},
	} {
		got := classify(tc.err, "op")
		if !errors.Is(got, tc.class) || !strings.HasPrefix(got.Error(), "op: ") {
			t.Errorf("classify(%v) = %v, want class %v", tc.err, got, tc.class)
		}
	}
}

// FuzzProfileFile: whatever the profile file holds, resolving credentials
// answers with credentials or a classified error, never a panic.
func FuzzProfileFile(f *testing.F) {
	f.Add("[a]\ntoken_id = \"x\"\ntoken_secret = \"y\"\nactive = true\n", "")
	f.Add("[a]\ntoken_id = 1\n", "a")
	f.Add("a = 1\n", "")
	f.Add("[a\n", "")
	f.Add("[a.b]\nactive = true\n[a]\n", "a")
	f.Fuzz(func(t *testing.T, text, profile string) {
		p := filepath.Join(t.TempDir(), "m.toml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ResolveCredentials(config.Default(), env(map[string]string{"MODAL_CONFIG_PATH": p, "MODAL_PROFILE": profile}), "")
		if err != nil {
			if !errors.Is(err, errdefs.ErrUnauthorized) && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if !got.FromProfile {
			t.Fatalf("credentials from nowhere: %+v", got)
		}
	})
}

// A sandboxd binary that went missing between Locate and the copy-in is
// an ErrNotFound naming it, as Locate's own error is, not a bare
// *fs.PathError; copyIn opens it before touching the sandbox.
func TestCopyInMissingBinary(t *testing.T) {
	d := testDriver(t, Options{})
	path := filepath.Join(t.TempDir(), "sandboxd")
	err := d.copyIn(t.Context(), nil, sandboxdbin.Binary{Path: path})
	if !errors.Is(err, errdefs.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("copyIn of a missing binary: %v, want ErrNotFound wrapping fs.ErrNotExist, naming %s", err, path)
	}
}

func TestClassifyLocal(t *testing.T) {
	for _, tc := range []struct {
		err   error
		class error
	}{
		{&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}, errdefs.ErrNotFound},
		{&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, errdefs.ErrPermission},
		{&fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, errdefs.ErrInsufficientStorage},
		{errors.New("broken pipe"), errdefs.ErrInternal},
		// A writer's own class is kept (a response that refuses more).
		{fmt.Errorf("limit: %w", errdefs.ErrTooLarge), errdefs.ErrTooLarge},
	} {
		got := classifyLocal(tc.err, "op")
		if !errors.Is(got, tc.class) || !errors.Is(got, tc.err) || !strings.HasPrefix(got.Error(), "op: ") {
			t.Errorf("classifyLocal(%v) = %v, want class %v wrapping it", tc.err, got, tc.class)
		}
	}
	if got := classifyLocal(fmt.Errorf("limit: %w", errdefs.ErrTooLarge), "op"); errors.Is(got, errdefs.ErrInternal) {
		t.Errorf("a classified error gains ErrInternal: %v", got)
	}
}
