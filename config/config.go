// Package config loads sbx's runtime configuration the way OpenHands loads
// its own, so that a config.toml and the environment variables written for
// OpenHands configure sbx unchanged: defaults, then config.toml, then the
// environment, then finalisation (volumes decide the workspace, and so on).
//
// Only the runtime's part of OpenHands' configuration is read: [core] keys
// that concern a runtime, all of [sandbox] and [kubernetes], and the host-side
// environment variables OpenHands' runtimes read directly. Every supported
// key is described once, in the table in keys.go; Describe and
// docs/configuration.md are generated from it.
package config

//go:generate go test -run=^TestConfigurationDoc$ -update .

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Source says where Load reads from. The zero value reads the process's
// environment and ./config.toml; tests and embedders replace the functions so
// nothing leaks in from the real environment.
type Source struct {
	// Getenv looks up one variable. nil means os.Getenv, unless Environ is
	// set: then variables are looked up in Environ, so that a test giving
	// only Environ sees one consistent environment.
	Getenv func(string) string
	// Environ lists the environment as KEY=value; it is needed to find the
	// SANDBOX_ENV_<NAME> variables. nil means os.Environ.
	Environ func() []string
	// File is the config.toml to read. "" means $SBX_CONFIG if set, else
	// ./config.toml if it exists, else none. A file named explicitly (here
	// or in $SBX_CONFIG) that does not exist is an error.
	File string
	// Getuid returns the host user id, the default of sandbox.user_id.
	// nil means os.Getuid.
	Getuid func() int
	// Getwd returns the directory relative paths are resolved against
	// (workspace_base, a relative File). nil means os.Getwd.
	Getwd func() (string, error)
}

// ConfigFileEnv names the variable that points at the config file when
// Source.File is empty.
const ConfigFileEnv = "SBX_CONFIG"

// Config is the runtime configuration. Field comments give the config.toml
// key; docs/configuration.md gives defaults, environment variables and
// meaning.
type Config struct {
	// File is the config.toml that was read, "" if none.
	File string

	// [core]

	Runtime                     string // runtime; "eventstream" is stored as "docker"
	WorkspaceBase               string // workspace_base (absolute after Load)
	WorkspaceMountPath          string // workspace_mount_path
	WorkspaceMountPathInSandbox string // workspace_mount_path_in_sandbox
	WorkspaceMountRewrite       string // workspace_mount_rewrite, "from:to"
	WorkspaceGuard              bool   // workspace_guard (sbx): the workspace mount is guarded
	WorkspaceGuardMode          string // workspace_guard_mode (sbx): "", "overlay" or "copy"
	RunAsOpenHands              bool   // run_as_openhands
	EnableBrowser               bool   // enable_browser
	Debug                       bool   // debug
	InitGitInEmptyWorkspace     bool   // init_git_in_empty_workspace
	GitUserName                 string // git_user_name
	GitUserEmail                string // git_user_email
	CacheDir                    string // cache_dir
	ModalAPITokenID             string // modal_api_token_id (older releases; see ModalCredentials)
	ModalAPITokenSecret         string // modal_api_token_secret

	Sandbox    SandboxConfig
	Kubernetes KubernetesConfig
	Host       HostEnv

	// origins records where each key's value came from, by env var name;
	// a missing entry means the default.
	origins map[string]Origin
	// defaultUID is the user_id default Load used, so Describe can show it.
	defaultUID int
}

// SandboxConfig holds every [sandbox] key. Durations are in seconds, as in
// OpenHands.
type SandboxConfig struct {
	RemoteRuntimeAPIURL         string            // remote_runtime_api_url
	LocalRuntimeURL             string            // local_runtime_url
	KeepRuntimeAlive            bool              // keep_runtime_alive
	PauseClosedRuntimes         bool              // pause_closed_runtimes
	RmAllContainers             bool              // rm_all_containers
	APIKey                      string            // api_key
	BaseContainerImage          string            // base_container_image
	RuntimeContainerImage       string            // runtime_container_image
	UserID                      int               // user_id
	Timeout                     int               // timeout
	RemoteRuntimeInitTimeout    int               // remote_runtime_init_timeout
	RemoteRuntimeAPITimeout     int               // remote_runtime_api_timeout
	RemoteRuntimeEnableRetries  bool              // remote_runtime_enable_retries
	RemoteRuntimeClass          string            // remote_runtime_class: "", "gvisor" or "sysbox"
	EnableAutoLint              bool              // enable_auto_lint
	UseHostNetwork              bool              // use_host_network
	AdditionalNetworks          []string          // additional_networks
	NetworkPolicy               string            // network_policy: a name from NetworkPolicies or a policy
	NetworkPolicies             map[string]string // network_policies: named policies
	EgressNetworks              []string          // egress_networks: where egress proxies reach out
	EgressDNS                   string            // egress_dns: the resolver egress proxies use
	EgressSubnets               string            // egress_subnets: where sandbox networks are carved from
	RuntimeBindingAddress       string            // runtime_binding_address
	RuntimeExtraBuildArgs       []string          // runtime_extra_build_args
	InitializePlugins           bool              // initialize_plugins
	ForceRebuildRuntime         bool              // force_rebuild_runtime
	RuntimeExtraDeps            string            // runtime_extra_deps
	RuntimeStartupEnvVars       map[string]string // runtime_startup_env_vars
	BrowsergymEvalEnv           string            // browsergym_eval_env
	Platform                    string            // platform
	CloseDelay                  int               // close_delay
	RemoteRuntimeResourceFactor int               // remote_runtime_resource_factor
	EnableGPU                   bool              // enable_gpu
	DockerRuntimeKwargs         map[string]any    // docker_runtime_kwargs, as written
	SelectedRepo                string            // selected_repo
	TrustedDirs                 []string          // trusted_dirs
	VSCodePort                  int               // vscode_port; 0 means pick one
	Volumes                     string            // volumes, as written; see Config.Mounts
	CUDAVisibleDevices          string            // cuda_visible_devices

	// DockerLimits is DockerRuntimeKwargs checked and typed by Load.
	DockerLimits DockerLimits
}

