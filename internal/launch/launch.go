// Package launch is the contract between whatever starts sandboxd and
// sandboxd itself: its command line and the environment variables it
// reads (spec/openhands-runtime.md §2.1, plus sbx's --host and its
// SBX_* variables).
//
// One description, Launch, is built into an argv and an environment by
// the drivers and the image builder, parsed back by sandboxd, and
// recovered from the OpenHands V0 command line that a runtime-API client
// sends in /start. Keeping builder and parser side by side, tied by a
// round-trip test, is what stops a driver from writing a flag sandboxd
// reads differently.
//
// The package links only the standard library and internal/errdefs: it
// is part of the in-sandbox binary and of every host-side program.
package launch

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// The environment variables that are part of the launch. Every other
// variable is passed through untouched (Launch.Env).
const (
	EnvSessionAPIKey   = "SESSION_API_KEY"
	EnvNoChangeTimeout = "NO_CHANGE_TIMEOUT_SECONDS"
	EnvSuToUser        = "SU_TO_USER"
	EnvRuntimeUsername = "RUNTIME_USERNAME"
	EnvUser            = "USER"
	EnvHome            = "HOME"
	EnvGroupID         = "SANDBOX_GROUP_ID"
	// EnvListenFD names an inherited listening socket. The local driver
	// binds the port itself and hands the socket over, so that no other
	// process can take the port between choosing it and sandboxd binding
	// it.
	EnvListenFD = "SBX_LISTEN_FD"
	// EnvStateDir names sandboxd's own state directory (the journal of
	// staging files it sweeps at start-up). The local driver gives each
	// sandbox its per-sandbox directory, so that nothing of one sandbox
	// lands in the host's shared /tmp; in a container the default is the
	// container's own /tmp.
	EnvStateDir = "SBX_STATE_DIR"
	// EnvURLFile names the file the file viewer's URL is written to.
	// OpenHands' browser tool reads DefaultURLFile, which is right inside
	// a container (its own /tmp) but, on the host, would be one file
	// shared by every local sandbox and every user: the local driver
	// points it into the sandbox's state directory instead.
	EnvURLFile = "SBX_URL_FILE"
	// EnvPoolSecret enables the warm-pool claim (POST /sbx/v1/claim):
	// sandbox-api starts the sandbox ahead of demand and later hands it
	// a tenant's session key and environment with this secret. sandboxd
	// drops it from the agent's shell, which must never see it.
	EnvPoolSecret = "SBX_POOL_SECRET"
	// EnvSWEReXAddr, when set (host:port, e.g. "0.0.0.0:8000"), makes
	// sandboxd also serve SWE-ReX's protocol on a second listener, with
	// EnvSWEReXToken as its X-API-Key ("" : no authentication). sandboxd
	// drops both from the agent's shell.
	EnvSWEReXAddr  = "SBX_SWEREX_ADDR"
	EnvSWEReXToken = "SBX_SWEREX_TOKEN"
)

// SWEReXPort is SWE-ReX's default port (swerex-remote --port), which
// sandboxd's SWE-ReX listener binds inside a container: its clients and
// docs assume it.
const SWEReXPort = 8000

// Defaults, as OpenHands' argparse definition and environment have them.
const (
	DefaultHost            = "0.0.0.0"
	DefaultUsername        = "openhands"
	DefaultUserID          = 1000
	DefaultNoChangeTimeout = 10 * time.Second
	// DefaultURLFile is where OpenHands' browser tool looks for the file
	// viewer's URL (spec §2.7).
	DefaultURLFile = "/tmp/oh-server-url"
)

// ErrHelp and ErrVersion are what Parse returns for --help (or -h) and
// --version: requests, not mistakes, so they carry no error class.
var (
	ErrHelp    = errors.New("help requested")
	ErrVersion = errors.New("version requested")
)

