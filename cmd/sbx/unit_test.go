package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/config"
)

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestShellJoin(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ls | wc -l"}, "ls | wc -l"},
		{[]string{"echo", "hi"}, "echo hi"},
		{[]string{"sh", "-c", "exit 3"}, "sh -c 'exit 3'"},
		{[]string{"printf", "%s", "", "it's", "a=b,c/d.e_f@g+h:i-j"}, "printf %s '' 'it'\\''s' a=b,c/d.e_f@g+h:i-j"},
		{[]string{"echo", "$HOME", "*", "~"}, "echo '$HOME' '*' '~'"},
	} {
		if got := shellJoin(tc.args); got != tc.want {
			t.Errorf("shellJoin(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestParseVolumeFlag(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want config.Volume
		err  string
	}{
		{"/data:/mnt", config.Volume{Source: "/data", Target: "/mnt", Mode: "rw"}, ""},
		{"/data:/mnt/:ro", config.Volume{Source: "/data", Target: "/mnt", Mode: "ro", ReadOnly: true}, ""},
		{"./sub:/w:rw", config.Volume{Source: filepath.Join(wd, "sub"), Target: "/w", Mode: "rw"}, ""},
		{"cache:/root/.cache", config.Volume{Source: "cache", Target: "/root/.cache", Mode: "rw", Named: true}, ""},
		{"/data", config.Volume{}, "want HOST:DIR"},
		{"/a:/b:/c:/d", config.Volume{}, "want HOST:DIR"},
		{":/b", config.Volume{}, "host part is empty"},
		{"/a:b", config.Volume{}, "absolute path"},
		{"/a:/b:z", config.Volume{}, `mode "z"`},
		{"~/x:/b", config.Volume{}, "not expanded"},
	} {
		got, err := parseVolumeFlag(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRunFlags(t *testing.T) {
	a := &app{getenv: func(k string) string { return map[string]string{"HOSTVAR": "hv"}[k] }}
	o, err := a.parseRun([]string{"--rm", "--name", "n1", "-e", "A=1", "-e", "B==2", "-e", "HOSTVAR", "-e", "UNSET",
		"--plugins", "jupyter, agent_skills", "--cpus", "1.5", "--memory", "1g", "--timeout", "90s", "--", "ls", "-l"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Remove || o.Name != "n1" || o.CPUs != 1.5 || o.MemoryBytes != 1<<30 || o.Timeout != 90*time.Second {
		t.Errorf("options: %+v", o)
	}
	if len(o.Env) != 3 || o.Env["A"] != "1" || o.Env["B"] != "=2" || o.Env["HOSTVAR"] != "hv" {
		t.Errorf("env: %v", o.Env)
	}
	if strings.Join(o.Plugins, ",") != "jupyter,agent_skills" || strings.Join(o.Command, " ") != "ls -l" {
		t.Errorf("plugins %q, command %q", o.Plugins, o.Command)
	}
	// Flags end at the first operand, as docker's do: -l belongs to ls.
	o, err = a.parseRun([]string{"ls", "-l"})
	if err != nil || strings.Join(o.Command, " ") != "ls -l" {
		t.Errorf("command without --: %q, %v", o.Command, err)
	}
	if _, err := a.parseRun([]string{"-d", "--", "ls"}); err == nil {
		t.Error("-d with a command: no error")
	}
}

func TestParseCpPath(t *testing.T) {
	for in, want := range map[string]cpPath{
		"abc:/x":       {ID: "abc", Path: "/x"},
		"a.b-c_1:/x:y": {ID: "a.b-c_1", Path: "/x:y"},
		"/abs/a:b":     {Path: "/abs/a:b"},
		"./a:b":        {Path: "./a:b"},
		"plain":        {Path: "plain"},
		"we ird:/x":    {Path: "we ird:/x"},
		"id:rel":       {ID: "id", Path: "rel"},
	} {
		if got := parseCpPath(in); got != want {
			t.Errorf("parseCpPath(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestExitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		ok   bool
	}{
		{"exit", 4, true}, {"exit 0", 0, true}, {"exit 300", 44, true},
		{"exit now", 0, false}, {"exit 1 2", 0, false}, {"exitcode", 0, false}, {"echo exit", 0, false},
	} {
		code, ok := exitCommand(tc.in, 4)
		if code != tc.code || ok != tc.ok {
			t.Errorf("exitCommand(%q) = %d, %v; want %d, %v", tc.in, code, ok, tc.code, tc.ok)
		}
	}
}

func TestHumanAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "just now", 5 * time.Second: "5 seconds ago", time.Minute: "1 minute ago",
		90 * time.Minute: "1 hour ago", 50 * time.Hour: "2 days ago", 800 * 24 * time.Hour: "2 years ago",
	} {
		if got := humanAge(d); got != want {
			t.Errorf("humanAge(%v) = %q, want %q", d, got, want)
		}
	}
}
