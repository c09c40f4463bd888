package server

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		"/usr/local/bin/openhands-agent-server --port 60000": {"/usr/local/bin/openhands-agent-server", "--port", "60000"},
		"  a\tb\n c  ":      {"a", "b", "c"},
		`a 'b c' "d e"`:     {"a", "b c", "d e"},
		`a 'it''s'`:         {"a", "its"},
		`"a\"b" 'a\b' a\ b`: {`a"b`, `a\b`, "a b"},
		`"$HOME" $HOME`:     {"$HOME", "$HOME"},
		`"\$x\x"`:           {`$x\x`},
		"a\\\nb":            {"ab"},
		`''`:                {""},
		`a""b`:              {"ab"},
		"":                  nil,
		"/agent-server/.venv/bin/python -m openhands.agent_server --port 60000": {"/agent-server/.venv/bin/python", "-m", "openhands.agent_server", "--port", "60000"},
	} {
		got, err := splitWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'a`, `"a`, `a\`, `"a\"`} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) accepted", bad)
		}
	}
}

// The SDK sends the command as a string, the app server and V0 as a list.
func TestDecodeStartCommandForms(t *testing.T) {
	for body, want := range map[string][]string{
		`{"image":"i","session_id":"s","command":"/usr/local/bin/openhands-agent-server --port 60000"}`:       {"/usr/local/bin/openhands-agent-server", "--port", "60000"},
		`{"image":"i","session_id":"s","command":["/usr/local/bin/openhands-agent-server","--port","60000"]}`: {"/usr/local/bin/openhands-agent-server", "--port", "60000"},
	} {
		r, err := decodeStart([]byte(body))
		if err != nil || !reflect.DeepEqual([]string(r.Command), want) {
			t.Errorf("%s → %q %v", body, r.Command, err)
		}
	}
	// Unknown fields are ignored; the SDK's and app server's extras pass.
	if _, err := decodeStart([]byte(`{"image":"i","session_id":"s","command":"a","runtime_class":"sysbox-runc","image_pull_policy":"IfNotPresent","resource_factor":2,"run_as_user":10001,"run_as_group":10001,"fs_group":10001,"future":1}`)); err != nil {
		t.Error(err)
	}
}

// FuzzDecodeStart: any body is either a clear invalid-argument error or a
// request whose command, ids and environment hold what a container can
// take, without a panic.
func FuzzDecodeStart(f *testing.F) {
	for _, s := range []string{
		`{"image":"i","session_id":"s","command":"a 'b' \"c\""}`,
		`{"image":"i","session_id":"s","command":["a","b"],"environment":{"A":"1"}}`,
		`{"image":"i","session_id":"s","command":null}`,
		`{"image":"i","session_id":"s","command":7}`,
		`{"image":"i","session_id":"s","command":"a","resource_factor":8,"run_as_user":10001}`,
		`{"image":"i","session_id":"s","command":["python","-m","openhands.runtime.action_execution_server","60000","--working-dir","/w"]}`,
		`[]`, `{`, `{"image":1}`, `{"command":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeStart(b)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of no class: %v", err)
			}
			return
		}
		if r.Image == "" || r.SessionID == "" || len(r.Command) == 0 {
			t.Fatalf("accepted without image, session or command: %+v", r)
		}
		for _, a := range r.Command {
			if strings.ContainsRune(a, 0) {
				t.Fatal("NUL in an argument")
			}
		}
		if _, err := specOf(r); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("specOf: %v", err)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzSplitWords: splitting never panics, and words joined with the
// shell's single-quote quoting split back to themselves.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"a b", `'a b' c`, `"a\"b"`, `a\ b`, "a\\\nb", `''`, `"$x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		var q []string
		for _, w := range words {
			q = append(q, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := splitWords(strings.Join(q, " "))
		if err != nil || !reflect.DeepEqual(again, words) && !(len(again) == 0 && len(words) == 0) {
			t.Fatalf("%q → %q → %q (%v)", s, words, again, err)
		}
	})
}