// Launch describes one start of sandboxd. Its zero value is not a useful
// launch (no browser, no su, group and socket 0): start from Default, as
// the parser does, so that what is left unset means what sandboxd
// assumes.
type Launch struct {
	// Command line.
	Port           int
	Host           string // the address to bind; DefaultHost unless --host
	WorkDir        string // required; Parse makes it absolute
	Plugins        []string
	Username       string
	UserID         int
	EnableBrowser  bool
	BrowserEvalEnv string

	// Environment.
	SessionAPIKey   string        // "": no authentication
	NoChangeTimeout time.Duration // whole seconds on the wire
	SuToUser        bool
	RuntimeUsername string
	User            string // USER: equal to Username, sandboxd runs as itself (local mode)
	Home            string
	GroupID         int    // group of a working directory sandboxd creates; -1: root
	ListenFD        int    // -1: sandboxd binds Host:Port itself
	StateDir        string // absolute; "": DefaultStateDir(Port)
	URLFile         string // absolute; "": DefaultURLFile
	PoolSecret      string // "": no warm-pool claim

	// Env holds variables sandboxd does not read but passes on to the
	// agent's shell (DEBUG, LOG_JSON and the like are read by sandboxd's
	// logger, not by the launch). The fields above win over an entry of
	// the same name when they differ from Default. Parse never fills it:
	// a getenv function cannot be enumerated.
	Env map[string]string
}

// Default is the launch sandboxd assumes for an empty command line and
// environment, apart from the required port and working directory.
func Default() Launch {
	return Launch{
		Host:            DefaultHost,
		Username:        DefaultUsername,
		UserID:          DefaultUserID,
		EnableBrowser:   true,
		NoChangeTimeout: DefaultNoChangeTimeout,
		SuToUser:        true,
		GroupID:         -1,
		ListenFD:        -1,
	}
}

// DefaultStateDir is sandboxd's state directory when the launch names
// none: one per port, so that two servers in one /tmp (tests, a host run
// by hand) keep their journals apart.
func DefaultStateDir(port int) string {
	return "/tmp/sbx-sandboxd-" + strconv.Itoa(port)
}

// StateDirOrDefault is the state directory sandboxd uses for l.
func (l Launch) StateDirOrDefault() string {
	if l.StateDir != "" {
		return l.StateDir
	}
	return DefaultStateDir(l.Port)
}

// URLFileOrDefault is the file sandboxd writes the file viewer's URL to.
func (l Launch) URLFileOrDefault() string {
	if l.URLFile != "" {
		return l.URLFile
	}
	return DefaultURLFile
}

// KnownPlugin reports whether name is one of OpenHands' plugin names,
// which sandboxd accepts so that OpenHands launches it unchanged.
func KnownPlugin(name string) bool {
	switch name {
	case "agent_skills", "jupyter", "vscode":
		return true
	}
	return false
}

// IsTrue is how sandboxd reads a boolean environment variable.
func IsTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "t", "yes", "y", "on":
		return true
	}
	return false
}

// Argv is sandboxd's command line for l, without the program name. The
// port and working directory are always given; every other flag only
// when it differs from Default, so that an image's CMD and a container's
// command stay as short as OpenHands' own. Nothing is checked: a launch
// sandboxd would refuse (an unknown plugin, say) is built as asked, and
// sandboxd's refusal is the error the caller sees.
func (l Launch) Argv() []string {
	d := Default()
	argv := []string{strconv.Itoa(l.Port)}
	argv = appendFlag(argv, "--working-dir", l.WorkDir)
	if l.Host != d.Host {
		argv = appendFlag(argv, "--host", l.Host)
	}
	if l.Username != d.Username {
		argv = appendFlag(argv, "--username", l.Username)
	}
	if l.UserID != d.UserID {
		argv = appendFlag(argv, "--user-id", strconv.Itoa(l.UserID))
	}
	if len(l.Plugins) > 0 {
		// One list while no name looks like a flag, which would end it.
		plain := true
		for _, p := range l.Plugins {
			plain = plain && !strings.HasPrefix(p, "-")
		}
		if plain {
			argv = append(append(argv, "--plugins"), l.Plugins...)
		} else {
			for _, p := range l.Plugins {
				argv = append(argv, "--plugins="+p)
			}
		}
	}
	if !l.EnableBrowser {
		argv = append(argv, "--no-enable-browser")
	}
	if l.BrowserEvalEnv != "" {
		argv = appendFlag(argv, "--browsergym-eval-env", l.BrowserEvalEnv)
	}
	return argv
}

