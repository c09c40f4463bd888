package config

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// Volume is one mount of sandbox.volumes, or the legacy workspace mount.
type Volume struct {
	// Source is an absolute host path, or a volume name when Named.
	Source string
	// Target is the absolute, cleaned path inside the sandbox.
	Target string
	// Mode is the mode as written, "rw" when omitted.
	Mode     string
	ReadOnly bool // Mode is "ro"
	// Named is a Docker named volume: the host part was `volume:<name>` or
	// not an absolute path.
	Named bool
	// Overlay is a copy-on-write mount of a host directory (Mode contains
	// "overlay"); drivers skip it unless SANDBOX_VOLUME_OVERLAYS is set.
	Overlay bool
	// Guard is a guarded mount of a host directory (Mode contains
	// "guard"): the sandbox writes a change layer, never the directory.
	Guard bool
}

// namedVolumePrefix marks an explicit named volume in a mount's host part.
const namedVolumePrefix = "volume:"

// ParseVolumes parses sandbox.volumes: comma-separated
// `host:container[:mode]` entries. Blank entries are skipped, so a result
// may be empty.
func ParseVolumes(s string) ([]Volume, error) {
	var out []Volume
	targets := map[string]string{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		v, err := parseVolume(entry)
		if err != nil {
			return nil, fmt.Errorf("mount %q: %w", truncate(entry, 200), err)
		}
		if prev, dup := targets[v.Target]; dup {
			return nil, fmt.Errorf("mounts %q and %q both target %s", truncate(prev, 200), truncate(entry, 200), v.Target)
		}
		targets[v.Target] = entry
		out = append(out, v)
	}
	return out, nil
}

func parseVolume(entry string) (Volume, error) {
	var v Volume
	// The explicit prefix is cut before splitting on ':' because the prefix
	// itself contains one. "volume:/x" has nothing after the prefix to be a
	// mount, so it is read as OpenHands reads it: the volume "volume" on /x.
	rest, named := strings.CutPrefix(entry, namedVolumePrefix)
	parts := strings.Split(rest, ":")
	if named && len(parts) < 2 {
		named, parts = false, strings.Split(entry, ":")
	}
	if len(parts) < 2 || len(parts) > 3 {
		return v, fmt.Errorf("want host:container[:mode], got %d colon-separated parts", len(parts))
	}
	host, target := parts[0], parts[1]
	v.Mode = "rw"
	if len(parts) == 3 {
		v.Mode = parts[2]
		if !validMode(v.Mode) {
			return v, fmt.Errorf("mode %q: want letters, digits, '-' or '+', e.g. rw or ro", v.Mode)
		}
	}
	switch {
	case host == "":
		return v, fmt.Errorf("empty host part")
	case named || !filepath.IsAbs(host):
		if !validVolumeName(host) {
			if named {
				return v, fmt.Errorf("%q is not a valid volume name (letters, digits, '_', '.', '-', starting with a letter or digit)", host)
			}
			return v, fmt.Errorf("host path %q is not absolute, and not a valid volume name either: write an absolute path", host)
		}
		v.Named = true
		v.Source = host
	default:
		v.Source = filepath.Clean(host)
	}
	if !path.IsAbs(target) {
		return v, fmt.Errorf("container path %q is not absolute", target)
	}
	v.Target = path.Clean(target)
	if v.Target == "/" {
		return v, fmt.Errorf("cannot mount over the sandbox's root directory")
	}
	v.ReadOnly = v.Mode == "ro"
	v.Overlay = strings.Contains(v.Mode, "overlay")
	v.Guard = strings.Contains(v.Mode, "guard")
	if v.Guard && v.Named {
		return v, fmt.Errorf("a guarded mount needs a host directory, not the volume %q", v.Source)
	}
	if v.Overlay && v.Named {
		return v, fmt.Errorf("an overlay mount needs a host directory, not the volume %q", v.Source)
	}
	return v, nil
}

func validMode(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if !isAlnum(r) && r != '-' && r != '+' {
			return false
		}
	}
	return true
}

// validVolumeName follows Docker's rule for volume names, so a mistake is
// reported here rather than by the daemon at start time.
func validVolumeName(name string) bool {
	if len(name) < 2 || !isAlnum(rune(name[0])) {
		return false
	}
	for _, r := range name[1:] {
		if !isAlnum(r) && r != '_' && r != '.' && r != '-' {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// Mounts returns what to mount into the sandbox: the volumes when set,
// else the legacy workspace mount (read-write), else nothing. Load has
// validated Volumes; on a hand-built Config with invalid Volumes, Mounts
// returns nil.
func (c *Config) Mounts() []Volume {
	vols, err := ParseVolumes(c.Sandbox.Volumes)
	if err != nil {
		return nil
	}
	if len(vols) > 0 {
		return vols
	}
	if c.WorkspaceMountPath == "" {
		return nil
	}
	target := c.WorkspaceMountPathInSandbox
	if target == "" {
		target = DefaultWorkspaceInSandbox
	}
	return []Volume{{Source: c.WorkspaceMountPath, Target: path.Clean(target), Mode: "rw"}}
}
