package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/internal/ids"
)

func TestParseRunProtocol(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	o, err := a.parseRun(nil)
	if err != nil || o.Protocol != protocolOpenHands || o.Detach {
		t.Errorf("default: %+v, %v", o, err)
	}
	o, err = a.parseRun([]string{"--protocol", "openhands", "--", "true"})
	if err != nil || o.Protocol != protocolOpenHands || strings.Join(o.Command, " ") != "true" {
		t.Errorf("--protocol openhands: %+v, %v", o, err)
	}
	// swerex implies -d: SWE-agent drives the sandbox from its own process.
	o, err = a.parseRun([]string{"--protocol=swerex", "--name", "s1", "--json"})
	if err != nil || o.Protocol != protocolSWEReX || !o.Detach || !o.JSON || o.Name != "s1" {
		t.Errorf("--protocol=swerex: %+v, %v", o, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--protocol", "ssh"}, `--protocol "ssh": want one of openhands, swerex`},
		{[]string{"--protocol", ""}, `want one of openhands, swerex`},
		{[]string{"--protocol", "SWEREX"}, `want one of openhands, swerex`},
		{[]string{"--protocol", "swerex", "--rm"}, "cannot be combined with --rm"},
		{[]string{"--protocol", "swerex", "--", "ls"}, "takes no command"},
		{[]string{"--json", "--", "ls"}, "--json describes a detached sandbox"},
		{[]string{"--protocol"}, "needs an argument"},
	} {
		_, err := a.parseRun(tc.args)
		var ue *usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

// What --protocol swerex prints is what SWE-agent's remote deployment
// takes (RemoteDeploymentConfig: host with its scheme, port, auth_token).
func TestWriteSWEReX(t *testing.T) {
	var b strings.Builder
	writeSWEReX(&b, "s1", &sbx.SWEReXEndpoint{URL: "http://127.0.0.1:32768", Host: "127.0.0.1", Port: 32768, Token: "1d87776a-1ab2-422e-bd80-fc34d810633f"})
	for _, want := range []string{
		"host:    http://127.0.0.1\n", "port:    32768\n", "token:   1d87776a-1ab2-422e-bd80-fc34d810633f\n",
		"sweagent run --env.deployment.type=remote --env.deployment.host=http://127.0.0.1 --env.deployment.port=32768 --env.deployment.auth_token=1d87776a-1ab2-422e-bd80-fc34d810633f ...\n",
		"sbx rm s1",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	if got := swerexHost(sbx.SWEReXEndpoint{Host: "::1"}); got != "http://[::1]" {
		t.Errorf("IPv6 host = %q", got)
	}
}

// `sbx run --protocol swerex` leaves a sandbox running with SWE-ReX's port
// published on 127.0.0.1 and prints what SWE-agent needs; ls shows the
// port; the sandbox is an ordinary one for sbx exec.
func TestRunProtocolSWEReX(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	id := sandboxName(t, e)
	r := mustSbx(t, e, "run", "--protocol", "swerex", "--name", id, "--no-app-ports", "--json")
	var got sandboxJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("run --json: %v\n%s", err, r.stdout)
	}
	s := got.SWEReX
	if got.ID != id || s == nil || s.Host != "127.0.0.1" || s.Port <= 0 || len(s.Token) != 36 ||
		s.URL != "http://127.0.0.1:"+strconv.Itoa(s.Port) {
		t.Fatalf("run --protocol swerex --json: %+v %+v", got, s)
	}
	// A listing knows the port, not the token.
	var ls []sandboxJSON
	if err := json.Unmarshal([]byte(mustSbx(t, e, "ls", "--json").stdout), &ls); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ls, func(j sandboxJSON) bool { return j.ID == id })
	if i < 0 || ls[i].SWEReX == nil || ls[i].SWEReX.Port != s.Port || ls[i].SWEReX.Token != "" {
		t.Errorf("ls --json: %+v", ls)
	}
	if out := mustSbx(t, e, "ls").stdout; !strings.Contains(out, "SWEREX") || !strings.Contains(out, s.URL) {
		t.Errorf("ls:\n%s", out)
	}
	if r := mustSbx(t, e, "exec", id, "--", "echo hi"); r.stdout != "hi\n" {
		t.Errorf("exec: %s", r)
	}

	// Without --json: the SWE-agent command line.
	id2 := sandboxName(t, e)
	r = mustSbx(t, e, "run", "--protocol", "swerex", "--name", id2, "--no-app-ports")
	if !strings.Contains(r.stdout, "sweagent run --env.deployment.type=remote --env.deployment.host=http://127.0.0.1 --env.deployment.port=") ||
		!strings.Contains(r.stdout, "sandbox: "+id2+"\n") {
		t.Errorf("run --protocol swerex: %s", r)
	}
}

// The local runtime serves SWE-ReX too, on a loopback port.
func TestLocalRunProtocolSWEReX(t *testing.T) {
	e := localEnv(t)
	t.Parallel()
	id := sandboxName(t, e)
	var got sandboxJSON
	r := mustSbx(t, e, "run", "--protocol", "swerex", "--name", id, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("run --json: %v\n%s", err, r.stdout)
	}
	if got.SWEReX == nil || got.SWEReX.Host != "127.0.0.1" || got.SWEReX.Port <= 0 || got.SWEReX.Token == "" {
		t.Fatalf("local run --protocol swerex --json: %+v", got.SWEReX)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, got.SWEReX.URL+"/is_alive", nil)
	req.Header.Set("X-API-Key", got.SWEReX.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /is_alive: %d", resp.StatusCode)
	}
}

// An image from `sbx image build` serves SWE-ReX when started as SWE-ReX's
// DockerDeployment starts one (python_standalone_dir null):
// docker run -p PORT:8000 IMAGE /bin/sh -c 'swerex-remote --auth-token T
// || …pipx fallback…', with no --entrypoint and no PATH of its own.
func TestImageBuildServesSWEReXDeployment(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	tag := "sbx-test-swerex:" + ids.New(4)
	r := mustSbx(t, e, "image", "build", "--base", testImage, "--tag", tag)
	ref := strings.TrimSpace(r.stdout)
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ins, err := c.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only what this test made: the image if it was built here, else
		// its own tag.
		what := tag
		if !strings.Contains(r.stderr, "is up to date") {
			what = ins.ID
		}
		_, _ = c.ImageRemove(context.Background(), what, client.ImageRemoveOptions{Force: true})
	})
	if ref != tag {
		t.Logf("image build printed %q", ref)
	}
	token := ids.UUID()
	np := network.MustParsePort("8000/tcp")
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: tag, Labels: map[string]string{"sbx.test": "1"},
			Cmd:          []string{"/bin/sh", "-c", "swerex-remote --auth-token " + token + " || exit 97"},
			ExposedPorts: network.PortSet{np: struct{}{}}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{np: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	ci, err := c.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	binds := ci.Container.NetworkSettings.Ports[np]
	if len(binds) == 0 {
		t.Fatalf("8000/tcp not published: %v", ci.Container.NetworkSettings.Ports)
	}
	base := "http://127.0.0.1:" + binds[0].HostPort
	get := func(key string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/is_alive", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	var code int
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, body, err = get(token); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"is_alive":true`) {
		var logs strings.Builder
		if rc, lerr := c.ContainerLogs(ctx, res.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}); lerr == nil {
			_, _ = stdcopy.StdCopy(&logs, &logs, rc)
			rc.Close()
		}
		t.Fatalf("GET /is_alive with the token: %d %q, %v; container output:\n%s", code, body, err, logs.String())
	}
	if code, body, err := get(""); err != nil || code != http.StatusForbidden {
		t.Errorf("GET /is_alive without the token: %d %q, %v; want 403", code, body, err)
	}
}
