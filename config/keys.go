package config

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/internal/pyliteral"
	"github.com/sbx-dev/sbx/internal/suggest"
)

// Section names as they appear in config.toml. Host-side environment
// variables have no section.
const (
	sectionCore       = "core"
	sectionSandbox    = "sandbox"
	sectionKubernetes = "kubernetes"
	sectionHost       = ""
)

// sandboxEnvPrefix marks variables to forward into the sandbox, prefix
// stripped.
const sandboxEnvPrefix = "SANDBOX_ENV_"

// key describes one supported setting. The Go type of the field it points
// at decides how values are converted, so the table cannot disagree with
// the struct.
type key struct {
	section string
	// name is the key inside its section; for a host-side variable, the
	// variable's name.
	name string
	// field points into a Config: *string, *bool, *int, **int, *[]string,
	// *map[string]string or *map[string]any.
	field func(*Config) any
	// secret values are redacted by Describe.
	secret bool
	// prefix marks SANDBOX_ENV_<NAME>, which is a family of variables.
	prefix bool
	// defaultDoc replaces the rendered default in the docs when the real
	// default depends on the host or needs words.
	defaultDoc string
	doc        string // what the key means
	note       string // where sbx differs from OpenHands or adds a rule
}

// env is the variable that overrides the key: upper-cased name, prefixed
// with the section for the nested models, as OpenHands derives it.
func (k *key) env() string {
	switch k.section {
	case sectionSandbox, sectionKubernetes:
		return strings.ToUpper(k.section + "_" + k.name)
	case sectionHost:
		if k.prefix {
			return sandboxEnvPrefix + "<NAME>"
		}
		return k.name
	}
	return strings.ToUpper(k.name)
}

// label names the key the way a user would look for it in config.toml.
func (k *key) label() string {
	if k.section == sectionHost {
		return k.env()
	}
	return "[" + k.section + "] " + k.name
}

