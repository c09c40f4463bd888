package config

import (
	"net/netip"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/.

// FuzzParseVolumes checks that any volumes string either fails or yields
// mounts a driver can use as they are, and that writing them back out
// parses to the same mounts.
func FuzzParseVolumes(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		vols, err := ParseVolumes(s)
		if err != nil {
			return
		}
		targets := map[string]bool{}
		var parts []string
		for _, v := range vols {
			switch {
			case v.Source == "":
				t.Fatalf("%q: empty source in %+v", s, v)
			case !path.IsAbs(v.Target) || path.Clean(v.Target) != v.Target || v.Target == "/":
				t.Fatalf("%q: bad target in %+v", s, v)
			case targets[v.Target]:
				t.Fatalf("%q: target %s twice", s, v.Target)
			case v.Mode == "":
				t.Fatalf("%q: empty mode in %+v", s, v)
			case !v.Named && !filepath.IsAbs(v.Source):
				t.Fatalf("%q: relative bind source in %+v", s, v)
			case v.Named && !validVolumeName(v.Source):
				t.Fatalf("%q: bad volume name in %+v", s, v)
			case v.Overlay && v.Named:
				t.Fatalf("%q: overlay on a named volume in %+v", s, v)
			case v.ReadOnly != (v.Mode == "ro"):
				t.Fatalf("%q: ReadOnly disagrees with mode in %+v", s, v)
			}
			targets[v.Target] = true
			src := v.Source
			if v.Named {
				src = namedVolumePrefix + src
			}
			parts = append(parts, src+":"+v.Target+":"+v.Mode)
		}
		again, err := ParseVolumes(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(again, vols) {
			t.Fatalf("%q: parsed %+v; written back and parsed again: %+v, %v", s, vols, again, err)
		}
	})
}

// FuzzLoadTOML checks that no config.toml makes Load panic, that every
// failure is classified, and that a success satisfies the rules drivers
// rely on.
func FuzzLoadTOML(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := load(hermetic(), "config.toml", data)
		checkLoad(t, c, err)
	})
}

// FuzzLoadEnv does the same for one environment variable of the table.
func FuzzLoadEnv(f *testing.F) {
	table := keyTable()
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		name := table[int(which)%len(table)].env()
		if name == sandboxEnvPrefix+"<NAME>" {
			name = sandboxEnvPrefix + "X"
		}
		src := hermetic()
		src.Environ = func() []string { return []string{name + "=" + value} }
		src.Getenv = nil
		c, err := load(src, "", nil)
		checkLoad(t, c, err)
	})
}

func hermetic() Source {
	return Source{
		Environ: func() []string { return nil },
		Getuid:  func() int { return 1000 },
		Getwd:   func() (string, error) { return "/home/fuzz", nil },
	}
}

func checkLoad(t *testing.T, c *Config, err error) {
	t.Helper()
	if err != nil {
		if !errdefs.IsInvalidArgument(err) {
			t.Fatalf("error of the wrong class: %v", err)
		}
		return
	}
	if c.Runtime == "" || c.Runtime == "eventstream" {
		t.Fatalf("runtime %q survived finalisation", c.Runtime)
	}
	if c.Sandbox.BaseContainerImage == "" {
		t.Fatal("empty base_container_image survived finalisation")
	}
	if _, err := netip.ParseAddr(c.Sandbox.RuntimeBindingAddress); err != nil {
		t.Fatalf("binding address %q accepted", c.Sandbox.RuntimeBindingAddress)
	}
	if c.WorkspaceBase != "" && !filepath.IsAbs(c.WorkspaceBase) {
		t.Fatalf("workspace_base %q is relative", c.WorkspaceBase)
	}
	if c.Kubernetes.Privileged {
		t.Fatal("privileged accepted")
	}
	for _, m := range c.Mounts() {
		if !path.IsAbs(m.Target) {
			t.Fatalf("mount %+v has a relative target", m)
		}
	}
	if got := len(c.Describe()); got != len(keyTable()) {
		t.Fatalf("Describe returned %d settings", got)
	}
}