// appendFlag gives a value its own word, as OpenHands does, unless the
// parser would take that word for the next flag.
func appendFlag(argv []string, name, value string) []string {
	if strings.HasPrefix(value, "--") {
		return append(argv, name+"="+value)
	}
	return append(argv, name, value)
}

// LaunchEnv is the launch's own part of sandboxd's environment, as
// "NAME=value" in a fixed order: the variables whose fields differ from
// Default. A caller that layers it over another environment (the host's,
// a spec's) puts it last, so that it wins.
func (l Launch) LaunchEnv() []string {
	d := Default()
	var env []string
	add := func(k, v string) { env = append(env, k+"="+v) }
	if l.SessionAPIKey != "" {
		add(EnvSessionAPIKey, l.SessionAPIKey)
	}
	if l.NoChangeTimeout != d.NoChangeTimeout && l.NoChangeTimeout != 0 {
		// Rounded up: a sub-second timeout must not become 0, which
		// sandboxd refuses.
		add(EnvNoChangeTimeout, strconv.FormatInt(int64((l.NoChangeTimeout+time.Second-1)/time.Second), 10))
	}
	if !l.SuToUser {
		add(EnvSuToUser, "false")
	}
	if l.RuntimeUsername != "" {
		add(EnvRuntimeUsername, l.RuntimeUsername)
	}
	if l.User != "" {
		add(EnvUser, l.User)
	}
	if l.Home != "" {
		add(EnvHome, l.Home)
	}
	if l.GroupID != d.GroupID {
		add(EnvGroupID, strconv.Itoa(l.GroupID))
	}
	if l.ListenFD != d.ListenFD {
		add(EnvListenFD, strconv.Itoa(l.ListenFD))
	}
	if l.StateDir != "" {
		add(EnvStateDir, l.StateDir)
	}
	if l.URLFile != "" {
		add(EnvURLFile, l.URLFile)
	}
	if l.PoolSecret != "" {
		add(EnvPoolSecret, l.PoolSecret)
	}
	return env
}

// Environ is sandboxd's whole environment for l, sorted: Env with
// LaunchEnv over it.
func (l Launch) Environ() []string {
	m := make(map[string]string, len(l.Env)+8)
	for k, v := range l.Env {
		m[k] = v
	}
	for _, kv := range l.LaunchEnv() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// IsLaunchVar reports whether name is one of the variables Parse reads.
func IsLaunchVar(name string) bool {
	switch name {
	case EnvSessionAPIKey, EnvNoChangeTimeout, EnvSuToUser, EnvRuntimeUsername,
		EnvUser, EnvHome, EnvGroupID, EnvListenFD, EnvStateDir, EnvURLFile, EnvPoolSecret:
		return true
	}
	return false
}

func invalid(format string, a ...any) error {
	return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf(format, a...))
}

// Parse reads sandboxd's command line as OpenHands' argparse definition
// does (spec §2.1), plus --host, and the launch variables from getenv.
// Its error texts are argparse's where argparse has one, since OpenHands
// users search for them; every error is of class
// errdefs.ErrInvalidArgument except ErrHelp and ErrVersion.
func Parse(args []string, getenv func(string) string) (Launch, error) {
	return parse(args, getenv, filepath.Abs)
}

