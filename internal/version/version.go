// Package version holds the build's version, set at link time with
// -ldflags "-X github.com/sbx-dev/sbx/internal/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is the release name; "dev" in a plain `go build`.
var Version = "dev"

// String is the version with the VCS revision when the build recorded one.
func String() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}
