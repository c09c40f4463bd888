package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the key table")

// testUID is the host uid tests pretend to have, so defaults do not depend
// on who runs them.
const testUID = 4242

// load loads with a hermetic Source: only the given KEY=value environment,
// a fixed uid and a temporary working directory holding config.toml when
// toml is not "".
func loadWith(t *testing.T, toml string, env ...string) (*Config, error) {
	t.Helper()
	src := source(t, env...)
	if toml != "" {
		wd, _ := src.Getwd()
		if err := os.WriteFile(filepath.Join(wd, "config.toml"), []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		src.File = "config.toml"
	}
	return Load(src)
}

func source(t *testing.T, env ...string) Source {
	dir := t.TempDir()
	return Source{
		Environ: func() []string { return env },
		Getuid:  func() int { return testUID },
		Getwd:   func() (string, error) { return dir, nil },
	}
}

func mustLoad(t *testing.T, toml string, env ...string) *Config {
	t.Helper()
	c, err := loadWith(t, toml, env...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// wantErr checks that err is an invalid-argument error containing every
// fragment.
func wantErr(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want an error containing %q", fragments)
	}
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("error %q is not of class ErrInvalidArgument", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

// failed checks err against the error a case expects ("" for none) and
// reports whether there was one, so that the case stops there.
func failed(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	return true
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, "")
	want := defaults(testUID)
	want.origins = c.origins
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load with nothing set = %+v, want the defaults %+v", c, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"runtime", c.Runtime, "docker"},
		{"workspace_mount_path_in_sandbox", c.WorkspaceMountPathInSandbox, "/workspace"},
		{"run_as_openhands", c.RunAsOpenHands, true},
		{"enable_browser", c.EnableBrowser, true},
		{"git_user_name", c.GitUserName, "openhands"},
		{"git_user_email", c.GitUserEmail, "openhands@all-hands.dev"},
		{"cache_dir", c.CacheDir, "/tmp/cache"},
		{"base_container_image", c.Sandbox.BaseContainerImage, "nikolaik/python-nodejs:python3.12-nodejs22"},
		{"runtime_binding_address", c.Sandbox.RuntimeBindingAddress, "127.0.0.1"},
		{"timeout", c.Sandbox.Timeout, 120},
		{"close_delay", c.Sandbox.CloseDelay, 3600},
		{"pause_closed_runtimes", c.Sandbox.PauseClosedRuntimes, true},
		{"remote_runtime_api_url", c.Sandbox.RemoteRuntimeAPIURL, "http://localhost:8000"},
		{"user_id", c.Sandbox.UserID, testUID},
		{"kubernetes.namespace", c.Kubernetes.Namespace, "default"},
		{"kubernetes.pvc_storage_size", c.Kubernetes.PVCStorageSize, "2Gi"},
		{"mounts", len(c.Mounts()), 0},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if c.File != "" {
		t.Errorf("File = %q with no config file", c.File)
	}
}

func TestPrecedence(t *testing.T) {
	const file = `
[core]
runtime = "remote"
debug = true
[sandbox]
timeout = 30
api_key = "from-file"
additional_networks = ["file-net"]
[kubernetes]
namespace = "file-ns"
`
	tests := []struct {
		name   string
		toml   string
		env    []string
		get    func(*Config) any
		want   any
		origin Origin
		envVar string
	}{
		{"default only", "", nil, func(c *Config) any { return c.Sandbox.Timeout }, 120, OriginDefault, "SANDBOX_TIMEOUT"},
		{"file over default", file, nil, func(c *Config) any { return c.Sandbox.Timeout }, 30, OriginFile, "SANDBOX_TIMEOUT"},
		{"env over file", file, []string{"SANDBOX_TIMEOUT=45"}, func(c *Config) any { return c.Sandbox.Timeout }, 45, OriginEnv, "SANDBOX_TIMEOUT"},
		{"env over default", "", []string{"SANDBOX_TIMEOUT=45"}, func(c *Config) any { return c.Sandbox.Timeout }, 45, OriginEnv, "SANDBOX_TIMEOUT"},
		{"empty env ignored", file, []string{"SANDBOX_TIMEOUT="}, func(c *Config) any { return c.Sandbox.Timeout }, 30, OriginFile, "SANDBOX_TIMEOUT"},
		{"core from file", file, nil, func(c *Config) any { return c.Runtime }, "remote", OriginFile, "RUNTIME"},
		{"core env unprefixed", file, []string{"RUNTIME=local"}, func(c *Config) any { return c.Runtime }, "local", OriginEnv, "RUNTIME"},
		{"bool env false over file true", file, []string{"DEBUG=no"}, func(c *Config) any { return c.Debug }, false, OriginEnv, "DEBUG"},
		{"secret env over file", file, []string{"SANDBOX_API_KEY=from-env"}, func(c *Config) any { return c.Sandbox.APIKey }, "from-env", OriginEnv, "SANDBOX_API_KEY"},
		{"list env over file", file, []string{`SANDBOX_ADDITIONAL_NETWORKS=["env-net"]`}, func(c *Config) any { return c.Sandbox.AdditionalNetworks }, []string{"env-net"}, OriginEnv, "SANDBOX_ADDITIONAL_NETWORKS"},
		{"kubernetes from file", file, nil, func(c *Config) any { return c.Kubernetes.Namespace }, "file-ns", OriginFile, "KUBERNETES_NAMESPACE"},
		{"kubernetes env prefixed", file, []string{"KUBERNETES_NAMESPACE=env-ns"}, func(c *Config) any { return c.Kubernetes.Namespace }, "env-ns", OriginEnv, "KUBERNETES_NAMESPACE"},
		{"unprefixed sandbox name is not read", "", []string{"TIMEOUT=7"}, func(c *Config) any { return c.Sandbox.Timeout }, 120, OriginDefault, "SANDBOX_TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.toml, tc.env...)
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
			if got := originOf(c, tc.envVar); got != tc.origin {
				t.Errorf("origin of %s = %q, want %q", tc.envVar, got, tc.origin)
			}
		})
	}
}

func originOf(c *Config, env string) Origin {
	for _, s := range c.Describe() {
		if s.Env == env {
			return s.Origin
		}
	}
	return ""
}

func TestEnvConversions(t *testing.T) {
	intp := func(n int) *int { return &n }
	tests := []struct {
		env  string
		get  func(*Config) any
		want any
	}{
		{"SANDBOX_BASE_CONTAINER_IMAGE=ubuntu:24.04", func(c *Config) any { return c.Sandbox.BaseContainerImage }, "ubuntu:24.04"},
		{"SANDBOX_KEEP_RUNTIME_ALIVE=true", func(c *Config) any { return c.Sandbox.KeepRuntimeAlive }, true},
		{"SANDBOX_KEEP_RUNTIME_ALIVE=TRUE", func(c *Config) any { return c.Sandbox.KeepRuntimeAlive }, true},
		{"SANDBOX_KEEP_RUNTIME_ALIVE=1", func(c *Config) any { return c.Sandbox.KeepRuntimeAlive }, true},
		{"SANDBOX_KEEP_RUNTIME_ALIVE=yes", func(c *Config) any { return c.Sandbox.KeepRuntimeAlive }, false},
		{"SANDBOX_PAUSE_CLOSED_RUNTIMES=0", func(c *Config) any { return c.Sandbox.PauseClosedRuntimes }, false},
		{"SANDBOX_PAUSE_CLOSED_RUNTIMES=False", func(c *Config) any { return c.Sandbox.PauseClosedRuntimes }, false},
		{"ENABLE_BROWSER=false", func(c *Config) any { return c.EnableBrowser }, false},
		{"SANDBOX_TIMEOUT= 90 ", func(c *Config) any { return c.Sandbox.Timeout }, 90},
		{"SANDBOX_USER_ID=0", func(c *Config) any { return c.Sandbox.UserID }, 0},
		{"SANDBOX_VSCODE_PORT=41234", func(c *Config) any { return c.Sandbox.VSCodePort }, 41234},
		{"RUNTIME_UID=0", func(c *Config) any { return c.Host.RuntimeUID }, intp(0)},
		{"RUNTIME_USERNAME=agent", func(c *Config) any { return c.Host.RuntimeUsername }, "agent"},
		{"DOCKER_HOST_ADDR=host.docker.internal", func(c *Config) any { return c.Host.DockerHostAddr }, "host.docker.internal"},
		{"DEBUG_RUNTIME=1", func(c *Config) any { return c.Host.DebugRuntime }, true},
		{"WORKSPACE_GUARD=true", func(c *Config) any { return c.WorkspaceGuard }, true},
		{"WORKSPACE_GUARD_MODE=copy", func(c *Config) any { return c.WorkspaceGuardMode }, "copy"},
		{"SANDBOX_VOLUME_OVERLAYS=/var/overlays/", func(c *Config) any { return c.Host.VolumeOverlays }, "/var/overlays"},
		{"RUNTIME=eventstream", func(c *Config) any { return c.Runtime }, "docker"},
		// Python literals, as OpenHands' ast.literal_eval reads them.
		{`SANDBOX_RUNTIME_STARTUP_ENV_VARS={'A': 'b', "C": "d"}`, func(c *Config) any { return c.Sandbox.RuntimeStartupEnvVars }, map[string]string{"A": "b", "C": "d"}},
		{`SANDBOX_RUNTIME_STARTUP_ENV_VARS={"PORT": 8080}`, func(c *Config) any { return c.Sandbox.RuntimeStartupEnvVars }, map[string]string{"PORT": "8080"}},
		{`SANDBOX_RUNTIME_STARTUP_ENV_VARS={}`, func(c *Config) any { return c.Sandbox.RuntimeStartupEnvVars }, map[string]string{}},
		{`SANDBOX_ADDITIONAL_NETWORKS=["net1"]`, func(c *Config) any { return c.Sandbox.AdditionalNetworks }, []string{"net1"}},
		{`SANDBOX_ADDITIONAL_NETWORKS=['a', 'b',]`, func(c *Config) any { return c.Sandbox.AdditionalNetworks }, []string{"a", "b"}},
		{`SANDBOX_ADDITIONAL_NETWORKS=('a',)`, func(c *Config) any { return c.Sandbox.AdditionalNetworks }, []string{"a"}},
		{`SANDBOX_RUNTIME_EXTRA_BUILD_ARGS=["--network=host", "--no-cache"]`, func(c *Config) any { return c.Sandbox.RuntimeExtraBuildArgs }, []string{"--network=host", "--no-cache"}},
		{`SANDBOX_RUNTIME_EXTRA_BUILD_ARGS=None`, func(c *Config) any { return c.Sandbox.RuntimeExtraBuildArgs }, []string(nil)},
		{`SANDBOX_TRUSTED_DIRS=["/src"]`, func(c *Config) any { return c.Sandbox.TrustedDirs }, []string{"/src"}},
		{`SANDBOX_DOCKER_RUNTIME_KWARGS={'mem_limit': '4g', 'cpu_period': 100000, 'cpu_quota': 50000}`, func(c *Config) any { return c.Sandbox.DockerRuntimeKwargs },
			map[string]any{"mem_limit": "4g", "cpu_period": int64(100000), "cpu_quota": int64(50000)}},
		{`SANDBOX_DOCKER_RUNTIME_KWARGS={"mem_limit": "4g"}`, func(c *Config) any { return c.Sandbox.DockerLimits.Memory }, int64(4 << 30)},
		{`SANDBOX_DOCKER_RUNTIME_KWARGS=None`, func(c *Config) any { return c.Sandbox.DockerRuntimeKwargs }, map[string]any(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			c := mustLoad(t, "", tc.env)
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		env  string
		want []string
	}{
		{"SANDBOX_TIMEOUT=abc", []string{`SANDBOX_TIMEOUT="abc": not an integer`}},
		{"SANDBOX_TIMEOUT=1.5", []string{`SANDBOX_TIMEOUT="1.5": not an integer`}},
		{"RUNTIME_UID=me", []string{`RUNTIME_UID="me": not an integer`}},
		{"KUBERNETES_PRIVILEGED=true", []string{"[kubernetes] privileged = true (from KUBERNETES_PRIVILEGED)", "never runs privileged"}},
		{"SANDBOX_ADDITIONAL_NETWORKS=net1", []string{"SANDBOX_ADDITIONAL_NETWORKS=\"net1\": not a Python list literal"}},
		{"SANDBOX_ADDITIONAL_NETWORKS={'a': 'b'}", []string{"SANDBOX_ADDITIONAL_NETWORKS=", "want a list of strings, got a table"}},
		{"SANDBOX_ADDITIONAL_NETWORKS=[1]", []string{"SANDBOX_ADDITIONAL_NETWORKS=", "item 0: want a string, got the integer 1"}},
		{"SANDBOX_RUNTIME_STARTUP_ENV_VARS=['A']", []string{"SANDBOX_RUNTIME_STARTUP_ENV_VARS=", "want a table of strings, got a list"}},
		{"SANDBOX_RUNTIME_STARTUP_ENV_VARS={'A': True}", []string{"SANDBOX_RUNTIME_STARTUP_ENV_VARS=", `"A": want a string, got the boolean true`}},
		{"SANDBOX_RUNTIME_STARTUP_ENV_VARS={'A=B': 'c'}", []string{"[sandbox] runtime_startup_env_vars", `"A=B" is not a valid environment variable name`}},
		{"SANDBOX_RUNTIME_STARTUP_ENV_VARS={'A': 'b'", []string{"SANDBOX_RUNTIME_STARTUP_ENV_VARS=", "not a Python dict literal"}},
		{"SANDBOX_DOCKER_RUNTIME_KWARGS=['privileged']", []string{"SANDBOX_DOCKER_RUNTIME_KWARGS=", "want a dict, got a list"}},
		{"SANDBOX_DOCKER_RUNTIME_KWARGS={'privileged': True}", []string{"docker_runtime_kwargs", "(from SANDBOX_DOCKER_RUNTIME_KWARGS)", `"privileged": sbx never runs privileged sandboxes`}},
		{"SANDBOX_REMOTE_RUNTIME_RESOURCE_FACTOR=3", []string{"[sandbox] remote_runtime_resource_factor = 3 (from SANDBOX_REMOTE_RUNTIME_RESOURCE_FACTOR): must be 1, 2, 4 or 8"}},
		{"SANDBOX_RUNTIME_BINDING_ADDRESS=localhost", []string{"[sandbox] runtime_binding_address = localhost", "must be an IP address"}},
		{"SANDBOX_REMOTE_RUNTIME_CLASS=kata", []string{"remote_runtime_class = kata", `"gvisor" or "sysbox"`}},
		{"SANDBOX_TIMEOUT=0", []string{"[sandbox] timeout = 0", "at least 1"}},
		{"SANDBOX_VSCODE_PORT=70000", []string{"vscode_port = 70000", "port number"}},
		{"SANDBOX_USER_ID=-5", []string{"user_id = -5", "must not be negative"}},
		{"RUNTIME_UID=-1", []string{"RUNTIME_UID = -1: must not be negative"}},
		{"WORKSPACE_MOUNT_PATH_IN_SANDBOX=workspace", []string{"workspace_mount_path_in_sandbox = workspace", "absolute"}},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			_, err := loadWith(t, "", tc.env)
			wantErr(t, err, tc.want...)
		})
	}
}

func TestTOMLTypes(t *testing.T) {
	c := mustLoad(t, `
[core]
runtime = "local"
workspace_mount_path_in_sandbox = "/work/"
enable_browser = false
max_iterations = 100            # an OpenHands [core] key that is not ours: ignored
[sandbox]
timeout = 15
use_host_network = true
additional_networks = ["a", "b"]
runtime_startup_env_vars = { A = "1", PORT = 8080 }
docker_runtime_kwargs = { mem_limit = "512m", nano_cpus = 1500000000, pids_limit = 256 }
base_container_image = ""
vscode_port = 40001
[kubernetes]
privileged = false
resource_cpu_request = "2"
[llm]
model = "x"
[agent]
anything = { goes = [1, 2] }
[[mcp]]
weird = 1
`)
	checks := []struct {
		name      string
		got, want any
	}{
		{"runtime", c.Runtime, "local"},
		{"in sandbox", c.WorkspaceMountPathInSandbox, "/work"},
		{"enable_browser", c.EnableBrowser, false},
		{"timeout", c.Sandbox.Timeout, 15},
		{"use_host_network", c.Sandbox.UseHostNetwork, true},
		{"additional_networks", c.Sandbox.AdditionalNetworks, []string{"a", "b"}},
		{"startup env", c.Sandbox.RuntimeStartupEnvVars, map[string]string{"A": "1", "PORT": "8080"}},
		{"empty base image resets", c.Sandbox.BaseContainerImage, DefaultBaseContainerImage},
		{"vscode_port", c.Sandbox.VSCodePort, 40001},
		{"limits", c.Sandbox.DockerLimits, DockerLimits{Memory: 512 << 20, NanoCPUs: 1500000000, PidsLimit: 256}},
		{"cpus", c.Sandbox.DockerLimits.CPUs(), 1.5},
		{"cpu request", c.Kubernetes.ResourceCPURequest, "2"},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestTOMLErrors(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"unknown sandbox key", "[sandbox]\ntiemout = 5\n",
			[]string{`config.toml: [sandbox] unknown key "tiemout" (Invalid sandbox configuration); did you mean "timeout"?`}},
		{"unknown sandbox key, no suggestion", "[sandbox]\nfrobnicate = 5\n",
			[]string{`config.toml: [sandbox] unknown key "frobnicate" (Invalid sandbox configuration)`}},
		{"core key in sandbox", "[sandbox]\nworkspace_base = \"/x\"\n",
			[]string{`unknown key "workspace_base"`, `"workspace_base" belongs in [core]`}},
		{"sandbox subtable", "[sandbox.extra]\nx = 1\n",
			[]string{`config.toml: [sandbox] unknown key "extra"`}},
		{"unknown kubernetes key", "[kubernetes]\nnamespce = \"x\"\n",
			[]string{`config.toml: [kubernetes] unknown key "namespce" (Invalid kubernetes configuration); did you mean "namespace"?`}},
		{"string for int", "[sandbox]\ntimeout = \"120\"\n",
			[]string{`config.toml: [sandbox] timeout: want an integer, got the string "120"`}},
		{"float for int", "[sandbox]\ntimeout = 1.5\n",
			[]string{`config.toml: [sandbox] timeout: want an integer, got the float 1.5`}},
		{"string for bool", "[sandbox]\nkeep_runtime_alive = \"true\"\n",
			[]string{`config.toml: [sandbox] keep_runtime_alive: want a boolean (true or false), got the string "true"`}},
		{"int for string", "[core]\nruntime = 1\n",
			[]string{`config.toml: [core] runtime: want a string, got the integer 1`}},
		{"string for list", "[sandbox]\nadditional_networks = \"net1\"\n",
			[]string{`config.toml: [sandbox] additional_networks: want a list of strings, got the string "net1"`}},
		{"mixed list", "[sandbox]\ntrusted_dirs = [\"/a\", 2]\n",
			[]string{`config.toml: [sandbox] trusted_dirs: item 1: want a string, got the integer 2`}},
		{"string for dict", "[sandbox]\ndocker_runtime_kwargs = \"{'mem_limit': '4g'}\"\n",
			[]string{`config.toml: [sandbox] docker_runtime_kwargs: want a table`}},
		{"date for string", "[sandbox]\nplatform = 2024-01-01\n",
			[]string{`config.toml: [sandbox] platform: want a string, got a date-time`}},
		{"sandbox not a table", "sandbox = 5\n",
			[]string{`config.toml: [sandbox] must be a table, got the integer 5`}},
		{"syntax error", "[sandbox\ntimeout = 5\n",
			[]string{`config.toml: toml:`}},
		{"empty runtime", "[core]\nruntime = \"\"\n",
			[]string{`[core] runtime = "" (from config.toml): must not be empty`}},
		{"kubernetes privileged", "[kubernetes]\nprivileged = true\n",
			[]string{`[kubernetes] privileged = true (from config.toml): sbx never runs privileged sandboxes`}},
		{"kwargs privileged", "[sandbox]\ndocker_runtime_kwargs = { privileged = true }\n",
			[]string{`docker_runtime_kwargs = {"privileged": True} (from config.toml)`, `"privileged": sbx never runs privileged sandboxes`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(t, tc.toml)
			wantErr(t, err, tc.want...)
		})
	}
}

func TestAllProblemsReported(t *testing.T) {
	_, err := loadWith(t, "[sandbox]\ntiemout = 5\nuser_id = \"me\"\nvolumes = \"./x:/y\"\n[kubernetes]\nnope = 1\nprivileged = true\n",
		"SANDBOX_CLOSE_DELAY=soon")
	wantErr(t, err, `"tiemout"`, "user_id", `"nope"`, "SANDBOX_CLOSE_DELAY", "volumes", "privileged")
	if n := strings.Count(err.Error(), "\n") + 1; n != 6 {
		t.Errorf("got %d problems, want 6:\n%v", n, err)
	}
}

func TestConfigFile(t *testing.T) {
	t.Run("SBX_CONFIG", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "sbx.toml")
		if err := os.WriteFile(p, []byte("[sandbox]\ntimeout = 9\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(source(t, "SBX_CONFIG="+p))
		if err != nil {
			t.Fatal(err)
		}
		if c.Sandbox.Timeout != 9 || c.File != p {
			t.Errorf("timeout %d, file %q; want 9 from %s", c.Sandbox.Timeout, c.File, p)
		}
	})
	t.Run("explicit file wins over SBX_CONFIG", func(t *testing.T) {
		src := source(t, "SBX_CONFIG=/nonexistent/sbx.toml")
		wd, _ := src.Getwd()
		if err := os.WriteFile(filepath.Join(wd, "mine.toml"), []byte("[sandbox]\ntimeout = 8\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		src.File = "mine.toml"
		c, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		if c.Sandbox.Timeout != 8 {
			t.Errorf("timeout = %d, want 8", c.Sandbox.Timeout)
		}
	})
	t.Run("./config.toml found", func(t *testing.T) {
		src := source(t)
		wd, _ := src.Getwd()
		if err := os.WriteFile(filepath.Join(wd, "config.toml"), []byte("[core]\nruntime = \"cli\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		if c.Runtime != "cli" || c.File != "config.toml" {
			t.Errorf("runtime %q, file %q", c.Runtime, c.File)
		}
	})
	for _, tc := range []struct{ name, file, env string }{
		{"missing explicit file", "/nonexistent/config.toml", ""},
		{"missing SBX_CONFIG", "", "SBX_CONFIG=/nonexistent/config.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := source(t, tc.env)
			src.File = tc.file
			_, err := Load(src)
			if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "/nonexistent/config.toml does not exist") {
				t.Errorf("err = %v, want ErrNotFound naming the file", err)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		src := source(t)
		src.File, _ = src.Getwd() // a directory
		_, err := Load(src)
		wantErr(t, err, "reading config file")
	})
}

func TestSandboxEnvForwarding(t *testing.T) {
	c := mustLoad(t, "",
		"SANDBOX_ENV_GITHUB_TOKEN=ghp_x",
		"SANDBOX_ENV_EMPTY=",
		"SANDBOX_ENV_WITH_EQUALS=a=b",
		"SANDBOX_ENV_=ignored",
		"SANDBOX_ENVIRONMENT=not-forwarded",
		"PATH=/bin")
	want := map[string]string{"GITHUB_TOKEN": "ghp_x", "EMPTY": "", "WITH_EQUALS": "a=b"}
	if !reflect.DeepEqual(c.Host.SandboxEnv, want) {
		t.Errorf("SandboxEnv = %v, want %v", c.Host.SandboxEnv, want)
	}
	for _, s := range c.Describe() {
		if s.Env == "SANDBOX_ENV_<NAME>" {
			if s.Value != "EMPTY, GITHUB_TOKEN, WITH_EQUALS" || s.Origin != OriginEnv {
				t.Errorf("Describe shows %q from %s, want the names only, from env", s.Value, s.Origin)
			}
		}
	}
}

func TestParseVolumes(t *testing.T) {
	tests := []struct {
		in   string
		want []Volume
		err  string
	}{
		{"/src:/workspace", []Volume{{Source: "/src", Target: "/workspace", Mode: "rw"}}, ""},
		{"/src/:/workspace/:ro", []Volume{{Source: "/src", Target: "/workspace", Mode: "ro", ReadOnly: true}}, ""},
		{" /a:/x , /b:/y:rw ,", []Volume{{Source: "/a", Target: "/x", Mode: "rw"}, {Source: "/b", Target: "/y", Mode: "rw"}}, ""},
		{"cache:/root/.cache", []Volume{{Source: "cache", Target: "/root/.cache", Mode: "rw", Named: true}}, ""},
		{"volume:my-vol:/data:ro", []Volume{{Source: "my-vol", Target: "/data", Mode: "ro", ReadOnly: true, Named: true}}, ""},
		{"/lower:/workspace:overlay", []Volume{{Source: "/lower", Target: "/workspace", Mode: "overlay", Overlay: true}}, ""},
		{"/src:/workspace:guard", []Volume{{Source: "/src", Target: "/workspace", Mode: "guard", Guard: true}}, ""},
		{"cache:/x:guard", nil, "guarded mount needs a host directory"},
		{"/a:/x:Z", []Volume{{Source: "/a", Target: "/x", Mode: "Z"}}, ""},
		{"", nil, ""},
		{" , ", nil, ""},
		{"/src", nil, `mount "/src": want host:container[:mode], got 1 colon-separated parts`},
		{"/a:/b:ro:x", nil, "got 4 colon-separated parts"},
		{"volume:/v", []Volume{{Source: "volume", Target: "/v", Mode: "rw", Named: true}}, ""},
		{"volume:v", nil, `container path "v" is not absolute`},
		{":/x", nil, "empty host part"},
		{"/a:/x:", nil, `mode ""`},
		{"/a:/x:r o", nil, `mode "r o"`},
		{"./rel:/x", nil, `host path "./rel" is not absolute, and not a valid volume name`},
		{"volume:./v:/x", nil, `"./v" is not a valid volume name`},
		{"/a:rel", nil, `container path "rel" is not absolute`},
		{"/a:/", nil, "root directory"},
		{"cache:/x:overlay", nil, "overlay mount needs a host directory"},
		{"/a:/x,/b:/x/", nil, `mounts "/a:/x" and "/b:/x/" both target /x`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVolumes(tc.in)
			if failed(t, err, tc.err) {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWorkspace(t *testing.T) {
	type ws struct{ base, mount, inSandbox string }
	tests := []struct {
		name   string
		toml   string
		env    []string
		want   ws
		mounts []Volume // nil: none
	}{
		{name: "nothing", want: ws{"", "", "/workspace"}},
		{name: "volume on /workspace sets the workspace",
			env:    []string{"SANDBOX_VOLUMES=/home/me/proj:/workspace:rw,/data:/data:ro", "WORKSPACE_BASE=/ignored"},
			want:   ws{"/home/me/proj", "/home/me/proj", "/workspace"},
			mounts: []Volume{{Source: "/home/me/proj", Target: "/workspace", Mode: "rw"}, {Source: "/data", Target: "/data", Mode: "ro", ReadOnly: true}}},
		{name: "volume on /workspace overrides workspace_mount_path_in_sandbox",
			toml: "[core]\nworkspace_mount_path_in_sandbox = \"/code\"\n[sandbox]\nvolumes = \"/p:/workspace/\"\n",
			want: ws{"/p", "/p", "/workspace"}, mounts: []Volume{{Source: "/p", Target: "/workspace", Mode: "rw"}}},
		{name: "volumes without /workspace clear the legacy workspace",
			toml: "[core]\nworkspace_base = \"/legacy\"\n[sandbox]\nvolumes = \"/data:/data\"\n",
			want: ws{"", "", "/workspace"}, mounts: []Volume{{Source: "/data", Target: "/data", Mode: "rw"}}},
		{name: "named volume on /workspace has no host workspace",
			env:    []string{"SANDBOX_VOLUMES=volume:ws:/workspace"},
			want:   ws{"", "", "/workspace"},
			mounts: []Volume{{Source: "ws", Target: "/workspace", Mode: "rw", Named: true}}},
		{name: "blank volumes are unset",
			toml: "[core]\nworkspace_base = \"/legacy\"\n[sandbox]\nvolumes = \"\"\n",
			want: ws{"/legacy", "/legacy", "/workspace"}, mounts: []Volume{{Source: "/legacy", Target: "/workspace", Mode: "rw"}}},
		{name: "legacy base made absolute", env: []string{"WORKSPACE_BASE=proj/../ws"},
			want: ws{"<wd>/ws", "<wd>/ws", "/workspace"}, mounts: []Volume{{Source: "<wd>/ws", Target: "/workspace", Mode: "rw"}}},
		{name: "legacy explicit mount path", env: []string{"WORKSPACE_BASE=/in/container", "WORKSPACE_MOUNT_PATH=/on/host", "WORKSPACE_MOUNT_PATH_IN_SANDBOX=/code"},
			want: ws{"/in/container", "/on/host", "/code"}, mounts: []Volume{{Source: "/on/host", Target: "/code", Mode: "rw"}}},
		{name: "legacy mount path alone", env: []string{"WORKSPACE_MOUNT_PATH=/on/host"},
			want: ws{"", "/on/host", "/workspace"}, mounts: []Volume{{Source: "/on/host", Target: "/workspace", Mode: "rw"}}},
		{name: "rewrite prefix", env: []string{"WORKSPACE_BASE=/app/workspace", "WORKSPACE_MOUNT_REWRITE=/app:/home/me/project"},
			want: ws{"/app/workspace", "/home/me/project/workspace", "/workspace"}, mounts: []Volume{{Source: "/home/me/project/workspace", Target: "/workspace", Mode: "rw"}}},
		{name: "rewrite whole path", env: []string{"WORKSPACE_BASE=/app", "WORKSPACE_MOUNT_REWRITE=/app/:/srv"},
			want: ws{"/app", "/srv", "/workspace"}},
		{name: "rewrite only at a path boundary", env: []string{"WORKSPACE_BASE=/apple/ws", "WORKSPACE_MOUNT_REWRITE=/app:/srv"},
			want: ws{"/apple/ws", "/apple/ws", "/workspace"}},
		{name: "rewrite ignored with volumes", env: []string{"SANDBOX_VOLUMES=/p:/workspace", "WORKSPACE_MOUNT_REWRITE=/p:/q"},
			want: ws{"/p", "/p", "/workspace"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := source(t, tc.env...)
			wd, _ := src.Getwd()
			if tc.toml != "" {
				if err := os.WriteFile(filepath.Join(wd, "config.toml"), []byte(tc.toml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			fix := func(s string) string { return strings.Replace(s, "<wd>", wd, 1) }
			want := ws{fix(tc.want.base), fix(tc.want.mount), tc.want.inSandbox}
			if got := (ws{c.WorkspaceBase, c.WorkspaceMountPath, c.WorkspaceMountPathInSandbox}); got != want {
				t.Errorf("workspace = %+v, want %+v", got, want)
			}
			var wantMounts []Volume
			for _, v := range tc.mounts {
				v.Source = fix(v.Source)
				wantMounts = append(wantMounts, v)
			}
			if tc.mounts != nil || tc.want.mount == "" {
				if got := c.Mounts(); !reflect.DeepEqual(got, wantMounts) {
					t.Errorf("Mounts() = %+v, want %+v", got, wantMounts)
				}
			}
		})
	}
}

func TestWorkspaceErrors(t *testing.T) {
	tests := []struct {
		env  string
		want []string
	}{
		{"SANDBOX_VOLUMES=/only-host", []string{"[sandbox] volumes = /only-host (from SANDBOX_VOLUMES)", `mount "/only-host": want host:container[:mode]`}},
		{"WORKSPACE_MOUNT_REWRITE=nocolon", []string{"[core] workspace_mount_rewrite = nocolon", `want "from:to"`}},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			_, err := loadWith(t, "", tc.env, "WORKSPACE_BASE=/ws")
			wantErr(t, err, tc.want...)
		})
	}
	t.Run("Getwd fails", func(t *testing.T) {
		src := source(t, "WORKSPACE_BASE=relative")
		src.Getwd = func() (string, error) { return "", errors.New("no cwd") }
		_, err := Load(src)
		wantErr(t, err, "workspace_base", "no cwd")
	})
}

func TestUserID(t *testing.T) {
	for _, tc := range []struct {
		name string
		uid  int
		env  []string
		want int
	}{
		{"host uid", 501, nil, 501},
		{"root host", 0, nil, 0},
		{"no uid on this platform", -1, nil, 1000},
		{"env wins", 501, []string{"SANDBOX_USER_ID=1001"}, 1001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := source(t, tc.env...)
			src.Getuid = func() int { return tc.uid }
			c, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			if c.Sandbox.UserID != tc.want {
				t.Errorf("user_id = %d, want %d", c.Sandbox.UserID, tc.want)
			}
			wantDefault := strconv.Itoa(tc.uid)
			if tc.uid < 0 {
				wantDefault = "1000"
			}
			for _, s := range c.Describe() {
				if s.Key == "user_id" && s.Default != wantDefault {
					t.Errorf("Describe default of user_id = %q, want %s", s.Default, wantDefault)
				}
			}
		})
	}
	if got := Default().Sandbox.UserID; got != hostUID(os.Getuid) {
		t.Errorf("Default().Sandbox.UserID = %d, want this process's uid", got)
	}
}

func TestDockerKwargs(t *testing.T) {
	tests := []struct {
		name   string
		kwargs map[string]any
		want   DockerLimits
		cpus   float64
		err    string
	}{
		{"empty", nil, DockerLimits{}, 0, ""},
		{"spec example", map[string]any{"mem_limit": "4G", "cpu_period": int64(100000), "cpu_quota": int64(100000)},
			DockerLimits{Memory: 4 << 30, CPUPeriod: 100000, CPUQuota: 100000}, 1, ""},
		{"quota without period", map[string]any{"cpu_quota": int64(250000)}, DockerLimits{CPUQuota: 250000}, 2.5, ""},
		{"nano cpus", map[string]any{"nano_cpus": int64(500000000)}, DockerLimits{NanoCPUs: 500000000}, 0.5, ""},
		{"sizes", map[string]any{"mem_limit": "512mb", "memswap_limit": "-1", "shm_size": int64(1 << 26)},
			DockerLimits{Memory: 512 << 20, MemorySwap: -1, ShmSize: 1 << 26}, 0, ""},
		{"fractional size", map[string]any{"mem_limit": "1.5g", "memswap_limit": "2g"},
			DockerLimits{Memory: 3 << 29, MemorySwap: 2 << 30}, 0, ""},
		{"plain bytes string", map[string]any{"shm_size": "1024", "mem_limit": "100b"}, DockerLimits{ShmSize: 1024, Memory: 100}, 0, ""},
		{"integral float", map[string]any{"pids_limit": float64(100)}, DockerLimits{PidsLimit: 100}, 0, ""},
		{"cpuset and privileged false", map[string]any{"cpuset_cpus": "0-3,6", "privileged": false}, DockerLimits{CpusetCPUs: "0-3,6"}, 0, ""},
		{"privileged", map[string]any{"privileged": true}, DockerLimits{}, 0, `"privileged": sbx never runs privileged sandboxes`},
		{"cap_add", map[string]any{"cap_add": []any{"SYS_ADMIN"}}, DockerLimits{}, 0, `"cap_add": not supported by sbx`},
		{"security_opt", map[string]any{"security_opt": []any{"seccomp=unconfined"}}, DockerLimits{}, 0, `"security_opt": not supported`},
		{"ulimits", map[string]any{"ulimits": []any{}}, DockerLimits{}, 0, `"ulimits": not supported`},
		{"cpus", map[string]any{"cpus": int64(2)}, DockerLimits{}, 0, `"cpus": not a docker-py argument; use nano_cpus`},
		{"unknown", map[string]any{"network_mode": "host"}, DockerLimits{}, 0, `"network_mode": not supported by sbx`},
		{"bad size", map[string]any{"mem_limit": "4 gigs"}, DockerLimits{}, 0, `"mem_limit": "4 gigs": want a size like 512m`},
		{"inf size", map[string]any{"mem_limit": "inf"}, DockerLimits{}, 0, `want a size`},
		{"huge size", map[string]any{"mem_limit": "99999999999g"}, DockerLimits{}, 0, `too large`},
		{"negative size", map[string]any{"shm_size": int64(-5)}, DockerLimits{}, 0, `"shm_size": -5 is negative`},
		{"bool for int", map[string]any{"cpu_period": true}, DockerLimits{}, 0, `"cpu_period": want an integer, got the boolean true`},
		{"period range", map[string]any{"cpu_period": int64(10)}, DockerLimits{}, 0, `outside 1000–1000000`},
		{"bad cpuset", map[string]any{"cpuset_cpus": "all"}, DockerLimits{}, 0, `"cpuset_cpus": "all"`},
		{"nano and quota", map[string]any{"nano_cpus": int64(1e9), "cpu_quota": int64(50000)}, DockerLimits{}, 0, "either nano_cpus or cpu_quota"},
		{"swap without memory", map[string]any{"memswap_limit": "1g"}, DockerLimits{}, 0, "memswap_limit needs mem_limit"},
		{"swap below memory", map[string]any{"mem_limit": "2g", "memswap_limit": "1g"}, DockerLimits{}, 0, "smaller than mem_limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDockerKwargs(tc.kwargs)
			if failed(t, err, tc.err) {
				return
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.CPUs() != tc.cpus {
				t.Errorf("CPUs() = %v, want %v", got.CPUs(), tc.cpus)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	c := mustLoad(t, "[core]\nmodal_api_token_id = \"old-id\"\nmodal_api_token_secret = \"old-secret\"\n", "MODAL_TOKEN_ID=new-id")
	if id, secret := c.ModalCredentials(); id != "new-id" || secret != "old-secret" {
		t.Errorf("ModalCredentials() = %q, %q", id, secret)
	}
	c = mustLoad(t, "", "MODAL_API_TOKEN_ID=legacy-env")
	if id, _ := c.ModalCredentials(); id != "legacy-env" {
		t.Errorf("ModalCredentials() id = %q, want it from MODAL_API_TOKEN_ID", id)
	}

	for _, tc := range []struct {
		env  []string
		name string
		uid  int
	}{
		{[]string{"SANDBOX_USER_ID=1000"}, "openhands", 1000},
		{[]string{"SANDBOX_USER_ID=4321"}, "openhands", 4321},
		{[]string{"SANDBOX_USER_ID=0"}, "root", 0},
		{[]string{"RUN_AS_OPENHANDS=false", "SANDBOX_USER_ID=1000"}, "root", 0},
		{[]string{"RUNTIME_USERNAME=me", "RUNTIME_UID=1234"}, "me", 1234},
		{[]string{"RUN_AS_OPENHANDS=false", "RUNTIME_UID=0"}, "root", 0},
	} {
		c := mustLoad(t, "", tc.env...)
		if name, uid := c.RuntimeUser(); name != tc.name || uid != tc.uid {
			t.Errorf("%v: RuntimeUser() = %s/%d, want %s/%d", tc.env, name, uid, tc.name, tc.uid)
		}
	}

	if got := mustLoad(t, "").LocalRuntimeURL(); got != "http://localhost" {
		t.Errorf("LocalRuntimeURL() = %q", got)
	}
	if got := mustLoad(t, "", "DOCKER_HOST_ADDR=10.0.0.2").LocalRuntimeURL(); got != "http://10.0.0.2" {
		t.Errorf("LocalRuntimeURL() with DOCKER_HOST_ADDR = %q", got)
	}
}

func TestDescribe(t *testing.T) {
	c := mustLoad(t, "[sandbox]\ntimeout = 30\nvolumes = \"/p:/workspace\"\n",
		"SANDBOX_API_KEY=hunter2", `SANDBOX_ADDITIONAL_NETWORKS=['n']`)
	byEnv := map[string]Setting{}
	for _, s := range c.Describe() {
		if _, dup := byEnv[s.Env]; dup {
			t.Errorf("two settings use %s", s.Env)
		}
		byEnv[s.Env] = s
		if s.Doc == "" {
			t.Errorf("%s has no meaning documented", s.Env)
		}
	}
	if len(byEnv) != len(keyTable()) {
		t.Errorf("Describe has %d settings, the table %d", len(byEnv), len(keyTable()))
	}
	for _, tc := range []struct {
		env                 string
		section, key, value string
		dflt                string
		origin              Origin
		secret              bool
	}{
		{"SANDBOX_TIMEOUT", "sandbox", "timeout", "30", "120", OriginFile, false},
		{"SANDBOX_API_KEY", "sandbox", "api_key", redacted, "", OriginEnv, true},
		{"SANDBOX_ADDITIONAL_NETWORKS", "sandbox", "additional_networks", `["n"]`, "[]", OriginEnv, false},
		{"WORKSPACE_BASE", "core", "workspace_base", "/p", "", OriginDerived, false},
		{"RUNTIME", "core", "runtime", "docker", "docker", OriginDefault, false},
		{"SANDBOX_RUNTIME_STARTUP_ENV_VARS", "sandbox", "runtime_startup_env_vars", "{}", "{}", OriginDefault, false},
		{"SANDBOX_DOCKER_RUNTIME_KWARGS", "sandbox", "docker_runtime_kwargs", "", "", OriginDefault, false},
		{"KUBERNETES_NAMESPACE", "kubernetes", "namespace", "default", "default", OriginDefault, false},
		{"DOCKER_HOST_ADDR", "", "", "", "", OriginDefault, false},
		{"MODAL_TOKEN_SECRET", "", "", "", "", OriginDefault, true},
	} {
		s, ok := byEnv[tc.env]
		if !ok {
			t.Errorf("no setting for %s", tc.env)
			continue
		}
		got := Setting{Section: s.Section, Key: s.Key, Env: s.Env, Value: s.Value, Default: s.Default, Origin: s.Origin, Secret: s.Secret}
		want := Setting{Section: tc.section, Key: tc.key, Env: tc.env, Value: tc.value, Default: tc.dflt, Origin: tc.origin, Secret: tc.secret}
		if got != want {
			t.Errorf("%s: got %+v, want %+v", tc.env, got, want)
		}
	}
}

// TestDescribeRoundTrip checks that each value Describe shows, set back
// through its environment variable, loads to the same configuration: what
// `sbx config` prints can be pasted into an environment.
func TestDescribeRoundTrip(t *testing.T) {
	c := mustLoad(t, `
[core]
runtime = "remote"
[sandbox]
runtime_startup_env_vars = { A = "x'y\"z", B = "ü\n" }
docker_runtime_kwargs = { mem_limit = "1g", pids_limit = 10, privileged = false }
trusted_dirs = ["/a", "b c"]
volumes = "/p:/workspace:ro"
`)
	var env []string
	for _, s := range c.Describe() {
		if s.Section != sectionHost && s.Value != "" && !s.Secret && s.Origin != OriginDerived {
			env = append(env, s.Env+"="+s.Value)
		}
	}
	c2 := mustLoad(t, "", env...)
	c.origins, c2.origins = nil, nil
	c.File = ""
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("round trip through the environment differs:\n got %+v\nwant %+v", c2, c)
	}
}

func TestKeyTable(t *testing.T) {
	seen := map[string]bool{}
	counts := map[string]int{}
	def := defaults(1)
	for _, k := range keyTable() {
		if seen[k.env()] {
			t.Errorf("duplicate variable %s", k.env())
		}
		seen[k.env()] = true
		counts[k.section]++
		if k.name != strings.ToLower(k.name) && k.section != sectionHost {
			t.Errorf("key %q is not lower case", k.name)
		}
		// Every field kind must be settable from the environment.
		if k.prefix {
			continue
		}
		if err := k.setFromEnv(def, "1"); err != nil && !strings.Contains(err.Error(), "literal") && !strings.Contains(err.Error(), "want") {
			t.Errorf("%s: unsupported field type: %v", k.env(), err)
		}
	}
	// Spec §12.2 lists 34 [sandbox] keys and §11 13 [kubernetes] keys;
	// sbx adds 5 for egress policies (network_policy, network_policies,
	// egress_networks, egress_dns, egress_subnets).
	if counts[sectionSandbox] != 34+5 || counts[sectionKubernetes] != 13 {
		t.Errorf("table has %d sandbox and %d kubernetes keys, want 39 and 13", counts[sectionSandbox], counts[sectionKubernetes])
	}
}

// TestConfigurationDoc fails when docs/configuration.md is not what the key
// table generates; run `go generate ./config` (or this test with -update)
// to rewrite it.
func TestConfigurationDoc(t *testing.T) {
	const path = "../docs/configuration.md"
	want := markdown()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run: go generate ./config", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale; run: go generate ./config", path)
	}
}

func TestEnvironWithoutGetenv(t *testing.T) {
	// Environ alone must drive both lookups, and the last duplicate wins.
	c, err := Load(Source{
		Environ: func() []string { return []string{"SANDBOX_TIMEOUT=5", "SANDBOX_TIMEOUT=6", "BROKEN"} },
		Getuid:  func() int { return 1 },
		Getwd:   func() (string, error) { return t.TempDir(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox.Timeout != 6 {
		t.Errorf("timeout = %d, want 6", c.Sandbox.Timeout)
	}
	// Getenv given explicitly is used for keys.
	c, err = Load(Source{
		Getenv:  func(k string) string { return map[string]string{"RUNTIME": "local"}[k] },
		Environ: func() []string { return nil },
		Getuid:  func() int { return 1 },
		Getwd:   func() (string, error) { return t.TempDir(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime != "local" {
		t.Errorf("runtime = %q, want local", c.Runtime)
	}
}

// ParseSize is the one size parser (docker_runtime_kwargs, the CLI's
// --memory): docker's units in powers of 1024, nothing else.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "1k": 1024, "512m": 512 << 20, "2g": 2 << 30, "2G": 2 << 30,
		"1.5g": 3 << 29, "3gb": 3 << 30, "1t": 1 << 40, "64MiB": 64 << 20, " 4g ": 4 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "g", "-1g", "-1", "0", "lots", "1e9", "1e30t", "99999999999999t", "4 gigs"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}
