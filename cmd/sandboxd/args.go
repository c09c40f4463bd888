package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const usage = `usage: sandboxd <port> --working-dir DIR [--plugins NAME [NAME ...]]
                [--username USER] [--user-id UID]
                [--enable-browser | --no-enable-browser] [--browsergym-eval-env ENV]
                [--host ADDR]

The in-sandbox server of sbx. It speaks OpenHands' action execution
protocol on ADDR:<port> (ADDR defaults to 0.0.0.0).

Environment: SESSION_API_KEY, NO_CHANGE_TIMEOUT_SECONDS (10), SU_TO_USER (true),
RUNTIME_USERNAME, SANDBOX_GROUP_ID (root), DEBUG, LOG_JSON,
SBX_LISTEN_FD (serve on this inherited listening socket instead of binding
ADDR:<port>; <port> is still given, for the file viewer).
`

var (
	errHelp    = errors.New("help requested")
	errVersion = errors.New("version requested")
)

// knownPlugins are OpenHands' plugin names. sandboxd accepts them so that
// OpenHands launches it unchanged; see README for what each provides.
var knownPlugins = map[string]bool{"agent_skills": true, "jupyter": true, "vscode": true}

type config struct {
	port            int
	host            string
	workDir         string
	plugins         []string
	username        string
	userID          int
	enableBrowser   bool
	browserEvalEnv  string
	sessionKey      string
	noChange        time.Duration
	suToUser        bool
	runtimeUsername string
	envUser         string
	home            string
	groupID         int // -1: root
	listenFD        int // -1: bind host:port ourselves
}

// envListenFD names an inherited listening socket. The local driver binds
// the port itself and hands the socket over, so that no other process can
// take the port between choosing it and sandboxd binding it.
const envListenFD = "SBX_LISTEN_FD"

// parseArgs reads the command line as OpenHands' argparse definition does
// (spec §2.1), plus --host, and the environment variables of the §2.1 table.
func parseArgs(args []string, getenv func(string) string) (config, error) {
	c := config{host: "0.0.0.0", username: "openhands", userID: 1000, enableBrowser: true, groupID: -1, listenFD: -1}
	portSet := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") || a == "--" {
			if a == "--" || strings.HasPrefix(a, "-") && a != "-" && !isNumber(a) {
				if a == "-h" {
					return c, errHelp
				}
				return c, fmt.Errorf("unrecognized argument: %s", a)
			}
			if portSet {
				return c, fmt.Errorf("unrecognized argument: %s", a)
			}
			p, err := strconv.Atoi(a)
			if err != nil || p < 0 || p > 65535 {
				return c, fmt.Errorf("argument port: invalid int value: '%s'", a)
			}
			c.port, portSet = p, true
			continue
		}
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
				return "", fmt.Errorf("argument %s: expected one argument", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--help":
			return c, errHelp
		case "--version":
			return c, errVersion
		case "--working-dir":
			c.workDir, err = value()
		case "--host":
			c.host, err = value()
		case "--username":
			c.username, err = value()
		case "--user-id":
			var v string
			if v, err = value(); err == nil {
				c.userID, err = strconv.Atoi(v)
				if err != nil {
					err = fmt.Errorf("argument --user-id: invalid int value: '%s'", v)
				}
			}
		case "--plugins":
			if hasVal {
				c.plugins = append(c.plugins, val)
				break
			}
			n := 0
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				c.plugins = append(c.plugins, args[i])
				n++
			}
			if n == 0 {
				err = errors.New("argument --plugins: expected at least one argument")
			}
		case "--enable-browser":
			c.enableBrowser = true
		case "--no-enable-browser":
			c.enableBrowser = false
		case "--browsergym-eval-env":
			c.browserEvalEnv, err = value()
		default:
			err = fmt.Errorf("unrecognized argument: %s", a)
		}
		if err != nil {
			return c, err
		}
	}
	if !portSet {
		return c, errors.New("the following arguments are required: port")
	}
	if c.workDir == "" {
		return c, errors.New("--working-dir is required")
	}
	abs, err := filepath.Abs(c.workDir)
	if err != nil {
		return c, fmt.Errorf("--working-dir: %w", err)
	}
	c.workDir = abs
	for _, p := range c.plugins {
		if !knownPlugins[p] {
			return c, fmt.Errorf("Plugin %s not found", p)
		}
	}
	if !c.enableBrowser && c.browserEvalEnv != "" {
		return c, errors.New("Browser environment is not enabled in config, but browsergym_eval_env is set")
	}

	c.sessionKey = getenv("SESSION_API_KEY")
	c.noChange = 10 * time.Second
	if v := strings.TrimSpace(getenv("NO_CHANGE_TIMEOUT_SECONDS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("NO_CHANGE_TIMEOUT_SECONDS must be a positive whole number of seconds, got %q", v)
		}
		c.noChange = time.Duration(n) * time.Second
	}
	c.suToUser = true
	if v := getenv("SU_TO_USER"); v != "" {
		c.suToUser = isTrue(v)
	}
	c.runtimeUsername = getenv("RUNTIME_USERNAME")
	c.envUser = getenv("USER")
	c.home = getenv("HOME")
	if v := strings.TrimSpace(getenv("SANDBOX_GROUP_ID")); v != "" && v != "root" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("SANDBOX_GROUP_ID must be a group id, got %q", v)
		}
		c.groupID = n
	}
	if v := strings.TrimSpace(getenv(envListenFD)); v != "" {
		n, err := strconv.Atoi(v)
		// 0-2 are stdio: a socket there means the caller got it wrong.
		if err != nil || n < 3 {
			return c, fmt.Errorf("%s must be a file descriptor number of 3 or more, got %q", envListenFD, v)
		}
		c.listenFD = n
	}
	return c, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
