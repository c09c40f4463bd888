package config

import (
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"strings"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// finalise derives what depends on several keys and checks each value
// against the rules a driver relies on, after all sources are applied.
func (c *Config) finalise(getwd func() (string, error)) []error {
	f := finaliser{c: c, table: keyTable(), getwd: getwd}
	f.normaliseRuntime()
	f.checkNumbers()
	f.checkStrings()
	f.workspace()
	f.dockerKwargs()
	return f.errs
}

type finaliser struct {
	c     *Config
	table []key
	getwd func() (string, error)
	errs  []error
}

// fail reports a value that breaks a rule, naming the key, the value and
// where it came from.
func (f *finaliser) fail(section, name string, cause error, rule string) {
	k := lookup(f.table, section, name)
	value, empty := render(k.field(f.c))
	if empty {
		value = `""`
	}
	msg := fmt.Sprintf("%s = %s", k.label(), truncate(value, 200))
	if src := f.c.where(k); src != "" {
		msg += " (" + src + ")"
	}
	f.errs = append(f.errs, invalid(cause, "%s: %s", msg, rule))
}

func (f *finaliser) derived(section, name string) {
	f.c.origins[lookup(f.table, section, name).env()] = OriginDerived
}

func (f *finaliser) abs(p string) (string, error) {
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	wd, err := f.getwd()
	if err != nil {
		return "", fmt.Errorf("cannot make %q absolute: %w", p, err)
	}
	return filepath.Join(wd, p), nil
}

func (f *finaliser) normaliseRuntime() {
	c := f.c
	switch c.Runtime {
	case "eventstream":
		// OpenHands' old name for the Docker runtime.
		c.Runtime = DefaultRuntime
	case "":
		f.fail(sectionCore, "runtime", nil, "must not be empty")
	}
	if c.Sandbox.BaseContainerImage == "" {
		c.Sandbox.BaseContainerImage = DefaultBaseContainerImage
	}
}

func (f *finaliser) checkNumbers() {
	s := &f.c.Sandbox
	for _, t := range []struct {
		name string
		v    int
	}{
		{"timeout", s.Timeout},
		{"remote_runtime_init_timeout", s.RemoteRuntimeInitTimeout},
		{"remote_runtime_api_timeout", s.RemoteRuntimeAPITimeout},
	} {
		if t.v < 1 {
			f.fail(sectionSandbox, t.name, nil, "must be at least 1 (seconds)")
		}
	}
	if s.CloseDelay < 0 {
		f.fail(sectionSandbox, "close_delay", nil, "must not be negative")
	}
	if s.UserID < 0 {
		f.fail(sectionSandbox, "user_id", nil, "must not be negative")
	}
	switch s.RemoteRuntimeResourceFactor {
	case 1, 2, 4, 8:
	default:
		f.fail(sectionSandbox, "remote_runtime_resource_factor", nil, "must be 1, 2, 4 or 8")
	}
	if s.VSCodePort < 0 || s.VSCodePort > 65535 {
		f.fail(sectionSandbox, "vscode_port", nil, "must be a port number (1-65535), or 0 to pick a free one")
	}
	if uid := f.c.Host.RuntimeUID; uid != nil && *uid < 0 {
		f.fail(sectionHost, "RUNTIME_UID", nil, "must not be negative")
	}
}

func (f *finaliser) checkStrings() {
	c := f.c
	switch c.Sandbox.RemoteRuntimeClass {
	case "", "gvisor", "sysbox":
	default:
		f.fail(sectionSandbox, "remote_runtime_class", nil, `must be "gvisor" or "sysbox", or unset`)
	}
	switch c.WorkspaceGuardMode {
	case "", "overlay", "copy":
	default:
		f.fail(sectionCore, "workspace_guard_mode", nil, `must be "overlay" or "copy", or unset`)
	}
	if _, err := netip.ParseAddr(c.Sandbox.RuntimeBindingAddress); err != nil {
		f.fail(sectionSandbox, "runtime_binding_address", err, "must be an IP address, such as 127.0.0.1 or 0.0.0.0")
	}
	if !path.IsAbs(c.WorkspaceMountPathInSandbox) {
		f.fail(sectionCore, "workspace_mount_path_in_sandbox", nil, "must be an absolute path")
	} else {
		c.WorkspaceMountPathInSandbox = path.Clean(c.WorkspaceMountPathInSandbox)
	}
	for name := range c.Sandbox.RuntimeStartupEnvVars {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			f.fail(sectionSandbox, "runtime_startup_env_vars", nil,
				fmt.Sprintf("%q is not a valid environment variable name", name))
			break
		}
	}
	for name, text := range c.Sandbox.NetworkPolicies {
		if _, err := netpolicy.Parse(text); err != nil {
			f.fail(sectionSandbox, "network_policies", err, fmt.Sprintf("policy %q: %v", name, err))
		}
	}
	if _, err := netpolicy.Resolve(c.Sandbox.NetworkPolicy, c.Sandbox.NetworkPolicies); err != nil {
		f.fail(sectionSandbox, "network_policy", err, err.Error())
	}
	if c.Kubernetes.Privileged {
		f.fail(sectionKubernetes, "privileged", nil, "sbx never runs privileged sandboxes; remove it or set it to false")
	}
	if c.Host.VolumeOverlays != "" {
		p, err := f.abs(c.Host.VolumeOverlays)
		if err != nil {
			f.fail(sectionHost, "SANDBOX_VOLUME_OVERLAYS", err, err.Error())
		}
		c.Host.VolumeOverlays = p
	}
}

