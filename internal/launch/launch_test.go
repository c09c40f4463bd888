package launch

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// envOf is the getenv of an environment list, as the process started
// with it would see it.
func envOf(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func noEnv(string) string { return "" }

// same compares two launches, an empty list being no list.
func same(a, b Launch) bool {
	if len(a.Plugins) == 0 && len(b.Plugins) == 0 {
		a.Plugins, b.Plugins = nil, nil
	}
	if len(a.Env) == 0 && len(b.Env) == 0 {
		a.Env, b.Env = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// reparse is the round trip: what a driver builds, read as sandboxd reads it.
func reparse(t testing.TB, l Launch) Launch {
	t.Helper()
	got, err := Parse(l.Argv(), envOf(l.Environ()))
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", l.Argv(), l.Environ(), err)
	}
	return got
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse([]string{"8000", "--working-dir", "/workspace"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Port, want.WorkDir = 8000, "/workspace"
	if !same(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestArgvShort pins the command line of an all-default launch: it is the
// runtime image's CMD, and an image's inputs change with it.
func TestArgvShort(t *testing.T) {
	l := Default()
	l.Port, l.WorkDir = 8000, "/workspace"
	if got, want := l.Argv(), []string{"8000", "--working-dir", "/workspace"}; !slices.Equal(got, want) {
		t.Errorf("Argv = %q, want %q", got, want)
	}
	if env := l.LaunchEnv(); len(env) != 0 {
		t.Errorf("LaunchEnv = %q, want none", env)
	}
}

func TestParse(t *testing.T) {
	env := map[string]string{
		"SESSION_API_KEY": "k", "NO_CHANGE_TIMEOUT_SECONDS": " 30 ", "SU_TO_USER": "no",
		"RUNTIME_USERNAME": "dev", "USER": "me", "HOME": "/home/me", "SANDBOX_GROUP_ID": "100", "SBX_LISTEN_FD": "3",
		"SBX_STATE_DIR": "/var/lib/sbx/s1", "SBX_URL_FILE": "/var/lib/sbx/s1/oh-server-url",
		"SBX_POOL_SECRET": "pool-s3cret",
	}
	got, err := Parse([]string{"--username=dev", "--user-id", "-7", "60000", "--working-dir", "/w/../x/",
		"--plugins", "agent_skills", "jupyter", "--plugins=vscode", "--host", "127.0.0.1",
		"--no-enable-browser", "--enable-browser", "--browsergym-eval-env", "miniwob"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Launch{
		Port: 60000, Host: "127.0.0.1", WorkDir: "/x", Plugins: []string{"agent_skills", "jupyter", "vscode"},
		Username: "dev", UserID: -7, EnableBrowser: true, BrowserEvalEnv: "miniwob",
		SessionAPIKey: "k", NoChangeTimeout: 30 * time.Second, SuToUser: false, RuntimeUsername: "dev",
		User: "me", Home: "/home/me", GroupID: 100, ListenFD: 3,
		StateDir: "/var/lib/sbx/s1", URLFile: "/var/lib/sbx/s1/oh-server-url", PoolSecret: "pool-s3cret",
	}
	if !same(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if g, _ := Parse([]string{"1", "--working-dir", "/w"}, envOf([]string{"SANDBOX_GROUP_ID=root"})); g.GroupID != -1 {
		t.Errorf("SANDBOX_GROUP_ID=root: GroupID = %d, want -1", g.GroupID)
	}
	rel, err := Parse([]string{"1", "--working-dir", "ws"}, noEnv)
	if abs, _ := filepath.Abs("ws"); err != nil || rel.WorkDir != abs {
		t.Errorf("relative working dir: %q, %v; want %q", rel.WorkDir, err, abs)
	}
}

// TestParseErrors pins every error text: OpenHands' users and sbx's
// tests search for them.
func TestParseErrors(t *testing.T) {
	base := []string{"8000", "--working-dir", "/w"}
	for _, tc := range []struct {
		args []string
		env  string // NAME=value
		want string
	}{
		{[]string{"--working-dir", "/w"}, "", "the following arguments are required: port"},
		{[]string{"8000"}, "", "--working-dir is required"},
		{[]string{"8000", "--working-dir="}, "", "--working-dir is required"},
		{[]string{"x", "--working-dir", "/w"}, "", "argument port: invalid int value: 'x'"},
		{[]string{"-1", "--working-dir", "/w"}, "", "argument port: invalid int value: '-1'"},
		{[]string{"65536", "--working-dir", "/w"}, "", "argument port: invalid int value: '65536'"},
		{append(base, "9000"), "", "unrecognized argument: 9000"},
		{append(base, "-x"), "", "unrecognized argument: -x"},
		{append(base, "--"), "", "unrecognized argument: --"},
		{append(base, "--bogus"), "", "unrecognized argument: --bogus"},
		{append(base, "--bogus=1"), "", "unrecognized argument: --bogus=1"},
		{[]string{"8000", "--working-dir"}, "", "argument --working-dir: expected one argument"},
		{[]string{"8000", "--working-dir", "--host", "h"}, "", "argument --working-dir: expected one argument"},
		{append(base, "--host"), "", "argument --host: expected one argument"},
		{append(base, "--username"), "", "argument --username: expected one argument"},
		{append(base, "--user-id"), "", "argument --user-id: expected one argument"},
		{append(base, "--browsergym-eval-env"), "", "argument --browsergym-eval-env: expected one argument"},
		{append(base, "--user-id", "x"), "", "argument --user-id: invalid int value: 'x'"},
		{append(base, "--plugins"), "", "argument --plugins: expected at least one argument"},
		{append(base, "--plugins", "-x"), "", "argument --plugins: expected at least one argument"},
		{append(base, "--plugins", "nonexistent"), "", "Plugin nonexistent not found"},
		{append(base, "--no-enable-browser", "--browsergym-eval-env", "e"), "",
			"Browser environment is not enabled in config, but browsergym_eval_env is set"},
		{base, "NO_CHANGE_TIMEOUT_SECONDS=0", `NO_CHANGE_TIMEOUT_SECONDS must be a positive whole number of seconds, got "0"`},
		{base, "NO_CHANGE_TIMEOUT_SECONDS=1.5", `NO_CHANGE_TIMEOUT_SECONDS must be a positive whole number of seconds, got "1.5"`},
		{base, "SANDBOX_GROUP_ID=wheel", `SANDBOX_GROUP_ID must be a group id, got "wheel"`},
		{base, "SANDBOX_GROUP_ID=-1", `SANDBOX_GROUP_ID must be a group id, got "-1"`},
		{base, "SBX_LISTEN_FD=2", `SBX_LISTEN_FD must be a file descriptor number of 3 or more, got "2"`},
		{base, "SBX_LISTEN_FD=three", `SBX_LISTEN_FD must be a file descriptor number of 3 or more, got "three"`},
		{base, "SBX_STATE_DIR=state", `SBX_STATE_DIR must be an absolute path, got "state"`},
		{base, "SBX_URL_FILE=./url", `SBX_URL_FILE must be an absolute path, got "./url"`},
	} {
		_, err := Parse(tc.args, envOf([]string{tc.env}))
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q, %q) = %v, want %q", tc.args, tc.env, err, tc.want)
			continue
		}
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("Parse(%q): %v is not an invalid argument", tc.args, err)
		}
	}
	for _, tc := range []struct {
		args []string
		want error
	}{
		{[]string{"--help"}, ErrHelp},
		{[]string{"8000", "-h"}, ErrHelp},
		{[]string{"--version", "--bogus"}, ErrVersion},
	} {
		if _, err := Parse(tc.args, noEnv); !errors.Is(err, tc.want) || errdefs.IsInvalidArgument(err) {
			t.Errorf("Parse(%q) = %v, want %v", tc.args, err, tc.want)
		}
	}
}

// awkward are values that a naive builder would turn into another
// command line: flags, separators, emptiness, spaces.
var awkward = []string{"", "x", "-x", "--x", "--", "-", "a=b", "--a=b", " sp ace ", "é\tü", "8000", "-h", "--help"}

func TestRoundTrip(t *testing.T) {
	for i, l := range []Launch{
		func() Launch { l := Default(); l.Port, l.WorkDir = 8000, "/workspace"; return l }(),
		// the docker driver's
		func() Launch {
			l := Default()
			l.Port, l.WorkDir, l.Username, l.UserID = 8000, "/workspace", "root", 0
			l.Plugins, l.SessionAPIKey = []string{"agent_skills", "jupyter"}, "0123abcd"
			return l
		}(),
		// the local driver's
		func() Launch {
			l := Default()
			l.Port, l.WorkDir, l.Host, l.Username, l.UserID = 41234, "/home/me/p", "127.0.0.1", "me", 1001
			l.User, l.SessionAPIKey, l.ListenFD = "me", "k", 3
			l.StateDir, l.URLFile = "/home/me/.local/state/sbx/local/s1", "/home/me/.local/state/sbx/local/s1/oh-server-url"
			return l
		}(),
		{Port: 0, Host: "", WorkDir: "/", Username: "", UserID: -1, EnableBrowser: false,
			NoChangeTimeout: time.Second, SuToUser: false, GroupID: 0, ListenFD: 1 << 20},
		{Port: 65535, Host: "--", WorkDir: "/--", Plugins: []string{"vscode", "vscode"}, Username: "--user-id",
			UserID: 1000, EnableBrowser: true, BrowserEvalEnv: "--no-enable-browser", NoChangeTimeout: 11 * time.Second,
			SuToUser: true, RuntimeUsername: "=", User: "a=b", Home: " ", GroupID: -1, ListenFD: -1},
	} {
		if got := reparse(t, l); !same(got, l) {
			t.Errorf("%d: %q %q\n got %+v\nwant %+v", i, l.Argv(), l.LaunchEnv(), got, l)
		}
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("random launches from seed %d", seed)
	r := rand.New(rand.NewPCG(1, seed))
	pick := func() string { return awkward[r.IntN(len(awkward))] }
	for range 2000 {
		l := Launch{
			Port:     r.IntN(65536),
			Host:     pick(),
			WorkDir:  filepath.Clean("/" + pick() + "/" + pick()),
			Username: pick(), UserID: int(r.Int32()) - 1<<30,
			EnableBrowser: r.IntN(2) == 0, NoChangeTimeout: time.Duration(1+r.IntN(1000)) * time.Second,
			SuToUser: r.IntN(2) == 0, RuntimeUsername: pick(), User: pick(), Home: pick(), SessionAPIKey: pick(),
			GroupID: r.IntN(5) - 1, ListenFD: -1,
		}
		if l.EnableBrowser {
			l.BrowserEvalEnv = pick()
		}
		if r.IntN(2) == 0 {
			l.ListenFD = 3 + r.IntN(100)
		}
		if r.IntN(2) == 0 {
			l.StateDir = filepath.Clean("/" + pick())
		}
		if r.IntN(2) == 0 {
			l.URLFile = "/" + pick()
		}
		if r.IntN(2) == 0 {
			l.PoolSecret = pick()
		}
		for range r.IntN(4) {
			l.Plugins = append(l.Plugins, []string{"agent_skills", "jupyter", "vscode"}[r.IntN(3)])
		}
		if got := reparse(t, l); !same(got, l) {
			t.Fatalf("%q %q\n got %+v\nwant %+v", l.Argv(), l.LaunchEnv(), got, l)
		}
	}
}

// TestArgvNoCheck: the builder writes what it is given, so that sandboxd's
// refusal is what the caller sees (drivertest's broken sandbox relies on it).
func TestArgvNoCheck(t *testing.T) {
	l := Default()
	l.Port, l.WorkDir, l.Plugins = 1, "/w", []string{"nonexistent", "-odd"}
	if got, want := l.Argv(), []string{"1", "--working-dir", "/w", "--plugins=nonexistent", "--plugins=-odd"}; !slices.Equal(got, want) {
		t.Errorf("Argv = %q, want %q", got, want)
	}
	if _, err := Parse(l.Argv(), noEnv); err == nil || err.Error() != "Plugin nonexistent not found" {
		t.Errorf("Parse: %v", err)
	}
	l.NoChangeTimeout = 1500 * time.Millisecond
	if got := l.LaunchEnv(); !slices.Equal(got, []string{"NO_CHANGE_TIMEOUT_SECONDS=2"}) {
		t.Errorf("LaunchEnv = %q: a fraction of a second rounds up", got)
	}
}

func TestEnviron(t *testing.T) {
	l := Default()
	l.Port, l.WorkDir = 1, "/w"
	l.SessionAPIKey, l.ListenFD = "new", 3
	l.Env = map[string]string{"SESSION_API_KEY": "old", "DEBUG": "true", "SANDBOX_GROUP_ID": "5", "B": "x=y"}
	// A field left at its default does not hide what Env says: a spec's
	// SANDBOX_GROUP_ID reaches sandboxd as it always did.
	want := []string{"B=x=y", "DEBUG=true", "SANDBOX_GROUP_ID=5", "SBX_LISTEN_FD=3", "SESSION_API_KEY=new"}
	if got := l.Environ(); !slices.Equal(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
	if got, want := l.LaunchEnv(), []string{"SESSION_API_KEY=new", "SBX_LISTEN_FD=3"}; !slices.Equal(got, want) {
		t.Errorf("LaunchEnv = %q, want %q", got, want)
	}
}

// TestStateDirAndURLFileDefaults: a launch that names neither (the docker
// driver's, an image's CMD) keeps OpenHands' URL file, which the browser
// tool reads, and a state directory of its own port in /tmp.
func TestStateDirAndURLFileDefaults(t *testing.T) {
	l, err := Parse([]string{"8000", "--working-dir", "/w"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.StateDirOrDefault(); got != "/tmp/sbx-sandboxd-8000" {
		t.Errorf("state dir = %q", got)
	}
	if got := l.URLFileOrDefault(); got != "/tmp/oh-server-url" {
		t.Errorf("URL file = %q", got)
	}
	l.StateDir, l.URLFile = "/s", "/s/url"
	if l.StateDirOrDefault() != "/s" || l.URLFileOrDefault() != "/s/url" {
		t.Errorf("named ones not used: %q %q", l.StateDirOrDefault(), l.URLFileOrDefault())
	}
}

func TestIsTrue(t *testing.T) {
	for _, s := range []string{"1", "true", "T", " yes ", "Y", "on"} {
		if !IsTrue(s) {
			t.Errorf("IsTrue(%q) = false", s)
		}
	}
	for _, s := range []string{"", "0", "false", "no", "off", "2", "enabled"} {
		if IsTrue(s) {
			t.Errorf("IsTrue(%q) = true", s)
		}
	}
}
