package sbx

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// setupEnv is OpenHands' setup_initial_env in one round trip: export the
// initial env and runtime_startup_env_vars in the shell, persist them in
// ~/.bashrc (once per name), and set git's identity. OpenHands sends up to
// five actions; one keeps sandbox creation fast. With persist unset only
// the exports are sent.
func (s *Sandbox) setupEnv(ctx context.Context, cfg *config.Config, extra map[string]string, persist bool) error {
	env := initialEnv(cfg, extra)
	for k, v := range cfg.Sandbox.RuntimeStartupEnvVars {
		env[k] = v
	}
	script, err := envScript(env, cfg.GitUserName, cfg.GitUserEmail, persist, persist && cfg.InitGitInEmptyWorkspace)
	if err != nil {
		return err
	}
	if script == "" {
		return nil
	}
	obs, ex, err := s.Run(ctx, sandboxapi.NewRunAction(script, 30))
	if err != nil {
		return fmt.Errorf("setting up the sandbox's environment: %w", err)
	}
	if obs.Observation != "run" || ex.Metadata.ExitCode != 0 {
		return errdefs.New(errdefs.ErrInternal, fmt.Sprintf("setting up the sandbox's environment failed (exit code %d): %s", ex.Metadata.ExitCode, obs.Content))
	}
	return nil
}

// envScript builds the set-up command. Names are upper-cased, as
// OpenHands' add_env_vars does. Values are single-quoted, so a value
// holding $, backquotes or quotes arrives as written (OpenHands
// double-quotes JSON, which lets bash expand $ in values). Every step's
// failure is collected into the command's exit status, and a name is
// written to ~/.bashrc only once its export worked.
func envScript(env map[string]string, gitName, gitEmail string, persist, initGit bool) (string, error) {
	upper := make(map[string]string, len(env))
	for k, v := range env {
		if !validName(k) {
			return "", errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("environment variable name %q is not valid in a shell", k))
		}
		upper[strings.ToUpper(k)] = v
	}
	keys := make([]string, 0, len(upper))
	for k := range upper {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("__sbx_rc=0; ")
	for _, k := range keys {
		q := shellQuote(upper[k])
		fmt.Fprintf(&b, "export %s=%s", k, q)
		if persist {
			line := "export " + k + "=" + q
			fmt.Fprintf(&b, " && { grep -qs %s ~/.bashrc || printf '%%s\\n' %s >> ~/.bashrc; }", shellQuote("^export "+k+"="), shellQuote(line))
		}
		b.WriteString(" || __sbx_rc=1; ")
	}
	if persist {
		// A fresh home has no ~/.gitconfig: writing it with shell builtins
		// saves two git processes (about 15 ms) from every sandbox start.
		// Otherwise git edits the existing file; an image without git gets
		// no identity rather than a failed start.
		if strings.ContainsAny(gitName+gitEmail, "\n\x00") {
			return "", errdefs.New(errdefs.ErrInvalidArgument, "git_user_name and git_user_email must be one line each")
		}
		fmt.Fprintf(&b, "if [ ! -e ~/.gitconfig ]; then printf '[user]\\n\\tname = %%s\\n\\temail = %%s\\n' %s %s > ~/.gitconfig; "+
			"elif command -v git >/dev/null; then git config --global user.name %s && git config --global user.email %s; fi || __sbx_rc=1; ",
			shellQuote(gitQuote(gitName)), shellQuote(gitQuote(gitEmail)), shellQuote(gitName), shellQuote(gitEmail))
	}
	if initGit {
		b.WriteString("if [ -z \"$(ls -A 2>/dev/null)\" ] && command -v git >/dev/null; then git init -q || __sbx_rc=1; fi; ")
	}
	if len(keys) == 0 && !persist && !initGit {
		return "", nil
	}
	// The status of the last command is the collected one, and the
	// helper variable is gone when all went well.
	b.WriteString(`[ "$__sbx_rc" = 0 ] && unset __sbx_rc`)
	return b.String(), nil
}

func validName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// gitQuote writes a value as git's config syntax reads it back verbatim.
func gitQuote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
