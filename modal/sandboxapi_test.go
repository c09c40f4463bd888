package modal_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/backend"
	"github.com/sbx-dev/sbx/internal/driver/modal/modalfake"
	"github.com/sbx-dev/sbx/internal/runtimeapi/server"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
	"github.com/sbx-dev/sbx/modal"
)

// TestSandboxAPIOnFake is sandbox-api with Modal as its backend, through
// the same seam as Docker (backend.Open with modal's factory), against
// the FAKE Modal API: a tenant starts an OpenHands V0 runtime, runs an
// action through the service's proxy (which reaches sandboxd through the
// fake's TLS tunnel), cannot pause it (Modal has no freezer), and stops
// it, which terminates the Modal sandbox.
func TestSandboxAPIOnFake(t *testing.T) {
	isolate(t)
	fake := modalfake.StartDocker(t, tunnelCert)
	profile, err := fake.ProfileFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MODAL_CONFIG_PATH", profile)

	ctx := t.Context()
	be, err := backend.Open(ctx, modalConfig(), backend.Options{Drivers: map[string]backend.Factory{modal.Name: modal.Factory}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	srv, err := server.New(server.Config{Store: st, Driver: be.Driver, Caps: be.Caps, Backend: be.Name, PublicURL: base,
		StartTimeout: 2 * time.Minute, Labels: map[string]string{"dev.sbx.runtimeapi": "true"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	defer ts.Close()
	defer srv.Close()
	_, key, err := st.CreateKey(ctx, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	type runtimeObject struct {
		RuntimeID     string `json:"runtime_id"`
		URL           string `json:"url"`
		SessionAPIKey string `json:"session_api_key"`
		Status        string `json:"status"`
		PodStatus     string `json:"pod_status"`
		Reason        string `json:"reason"`
	}
	call := func(method, path string, hdr map[string]string, body, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil && json.Unmarshal(data, out) != nil {
			t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode
	}
	tenant := map[string]string{"X-API-Key": key}
	v0 := []string{"/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run", "python", "-u", "-m",
		"openhands.runtime.action_execution_server", "60000", "--working-dir", "/workspace", "--plugins", "agent_skills",
		"--username", "root", "--user-id", "0"}
	var o runtimeObject
	if code := call("POST", "/start", tenant, map[string]any{"image": modalConfig().Sandbox.BaseContainerImage, "command": v0,
		"working_dir": "/openhands/code/", "session_id": "modal-sess", "resource_factor": 2}, &o); code != 200 {
		t.Fatalf("/start: %d %+v", code, o)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for o.Status != "running" {
		if o.Status == "error" || o.Status == "stopped" || time.Now().After(deadline) {
			t.Fatalf("runtime %s: %s/%s %s", o.RuntimeID, o.Status, o.PodStatus, o.Reason)
		}
		time.Sleep(100 * time.Millisecond)
		call("GET", "/runtime/"+o.RuntimeID, tenant, nil, &o)
	}
	def := fake.Definition("sbx-" + o.RuntimeID)
	if def == nil || def.GetResources().GetMilliCpu() != 2000 || def.GetResources().GetMemoryMb() != 4096 {
		t.Errorf("the Modal sandbox of a factor-2 runtime: %v", def.GetResources())
	}
	var obs struct {
		Content string `json:"content"`
	}
	action := map[string]any{"action": map[string]any{"action": "run", "args": map[string]any{"command": "echo on-$((6*7))", "blocking": true, "timeout": 20}}}
	if code := call("POST", "/"+o.RuntimeID+"/execute_action", map[string]string{"X-Session-API-Key": o.SessionAPIKey}, action, &obs); code != 200 || !strings.Contains(obs.Content, "on-42") {
		t.Fatalf("an action through the proxy: %d %q", code, obs.Content)
	}
	if code := call("POST", "/pause", tenant, map[string]string{"runtime_id": o.RuntimeID}, nil); code != http.StatusNotImplemented {
		t.Errorf("/pause on Modal: %d, want 501", code)
	}
	if code := call("POST", "/stop", tenant, map[string]string{"runtime_id": o.RuntimeID}, &o); code != 200 || o.Status != "stopped" {
		t.Fatalf("/stop: %d %+v", code, o)
	}
	if fake.Definition("sbx-"+o.RuntimeID) != nil {
		t.Error("the Modal sandbox of a stopped runtime is still running")
	}
}
