package launch

import (
	"fmt"
	"path"
	"strings"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// V0Module is the Python module of OpenHands' action execution server,
// which sandboxd stands in for.
const V0Module = "openhands.runtime.action_execution_server"

// ParseV0Command recovers a Launch from the command and environment that
// OpenHands' V0 RemoteRuntime sends in POST /start (spec/runtime-api.md
// §8.2): an argv array
//
//	/openhands/micromamba/bin/micromamba run -n openhands poetry run \
//	  python -u -m openhands.runtime.action_execution_server 60000 \
//	  --working-dir /workspace --plugins agent_skills jupyter \
//	  --username root --user-id 0 [--no-enable-browser] ...
//
// The interpreter prefix is recognised with or without the micromamba
// and poetry wrappers (LocalRuntime runs the interpreter directly), and
// what follows the module name is read by Parse. The launch variables of
// env fill the matching fields; every other variable goes to Launch.Env.
//
// V0 sends an array; the string that V1 clients send names another
// server (the agent-server) and is not a V0 command, so splitting words
// is the caller's business. The working directory must be absolute:
// it is a path in the sandbox, which the host cannot resolve.
//
// Every error is of class errdefs.ErrInvalidArgument.
func ParseV0Command(argv []string, env map[string]string) (Launch, error) {
	rest, err := v0ServerArgs(argv)
	if err != nil {
		return Launch{}, err
	}
	getenv := func(k string) string { return env[k] }
	l, err := parse(rest, getenv, func(dir string) (string, error) {
		if !path.IsAbs(dir) {
			return "", fmt.Errorf("%q is not an absolute path", dir)
		}
		return path.Clean(dir), nil
	})
	if err != nil {
		return Launch{}, errdefs.Wrap(errdefs.ErrInvalidArgument, "V0 command: "+err.Error(), err)
	}
	for k, v := range env {
		if IsLaunchVar(k) {
			continue
		}
		if l.Env == nil {
			l.Env = make(map[string]string, len(env))
		}
		l.Env[k] = v
	}
	return l, nil
}

// v0ServerArgs returns the server's own arguments: what follows
// "-m openhands.runtime.action_execution_server".
func v0ServerArgs(argv []string) ([]string, error) {
	words := argv
	// micromamba run -n ENV poetry run
	if len(words) > 0 && path.Base(words[0]) == "micromamba" {
		if len(words) < 6 || words[1] != "run" || words[2] != "-n" || words[3] == "" ||
			path.Base(words[4]) != "poetry" || words[5] != "run" {
			return nil, unrecognisedV0(argv, "micromamba is not followed by `run -n ENV poetry run`")
		}
		words = words[6:]
	}
	if len(words) == 0 || !isPython(path.Base(words[0])) {
		return nil, unrecognisedV0(argv, "no Python interpreter")
	}
	words = words[1:]
	// The interpreter's own options before -m: V0 gives -u, and nothing
	// here is allowed to take a value.
	for len(words) > 0 && words[0] != "-m" && isPythonFlag(words[0]) {
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "-m" || words[1] != V0Module {
		return nil, unrecognisedV0(argv, "it does not run -m "+V0Module)
	}
	return words[2:], nil
}

// isPython matches python, python3 and python3.12, the names an
// interpreter is run by.
func isPython(name string) bool {
	v, ok := strings.CutPrefix(name, "python")
	if !ok {
		return false
	}
	for _, r := range v {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

// isPythonFlag matches the value-less interpreter options (-u, -B, -OO,
// -uB...), so that -c, -W or -X, which would change what runs, are not
// skipped.
func isPythonFlag(w string) bool {
	f, ok := strings.CutPrefix(w, "-")
	if !ok || f == "" {
		return false
	}
	for _, r := range f {
		if !strings.ContainsRune("bBdEIOPqsSuv", r) {
			return false
		}
	}
	return true
}

func unrecognisedV0(argv []string, why string) error {
	return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf(
		"not an OpenHands V0 action execution server command (%s): %q", why, argv))
}
