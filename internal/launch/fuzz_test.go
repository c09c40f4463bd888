package launch

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Fuzz inputs carry an argv as words separated by NUL (no argument can
// hold one) and an environment as NAME=value lines.

func splitArgs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

func splitEnv(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func FuzzParse(f *testing.F) {
	f.Add("8000\x00--working-dir\x00/workspace", "")
	f.Add("60000\x00--working-dir=/w\x00--plugins\x00agent_skills\x00jupyter\x00--username\x00root\x00--user-id\x000",
		"SESSION_API_KEY=k\nSBX_LISTEN_FD=3\nSU_TO_USER=0")
	f.Add("--host=\x000\x00--working-dir\x00rel/../x\x00--no-enable-browser", "SANDBOX_GROUP_ID=root\nNO_CHANGE_TIMEOUT_SECONDS= 7 ")
	f.Add("1\x00--working-dir\x00/w\x00--username=--x\x00--browsergym-eval-env\x00-e", "HOME= \nUSER=a=b")
	f.Add("2\x00--working-dir\x00/w", "SBX_STATE_DIR=/s/t\nSBX_URL_FILE=/s/t/url")
	f.Add("2\x00--working-dir\x00/w", "SBX_STATE_DIR=rel\nSBX_URL_FILE=")
	f.Add("2\x00--working-dir\x00/w", "SBX_POOL_SECRET=p=q\nSESSION_API_KEY=")
	f.Fuzz(func(t *testing.T, args, env string) {
		m := splitEnv(env)
		l, err := Parse(splitArgs(args), func(k string) string { return m[k] })
		if err != nil {
			if !errdefs.IsInvalidArgument(err) && !errors.Is(err, ErrHelp) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error without a class: %v", err)
			}
			return
		}
		if got := reparse(t, l); !same(got, l) {
			t.Fatalf("%q %q\n got %+v\nwant %+v", l.Argv(), l.Environ(), got, l)
		}
	})
}

func FuzzParseV0Command(f *testing.F) {
	prefix := strings.Join(v0Prefix, "\x00")
	f.Add(prefix+"\x0060000\x00--working-dir\x00/workspace\x00--plugins\x00agent_skills\x00jupyter\x00--username\x00root\x00--user-id\x000",
		"DEBUG=true\nVSCODE_PORT=60001")
	f.Add(prefix+"\x0060000\x00--working-dir\x00/workspace\x00--username\x00openhands\x00--user-id\x001000\x00--no-enable-browser",
		"SESSION_API_KEY=k")
	f.Add("/usr/bin/python3\x00-u\x00-m\x00"+V0Module+"\x001\x00--working-dir\x00/a/../b", "")
	f.Add("/usr/local/bin/openhands-agent-server\x00--port\x0060000", "LOG_JSON=true")
	f.Add("micromamba\x00run\x00-n\x00x\x00poetry\x00run\x00python\x00-m", "")
	f.Fuzz(func(t *testing.T, argv, env string) {
		m := splitEnv(env)
		l, err := ParseV0Command(splitArgs(argv), m)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error without a class: %v", err)
			}
			return
		}
		for k := range l.Env {
			if IsLaunchVar(k) {
				t.Fatalf("Env keeps launch variable %s", k)
			}
		}
		if len(l.Env)+len(launchVars(m)) != len(m) {
			t.Fatalf("Env %v lost variables of %v", l.Env, m)
		}
		want := l
		want.Env = nil
		if got := reparse(t, l); !same(got, want) {
			t.Fatalf("%q %q\n got %+v\nwant %+v", l.Argv(), l.Environ(), got, want)
		}
	})
}

func launchVars(m map[string]string) map[string]string {
	out := maps.Clone(m)
	maps.DeleteFunc(out, func(k, _ string) bool { return !IsLaunchVar(k) })
	return out
}
