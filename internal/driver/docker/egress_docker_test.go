package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/docker/image"
	"github.com/sbx-dev/sbx/internal/egress"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/netpolicy"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// labelTest marks what the egress tests create, beside the name suffix.
const labelTest = "dev.sbx.test"

// world is the egress tests' outside: a network of the test's own
// (itself internal, so nothing reaches past it), two servers on it
// (allowed.test, which also answers for *.wild.test and wild.test, and
// denied.test), and a resolver naming them that only the proxy uses.
type world struct {
	net              string
	allowed, denied  netip.Addr
	resolver         netip.Addr
	d                *Driver
	mu               sync.Mutex      // keys and sandboxes: benchmarks create sandboxes in parallel
	keys             map[string]bool // proxies of this test
	sandboxes        []string
	containers, nets []string
}

// buildStatic compiles a Go package of this module as a static binary.
func buildStatic(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func newWorld(t testing.TB) *world {
	t.Helper()
	base := newDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	suffix := ids.New(4)
	w := &world{net: "sbxt-egress-out-" + suffix, keys: map[string]bool{}}
	t.Cleanup(func() { w.cleanup(t) })
	bin := buildStatic(t, "./testdata/egressworld")
	// Named by the binary's digest: the same build reuses its image, so
	// runs leave one image behind, not one each.
	digest, err := fileDigest(bin)
	if err != nil {
		t.Fatal(err)
	}
	img := "sbx-test/egressworld:" + digest[:12]
	if _, err := image.Static(ctx, base.img, bin, "egressworld", img, map[string]string{labelTest: "egress", "sbx.test": "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := base.api.NetworkCreate(ctx, w.net, client.NetworkCreateOptions{Driver: "bridge", Internal: true, Labels: map[string]string{labelTest: "egress", "sbx.test": "1"}}); err != nil {
		t.Fatal(err)
	}
	w.nets = append(w.nets, w.net)
	run := func(name string, args ...string) netip.Addr {
		res, err := base.api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
			Config:     &container.Config{Image: img, Cmd: args, Labels: map[string]string{labelTest: "egress", "sbx.test": "1"}},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(w.net)}})
		if err != nil {
			t.Fatal(err)
		}
		w.containers = append(w.containers, res.ID)
		if _, err := base.api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		ins, err := base.api.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ins.Container.NetworkSettings.Networks[w.net].IPAddress
	}
	w.allowed = run("sbxt-allowed-"+suffix, "-name", "allowed.test", "-cert", "allowed.test,*.wild.test,wild.test")
	w.denied = run("sbxt-denied-"+suffix, "-name", "denied.test", "-cert", "denied.test")
	w.resolver = run("sbxt-dns-"+suffix, "-dns", "allowed.test="+w.allowed.String()+",*.wild.test="+w.allowed.String()+
		",wild.test="+w.allowed.String()+",denied.test="+w.denied.String())
	d, err := New(Options{Egress: EgressOptions{Upstream: []string{"bridge", w.net}, DNS: w.resolver.String() + ":53"}})
	if err != nil {
		t.Fatal(err)
	}
	w.d = d
	return w
}

func fileDigest(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func (w *world) cleanup(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if w.d != nil {
		for _, id := range w.sandboxes {
			if err := w.d.Remove(ctx, id); err != nil {
				t.Errorf("remove sandbox %s: %v", id, err)
			}
		}
		if _, err := w.d.pruneEgress(ctx, 0, false, w.keys); err != nil {
			t.Errorf("prune the test's proxies: %v", err)
		}
		w.d.Close()
	}
	for _, c := range w.containers {
		_, _ = w.d.api.ContainerRemove(ctx, c, client.ContainerRemoveOptions{Force: true})
	}
	for _, n := range w.nets {
		if _, err := w.d.api.NetworkRemove(ctx, n, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove network %s: %v", n, err)
		}
	}
}

// sandbox starts a sandbox with policy ("" is open).
func (w *world) sandbox(t testing.TB, policy string) (driver.Sandbox, *sandboxapi.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := driver.Spec{ID: "eg-" + ids.New(4), Image: testImage(), AutoRemove: false}
	w.mu.Lock()
	if policy != "" {
		p := netpolicy.MustParse(policy)
		spec.Network.Policy = &p
		if p.Enforced() {
			w.keys[w.d.proxyKey(p)] = true
		}
	}
	w.sandboxes = append(w.sandboxes, spec.ID)
	w.mu.Unlock()
	sb, err := w.d.Create(ctx, spec)
	if err != nil {
		t.Fatalf("create with policy %q: %v", policy, err)
	}
	return sb, sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token)
}