// workspace applies spec §8.4: a volume on /workspace defines the
// workspace; volumes without one leave no host workspace; without volumes
// the legacy workspace_* keys apply.
func (f *finaliser) workspace() {
	c := f.c
	vols, err := ParseVolumes(c.Sandbox.Volumes)
	if err != nil {
		f.fail(sectionSandbox, "volumes", err, err.Error())
		return
	}
	if len(vols) > 0 {
		c.WorkspaceBase, c.WorkspaceMountPath = "", ""
		for _, v := range vols {
			if v.Target != DefaultWorkspaceInSandbox {
				continue
			}
			// A named volume has no host directory to call the workspace.
			if !v.Named {
				c.WorkspaceBase, c.WorkspaceMountPath = v.Source, v.Source
			}
			c.WorkspaceMountPathInSandbox = DefaultWorkspaceInSandbox
			f.derived(sectionCore, "workspace_mount_path_in_sandbox")
			break
		}
		f.derived(sectionCore, "workspace_base")
		f.derived(sectionCore, "workspace_mount_path")
		return
	}
	if c.WorkspaceBase == "" && c.WorkspaceMountPath == "" {
		return
	}
	if c.WorkspaceBase != "" {
		if c.WorkspaceBase, err = f.abs(c.WorkspaceBase); err != nil {
			f.fail(sectionCore, "workspace_base", err, err.Error())
			return
		}
	}
	if c.WorkspaceMountPath == "" {
		c.WorkspaceMountPath = c.WorkspaceBase
		f.derived(sectionCore, "workspace_mount_path")
	}
	if c.WorkspaceMountRewrite != "" {
		from, to, ok := strings.Cut(c.WorkspaceMountRewrite, ":")
		if !ok || from == "" || to == "" || strings.Contains(to, ":") {
			f.fail(sectionCore, "workspace_mount_rewrite", nil, `want "from:to", e.g. "/app:/home/me/project"`)
			return
		}
		c.WorkspaceMountPath = rewritePrefix(firstNonEmpty(c.WorkspaceBase, c.WorkspaceMountPath), from, to)
		f.derived(sectionCore, "workspace_mount_path")
	}
	if c.WorkspaceMountPath, err = f.abs(c.WorkspaceMountPath); err != nil {
		f.fail(sectionCore, "workspace_mount_path", err, err.Error())
	}
}

// rewritePrefix replaces a leading from with to, at a path-element
// boundary so that "/app" does not rewrite "/apple".
func rewritePrefix(p, from, to string) string {
	trimmed := strings.TrimSuffix(from, "/")
	switch {
	case p == from || p == trimmed:
		return to
	case strings.HasPrefix(p, trimmed+"/"):
		return strings.TrimSuffix(to, "/") + p[len(trimmed):]
	}
	return p
}

func (f *finaliser) dockerKwargs() {
	limits, err := ParseDockerKwargs(f.c.Sandbox.DockerRuntimeKwargs)
	if err != nil {
		f.fail(sectionSandbox, "docker_runtime_kwargs", err, err.Error())
		return
	}
	f.c.Sandbox.DockerLimits = limits
}

// where says where a key's value came from, for error messages.
func (c *Config) where(k *key) string {
	switch c.origins[k.env()] {
	case OriginFile:
		return "from " + c.File
	case OriginEnv:
		if k.section == sectionHost {
			return ""
		}
		return "from " + k.env()
	case OriginDerived:
		return "derived"
	}
	return ""
}