// keyTable is the single list of supported settings, in documentation
// order. It is a function rather than a variable so that nothing can change
// it between calls.
func keyTable() []key {
	return []key{
		// [core]
		{section: sectionCore, name: "runtime", field: func(c *Config) any { return &c.Runtime },
			doc:  "Which runtime starts sandboxes: `docker`, `remote`, `local`, `kubernetes`, `cli`, `modal`, …",
			note: "`eventstream` is read as `docker`. Whether a name is supported is up to the driver registry, not this package."},
		{section: sectionCore, name: "workspace_base", field: func(c *Config) any { return &c.WorkspaceBase },
			doc:  "Host directory mounted as the agent's workspace (deprecated: prefer `sandbox.volumes`).",
			note: "Made absolute. When `volumes` is set it is replaced by the host side of the mount targeting `/workspace`, or cleared."},
		{section: sectionCore, name: "workspace_mount_path", field: func(c *Config) any { return &c.WorkspaceMountPath },
			doc:  "Host path that is actually mounted, when it differs from `workspace_base` (Docker-in-Docker); deprecated.",
			note: "Defaults to `workspace_base`; made absolute."},
		{section: sectionCore, name: "workspace_mount_path_in_sandbox", field: func(c *Config) any { return &c.WorkspaceMountPathInSandbox },
			doc:  "Where the workspace appears inside the sandbox.",
			note: "Must be absolute."},
		{section: sectionCore, name: "workspace_mount_rewrite", field: func(c *Config) any { return &c.WorkspaceMountRewrite },
			doc:  "`from:to`: rewrite the host path of the legacy workspace mount (the workspace seen from another machine or container).",
			note: "sbx replaces a leading path prefix only (OpenHands replaces every occurrence of `from`); ignored when `volumes` is set."},
		{section: sectionCore, name: "workspace_guard", field: func(c *Config) any { return &c.WorkspaceGuard },
			doc:  "Guard the workspace mount: the agent works on a copy-on-write view of the host folder, and its changes reach the folder only through `sbx apply` (review them with `sbx diff`).",
			note: "sbx's own (`WORKSPACE_GUARD`, beside OpenHands' `WORKSPACE_*` keys). Per mount: the mode `guard` in `volumes`, or `sbx run --guard`."},
		{section: sectionCore, name: "workspace_guard_mode", field: func(c *Config) any { return &c.WorkspaceGuardMode },
			defaultDoc: "\"\" (overlay, else copy)",
			doc:        "How guarded mounts are made: empty for an overlay where the engine can mount one and a copy where it cannot, `overlay` or `copy` to insist.",
			note:       "sbx's own. Other values are rejected."},
		{section: sectionCore, name: "run_as_openhands", field: func(c *Config) any { return &c.RunAsOpenHands },
			doc: "Run the agent as user `openhands` (uid 1000) instead of root; see `RUNTIME_USERNAME`, `RUNTIME_UID`."},
		{section: sectionCore, name: "enable_browser", field: func(c *Config) any { return &c.EnableBrowser },
			doc: "Give the agent a browser in the sandbox."},
		{section: sectionCore, name: "debug", field: func(c *Config) any { return &c.Debug },
			doc: "Debug logging; also sets `DEBUG=true` inside the sandbox."},
		{section: sectionCore, name: "init_git_in_empty_workspace", field: func(c *Config) any { return &c.InitGitInEmptyWorkspace },
			doc: "Run `git init` in a workspace that is empty."},
		{section: sectionCore, name: "git_user_name", field: func(c *Config) any { return &c.GitUserName },
			doc: "`user.name` configured for git in the sandbox."},
		{section: sectionCore, name: "git_user_email", field: func(c *Config) any { return &c.GitUserEmail },
			doc: "`user.email` configured for git in the sandbox."},
		{section: sectionCore, name: "cache_dir", field: func(c *Config) any { return &c.CacheDir },
			doc:  "Host directory for caches.",
			note: "Loading does not create it (OpenHands does)."},
		{section: sectionCore, name: "modal_api_token_id", field: func(c *Config) any { return &c.ModalAPITokenID }, secret: true,
			doc:  "Modal token id, as older OpenHands releases read it.",
			note: "`MODAL_TOKEN_ID` wins when both are set; with neither, `RUNTIME=modal` uses the active profile of Modal's own `~/.modal.toml` (`MODAL_CONFIG_PATH`, `MODAL_PROFILE`)."},
		{section: sectionCore, name: "modal_api_token_secret", field: func(c *Config) any { return &c.ModalAPITokenSecret }, secret: true,
			doc:  "Modal token secret, as older OpenHands releases read it.",
			note: "`MODAL_TOKEN_SECRET` wins when both are set."},

		// [sandbox]
		{section: sectionSandbox, name: "remote_runtime_api_url", field: func(c *Config) any { return &c.Sandbox.RemoteRuntimeAPIURL },
			doc: "Base URL of the Runtime API used by the `remote` runtime."},
		{section: sectionSandbox, name: "local_runtime_url", field: func(c *Config) any { return &c.Sandbox.LocalRuntimeURL },
			doc:  "Scheme and host through which the host reaches Docker and local sandboxes.",
			note: "`DOCKER_HOST_ADDR` overrides it."},
		{section: sectionSandbox, name: "keep_runtime_alive", field: func(c *Config) any { return &c.Sandbox.KeepRuntimeAlive },
			doc: "Leave the sandbox running when the session closes."},
		{section: sectionSandbox, name: "pause_closed_runtimes", field: func(c *Config) any { return &c.Sandbox.PauseClosedRuntimes },
			doc: "Remote runtime: pause a sandbox that is kept alive when its session closes."},
		{section: sectionSandbox, name: "rm_all_containers", field: func(c *Config) any { return &c.Sandbox.RmAllContainers },
			doc: "Docker: on close, stop every `openhands-runtime-*` container, not only this session's."},
		{section: sectionSandbox, name: "api_key", field: func(c *Config) any { return &c.Sandbox.APIKey }, secret: true,
			doc: "Runtime API key, sent as `X-API-Key`."},
		{section: sectionSandbox, name: "base_container_image", field: func(c *Config) any { return &c.Sandbox.BaseContainerImage },
			doc:  "Image the runtime image is built from.",
			note: "An empty value means the default."},
		{section: sectionSandbox, name: "runtime_container_image", field: func(c *Config) any { return &c.Sandbox.RuntimeContainerImage },
			doc: "Ready-made runtime image; when set, nothing is built."},
		{section: sectionSandbox, name: "user_id", field: func(c *Config) any { return &c.Sandbox.UserID },
			defaultDoc: "host uid (1000 where there is none)",
			doc:        "Host uid, forwarded to the sandbox; OpenHands ≤ 0.54 also ran the agent with it.",
			note:       "Must not be negative."},
		{section: sectionSandbox, name: "timeout", field: func(c *Config) any { return &c.Sandbox.Timeout },
			doc:  "Hard timeout in seconds for actions that set none.",
			note: "Must be at least 1."},
		{section: sectionSandbox, name: "remote_runtime_init_timeout", field: func(c *Config) any { return &c.Sandbox.RemoteRuntimeInitTimeout },
			doc:  "Seconds the remote runtime may take to become ready.",
			note: "Must be at least 1. `modal`: bounds copying sandboxd in and the wait for it to answer, after Modal accepted the sandbox."},
		{section: sectionSandbox, name: "remote_runtime_api_timeout", field: func(c *Config) any { return &c.Sandbox.RemoteRuntimeAPITimeout },
			doc:  "Timeout in seconds of each Runtime API request.",
			note: "Must be at least 1."},
		{section: sectionSandbox, name: "remote_runtime_enable_retries", field: func(c *Config) any { return &c.Sandbox.RemoteRuntimeEnableRetries },
			doc: "Retry network errors when talking to a remote sandbox."},
		{section: sectionSandbox, name: "remote_runtime_class", field: func(c *Config) any { return &c.Sandbox.RemoteRuntimeClass },
			doc:  "Remote sandbox isolation: unset or `gvisor` (gVisor), or `sysbox`.",
			note: "Other values are rejected."},
		{section: sectionSandbox, name: "enable_auto_lint", field: func(c *Config) any { return &c.Sandbox.EnableAutoLint },
			doc: "Lint files after edits (exports `ENABLE_AUTO_LINT=true`)."},
		{section: sectionSandbox, name: "use_host_network", field: func(c *Config) any { return &c.Sandbox.UseHostNetwork },
			doc: "Docker: share the host's network instead of publishing ports."},
		{section: sectionSandbox, name: "additional_networks", field: func(c *Config) any { return &c.Sandbox.AdditionalNetworks },
			doc: "Docker networks to connect the sandbox to after it starts."},
		{section: sectionSandbox, name: "network_policy", field: func(c *Config) any { return &c.Sandbox.NetworkPolicy },
			defaultDoc: "`open`",
			doc:        "Egress policy of new sandboxes: `none` (loopback only), `open`, an allow-list (`pypi.org,*.pythonhosted.org,10.0.0.0/8`, `!entry` denies, `open,!entry` is open with a deny-list), or the name of one of `network_policies`.",
			note:       "sbx only. Enforced outside the sandbox (Docker: an internal network and sbx's egress proxy); a runtime that cannot enforce it refuses to start the sandbox."},
		{section: sectionSandbox, name: "network_policies", field: func(c *Config) any { return &c.Sandbox.NetworkPolicies },
			doc:  "Named egress policies, `name = \"policy\"` in `[sandbox.network_policies]`, for `network_policy` and `sbx run --network-policy NAME`.",
			note: "sbx only. A name shadows a domain of the same spelling."},
		{section: sectionSandbox, name: "egress_networks", field: func(c *Config) any { return &c.Sandbox.EgressNetworks },
			defaultDoc: "`[\"bridge\"]`",
			doc:        "Docker networks with a route out that egress proxies join; the first publishes the proxy's control port on 127.0.0.1.",
			note:       "sbx only."},
		{section: sectionSandbox, name: "egress_subnets", field: func(c *Config) any { return &c.Sandbox.EgressSubnets },
			defaultDoc: "`10.213.0.0/16`",
			doc:        "IPv4 range each policed sandbox's own network (a /29) is carved from; the host gets no address on them.",
			note:       "sbx only. Change it only if the range is in use where the proxies must reach."},
		{section: sectionSandbox, name: "egress_dns", field: func(c *Config) any { return &c.Sandbox.EgressDNS },
			doc:  "Resolver (`host:port`) egress proxies resolve destinations with; unset, the one Docker gives them.",
			note: "sbx only."},
		{section: sectionSandbox, name: "runtime_binding_address", field: func(c *Config) any { return &c.Sandbox.RuntimeBindingAddress },
			doc:  "Host address the sandbox's ports are published on.",
			note: "sbx defaults to `127.0.0.1`, OpenHands to `0.0.0.0`: a sandbox server runs commands for whoever reaches it, so exposing it to the network must be asked for. Must be an IP address."},
		{section: sectionSandbox, name: "runtime_extra_build_args", field: func(c *Config) any { return &c.Sandbox.RuntimeExtraBuildArgs },
			doc: "Extra arguments for `docker buildx build` when building the runtime image."},
		{section: sectionSandbox, name: "initialize_plugins", field: func(c *Config) any { return &c.Sandbox.InitializePlugins },
			doc: "Initialise plugins (not read by OpenHands' runtime code)."},
		{section: sectionSandbox, name: "force_rebuild_runtime", field: func(c *Config) any { return &c.Sandbox.ForceRebuildRuntime },
			doc: "Build the runtime image from scratch even when a cached one exists."},
		{section: sectionSandbox, name: "runtime_extra_deps", field: func(c *Config) any { return &c.Sandbox.RuntimeExtraDeps },
			doc: "Shell commands appended to the runtime image build (may use `$OH_INTERPRETER_PATH`)."},
		{section: sectionSandbox, name: "runtime_startup_env_vars", field: func(c *Config) any { return &c.Sandbox.RuntimeStartupEnvVars },
			doc:  "Environment of the sandbox server, also exported in the agent's shell.",
			note: "Values must be strings (integers are converted); names must be non-empty and contain no `=`."},
		{section: sectionSandbox, name: "browsergym_eval_env", field: func(c *Config) any { return &c.Sandbox.BrowsergymEvalEnv },
			doc: "BrowserGym evaluation environment for the browser."},
		{section: sectionSandbox, name: "platform", field: func(c *Config) any { return &c.Sandbox.Platform },
			doc: "Platform to build the runtime image for, e.g. `linux/amd64`."},
		{section: sectionSandbox, name: "close_delay", field: func(c *Config) any { return &c.Sandbox.CloseDelay },
			doc:  "Seconds of inactivity after which the app server closes a conversation and its sandbox.",
			note: "Must not be negative. `modal`: the sandbox's Modal idle timeout (0: none); its lifetime is Modal's longest, 24 h."},
		{section: sectionSandbox, name: "remote_runtime_resource_factor", field: func(c *Config) any { return &c.Sandbox.RemoteRuntimeResourceFactor },
			doc:  "Resource multiplier for remote sandboxes.",
			note: "Must be 1, 2, 4 or 8. `modal`: asks for this many CPUs and 2 GiB of memory per unit, unless `docker_runtime_kwargs` or `sbx run --cpus/--memory` set limits."},
		{section: sectionSandbox, name: "enable_gpu", field: func(c *Config) any { return &c.Sandbox.EnableGPU },
			doc: "Give the sandbox the host's GPUs."},
		{section: sectionSandbox, name: "docker_runtime_kwargs", field: func(c *Config) any { return &c.Sandbox.DockerRuntimeKwargs },
			doc:  "Extra docker-py `containers.run` arguments.",
			note: "sbx accepts only resource limits: `mem_limit`, `memswap_limit`, `shm_size` (bytes or `\"4g\"`), `cpu_period`, `cpu_quota`, `nano_cpus`, `cpuset_cpus`, `pids_limit`, and `privileged = false`. `privileged = true` is refused (sbx never runs privileged sandboxes); `cap_add`, `security_opt`, `ulimits` and any other key are errors."},
		{section: sectionSandbox, name: "selected_repo", field: func(c *Config) any { return &c.Sandbox.SelectedRepo },
			doc: "Repository selected for the session (resolver and CLI helper)."},
		{section: sectionSandbox, name: "trusted_dirs", field: func(c *Config) any { return &c.Sandbox.TrustedDirs },
			doc: "Directories the OpenHands CLI trusts."},
		{section: sectionSandbox, name: "vscode_port", field: func(c *Config) any { return &c.Sandbox.VSCodePort },
			defaultDoc: "null (a free port)",
			doc:        "Fixed host port for VS Code (Docker).",
			note:       "0 means unset; otherwise 1–65535."},
		{section: sectionSandbox, name: "volumes", field: func(c *Config) any { return &c.Sandbox.Volumes },
			doc:  "Mounts, comma separated: `host:container[:mode]`. A host part that is `volume:<name>` or not absolute is a named volume; mode defaults to `rw`; a mode containing `overlay` is a copy-on-write mount (see `SANDBOX_VOLUME_OVERLAYS`). A mount on `/workspace` becomes the workspace.",
			note: "`volume:<name>` is recognised before splitting on `:` (OpenHands splits first and so cannot parse it). A relative host part must be a valid volume name (so `./dir` is an error, not a volume called `./dir`). Blank entries are skipped; two mounts on one target, a relative target, and overlay on a named volume are errors."},
		{section: sectionSandbox, name: "cuda_visible_devices", field: func(c *Config) any { return &c.Sandbox.CUDAVisibleDevices },
			doc: "GPU ids to give the sandbox, comma separated (with `enable_gpu`)."},

		// [kubernetes]
		{section: sectionKubernetes, name: "namespace", field: func(c *Config) any { return &c.Kubernetes.Namespace },
			doc: "Namespace of the sandbox pods."},
		{section: sectionKubernetes, name: "ingress_domain", field: func(c *Config) any { return &c.Kubernetes.IngressDomain },
			doc: "Domain of the VS Code ingress."},
		{section: sectionKubernetes, name: "pvc_storage_size", field: func(c *Config) any { return &c.Kubernetes.PVCStorageSize },
			doc: "Size of each sandbox's workspace volume claim."},
		{section: sectionKubernetes, name: "pvc_storage_class", field: func(c *Config) any { return &c.Kubernetes.PVCStorageClass },
			doc: "Storage class of the volume claims."},
		{section: sectionKubernetes, name: "resource_cpu_request", field: func(c *Config) any { return &c.Kubernetes.ResourceCPURequest },
			doc: "CPU request of a sandbox pod."},
		{section: sectionKubernetes, name: "resource_memory_request", field: func(c *Config) any { return &c.Kubernetes.ResourceMemoryRequest },
			doc: "Memory request of a sandbox pod."},
		{section: sectionKubernetes, name: "resource_memory_limit", field: func(c *Config) any { return &c.Kubernetes.ResourceMemoryLimit },
			doc: "Memory limit of a sandbox pod."},
		{section: sectionKubernetes, name: "image_pull_secret", field: func(c *Config) any { return &c.Kubernetes.ImagePullSecret },
			doc: "Secret for pulling from a private registry."},
		{section: sectionKubernetes, name: "ingress_tls_secret", field: func(c *Config) any { return &c.Kubernetes.IngressTLSSecret },
			doc: "TLS secret of the ingress."},
		{section: sectionKubernetes, name: "node_selector_key", field: func(c *Config) any { return &c.Kubernetes.NodeSelectorKey },
			doc: "Node selector label key for sandbox pods."},
		{section: sectionKubernetes, name: "node_selector_val", field: func(c *Config) any { return &c.Kubernetes.NodeSelectorVal },
			doc: "Node selector label value for sandbox pods."},
		{section: sectionKubernetes, name: "tolerations_yaml", field: func(c *Config) any { return &c.Kubernetes.TolerationsYAML },
			doc: "Pod tolerations, as YAML."},
		{section: sectionKubernetes, name: "privileged", field: func(c *Config) any { return &c.Kubernetes.Privileged },
			doc:  "Run sandbox pods privileged (for Docker-in-Docker).",
			note: "`true` is refused: sbx never runs privileged sandboxes."},

		// Host-side environment (spec §12.4); these have no config.toml key.
		{section: sectionHost, name: sandboxEnvPrefix, prefix: true, field: func(c *Config) any { return &c.Host.SandboxEnv },
			doc:  "Each `SANDBOX_ENV_<NAME>=value` sets `<NAME>=value` inside the sandbox.",
			note: "Empty values are forwarded too. `sbx config` lists the names, not the values."},
		{section: sectionHost, name: "SANDBOX_VOLUME_OVERLAYS", field: func(c *Config) any { return &c.Host.VolumeOverlays },
			doc:  "Host directory for the writable layers of `overlay` mounts; without it overlay mounts are skipped.",
			note: "Made absolute."},
		{section: sectionHost, name: "DOCKER_HOST_ADDR", field: func(c *Config) any { return &c.Host.DockerHostAddr },
			doc: "Host (and optional port) at which the sandbox's published ports are reached; replaces `local_runtime_url` with `http://<addr>`."},
		{section: sectionHost, name: "OH_RUNTIME_RUNTIME_IMAGE_REPO", field: func(c *Config) any { return &c.Host.RuntimeImageRepo },
			doc: "Repository that built runtime images are tagged in."},
		{section: sectionHost, name: "RUNTIME_USERNAME", field: func(c *Config) any { return &c.Host.RuntimeUsername },
			doc: "User the agent runs as, overriding `run_as_openhands`."},
		{section: sectionHost, name: "RUNTIME_UID", field: func(c *Config) any { return &c.Host.RuntimeUID },
			doc:  "Uid the agent runs as, overriding `run_as_openhands`.",
			note: "Must be a non-negative integer."},
		{section: sectionHost, name: "DEBUG_RUNTIME", field: func(c *Config) any { return &c.Host.DebugRuntime },
			doc: "Stream the sandbox's logs into the host's log."},
		{section: sectionHost, name: "MODAL_TOKEN_ID", field: func(c *Config) any { return &c.Host.ModalTokenID }, secret: true,
			doc: "Modal token id (also read from `MODAL_API_TOKEN_ID` / `[core] modal_api_token_id`)."},
		{section: sectionHost, name: "MODAL_TOKEN_SECRET", field: func(c *Config) any { return &c.Host.ModalTokenSecret }, secret: true,
			doc: "Modal token secret (also read from `MODAL_API_TOKEN_SECRET` / `[core] modal_api_token_secret`)."},
	}
}