func sh(t testing.TB, c *sandboxapi.Client, command string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	obs, ex, err := c.Run(ctx, sandboxapi.NewRunAction(command, 60))
	if err != nil {
		t.Fatalf("run %q: %v", command, err)
	}
	return strings.TrimSpace(obs.Content), ex.Metadata.ExitCode
}

func works(t *testing.T, c *sandboxapi.Client, command, want string) {
	t.Helper()
	out, code := sh(t, c, command)
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("%s: exit %d, output %q; want success with %q", command, code, out, want)
	}
}

func fails(t *testing.T, c *sandboxapi.Client, command string) {
	t.Helper()
	out, code := sh(t, c, command)
	if code == 0 || strings.Contains(out, "hello from") {
		t.Errorf("%s: exit %d, output %q; want a failure", command, code, out)
	}
}

func netLog(t *testing.T, d *Driver, id string) string {
	t.Helper()
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds, err := d.NetworkDenials(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ds {
		if x.Time.IsZero() || x.Dest == "" || x.Via == "" || x.Reason == "" {
			t.Errorf("a denial without all its fields: %+v", x)
		}
		fmt.Fprintf(&b, "%s  denied  %-40s  %-7s  %s\n", x.Time.Format(time.RFC3339Nano), x.Dest, x.Via, x.Reason)
	}
	return b.String()
}

const curl = "curl -fsS -k --max-time 10 "

func TestEgressAllowList(t *testing.T) {
	w := newWorld(t)
	sb, c := w.sandbox(t, "allowed.test,*.wild.test")
	proxyIP, _ := sh(t, c, "getent hosts allowed.test | cut -d' ' -f1")
	t.Run("allowed", func(t *testing.T) {
		works(t, c, curl+"https://allowed.test/", "hello from allowed.test")
		works(t, c, curl+"http://allowed.test/", "hello from allowed.test")
		// Without the proxy variables the resolver's answer leads to the
		// proxy all the same (transparent 443 by SNI, 80 by Host).
		works(t, c, curl+"--noproxy '*' https://allowed.test/", "hello from allowed.test")
		works(t, c, curl+"--noproxy '*' http://allowed.test/", "hello from allowed.test")
		works(t, c, "env -u HTTPS_PROXY -u https_proxy "+curl+"https://allowed.test/", "hello from allowed.test")
	})
	t.Run("wildcard", func(t *testing.T) {
		works(t, c, curl+"https://a.wild.test/", "host a.wild.test")
		works(t, c, curl+"--noproxy '*' https://b.c.wild.test/", "hello from allowed.test")
		// *.wild.test does not name wild.test itself.
		fails(t, c, curl+"https://wild.test/")
		fails(t, c, curl+"--noproxy '*' https://wild.test/")
	})
	t.Run("denied", func(t *testing.T) {
		fails(t, c, curl+"https://denied.test/")
		fails(t, c, curl+"http://denied.test/")
		fails(t, c, curl+"--noproxy '*' https://denied.test/")
		fails(t, c, curl+"--noproxy '*' http://denied.test/")
	})
	t.Run("address directly", func(t *testing.T) {
		for _, ip := range []netip.Addr{w.denied, w.allowed} {
			fails(t, c, curl+"https://"+ip.String()+"/")
			fails(t, c, curl+"http://"+ip.String()+"/")
			fails(t, c, curl+"--noproxy '*' --connect-timeout 3 https://"+ip.String()+"/")
		}
	})
	t.Run("forged SNI", func(t *testing.T) {
		// The proxy's address under a denied name: the hello says
		// denied.test, and that decides.
		fails(t, c, curl+"--noproxy '*' --resolve denied.test:443:"+proxyIP+" https://denied.test/")
		// A denied server's address under the allowed name: the proxy
		// resolves allowed.test itself and reaches allowed.test.
		works(t, c, curl+"--resolve allowed.test:443:"+w.denied.String()+" https://allowed.test/", "hello from allowed.test")
		fails(t, c, curl+"--noproxy '*' --connect-timeout 3 --resolve allowed.test:443:"+w.denied.String()+" https://allowed.test/")
		// CONNECT to the allowed name with a denied name in the hello.
		fails(t, c, curl+"--connect-to denied.test:443:allowed.test:443 https://denied.test/")
	})
	t.Run("CONNECT to another port", func(t *testing.T) {
		// A tunnel to an allowed name on any port, with a protocol that
		// is not TLS and sends less than a TLS record header.
		works(t, c, `python3 -c '
import socket
s = socket.create_connection(("`+proxyIP+`", 3128))
s.sendall(b"CONNECT allowed.test:7 HTTP/1.1\r\nHost: allowed.test:7\r\n\r\n")
h = b""
while b"\r\n\r\n" not in h: h += s.recv(100)
s.sendall(b"hi")
print("echo", s.recv(10).decode())'`, "echo hi")
	})
	t.Run("raw TCP", func(t *testing.T) {
		for _, target := range []string{w.denied.String() + "/7", w.allowed.String() + "/7", "allowed.test/7", "denied.test/7", w.resolver.String() + "/53"} {
			fails(t, c, "timeout 5 bash -c 'exec 3<>/dev/tcp/"+target+" && echo hello from >&3 && head -c 10 <&3'")
		}
	})
	t.Run("dns", func(t *testing.T) {
		fails(t, c, "getent hosts denied.test")
		fails(t, c, "getent hosts secret.denied.test")
		out, code := sh(t, c, "getent hosts allowed.test")
		if code != 0 || !strings.HasPrefix(out, proxyIP) || proxyIP == w.allowed.String() {
			t.Errorf("allowed.test resolves to %q (exit %d); want the proxy's address %s, never the server's %s", out, code, proxyIP, w.allowed)
		}
	})
	t.Run("root cannot lift it", func(t *testing.T) {
		out, _ := sh(t, c, "id -u; grep CapEff /proc/self/status")
		if !strings.HasPrefix(out, "0") {
			t.Fatalf("the test needs root inside: %q", out)
		}
		var caps uint64
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "CapEff:" {
				for _, ch := range f[1] {
					caps = caps<<4 | uint64(strings.IndexRune("0123456789abcdef", ch))
				}
			}
		}
		if caps&(1<<12) != 0 || caps&(1<<13) != 0 {
			t.Errorf("a policed sandbox has NET_ADMIN or NET_RAW: CapEff %x", caps)
		}
		// The image has no ip or iptables; either way, without
		// NET_ADMIN the kernel refuses route and filter changes.
		fails(t, c, "ip route add default via "+proxyIP+" 2>&1 || iptables -F 2>&1 || python3 -c 'import socket,fcntl,struct; s=socket.socket(); fcntl.ioctl(s, 0x890B, bytes(120))' 2>&1 && echo hello from")
		// Another resolver: it is on no network the sandbox reaches.
		fails(t, c, "cp /etc/resolv.conf /tmp/rc && echo nameserver "+w.resolver.String()+" > /etc/resolv.conf && getent hosts denied.test; s=$?; cp /tmp/rc /etc/resolv.conf; exit $s")
		fails(t, c, "env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy "+curl+"https://denied.test/")
		fails(t, c, "env -u HTTPS_PROXY -u https_proxy "+curl+"--connect-timeout 3 https://"+w.denied.String()+"/")
	})
	t.Run("control endpoint", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ins, err := w.d.api.ContainerInspect(ctx, egressPrefix+w.d.proxyKey(netpolicy.MustParse("allowed.test,*.wild.test")), client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Not bound on the sandbox network at all.
		fails(t, c, "curl -sS --noproxy '*' --connect-timeout 3 http://"+proxyIP+":9000/v1/clients")
		// And never a destination through the proxy, whatever the policy.
		for _, ep := range ins.Container.NetworkSettings.Networks {
			if ep.IPAddress.IsValid() && ep.IPAddress.String() != proxyIP {
				fails(t, c, curl+"http://"+ep.IPAddress.String()+":9000/v1/clients")
			}
		}
	})
	t.Run("logged", func(t *testing.T) {
		log := netLog(t, w.d, sb.ID)
		for _, want := range []string{"denied.test:443", "denied.test:80", "denied.test  ", w.denied.String() + ":443", "wild.test:443",
			"does not match the CONNECT target", "not on the allow-list"} {
			if !strings.Contains(log, want) {
				t.Errorf("the denial log lacks %q:\n%s", want, log)
			}
		}
	})
}

