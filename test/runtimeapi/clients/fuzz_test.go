package clients

import (
	"slices"
	"testing"
)

// FuzzDecodeRuntime feeds arbitrary replies to the runtime-object decoder
// and everything that reads its result: none may panic, and the mappings
// must stay inside SandboxStatus.
func FuzzDecodeRuntime(f *testing.F) {
	f.Add([]byte(`{"runtime_id":"rt-1","url":"http://h/rt-1","session_api_key":"k","status":"running","pod_status":"ready","work_hosts":{"h":1}}`))
	f.Add([]byte(`{"id":"x","url":"","status":null,"pod_status":7}`))
	f.Add([]byte(`[]`))
	all := []SandboxStatus{StatusStarting, StatusRunning, StatusPaused, StatusError, StatusMissing}
	f.Fuzz(func(t *testing.T, b []byte) {
		rt, err := decodeRuntime(b)
		if err != nil {
			return
		}
		for _, s := range []SandboxStatus{MapStatusAppA(rt), MapStatusAppBC(rt, false), MapStatusAppBC(rt, true)} {
			if !slices.Contains(all, s) {
				t.Fatalf("status %q outside SandboxStatus", s)
			}
		}
		NewAppService(AppOptions{Variant: AppA}).info("s", rt)
		NewAppService(AppOptions{}).info("s", rt)
		ServiceURL(rt.URL, rt.RuntimeID, "vscode", true)
		(&SDKWorkspace{}).parse(b)
		errNoKey(rt)
	})
}
