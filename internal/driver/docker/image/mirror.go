package image

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// defaultMirror is used when the host's apt has no source for the suite.
const defaultMirror = "http://deb.debian.org/debian"

// detectMirror returns the URI this host's apt uses for suite's main
// archive, read from aptDir (normally /etc/apt) in the order apt reads
// it, or "" when there is none. A host that reaches Debian only through a
// local mirror or proxy has it configured there, so using the same URI
// lets a bootstrap work wherever apt-get does.
func detectMirror(aptDir, suite string) string {
	files := []string{filepath.Join(aptDir, "sources.list")}
	parts, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*"))
	slices.Sort(parts)
	files = append(files, parts...)
	for _, f := range files {
		var uri string
		switch {
		case strings.HasSuffix(f, ".list"):
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			uri = mirrorFromList(string(data), suite)
		case strings.HasSuffix(f, ".sources"):
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			uri = mirrorFromDeb822(string(data), suite)
		default:
			continue // apt ignores other names (*.disabled, backups)
		}
		uri = strings.TrimRight(uri, "/")
		if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
			return uri
		}
	}
	return ""
}

// mirrorFromList reads one-line-style sources:
//
//	deb [arch=amd64 signed-by=/k.gpg] http://mirror/debian bookworm main
func mirrorFromList(data, suite string) string {
	for line := range strings.Lines(data) {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		i := 1
		if strings.HasPrefix(f[i], "[") {
			for i < len(f) && !strings.HasSuffix(f[i], "]") {
				i++
			}
			i++
		}
		if i+1 < len(f) && f[i+1] == suite {
			return f[i]
		}
	}
	return ""
}

// mirrorFromDeb822 reads deb822-style sources: stanzas separated by blank
// lines, "Field: value" lines, continuation lines starting with a blank.
func mirrorFromDeb822(data, suite string) string {
	fields := map[string]string{}
	var last string
	match := func() string {
		defer clear(fields)
		if strings.EqualFold(fields["enabled"], "no") {
			return ""
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") ||
			!slices.Contains(strings.Fields(fields["suites"]), suite) {
			return ""
		}
		uris := strings.Fields(fields["uris"])
		if len(uris) == 0 {
			return ""
		}
		return uris[0]
	}
	for line := range strings.Lines(data) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			if uri := match(); uri != "" {
				return uri
			}
			last = ""
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	return match()
}