func TestEgressPolicyChange(t *testing.T) {
	w := newWorld(t)
	sb, c := w.sandbox(t, "allowed.test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A download in flight, slowed so that it spans the change.
	sh(t, c, "("+curl+"--limit-rate 200k -o /tmp/big 'https://allowed.test/?n=1000000'; echo $? > /tmp/big.rc) >/dev/null 2>&1 &")
	time.Sleep(time.Second)
	if err := w.d.SetNetworkPolicy(ctx, sb.ID, netpolicy.MustParse("denied.test")); err != nil {
		t.Fatal(err)
	}
	if p, err := w.d.NetworkPolicy(ctx, sb.ID); err != nil || p.String() != "allow,denied.test" {
		t.Errorf("policy after the change: %s, %v", p, err)
	}
	fails(t, c, curl+"https://allowed.test/")
	fails(t, c, "getent hosts allowed.test")
	works(t, c, curl+"https://denied.test/", "hello from denied.test")
	works(t, c, "for i in $(seq 100); do [ -s /tmp/big.rc ] && break; sleep 0.2; done; cat /tmp/big.rc; stat -c %s /tmp/big", "0\n1000000")
	// The change outlives a stop and start (the address may change).
	if err := w.d.Stop(ctx, sb.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	sb2, err := w.d.Start(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	c2 := sandboxapi.NewClient(sb2.Endpoint.URL, sb2.Endpoint.Token)
	works(t, c2, curl+"https://denied.test/", "hello from denied.test")
	fails(t, c2, curl+"https://allowed.test/")
	// And a restart of the proxy (its state file keeps the registrations).
	proxy := egressPrefix + w.d.proxyKey(netpolicy.MustParse("allowed.test"))
	if _, err := w.d.api.ContainerStop(ctx, proxy, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.api.ContainerStart(ctx, proxy, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	// Once it answers again, the same relay URL reaches the sandbox (its
	// host port is fixed).
	if _, err := w.d.proxyByKey(ctx, strings.TrimPrefix(proxy, egressPrefix), nil); err != nil {
		t.Fatal(err)
	}
	works(t, c2, "for i in $(seq 50); do "+curl+"https://denied.test/ && exit 0; sleep 0.2; done; exit 1", "hello from denied.test")
	fails(t, c2, curl+"https://allowed.test/")
}

func TestEgressNoneAndOpen(t *testing.T) {
	w := newWorld(t)
	t.Run("none", func(t *testing.T) {
		sb, c := w.sandbox(t, "none")
		works(t, c, "curl -sS --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:30000/alive", "200")
		fails(t, c, curl+"--connect-timeout 3 https://allowed.test/")
		fails(t, c, curl+"--connect-timeout 3 http://"+w.allowed.String()+"/")
		fails(t, c, "getent hosts allowed.test")
		fails(t, c, "env | grep -i _proxy=")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := w.d.SetNetworkPolicy(ctx, sb.ID, netpolicy.MustParse("allowed.test")); !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Errorf("widening none: %v, want not implemented", err)
		}
	})
	t.Run("open with a deny-list", func(t *testing.T) {
		sb, c := w.sandbox(t, "open,!denied.test")
		works(t, c, curl+"https://allowed.test/", "hello from allowed.test")
		works(t, c, curl+"https://"+w.allowed.String()+"/", "hello from allowed.test")
		fails(t, c, curl+"https://denied.test/")
		// Open or not, the proxy's own addresses (its control endpoint)
		// are never a destination.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ins, err := w.d.api.ContainerInspect(ctx, egressPrefix+w.d.proxyKey(netpolicy.MustParse("open,!denied.test")), client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range ins.Container.NetworkSettings.Networks {
			fails(t, c, curl+"http://"+ep.IPAddress.String()+":9000/v1/clients")
			fails(t, c, curl+"https://"+ep.IPAddress.String()+":9000/v1/clients")
		}
		if log := netLog(t, w.d, sb.ID); !strings.Contains(log, "the proxy's own address") {
			t.Errorf("no denial for the proxy's own address:\n%s", log)
		}
	})
	t.Run("open", func(t *testing.T) {
		sb, c := w.sandbox(t, "")
		fails(t, c, "env | grep -i _proxy=")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, ins, err := w.d.ownContainer(ctx, sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ins.HostConfig.NetworkMode.IsUserDefined() || len(ins.NetworkSettings.Ports) == 0 || ins.Config.Labels[labelEgress] != "" {
			t.Errorf("an open sandbox is not on the default network with published ports: %v %v", ins.HostConfig.NetworkMode, ins.NetworkSettings.Ports)
		}
		if err := w.d.SetNetworkPolicy(ctx, sb.ID, netpolicy.MustParse("allowed.test")); !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Errorf("restricting open: %v, want not implemented", err)
		}
	})
}

// The proxy is shared by the sandboxes of one policy and removed by gc
// once none uses it.
func TestEgressSharedAndGC(t *testing.T) {
	w := newWorld(t)
	a, _ := w.sandbox(t, "allowed.test")
	b, _ := w.sandbox(t, "allowed.test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, ia, _ := w.d.ownContainer(ctx, a.ID)
	_, ib, _ := w.d.ownContainer(ctx, b.ID)
	if ia.Config.Labels[labelEgress] != ib.Config.Labels[labelEgress] {
		t.Fatalf("two sandboxes of one policy have two proxies")
	}
	key := ia.Config.Labels[labelEgress]
	if got, _ := w.d.pruneEgress(ctx, 0, false, map[string]bool{key: true}); len(got) != 0 {
		t.Errorf("gc removed a proxy in use: %v", got)
	}
	for _, id := range []string{a.ID, b.ID} {
		if err := w.d.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// Each sandbox's own network went with it; the proxy is left for gc.
	for _, id := range []string{a.ID, b.ID} {
		if _, err := w.d.api.NetworkInspect(ctx, sandboxNetName(id), client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("sandbox %s's network outlives it: %v", id, err)
		}
	}
	got, err := w.d.pruneEgress(ctx, 0, false, map[string]bool{key: true})
	if err != nil || len(got) != 1 || got[0] != "container "+egressPrefix+key {
		t.Errorf("gc of an unused proxy: %v, %v", got, err)
	}
	if _, err := w.d.api.ContainerInspect(ctx, egressPrefix+key, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("the proxy is still there: %v", err)
	}
}

// TestEgressHold keeps a world and a sandbox up for a person to look at
// (SBX_EGRESS_HOLD=seconds); it is skipped otherwise.
func TestEgressHold(t *testing.T) {
	secs := os.Getenv("SBX_EGRESS_HOLD")
	if secs == "" {
		t.Skip("SBX_EGRESS_HOLD not set")
	}
	w := newWorld(t)
	sb, _ := w.sandbox(t, "allowed.test,*.wild.test")
	t.Logf("sandbox container %s, world %+v", sb.Name, w)
	d, _ := time.ParseDuration(secs + "s")
	time.Sleep(d)
}

// A removed sandbox's registration goes with it, so an address reused by
// the next sandbox carries no policy changed for the last one.
func TestEgressRemoveForgets(t *testing.T) {
	w := newWorld(t)
	sb, _ := w.sandbox(t, "allowed.test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.d.SetNetworkPolicy(ctx, sb.ID, netpolicy.MustParse("denied.test")); err != nil {
		t.Fatal(err)
	}
	if err := w.d.Stop(ctx, sb.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	_, c, err := w.d.ownContainer(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	px, err := w.d.proxyByKey(ctx, c.Config.Labels[labelEgress], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.d.Remove(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	var list []proxyClient
	if err := w.d.control(ctx, px, "GET", "/v1/clients", nil, &list); err != nil {
		t.Fatal(err)
	}
	for _, cl := range list {
		if cl.Sandbox == sb.ID {
			t.Errorf("the proxy still has %+v", cl)
		}
	}
}

// gc's image part: an egress image of another build that nothing uses is
// listed, this build's never is.
func TestEgressPruneImages(t *testing.T) {
	d := newDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	current, err := d.egressImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := d.egressBin.Locate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := "sbx-egress:test-old-" + ids.New(4)
	// Another label value than this build's makes it another image.
	if _, err := image.Static(ctx, d.img, bin.Path, "sbx-egress", old, map[string]string{driver.LabelManaged: "true", labelKind: kindEgress, "sbx.test": "1", driver.LabelVersion: old}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = d.img.ImageRemove(context.Background(), old, client.ImageRemoveOptions{Force: true}) })
	got, err := d.pruneEgressImages(ctx, 0, true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "image "+old) || slices.Contains(got, "image "+current) {
		t.Errorf("dry-run prune lists %v; want %s and never %s", got, old, current)
	}
}

// hostListener accepts TCP on every address of the host (the test runs
// on the engine's host) and counts what reaches it.
func hostListener(t *testing.T) (port int, hits *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	hits = &atomic.Int64{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			fmt.Fprintln(c, "hello from the host")
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, hits
}

// hostAddrs are the host's IPv4 addresses, loopback aside: every bridge
// gateway of the engine's among them.
func hostAddrs(t *testing.T) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			out = append(out, n.IP.String())
		}
	}
	if len(out) == 0 {
		t.Fatal("the host has no IPv4 address but loopback")
	}
	return out
}

// A policed sandbox reaches nothing the host serves: not at the gateway
// of its own network, not at any other address of the host's (each bridge
// gateway of the engine's is one), whatever the policy; an open one does
// (the control that this test can see a host service at all).
func TestEgressHostUnreachable(t *testing.T) {
	w := newWorld(t)
	port, hits := hostListener(t)
	addrs := hostAddrs(t)
	probe := func(c *sandboxapi.Client, a string) string {
		return "timeout 4 bash -c 'exec 3<>/dev/tcp/" + a + "/" + fmt.Sprint(port) + " && head -c 40 <&3'"
	}
	// (open with a deny-list reaches the host through the proxy, as open
	// does through its route: only a deny-list entry would stop it.)
	for _, policy := range []string{"none", "allowed.test", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16", "0.0.0.0/1,128.0.0.0/1"} {
		t.Run(policy, func(t *testing.T) {
			_, c := w.sandbox(t, policy)
			// Its own network's gateway first: the address a sandbox
			// would try.
			gw, _ := sh(t, c, "awk '$2==\"00000000\" {print $3}' /proc/net/route | head -1")
			targets := append([]string{}, addrs...)
			if len(gw) == 8 {
				var b [4]byte
				for i := 0; i < 4; i++ {
					fmt.Sscanf(gw[2*i:2*i+2], "%02X", &b[3-i])
				}
				targets = append(targets, netip.AddrFrom4(b).String())
			}
			before := hits.Load()
			for _, a := range targets {
				fails(t, c, probe(c, a))
				// Through the proxy too, by address and by CONNECT.
				fails(t, c, curl+"http://"+a+":"+fmt.Sprint(port)+"/")
			}
			if n := hits.Load() - before; n != 0 {
				t.Errorf("the host's listener was reached %d times from a sandbox of policy %q", n, policy)
			}
		})
	}
	t.Run("open reaches it (control)", func(t *testing.T) {
		_, c := w.sandbox(t, "")
		before := hits.Load()
		// The default bridge's gateway is an address of the host.
		out, _ := sh(t, c, "awk '$2==\"00000000\" {print $3}' /proc/net/route | head -1")
		if len(out) != 8 {
			t.Fatalf("no default route in an open sandbox: %q", out)
		}
		var b [4]byte
		for i := 0; i < 4; i++ {
			fmt.Sscanf(out[2*i:2*i+2], "%02X", &b[3-i])
		}
		works(t, c, probe(c, netip.AddrFrom4(b).String()), "hello from the host")
		if hits.Load() == before {
			t.Errorf("the open sandbox's connection did not reach the host's listener")
		}
	})
}

// Sandboxes of one policy do not see each other, so none can lend a
// neighbour a policy widened for itself alone.
func TestEgressNeighbours(t *testing.T) {
	w := newWorld(t)
	a, ca := w.sandbox(t, "allowed.test")
	_, cb := w.sandbox(t, "allowed.test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, ia, err := w.d.ownContainer(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	aIP := sandboxAddr(ia)
	if !aIP.IsValid() {
		t.Fatalf("sandbox %s has no address on its network", a.ID)
	}
	if err := w.d.SetNetworkPolicy(ctx, a.ID, netpolicy.MustParse("allowed.test,denied.test")); err != nil {
		t.Fatal(err)
	}
	works(t, ca, curl+"https://denied.test/", "hello from denied.test")
	// a listens (a relay would); b cannot reach it, directly or through
	// the proxy.
	sh(t, ca, "(python3 -c 'import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 7777)); s.listen(5)\nwhile True:\n c,_=s.accept(); c.sendall(b\"hello from a\\n\"); c.close()' &) >/dev/null 2>&1; sleep 0.5")
	works(t, ca, "timeout 4 bash -c 'exec 3<>/dev/tcp/127.0.0.1/7777 && head -c 20 <&3'", "hello from a")
	out, code := sh(t, cb, "timeout 4 bash -c 'exec 3<>/dev/tcp/"+aIP.String()+"/7777 && head -c 20 <&3'")
	if code == 0 || strings.Contains(out, "hello from a") {
		t.Errorf("b reached its neighbour a at %s: %q", aIP, out)
	}
	fails(t, cb, "timeout 4 bash -c 'exec 3<>/dev/tcp/"+aIP.String()+"/30000'")
	fails(t, cb, curl+"http://"+aIP.String()+":7777/")
	fails(t, cb, curl+"https://denied.test/")
}

// The relay on the proxy's control port reaches the proxy's registered
// sandboxes only, and its paths keep their escaping.
func TestEgressRelay(t *testing.T) {
	w := newWorld(t)
	sb, c := w.sandbox(t, "allowed.test")
	if !strings.Contains(sb.Endpoint.URL, "/relay/") || !strings.HasPrefix(sb.Endpoint.URL, "http://127.0.0.1:") {
		t.Fatalf("a policed sandbox's endpoint is %q, want the proxy's relay on 127.0.0.1", sb.Endpoint.URL)
	}
	works(t, c, "echo relayed", "relayed")
	base := sb.Endpoint.URL[:strings.Index(sb.Endpoint.URL, "/relay/")]
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The sandbox's own path is /relay/<key>/<ip>:<port>: without its
	// key, or with another address's, the relay knows no sandbox there
	// (anything on the engine's networks can reach the control port).
	rest := strings.TrimPrefix(sb.Endpoint.URL, base+"/relay/")
	key, target, _ := strings.Cut(rest, "/")
	ip, _, _ := strings.Cut(target, ":")
	other := egress.RelayKey("not the token", netip.MustParseAddr(ip))
	near := key[:len(key)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(key, "0")]
	for _, path := range []string{"/relay/" + target + "/alive", "/relay/" + other + "/" + target + "/alive", "/relay/" + near + "/" + target + "/alive",
		"/relay/" + key + "/10.213.255.3:30000/alive", "/relay/" + key + "/" + w.allowed.String() + ":443/", "/relay/" + key + "/127.0.0.1:9000/v1/clients", "/relay/nonsense/alive", "/relay/"} {
		if code, body := get(path); code != http.StatusNotFound && code != http.StatusBadRequest {
			t.Errorf("GET %s through the relay: %d %q; want 404 or 400", path, code, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ls, err := w.d.List(ctx, map[string]string{driver.LabelSession: sb.ID})
	if err != nil || len(ls) != 1 || ls[0].Endpoint.URL != sb.Endpoint.URL {
		t.Errorf("List gives %+v (%v); want the endpoint %s", ls, err, sb.Endpoint.URL)
	}
	if code, _ := get("/v1/clients"); code != http.StatusUnauthorized {
		t.Errorf("the control endpoint without its token: %d, want 401", code)
	}
}

// A policed sandbox's own network goes with it, however it goes: Remove,
// or Kill of an auto-removed one (`sbx run --rm`).
func TestEgressNetworkGoesWithSandbox(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := netpolicy.MustParse("allowed.test")
	w.keys[w.d.proxyKey(p)] = true
	for _, auto := range []bool{false, true} {
		spec := driver.Spec{ID: "eg-" + ids.New(4), Image: testImage(), AutoRemove: auto}
		spec.Network.Policy = &p
		w.sandboxes = append(w.sandboxes, spec.ID)
		if _, err := w.d.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if _, err := w.d.api.NetworkInspect(ctx, sandboxNetName(spec.ID), client.NetworkInspectOptions{}); err != nil {
			t.Fatalf("the sandbox's network: %v", err)
		}
		if auto {
			err := w.d.Kill(ctx, spec.ID)
			if err != nil {
				t.Fatal(err)
			}
		} else if err := w.d.Remove(ctx, spec.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.d.api.NetworkInspect(ctx, sandboxNetName(spec.ID), client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("auto-remove %v: the network outlives the sandbox: %v", auto, err)
		}
	}
}
