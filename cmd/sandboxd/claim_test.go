package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// TestClaimReachesTheAgentShell: the real binary, started warm with a
// pool secret, is claimed; the agent's shell and a process started
// afterwards see the tenant's variables, and never the pool secret.
func TestClaimReachesTheAgentShell(t *testing.T) {
	const secret = "warm-pool-secret-0123456789"
	c := startSandboxd(t, buildSandboxd(t), filepath.Join(t.TempDir(), "work"),
		"SESSION_API_KEY=pool-internal", launch.EnvPoolSecret+"="+secret, "SBX_STATE_DIR="+t.TempDir())

	req, err := http.NewRequestWithContext(t.Context(), "POST", c.url+"/sbx/v1/claim",
		strings.NewReader(`{"session_api_key":"tenant-key","env":{"TENANT_TOKEN":"it's $x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Sbx-Pool-Secret", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"claimed":true,"sessions":1}` {
		t.Fatalf("claim: %d %s", resp.StatusCode, b)
	}

	s := &sandboxdProc{url: c.url, key: "tenant-key", c: sandboxapi.NewClient(c.url, "tenant-key")}
	obs, _, err := s.c.Run(t.Context(), sandboxapi.NewRunAction(`echo "[$TENANT_TOKEN][$SBX_POOL_SECRET][$SESSION_API_KEY]"`, 30))
	if err != nil {
		t.Fatal(err)
	}
	if obs.Content != "[it's $x][][]" {
		t.Fatalf("agent shell sees %q", obs.Content)
	}
	if strings.Contains(obs.Content, secret) {
		t.Fatal("the pool secret reached the agent's shell")
	}

	var info procInfo
	s.call(t, "POST", "/sbx/v1/processes", `{"command":"echo \"[$TENANT_TOKEN][$SBX_POOL_SECRET]\""}`, 201, &info)
	s.call(t, "POST", fmt.Sprintf("/sbx/v1/processes/%d/wait?timeout=60", info.ID), "", 200, nil)
	var out struct {
		Chunks []struct{ Stream, Data string }
	}
	s.call(t, "GET", fmt.Sprintf("/sbx/v1/processes/%d/output", info.ID), "", 200, &out)
	if len(out.Chunks) != 1 || out.Chunks[0].Data != "[it's $x][]\n" {
		t.Fatalf("process started after the claim: %+v", out.Chunks)
	}
}

// TestClaimReachesSWEReXSessions: with the SWE-ReX listener beside the
// OpenHands one, a session and an execute started after a warm-pool claim
// see the tenant's variables; neither sees the SWE-ReX token.
func TestClaimReachesSWEReXSessions(t *testing.T) {
	const secret = "warm-pool-secret-0123456789"
	port := freeTCPPort(t)
	c := startSandboxd(t, buildSandboxd(t), filepath.Join(t.TempDir(), "work"),
		"SESSION_API_KEY=pool-internal", launch.EnvPoolSecret+"="+secret, "SBX_STATE_DIR="+t.TempDir(),
		envSwerexAddr+"=127.0.0.1:"+port, envSwerexToken+"="+swxToken)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", c.url+"/sbx/v1/claim",
		strings.NewReader(`{"session_api_key":"tenant-key","env":{"TENANT_TOKEN":"t1"}}`))
	req.Header.Set("X-Sbx-Pool-Secret", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("claim: %d", resp.StatusCode)
	}
	s := &swx{t: t, url: "http://127.0.0.1:" + port, logs: &syncBuffer{}, shared: t.TempDir()}
	s.waitAlive(10 * time.Second)
	s.session("default")
	m := s.ok("/run_in_session", action(`echo "[$TENANT_TOKEN][$SBX_SWEREX_TOKEN][$SBX_POOL_SECRET]"`))
	if m["output"] != "[t1][][]\n" {
		t.Errorf("session sees %q", m["output"])
	}
	m = s.ok("/execute", command(`echo "[$TENANT_TOKEN][$SBX_SWEREX_TOKEN]"`, "shell", true))
	if m["stdout"] != "[t1][]\n" {
		t.Errorf("execute sees %q", m["stdout"])
	}
}

func freeTCPPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