// setFromTOML stores a TOML value in the key's field. The error says what
// was wanted; the caller adds the file and key.
func (k *key) setFromTOML(c *Config, v any) error {
	switch p := k.field(c).(type) {
	case *string:
		s, ok := v.(string)
		if !ok {
			return wrongType("a string", v)
		}
		*p = s
	case *bool:
		b, ok := v.(bool)
		if !ok {
			return wrongType("a boolean (true or false)", v)
		}
		*p = b
	case *int:
		n, ok := v.(int64)
		if !ok {
			return wrongType("an integer", v)
		}
		if n < math.MinInt || n > math.MaxInt {
			return fmt.Errorf("%d is out of range", n)
		}
		*p = int(n)
	case *[]string:
		l, err := stringList(v)
		if err != nil {
			return err
		}
		*p = l
	case *map[string]string:
		m, err := stringMap(v)
		if err != nil {
			return err
		}
		*p = m
	case *map[string]any:
		m, ok := v.(map[string]any)
		if !ok {
			return wrongType("a table", v)
		}
		*p = m
	default:
		return fmt.Errorf("cannot be set in config.toml")
	}
	return nil
}

// setFromEnv stores an environment value in the key's field, converting it
// as OpenHands does: booleans are "true"/"1", lists and dicts are Python
// literals.
func (k *key) setFromEnv(c *Config, v string) error {
	switch p := k.field(c).(type) {
	case *string:
		*p = v
	case *bool:
		*p = strings.EqualFold(v, "true") || v == "1"
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*p = n
	case **int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*p = &n
	case *[]string:
		lit, err := pyliteral.Parse(v)
		if err != nil {
			return fmt.Errorf("not a Python list literal (%w); write it like [\"a\", \"b\"]", err)
		}
		l, err := stringList(lit)
		if err != nil {
			return err
		}
		*p = l
	case *map[string]string:
		lit, err := pyliteral.Parse(v)
		if err != nil {
			return fmt.Errorf("not a Python dict literal (%w); write it like {\"NAME\": \"value\"}", err)
		}
		m, err := stringMap(lit)
		if err != nil {
			return err
		}
		*p = m
	case *map[string]any:
		lit, err := pyliteral.Parse(v)
		if err != nil {
			return fmt.Errorf("not a Python dict literal (%w); write it like {\"key\": \"value\"}", err)
		}
		if lit == nil {
			*p = nil
			return nil
		}
		m, ok := lit.(map[string]any)
		if !ok {
			return wrongType("a dict", lit)
		}
		*p = m
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// stringList accepts a TOML array or Python list/tuple of strings; a
// Python None (nil) means no list.
func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, wrongType("a list of strings", v)
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("item %d: %w", i, wrongType("a string", item))
		}
		out = append(out, s)
	}
	return out, nil
}

