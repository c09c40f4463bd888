package image

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDetectMirror(t *testing.T) {
	write := func(dir, rel, data string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"none", nil, ""},
		{"one-line", map[string]string{"sources.list": `
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian/ bookworm main contrib
`}, "http://mirror.example/debian"},
		{"deb822", map[string]string{"sources.list.d/debian.sources": `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.example/debian-security
Suites: bookworm-security
Components: main
`}, "http://deb.example/debian"},
		{"deb822 disabled and multi-line", map[string]string{"sources.list.d/a.sources": `Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb-src deb
URIs:
 https://multi.example/debian
 http://second.example/debian
Suites:
 trixie
 bookworm
`}, "https://multi.example/debian"},
		{"other suite only", map[string]string{"sources.list": "deb http://archive.ubuntu.com/ubuntu noble main\n"}, ""},
		{"ignored names and order", map[string]string{
			"sources.list.d/a.list.disabled": "deb http://disabled.example/debian bookworm main\n",
			"sources.list.d/b.sources":       "Types: deb\nURIs: http://b.example/debian\nSuites: bookworm\n",
			"sources.list.d/c.list":          "deb http://c.example/debian bookworm main\n",
		}, "http://b.example/debian"},
		{"not http", map[string]string{"sources.list": "deb file:/srv/debian bookworm main\ndeb cdrom:[x]/ bookworm main\n"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for rel, data := range tt.files {
				write(dir, rel, data)
			}
			if got := detectMirror(dir, "bookworm"); got != tt.want {
				t.Errorf("detectMirror = %q, want %q", got, tt.want)
			}
		})
	}
}
