package sandboxd

import (
	"strings"
	"testing"
)

func TestDecodeActionRequest(t *testing.T) {
	tests := []struct {
		name, body string
		status     int    // 0: decodes
		detail     string // prefix of the detail
	}{
		{"run", `{"action":{"action":"run","args":{"command":"ls"},"timeout":120}}`, 0, ""},
		{"invalid json", `{"action":`, 422, "Invalid request parameters"},
		{"trailing data", `{"action":{"action":"run","args":{"command":"ls"}}} x`, 422, "Invalid request parameters"},
		{"not an object", `[1,2]`, 422, "Invalid request parameters"},
		{"no action", `{"foo":1}`, 422, "Invalid request parameters"},
		{"action not an object", `{"action":"run"}`, 422, "Invalid request parameters"},
		{"no type", `{"action":{"args":{}}}`, 500, "Internal server error: Unknown event type: {'args': {}}"},
		{"an observation", `{"action":{"observation":"run","content":"x"}}`, 500, "Internal server error: 400: Invalid action type"},
		{"unknown type", `{"action":{"action":"dance","args":{}}}`, 500, "Internal server error: 'action['action']='dance'' is not defined. Available actions: dict_keys(["},
		{"type not a string", `{"action":{"action":7}}`, 500, "Internal server error: 'action['action']=7' is not defined."},
		{"missing command", `{"action":{"action":"run","args":{}}}`, 500, "Internal server error: action={'action': 'run', 'args': {}} has the wrong arguments: CmdRunAction.__init__() missing 1 required positional argument: 'command'"},
		{"args not object", `{"action":{"action":"run","args":[1]}}`, 500, "Internal server error: action="},
		{"bad timeout", `{"action":{"action":"run","args":{"command":"ls"},"timeout":"x"}}`, 500, "Internal server error: action="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeActionRequest([]byte(tt.body))
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if d.typ != "run" || d.timeout == nil || *d.timeout != 120 {
					t.Fatalf("decoded %+v", d)
				}
				return
			}
			re, ok := err.(*requestError)
			if !ok {
				t.Fatalf("got %v (%T), want a requestError", err, err)
			}
			if re.status != tt.status || !strings.HasPrefix(re.detail, tt.detail) {
				t.Fatalf("got %d %q, want %d %q…", re.status, re.detail, tt.status, tt.detail)
			}
		})
	}
}

func TestDecodeLegacyArgs(t *testing.T) {
	body := `{"action":{"action":"edit","args":{"path":"/w/a","translated_ipython_code":"print(file_editor(**{'command': 'str_replace', 'path': '/w/a', 'old_str': 'x', 'new_str': 'y'}))","is_confirmed":"confirmed","security_risk":9,"keep_prompt":true}}}`
	d, err := decodeActionRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d.args["command"] != "str_replace" || d.args["old_str"] != "x" || d.args["confirmation_state"] != "confirmed" {
		t.Fatalf("args %v", d.args)
	}
	for _, k := range []string{"security_risk", "keep_prompt", "translated_ipython_code", "is_confirmed"} {
		if _, ok := d.args[k]; ok {
			t.Errorf("%s should have been dropped", k)
		}
	}
}

func TestPyRepr(t *testing.T) {
	d, err := decodeActionRequest([]byte(`{"action":{"action":"run","args":{"command":"it's","n":null,"b":true,"f":1.5,"i":3}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := pyRepr(d.raw)
	want := `{'action': 'run', 'args': {'b': True, 'command': "it's", 'f': 1.5, 'i': 3, 'n': None}}`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func FuzzDecodeActionRequest(f *testing.F) {
	for _, s := range []string{
		`{"action":{"action":"run","args":{"command":"ls"},"timeout":120}}`,
		`{"action":{"action":"edit","args":{"path":"/a","command":"view","view_range":[1,2]}}}`,
		`{"action":{"action":"read","args":{"path":"/a","translated_ipython_code":"print(file_editor(**{'command': 'view'}))"}}}`,
		`{"action":{"action":"write","args":{"path":"/a","content":"\u0000"}}}`,
		`{"action":[]}`, `{}`, `null`, `"x"`, `{"action":{"action":"run","args":{"command":1e999}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := decodeActionRequest(body)
		if err == nil {
			if d == nil || d.typ == "" {
				t.Fatalf("nil action without error for %q", body)
			}
			var a struct{}
			_ = bindArgs(d, &a)
			return
		}
		re, ok := err.(*requestError)
		if !ok || (re.status != 422 && re.status != 500) || re.detail == "" {
			t.Fatalf("unexpected error %#v for %q", err, body)
		}
	})
}
