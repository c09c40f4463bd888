package docker

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/launch"
	"github.com/sbx-dev/sbx/sandboxapi"
)

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Spec.SWEReX becomes sandboxd's second listener on SWE-ReX's port,
// published on the binding address, with the token in the environment;
// without it nothing of the kind is there, whatever the caller's labels
// say.
func TestContainerConfigSWEReX(t *testing.T) {
	d := &Driver{}
	np := network.MustParsePort("8000/tcp")
	spec := driver.Spec{ID: "x", Image: "img", SWEReX: &driver.SWEReX{Token: "tok-1"},
		Network: driver.Network{BindAddress: "127.0.0.2", NoAppPorts: true}}
	cfg, hc, err := d.containerConfig(spec, "", "oh-token", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := envMap(cfg.Env)
	if env[launch.EnvSWEReXAddr] != "0.0.0.0:8000" || env[launch.EnvSWEReXToken] != "tok-1" || env[launch.EnvSessionAPIKey] != "oh-token" {
		t.Errorf("env %q", cfg.Env)
	}
	if cfg.Labels[labelSWEReX] != "8000" {
		t.Errorf("labels %v", cfg.Labels)
	}
	if _, ok := cfg.ExposedPorts[np]; !ok || len(hc.PortBindings[np]) != 1 || hc.PortBindings[np][0].HostIP.String() != "127.0.0.2" ||
		hc.PortBindings[np][0].HostPort != "" {
		t.Errorf("exposed %v, bindings %v", cfg.ExposedPorts, hc.PortBindings)
	}
	if len(hc.PortBindings) != 2 {
		t.Errorf("bindings %v: want the server port and SWE-ReX's only", hc.PortBindings)
	}

	// No token given: the driver picks a random one.
	spec.SWEReX = &driver.SWEReX{}
	cfg, _, err = d.containerConfig(spec, "", "oh-token", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok := envMap(cfg.Env)[launch.EnvSWEReXToken]; len(tok) != 36 {
		t.Errorf("generated token %q", tok)
	}

	// Without SWEReX: no listener, and a caller's label does not fake one.
	spec.SWEReX = nil
	spec.Labels = map[string]string{labelSWEReX: "8000"}
	spec.Env = map[string]string{launch.EnvSWEReXAddr: "0.0.0.0:9"}
	cfg, hc, err = d.containerConfig(spec, "", "oh-token", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Labels[labelSWEReX]; ok {
		t.Errorf("labels %v", cfg.Labels)
	}
	if _, ok := hc.PortBindings[np]; ok {
		t.Errorf("bindings %v", hc.PortBindings)
	}

	// In the host's network the listener takes a free host port on the
	// binding address, as sandboxd's own does.
	spec = driver.Spec{ID: "x", Image: "img", SWEReX: &driver.SWEReX{Token: "t"}, Network: driver.Network{HostNetwork: true}}
	cfg, _, err = d.containerConfig(spec, "", "oh-token", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(envMap(cfg.Env)[launch.EnvSWEReXAddr])
	if err != nil || host != "127.0.0.1" || port == "8000" || cfg.Labels[labelSWEReX] != port {
		t.Errorf("host network: addr %q:%q (%v), label %q", host, port, err, cfg.Labels[labelSWEReX])
	}
}

// A sandbox started with Spec.SWEReX publishes SWE-ReX's port on
// 127.0.0.1, a later process finds it and its token again by inspecting
// the sandbox, the OpenHands side still works, and (with the SWE-ReX
// server in this build) /is_alive answers with the token and refuses
// without.
func TestSWEReXSandbox(t *testing.T) {
	d := newDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := ids.New(6)
	id := "swerex-" + run
	token := ids.UUID()
	t.Cleanup(func() { d.Remove(context.Background(), id) })
	sb, err := d.Create(ctx, driver.Spec{ID: id, Image: testImage(), User: "root", SWEReX: &driver.SWEReX{Token: token},
		Labels: map[string]string{"sbx.test.run": run}, Network: driver.Network{NoAppPorts: true}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(sb.SWEReX.URL)
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" || sb.SWEReX.Token != token {
		t.Fatalf("SWEReX endpoint %+v (%v)", sb.SWEReX, err)
	}

	// What the engine holds: the environment and the port binding.
	ins, err := d.api.ContainerInspect(ctx, ContainerName(id), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := envMap(ins.Container.Config.Env)
	if env[launch.EnvSWEReXAddr] != "0.0.0.0:8000" || env[launch.EnvSWEReXToken] != token {
		t.Errorf("container env %q", ins.Container.Config.Env)
	}
	binds := ins.Container.NetworkSettings.Ports[network.MustParsePort("8000/tcp")]
	if len(binds) != 1 || binds[0].HostIP.String() != "127.0.0.1" || binds[0].HostPort != u.Port() {
		t.Errorf("8000/tcp bound to %v, want 127.0.0.1:%s", binds, u.Port())
	}

	// Another process (another driver) finds it again.
	d2, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	again, err := d2.Inspect(ctx, id)
	if err != nil || again.SWEReX != sb.SWEReX {
		t.Errorf("Inspect: SWEReX %+v (%v), want %+v", again.SWEReX, err, sb.SWEReX)
	}
	list, err := d2.List(ctx, map[string]string{"sbx.test.run": run})
	if err != nil || len(list) != 1 || list[0].SWEReX.URL != sb.SWEReX.URL {
		t.Errorf("List = %+v, %v", list, err)
	}

	// OpenHands' side is unchanged.
	oh := sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token)
	if obs, ex, err := oh.Run(ctx, sandboxapi.NewRunAction("echo oh-$((20+22))", 30)); err != nil || ex.Metadata.ExitCode != 0 || !strings.Contains(obs.Content, "oh-42") {
		t.Fatalf("OpenHands run: %q %+v, %v", obs.Content, ex, err)
	}

	if _, err := os.Stat("../../swerex"); err != nil {
		t.Skipf("the SWE-ReX server (internal/swerex) is not in this build yet: port and environment checked, protocol not (%v)", err)
	}
	isAlive := func(key string) (int, string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sb.SWEReX.URL+"/is_alive", nil)
			if key != "" {
				req.Header.Set("X-API-Key", key)
			}
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				return res.StatusCode, string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /is_alive: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	code, body := isAlive(token)
	var alive struct {
		IsAlive bool   `json:"is_alive"`
		Message string `json:"message"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &alive) != nil || !alive.IsAlive {
		t.Errorf("GET /is_alive with the token: %d %s", code, body)
	}
	if code, body := isAlive(""); code != http.StatusForbidden {
		t.Errorf("GET /is_alive without a token: %d %s, want 403", code, body)
	}
	if code, body := isAlive(token + "x"); code != http.StatusUnauthorized {
		t.Errorf("GET /is_alive with a wrong token: %d %s, want 401", code, body)
	}
	// The agent's shell does not see the SWE-ReX token.
	obs, _, err := oh.Run(ctx, sandboxapi.NewRunAction("echo \"[${"+launch.EnvSWEReXToken+"-unset}]\"", 30))
	if err != nil || !strings.Contains(obs.Content, "[unset]") {
		t.Errorf("the shell sees %s: %q (%v)", launch.EnvSWEReXToken, obs.Content, err)
	}
}
