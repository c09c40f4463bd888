package swerex

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzRequestBodies: any body on the routes that cannot start a process
// when no session exists gets a JSON answer with a status the client
// understands, never a panic or a hang.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{"", "{", "null", "[]", `{"command":"x"}`, `{"action_type":"bash","command":"x"}`,
		`{"action_type":"bash_interrupt","timeout":"0.1","n_retry":"2"}`, `{"action_type":"bash","command":1,"check":"x","expect":[1]}`,
		`{"session":"nope","session_type":"bash"}`, `{"path":"/nonexistent","encoding":"latin-1","errors":"replace"}`,
		`{"path":"/etc/hostname","encoding":"klingon"}`, "\xff\xfe", `{"action_type":"bash","command":"x","timeout":1e999}`} {
		f.Add("/run_in_session", s)
		f.Add("/close_session", s)
		f.Add("/read_file", s)
	}
	srv := New(Config{Dir: f.TempDir()})
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/run_in_session", "/close_session", "/read_file":
		default:
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewBufferString(body)))
		switch rec.Code {
		case 200, 422, 511:
		default:
			t.Fatalf("%s %q: status %d", path, body, rec.Code)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %q: body not JSON: %q", path, body, rec.Body.String())
		}
	})
}

// FuzzParseCommand: the Command model never panics and a valid result
// always has something to run or a clear error.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`{"command":"ls"}`, `{"command":["ls","-l"],"shell":"yes","env":{"A":"b"},"cwd":"/"}`,
		`{"command":[],"timeout":null}`, `{"command":null}`, `{"command":["a",1]}`, `{"env":{"A":1}}`, `{"command":"x","timeout":"nan"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := parseCommand(body)
		if err != nil {
			return
		}
		if c.str == nil && c.list == nil {
			t.Fatalf("%q: accepted without a command", body)
		}
		_ = c.repr()
		_ = c.argv()
	})
}