// KubernetesConfig holds the [kubernetes] keys, so that OpenHands config
// files that have them load.
type KubernetesConfig struct {
	Namespace             string // namespace
	IngressDomain         string // ingress_domain
	PVCStorageSize        string // pvc_storage_size
	PVCStorageClass       string // pvc_storage_class
	ResourceCPURequest    string // resource_cpu_request
	ResourceMemoryRequest string // resource_memory_request
	ResourceMemoryLimit   string // resource_memory_limit
	ImagePullSecret       string // image_pull_secret
	IngressTLSSecret      string // ingress_tls_secret
	NodeSelectorKey       string // node_selector_key
	NodeSelectorVal       string // node_selector_val
	TolerationsYAML       string // tolerations_yaml
	Privileged            bool   // privileged; Load refuses true
}

// HostEnv holds the host-side environment variables OpenHands' runtimes read
// directly rather than through a config key (spec §12.4).
type HostEnv struct {
	// SandboxEnv is every SANDBOX_ENV_<NAME>=value, keyed by <NAME>: the
	// variables to set inside the sandbox.
	SandboxEnv       map[string]string
	DockerHostAddr   string // DOCKER_HOST_ADDR
	RuntimeUsername  string // RUNTIME_USERNAME
	RuntimeUID       *int   // RUNTIME_UID; nil when unset
	VolumeOverlays   string // SANDBOX_VOLUME_OVERLAYS (absolute after Load)
	RuntimeImageRepo string // OH_RUNTIME_RUNTIME_IMAGE_REPO
	DebugRuntime     bool   // DEBUG_RUNTIME
	ModalTokenID     string // MODAL_TOKEN_ID
	ModalTokenSecret string // MODAL_TOKEN_SECRET
}

// Default values that other packages may want to compare against.
const (
	DefaultBaseContainerImage = "nikolaik/python-nodejs:python3.12-nodejs22"
	DefaultWorkspaceInSandbox = "/workspace"
	DefaultRuntime            = "docker"
	// DefaultBindingAddress is loopback, not OpenHands' 0.0.0.0: a sandbox's
	// server executes arbitrary commands for anyone who can reach it, so
	// publishing it on every interface must be asked for.
	DefaultBindingAddress = "127.0.0.1"
	// fallbackUID stands in for the host uid where there is none (Windows).
	fallbackUID = 1000
)

// Default returns the configuration with every key at its default, for the
// current host user.
func Default() *Config { return defaults(hostUID(os.Getuid)) }

func hostUID(getuid func() int) int {
	if uid := getuid(); uid >= 0 {
		return uid
	}
	return fallbackUID
}

// defaults is the one place default values are written down; the docs and
// Describe read them from here through the key table.
func defaults(uid int) *Config {
	return &Config{
		Runtime:                     DefaultRuntime,
		WorkspaceMountPathInSandbox: DefaultWorkspaceInSandbox,
		RunAsOpenHands:              true,
		EnableBrowser:               true,
		GitUserName:                 "openhands",
		GitUserEmail:                "openhands@all-hands.dev",
		CacheDir:                    "/tmp/cache",
		Sandbox: SandboxConfig{
			RemoteRuntimeAPIURL:         "http://localhost:8000",
			LocalRuntimeURL:             "http://localhost",
			PauseClosedRuntimes:         true,
			BaseContainerImage:          DefaultBaseContainerImage,
			UserID:                      uid,
			Timeout:                     120,
			RemoteRuntimeInitTimeout:    180,
			RemoteRuntimeAPITimeout:     180,
			RemoteRuntimeEnableRetries:  true,
			AdditionalNetworks:          []string{},
			NetworkPolicies:             map[string]string{},
			EgressNetworks:              []string{},
			RuntimeBindingAddress:       DefaultBindingAddress,
			InitializePlugins:           true,
			RuntimeStartupEnvVars:       map[string]string{},
			CloseDelay:                  3600,
			RemoteRuntimeResourceFactor: 1,
			TrustedDirs:                 []string{},
		},
		Kubernetes: KubernetesConfig{
			Namespace:             "default",
			IngressDomain:         "localhost",
			PVCStorageSize:        "2Gi",
			ResourceCPURequest:    "1",
			ResourceMemoryRequest: "1Gi",
			ResourceMemoryLimit:   "2Gi",
		},
		Host: HostEnv{
			SandboxEnv:       map[string]string{},
			RuntimeImageRepo: "ghcr.io/openhands/runtime",
		},
		defaultUID: uid,
	}
}

