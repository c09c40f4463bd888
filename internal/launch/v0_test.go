package launch

import (
	"slices"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// v0Prefix is the interpreter prefix of V0's RemoteRuntime and
// DockerRuntime (spec/openhands-runtime.md §2.1).
var v0Prefix = []string{"/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run",
	"python", "-u", "-m", "openhands.runtime.action_execution_server"}

func TestParseV0Command(t *testing.T) {
	argv := append(slices.Clone(v0Prefix), "60000", "--working-dir", "/workspace", "--plugins", "agent_skills", "jupyter",
		"--username", "root", "--user-id", "0", "--browsergym-eval-env", "miniwob.click", "--no-enable-browser")
	env := map[string]string{"DEBUG": "true", "SESSION_API_KEY": "k", "NO_CHANGE_TIMEOUT_SECONDS": "30", "VSCODE_PORT": "60001"}
	_, err := ParseV0Command(argv, env)
	want := "V0 command: Browser environment is not enabled in config, but browsergym_eval_env is set"
	if err == nil || err.Error() != want || !errdefs.IsInvalidArgument(err) {
		t.Errorf("err = %v, want %q", err, want)
	}

	argv = append(slices.Clone(v0Prefix), "60000", "--working-dir", "/workspace/", "--plugins", "agent_skills", "jupyter",
		"--username", "root", "--user-id", "0", "--no-enable-browser")
	got, err := ParseV0Command(argv, env)
	if err != nil {
		t.Fatal(err)
	}
	w := Default()
	w.Port, w.WorkDir, w.Plugins, w.Username, w.UserID, w.EnableBrowser = 60000, "/workspace", []string{"agent_skills", "jupyter"}, "root", 0, false
	w.SessionAPIKey, w.NoChangeTimeout = "k", 30*time.Second
	w.Env = map[string]string{"DEBUG": "true", "VSCODE_PORT": "60001"}
	if !same(got, w) {
		t.Errorf("got %+v\nwant %+v", got, w)
	}
	// What sandbox-api would start is what V0 asked for.
	if back := reparse(t, got); !same(back, func() Launch { w.Env = nil; return w }()) {
		t.Errorf("rebuilt: %+v", back)
	}

	// The prefixes OpenHands uses: LocalRuntime's interpreter, any
	// micromamba environment, value-less interpreter options.
	for _, prefix := range [][]string{
		{"/usr/bin/python3.12", "-u", "-m", V0Module},
		{"python", "-m", V0Module},
		{"micromamba", "run", "-n", "oh", "/usr/local/bin/poetry", "run", "python3", "-u", "-B", "-m", V0Module},
		{"/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run", "python", "-uB", "-m", V0Module},
	} {
		if _, err := ParseV0Command(append(slices.Clone(prefix), "1", "--working-dir", "/w"), nil); err != nil {
			t.Errorf("%q: %v", prefix, err)
		}
	}
}

func TestParseV0CommandErrors(t *testing.T) {
	tail := []string{"60000", "--working-dir", "/workspace"}
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{nil, `not an OpenHands V0 action execution server command (no Python interpreter): []`},
		{[]string{"/usr/local/bin/openhands-agent-server", "--port", "60000"},
			`not an OpenHands V0 action execution server command (no Python interpreter): ["/usr/local/bin/openhands-agent-server" "--port" "60000"]`},
		{[]string{"/agent-server/.venv/bin/python", "-m", "openhands.agent_server", "--port", "60000"},
			`not an OpenHands V0 action execution server command (it does not run -m openhands.runtime.action_execution_server): ["/agent-server/.venv/bin/python" "-m" "openhands.agent_server" "--port" "60000"]`},
		{append([]string{"micromamba", "run", "python", "-m", V0Module}, tail...),
			`not an OpenHands V0 action execution server command (micromamba is not followed by ` + "`run -n ENV poetry run`" + `): ["micromamba" "run" "python" "-m" "openhands.runtime.action_execution_server" "60000" "--working-dir" "/workspace"]`},
		{append([]string{"python", "-c", "import os", "-m", V0Module}, tail...),
			`not an OpenHands V0 action execution server command (it does not run -m openhands.runtime.action_execution_server): ["python" "-c" "import os" "-m" "openhands.runtime.action_execution_server" "60000" "--working-dir" "/workspace"]`},
		{[]string{"python", "-u", "-m"},
			`not an OpenHands V0 action execution server command (it does not run -m openhands.runtime.action_execution_server): ["python" "-u" "-m"]`},
		{append(slices.Clone(v0Prefix), "60000", "--working-dir", "workspace"), `V0 command: --working-dir: "workspace" is not an absolute path`},
		{append(slices.Clone(v0Prefix), "60000", "--plugins", "browser", "--working-dir", "/w"), "V0 command: Plugin browser not found"},
		{append(slices.Clone(v0Prefix), "--help"), "V0 command: help requested"},
		{slices.Clone(v0Prefix), "V0 command: the following arguments are required: port"},
	} {
		_, err := ParseV0Command(tc.argv, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseV0Command(%q) = %v\nwant %s", tc.argv, err, tc.want)
			continue
		}
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseV0Command(%q): %v is not an invalid argument", tc.argv, err)
		}
	}
	_, err := ParseV0Command(append(slices.Clone(v0Prefix), tail...), map[string]string{"SBX_LISTEN_FD": "1"})
	if want := `V0 command: SBX_LISTEN_FD must be a file descriptor number of 3 or more, got "1"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestIsPython(t *testing.T) {
	for name, want := range map[string]bool{"python": true, "python3": true, "python3.12": true,
		"pythonw": false, "ipython": false, "python-3": false, "": false} {
		if isPython(name) != want {
			t.Errorf("isPython(%q) = %v", name, !want)
		}
	}
}