// stringMap accepts a table or dict of strings. Integers are written out,
// because {"PORT": 8080} is an obvious thing to write for an environment.
func stringMap(v any) (map[string]string, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, wrongType("a table of strings", v)
	}
	out := make(map[string]string, len(m))
	for name, val := range m {
		switch val := val.(type) {
		case string:
			out[name] = val
		case int64:
			out[name] = strconv.FormatInt(val, 10)
		case *big.Int:
			out[name] = val.String()
		default:
			return nil, fmt.Errorf("%q: %w", name, wrongType("a string", val))
		}
	}
	return out, nil
}

func wrongType(want string, got any) error {
	return fmt.Errorf("want %s, got %s", want, typeName(got))
}

// typeName names a decoded TOML or Python value in the user's terms.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return fmt.Sprintf("the string %s", truncate(strconv.Quote(v), 60))
	case bool:
		return fmt.Sprintf("the boolean %t", v)
	case int64, *big.Int:
		return fmt.Sprintf("the integer %v", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("a %T", v)
}

// truncate bounds what an error message repeats of hostile or huge input,
// cutting at a rune boundary so the message stays valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// closest suggests a known key for a misspelt one, or "".
func closest(name string, known []string) string { return suggest.Closest(name, known) }

// sectionKeys lists the key names of one section.
func sectionKeys(table []key, section string) []string {
	var names []string
	for _, k := range table {
		if k.section == section {
			names = append(names, k.name)
		}
	}
	return slices.Clip(names)
}