// Load reads the configuration: defaults, overridden by config.toml,
// overridden by the environment, then finalised. Every problem found is
// reported, not just the first; each is of class errdefs.ErrInvalidArgument
// (errdefs.ErrNotFound for a config file that was named but does not exist).
func Load(src Source) (*Config, error) {
	src = src.withDefaults()
	path, explicit, err := src.configPath()
	if err != nil {
		return nil, err
	}
	var data []byte
	if path != "" {
		data, err = os.ReadFile(src.resolve(path))
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			path = ""
		case errors.Is(err, fs.ErrNotExist):
			return nil, errdefs.Wrap(errdefs.ErrNotFound,
				fmt.Sprintf("config file %s does not exist", path), err)
		case err != nil:
			return nil, errdefs.Wrap(errdefs.ErrInvalidArgument,
				fmt.Sprintf("reading config file: %v", err), err)
		}
	}
	return load(src, path, data)
}

// load is Load after the file has been read; fuzz tests enter here.
func load(src Source, file string, data []byte) (*Config, error) {
	src = src.withDefaults()
	c := defaults(hostUID(src.Getuid))
	c.File = file
	c.origins = map[string]Origin{}
	var errs []error
	if file != "" {
		errs = append(errs, c.applyTOML(file, data)...)
	}
	errs = append(errs, c.applyEnv(src.Getenv, src.Environ)...)
	// Finalised even after errors: a value that failed to convert kept its
	// previous one, so the checks below report only real further problems.
	errs = append(errs, c.finalise(src.Getwd)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func (s Source) withDefaults() Source {
	if s.Getenv == nil {
		if s.Environ != nil {
			environ := s.Environ
			s.Getenv = func(name string) string { return lookupEnviron(environ(), name) }
		} else {
			s.Getenv = os.Getenv
		}
	}
	if s.Environ == nil {
		s.Environ = os.Environ
	}
	if s.Getuid == nil {
		s.Getuid = os.Getuid
	}
	if s.Getwd == nil {
		s.Getwd = os.Getwd
	}
	return s
}

func lookupEnviron(environ []string, name string) string {
	// The last assignment wins, as with a duplicated variable in execve.
	v := ""
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// configPath picks the config file and says whether the user named it (so
// that its absence is an error).
func (s Source) configPath() (path string, explicit bool, err error) {
	if s.File != "" {
		return s.File, true, nil
	}
	if p := s.Getenv(ConfigFileEnv); p != "" {
		return p, true, nil
	}
	return "config.toml", false, nil
}

// resolve makes a relative path relative to Getwd rather than to whatever
// the process's directory is, so an injected Getwd is honoured.
func (s Source) resolve(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	if wd, err := s.Getwd(); err == nil {
		return filepath.Join(wd, path)
	}
	return path
}

// ModalCredentials returns the Modal token id and secret: MODAL_TOKEN_ID /
// MODAL_TOKEN_SECRET when set, else the older [core] modal_api_token_id /
// modal_api_token_secret (or their variables MODAL_API_TOKEN_ID/_SECRET).
func (c *Config) ModalCredentials() (id, secret string) {
	return firstNonEmpty(c.Host.ModalTokenID, c.ModalAPITokenID),
		firstNonEmpty(c.Host.ModalTokenSecret, c.ModalAPITokenSecret)
}

// RuntimeUser is the one rule for the user the agent runs as. With
// run_as_openhands the user is "openhands" with SANDBOX_USER_ID (default:
// the host user's uid), so files the agent writes into a mounted workspace
// belong to the host user; a user id of 0 means root, as does
// run_as_openhands=false. RUNTIME_USERNAME and RUNTIME_UID override both.
func (c *Config) RuntimeUser() (name string, uid int) {
	name, uid = "root", 0
	if c.RunAsOpenHands && c.Sandbox.UserID != 0 {
		name, uid = "openhands", c.Sandbox.UserID
	}
	if c.Host.RuntimeUsername != "" {
		name = c.Host.RuntimeUsername
	}
	if c.Host.RuntimeUID != nil {
		uid = *c.Host.RuntimeUID
	}
	return name, uid
}

// LocalRuntimeURL returns the scheme and host through which the host reaches
// a local or Docker sandbox's ports: http://$DOCKER_HOST_ADDR when set, else
// sandbox.local_runtime_url.
func (c *Config) LocalRuntimeURL() string {
	if c.Host.DockerHostAddr != "" {
		return "http://" + c.Host.DockerHostAddr
	}
	return c.Sandbox.LocalRuntimeURL
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