// parse is Parse with the resolution of a relative working directory
// passed in: sandboxd resolves it against its own directory, a host-side
// caller cannot.
func parse(args []string, getenv func(string) string, abs func(string) (string, error)) (Launch, error) {
	c := Default()
	portSet := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") || a == "--" {
			if a == "--" || strings.HasPrefix(a, "-") && a != "-" && !isNumber(a) {
				if a == "-h" {
					return c, ErrHelp
				}
				return c, invalid("unrecognized argument: %s", a)
			}
			if portSet {
				return c, invalid("unrecognized argument: %s", a)
			}
			p, err := strconv.Atoi(a)
			if err != nil || p < 0 || p > 65535 {
				return c, invalid("argument port: invalid int value: '%s'", a)
			}
			c.Port, portSet = p, true
			continue
		}
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
				return "", invalid("argument %s: expected one argument", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--help":
			return c, ErrHelp
		case "--version":
			return c, ErrVersion
		case "--working-dir":
			c.WorkDir, err = value()
		case "--host":
			c.Host, err = value()
		case "--username":
			c.Username, err = value()
		case "--user-id":
			var v string
			if v, err = value(); err == nil {
				c.UserID, err = strconv.Atoi(v)
				if err != nil {
					err = invalid("argument --user-id: invalid int value: '%s'", v)
				}
			}
		case "--plugins":
			if hasVal {
				c.Plugins = append(c.Plugins, val)
				break
			}
			n := 0
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				c.Plugins = append(c.Plugins, args[i])
				n++
			}
			if n == 0 {
				err = invalid("argument --plugins: expected at least one argument")
			}
		case "--enable-browser":
			c.EnableBrowser = true
		case "--no-enable-browser":
			c.EnableBrowser = false
		case "--browsergym-eval-env":
			c.BrowserEvalEnv, err = value()
		default:
			err = invalid("unrecognized argument: %s", a)
		}
		if err != nil {
			return c, err
		}
	}
	if !portSet {
		return c, invalid("the following arguments are required: port")
	}
	if c.WorkDir == "" {
		return c, invalid("--working-dir is required")
	}
	dir, err := abs(c.WorkDir)
	if err != nil {
		return c, errdefs.Wrap(errdefs.ErrInvalidArgument, "--working-dir: "+err.Error(), err)
	}
	c.WorkDir = dir
	for _, p := range c.Plugins {
		if !KnownPlugin(p) {
			return c, invalid("Plugin %s not found", p)
		}
	}
	if !c.EnableBrowser && c.BrowserEvalEnv != "" {
		return c, invalid("Browser environment is not enabled in config, but browsergym_eval_env is set")
	}

	c.SessionAPIKey = getenv(EnvSessionAPIKey)
	if v := strings.TrimSpace(getenv(EnvNoChangeTimeout)); v != "" {
		n, err := strconv.Atoi(v)
		// The bound keeps n seconds a valid Duration.
		if err != nil || n <= 0 || int64(n) > int64(time.Duration(1<<63-1)/time.Second) {
			return c, invalid("%s must be a positive whole number of seconds, got %q", EnvNoChangeTimeout, v)
		}
		c.NoChangeTimeout = time.Duration(n) * time.Second
	}
	if v := getenv(EnvSuToUser); v != "" {
		c.SuToUser = IsTrue(v)
	}
	c.RuntimeUsername = getenv(EnvRuntimeUsername)
	c.PoolSecret = getenv(EnvPoolSecret)
	c.User = getenv(EnvUser)
	c.Home = getenv(EnvHome)
	if v := strings.TrimSpace(getenv(EnvGroupID)); v != "" && v != "root" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, invalid("%s must be a group id, got %q", EnvGroupID, v)
		}
		c.GroupID = n
	}
	if v := strings.TrimSpace(getenv(EnvListenFD)); v != "" {
		n, err := strconv.Atoi(v)
		// 0-2 are stdio: a socket there means the caller got it wrong.
		if err != nil || n < 3 {
			return c, invalid("%s must be a file descriptor number of 3 or more, got %q", EnvListenFD, v)
		}
		c.ListenFD = n
	}
	// Absolute, because sandboxd removes files named in the journal it
	// keeps there: a relative name would depend on where it was started.
	for _, v := range []struct {
		name string
		dst  *string
	}{{EnvStateDir, &c.StateDir}, {EnvURLFile, &c.URLFile}} {
		if p := getenv(v.name); p != "" {
			if !filepath.IsAbs(p) {
				return c, invalid("%s must be an absolute path, got %q", v.name, p)
			}
			*v.dst = p
		}
	}
	return c, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
