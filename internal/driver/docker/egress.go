package docker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/driver/docker/image"
	"github.com/sbx-dev/sbx/internal/egress"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/netpolicy"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/internal/version"
)

// Egress enforcement on Docker: a sandbox with a policy other than open
// is alone on a network of its own, carved (a /29) from
// EgressOptions.Subnets: --internal (no route out) and with no address
// of the host on it (inhibit_ipv4), so the sandbox reaches neither the
// outside nor the host. Its only peer there is the egress proxy of its
// policy (cmd/sbx-egress, one container per policy, shared by all the
// policy's sandboxes through their networks), at the network's .2; the
// sandbox is .3. Its resolver is the proxy, which answers allowed names
// with its own address, and HTTP(S)_PROXY point at it (not for none). No
// sandbox shares a network with another, so none can reach a neighbour,
// or lend it a policy widened for itself. sbx reaches sandboxd through
// the proxy's relay, on the control port the proxy publishes on
// 127.0.0.1 (the engine publishes nothing from an internal network, and
// the host has no address on it).
const (
	// labelEgress is on sandboxes, proxies and their networks: the
	// policy's key.
	labelEgress = "dev.sbx.egress"
	// labelEgressPolicy is the policy a sandbox or proxy started with.
	labelEgressPolicy = "dev.sbx.egress.policy"
	labelKind         = "dev.sbx.kind"
	kindEgress        = "egress"
	// kindEgressNet is the shared network of a policy, as sbx made it
	// before each sandbox had its own: only gc still looks for them.
	kindEgressNet = "egress-network"
	// kindSandboxNet is a policed sandbox's own network.
	kindSandboxNet = "egress-sandbox-network"
	// egressPrefix names proxies and networks; "sbx_", not "sbx-", so
	// no sandbox's container (sbx-<id>) can ever have the name.
	egressPrefix = "sbx_egress-"
	// envEgressToken is the proxy's control token (cmd/sbx-egress).
	envEgressToken = "SBX_EGRESS_TOKEN"
	// sandboxNetBits is the size of a sandbox's network: the engine's
	// gateway address (.1, given to no one), the proxy (.2), the sandbox
	// (.3).
	sandboxNetBits = 29
)

// DefaultEgressSubnets is where sandbox networks are carved from unless
// EgressOptions.Subnets says otherwise: 8192 sandboxes. The host has no
// address on them, so a host network that overlaps confuses only the
// proxies' routes to that part of it.
var DefaultEgressSubnets = netip.MustParsePrefix("10.213.0.0/16")

// EgressOptions configure enforcement.
type EgressOptions struct {
	// Upstream are the networks with a route that proxies join; empty is
	// the engine's default bridge. The first must not be internal (the
	// proxy's control port is published through it).
	Upstream []string
	// DNS is the resolver (host:port) proxies resolve destinations with;
	// "" is the one the engine gives their containers.
	DNS string
	// Subnets is the range sandbox networks are carved from, a /29
	// each; the zero value is DefaultEgressSubnets.
	Subnets netip.Prefix
	// Binary finds cmd/sbx-egress; nil is the default search.
	Binary *sandboxdbin.Locator
}

func (d *Driver) subnets() netip.Prefix {
	if d.egress.Subnets.IsValid() {
		return d.egress.Subnets.Masked()
	}
	return DefaultEgressSubnets
}

func sandboxNetName(id string) string { return egressPrefix + "net-" + id }

// sandboxNet is a policed sandbox's network, ready for its container.
type sandboxNet struct {
	key     string
	network string
	subnet  netip.Prefix
	proxyIP netip.Addr // .2: resolver and HTTP(S)_PROXY
	ip      netip.Addr // .3: the sandbox
	none    bool
	proxy   *proxyInfo
}

func hostAt(p netip.Prefix, n uint32) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

type proxyInfo struct {
	key     string
	name    string
	id      string
	control string // base URL of the control endpoint and the relay
	token   string
}

// egressFor prepares a policed sandbox's network and proxy: the proxy is
// on the network and the sandbox's address registered with its policy
// before the sandbox exists, so its first packet is already decided by it.
func (d *Driver) egressFor(ctx context.Context, spec driver.Spec) (*sandboxNet, error) {
	p := spec.Network.Policy
	if p == nil || !p.Enforced() {
		return nil, nil
	}
	if spec.Network.HostNetwork {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "a network policy cannot be enforced on the host's network (use_host_network): choose one of them")
	}
	if len(spec.Network.Additional) > 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "a network policy cannot be enforced with additional_networks: another network would be a way out")
	}
	if d.urlHost != "" {
		return nil, errdefs.New(errdefs.ErrNotImplemented, "a network policy needs sbx on the engine's host: sandboxd is reached through the proxy's port on 127.0.0.1, which DOCKER_HOST_ADDR / local_runtime_url cannot reach")
	}
	if pool := d.subnets(); !pool.Addr().Is4() || pool.Bits() > sandboxNetBits {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("egress_subnets %s: want an IPv4 range of at least a /%d", pool, sandboxNetBits))
	}
	d.egressMu.Lock()
	px, err := d.ensureProxy(ctx, *p)
	d.egressMu.Unlock()
	if err != nil {
		return nil, err
	}
	sn, err := d.ensureSandboxNet(ctx, spec.ID, px.key)
	if err != nil {
		return nil, err
	}
	sn.proxy, sn.none = px, p.Mode == netpolicy.None
	ok := false
	defer func() {
		if !ok {
			d.dropSandboxNet(context.WithoutCancel(ctx), spec.ID)
		}
	}()
	if err := d.connectProxy(ctx, px, sn); err != nil {
		return nil, err
	}
	if err := d.register(ctx, px, spec.ID, sn.ip, *p); err != nil {
		return nil, err
	}
	ok = true
	return sn, nil
}

// ensureSandboxNet finds or makes sandbox id's network, on a /29 of the
// pool that no network has: the engine refuses an overlapping subnet, so
// two sbx processes picking the same one cannot both have it.
func (d *Driver) ensureSandboxNet(ctx context.Context, id, key string) (*sandboxNet, error) {
	name := sandboxNetName(id)
	ins, err := d.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err == nil {
		// A network left by a sandbox of this id is reused, but never
		// one whose sandbox is still there: that sandbox's registration
		// would be overwritten.
		if _, cerr := d.api.ContainerInspect(ctx, ContainerName(id), client.ContainerInspectOptions{}); cerr == nil {
			return nil, errdefs.New(errdefs.ErrAlreadyExists, fmt.Sprintf("sandbox %q already exists (container %s): attach to it, or remove it with `sbx rm %s`", id, ContainerName(id), id))
		}
		return sandboxNetOf(ins.Network, key)
	}
	if !cerrdefs.IsNotFound(err) {
		return nil, classify(err, "inspect network "+name)
	}
	pool := d.subnets()
	nets, err := d.api.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, classify(err, "list networks")
	}
	var used []netip.Prefix
	for _, n := range nets.Items {
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Overlaps(pool) {
				used = append(used, c.Subnet)
			}
		}
	}
	blocks := uint32(1) << (sandboxNetBits - pool.Bits())
	start := uint32(rand.Uint64N(uint64(blocks)))
	tries := 0
	for i := uint32(0); i < blocks && tries < 64; i++ {
		cand := netip.PrefixFrom(hostAt(pool, ((start+i)%blocks)<<(32-sandboxNetBits)), sandboxNetBits)
		if slices.ContainsFunc(used, cand.Overlaps) {
			continue
		}
		tries++
		_, err := d.api.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Internal: true,
			// Said, not left to the daemon's default: an IPv6 network
			// would give the host an address on it that inhibit_ipv4
			// does not take away.
			EnableIPv6: boolPtr(false),
			IPAM:       &network.IPAM{Config: []network.IPAMConfig{{Subnet: cand, Gateway: hostAt(cand, 1)}}},
			Options: map[string]string{
				// No address of the host's on the network: nothing the
				// host serves is reachable from the sandbox.
				"com.docker.network.bridge.inhibit_ipv4": "true",
				"com.docker.network.bridge.enable_icc":   "true",
			},
			Labels: map[string]string{driver.LabelManaged: "true", driver.LabelVersion: version.Version, labelKind: kindSandboxNet,
				labelEgress: key, driver.LabelSession: id}})
		if err == nil {
			return &sandboxNet{key: key, network: name, subnet: cand, proxyIP: hostAt(cand, 2), ip: hostAt(cand, 3)}, nil
		}
		if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
			if ins, ierr := d.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); ierr == nil {
				return sandboxNetOf(ins.Network, key)
			}
		}
		if !strings.Contains(strings.ToLower(err.Error()), "overlap") {
			return nil, classify(err, "create network "+name)
		}
		used = append(used, cand) // another process took it meanwhile
	}
	return nil, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("no free /%d left in egress_subnets %s for sandbox %s's network: remove unused sandboxes (sbx gc) or give a larger range", sandboxNetBits, pool, id))
}

func sandboxNetOf(n network.Inspect, key string) (*sandboxNet, error) {
	if n.Labels[driver.LabelManaged] != "true" || n.Labels[labelKind] != kindSandboxNet || !n.Internal {
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network %s is not a sandbox network of sbx's; remove or rename it", n.Name))
	}
	if n.Labels[labelEgress] != key {
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network %s was made for another policy's proxy; remove it (sbx gc)", n.Name))
	}
	for _, c := range n.IPAM.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is4() && c.Subnet.Bits() == sandboxNetBits {
			return &sandboxNet{key: key, network: n.Name, subnet: c.Subnet, proxyIP: hostAt(c.Subnet, 2), ip: hostAt(c.Subnet, 3)}, nil
		}
	}
	return nil, fmt.Errorf("network %s has no /%d subnet", n.Name, sandboxNetBits)
}

// connectProxy puts the proxy on a sandbox's network at .2, unless it is
// there already (a sandbox started again, or a proxy made anew).
func (d *Driver) connectProxy(ctx context.Context, px *proxyInfo, sn *sandboxNet) error {
	ins, err := d.api.ContainerInspect(ctx, px.id, client.ContainerInspectOptions{})
	if err != nil {
		return classify(err, "inspect egress proxy "+px.name)
	}
	if ns := ins.Container.NetworkSettings; ns != nil {
		if ep := ns.Networks[sn.network]; ep != nil {
			if ep.IPAddress == sn.proxyIP {
				return nil
			}
			return fmt.Errorf("egress proxy %s is on %s at %s, want %s", px.name, sn.network, ep.IPAddress, sn.proxyIP)
		}
	}
	_, err = d.api.NetworkConnect(ctx, sn.network, client.NetworkConnectOptions{Container: px.id,
		EndpointConfig: &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: sn.proxyIP}}})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return classify(err, fmt.Sprintf("connect egress proxy %s to %s", px.name, sn.network))
	}
	return nil
}

// dropSandboxNet removes a sandbox's network once its container is gone:
// sbx's proxies are taken off it first; anything else on it stays, and so
// does the network.
func (d *Driver) dropSandboxNet(ctx context.Context, id string) error {
	name := sandboxNetName(id)
	ins, err := d.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(err, "inspect network "+name)
	}
	if ins.Network.Labels[driver.LabelManaged] != "true" || ins.Network.Labels[labelKind] != kindSandboxNet {
		return nil
	}
	for cid, ep := range ins.Network.Containers {
		if !strings.HasPrefix(ep.Name, egressPrefix) {
			continue
		}
		if _, err := d.api.NetworkDisconnect(ctx, name, client.NetworkDisconnectOptions{Container: cid, Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return classify(err, fmt.Sprintf("disconnect %s from %s", ep.Name, name))
		}
	}
	if _, err := d.api.NetworkRemove(ctx, ins.Network.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return classify(err, "remove network "+name)
	}
	return nil
}

// egressImage makes the proxy's FROM-scratch image from the static
// binary, named by its digest.
func (d *Driver) egressImage(ctx context.Context) (string, error) {
	if d.img == nil {
		return "", errdefs.New(errdefs.ErrNotImplemented, "this driver was made without an image client")
	}
	bin, err := d.egressBin.Locate(ctx)
	if err != nil {
		return "", err
	}
	tag := "sbx-egress:" + bin.Digest[:16]
	if _, err := image.Static(ctx, d.img, bin.Path, sandboxdbin.EgressName, tag,
		map[string]string{driver.LabelManaged: "true", driver.LabelVersion: version.Version, labelKind: kindEgress}); err != nil {
		return "", err
	}
	return tag, nil
}

// proxyKey names the proxy of policy p under this driver's upstream
// settings: a proxy made for other networks, another resolver or another
// pool is another proxy.
func (d *Driver) proxyKey(p netpolicy.Policy) string {
	h := sha256.Sum256([]byte(p.String() + "\x00" + strings.Join(d.egress.Upstream, ",") + "\x00" + d.egress.DNS + "\x00" + d.subnets().String()))
	return hex.EncodeToString(h[:6])
}

// ensureProxy finds, starts or creates the proxy of policy p.
func (d *Driver) ensureProxy(ctx context.Context, p netpolicy.Policy) (*proxyInfo, error) {
	return d.proxyByKey(ctx, d.proxyKey(p), &p)
}

// proxyByKey finds (and starts) the proxy called key, creating it for
// policy create when it is missing and create is not nil.
func (d *Driver) proxyByKey(ctx context.Context, key string, create *netpolicy.Policy) (*proxyInfo, error) {
	name := egressPrefix + key
	ins, err := d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) && create == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("egress proxy %s is gone (was it removed by hand?): restart the sandbox to get a new one", name))
	}
	if cerrdefs.IsNotFound(err) {
		p := *create
		cerr := d.createProxy(ctx, p, key)
		for i := 0; i < 3 && cerr != nil && portTaken(cerr); i++ {
			cerr = d.createProxy(ctx, p, key)
		}
		if cerr != nil {
			return nil, cerr
		}
		ins, err = d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	}
	if err != nil {
		return nil, classify(err, "inspect egress proxy "+name)
	}
	c := ins.Container
	if c.Config == nil || c.Config.Labels[labelKind] != kindEgress || c.Config.Labels[labelEgress] != key {
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is not sbx's egress proxy; remove or rename it", name))
	}
	if c.State == nil || !c.State.Running {
		if _, err := d.api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return nil, classify(err, "start egress proxy "+name)
		}
		if ins, err = d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err != nil {
			return nil, classify(err, "inspect egress proxy "+name)
		}
		c = ins.Container
	}
	px, err := proxyOf(c)
	if err != nil {
		return nil, err
	}
	px.key = key
	if err := d.waitProxy(ctx, px, c.ID); err != nil {
		return nil, err
	}
	return px, nil
}

func (d *Driver) createProxy(ctx context.Context, p netpolicy.Policy, key string) error {
	name := egressPrefix + key
	img, err := d.egressImage(ctx)
	if err != nil {
		return err
	}
	upstream := d.egress.Upstream
	if len(upstream) == 0 {
		upstream = []string{"bridge"}
	}
	args := []string{"--internal", d.subnets().String(), "--policy", p.String()}
	if hosts := d.hostAddrs(ctx, upstream); len(hosts) > 0 {
		args = append(args, "--host", strings.Join(hosts, ","))
	}
	if d.egress.DNS != "" {
		args = append(args, "--dns", d.egress.DNS)
	}
	ctl := network.MustParsePort(strconv.Itoa(egressControlPort) + "/tcp")
	// A fixed host port, not one the engine picks at each start: the
	// relay URLs of the policy's sandboxes stay good across a restart of
	// the proxy (or of the engine).
	hostPort, err := freePort()
	if err != nil {
		return fmt.Errorf("a port for egress proxy %s: %w", name, err)
	}
	cfg := &container.Config{
		Image: img, Cmd: args,
		Env: []string{envEgressToken + "=" + ids.Token()},
		Labels: map[string]string{driver.LabelManaged: "true", driver.LabelVersion: version.Version, labelKind: kindEgress,
			labelEgress: key, labelEgressPolicy: p.String()},
		ExposedPorts: network.PortSet{ctl: {}},
		StopTimeout:  intPtr(2),
	}
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(upstream[0]),
		PortBindings:  network.PortMap{ctl: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort)}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		// Binding 53, 80 and 443 is all it needs.
		CapDrop:        []string{"ALL"},
		CapAdd:         []string{"NET_BIND_SERVICE"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: false,
		// Bounds, not budgets (it runs in tens of MB): the sandboxes of a
		// policy share it, and one of them must not grow it (connections,
		// goroutines) or its log (a flood of refused names; denials are
		// also rate-limited per source) until the host suffers.
		Resources: container.Resources{Memory: 1 << 30, PidsLimit: int64Ptr(4096)},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
	}
	res, err := d.createContainer(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	if cerrdefs.IsConflict(err) || cerrdefs.IsAlreadyExists(err) {
		return nil // another sbx made it meanwhile
	}
	if err != nil {
		return classify(err, "create egress proxy "+name)
	}
	ok := false
	defer func() {
		if !ok {
			d.discard(ctx, res.ID)
		}
	}()
	// Before the start, so the proxy sees its control side at once.
	for _, n := range upstream[1:] {
		if _, err := d.api.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: res.ID}); err != nil {
			return classify(err, fmt.Sprintf("connect egress proxy %s to %s", name, n))
		}
	}
	if _, err := d.api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return classify(err, "start egress proxy "+name)
	}
	ok = true
	d.log.Debug("egress proxy created", "name", name, "policy", p.String())
	return nil
}

const egressControlPort = 9000

// portTaken says a start failed on a host port taken since freePort.
func portTaken(err error) bool {
	m := err.Error()
	return strings.Contains(m, "port is already allocated") || strings.Contains(m, "address already in use")
}

// freePort is a TCP port on 127.0.0.1 free at the moment: another process
// may take it before the engine binds it, and then the proxy's start
// fails and it is made again on another (portTaken).
func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// hostAddrs are the engine host's addresses a proxy could dial: the
// gateways of its upstream networks, and this process's own interface
// addresses (a policy is enforced only with sbx on the engine's host).
func (d *Driver) hostAddrs(ctx context.Context, upstream []string) []string {
	seen := map[netip.Addr]bool{}
	var out []string
	add := func(a netip.Addr) {
		if a.IsValid() && a.Is4() && !a.IsLoopback() && !seen[a] {
			seen[a] = true
			out = append(out, a.String())
		}
	}
	for _, n := range upstream {
		ins, err := d.api.NetworkInspect(ctx, n, client.NetworkInspectOptions{})
		if err != nil {
			continue
		}
		for _, c := range ins.Network.IPAM.Config {
			add(c.Gateway)
		}
	}
	if addrs, err := egress.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			add(a)
		}
	}
	return out
}

func proxyOf(c container.InspectResponse) (*proxyInfo, error) {
	px := &proxyInfo{name: strings.TrimPrefix(c.Name, "/"), id: c.ID, token: envValue(c.Config.Env, envEgressToken)}
	if c.NetworkSettings != nil {
		px.control = controlURL(c.NetworkSettings.Ports)
	}
	if px.control == "" || px.token == "" {
		return nil, fmt.Errorf("egress proxy %s: no control port (is it running?)", px.name)
	}
	return px, nil
}

func controlURL(ports network.PortMap) string {
	for p, binds := range ports {
		if int(p.Num()) == egressControlPort && len(binds) > 0 {
			return "http://" + net.JoinHostPort("127.0.0.1", binds[0].HostPort)
		}
	}
	return ""
}

// relayURL is where sbx reaches port of a sandbox at ip through its proxy
// (control is the proxy's control URL, token its control token, which
// keys the path).
func relayURL(control, token string, ip netip.Addr, port int) string {
	return control + egress.RelayPath(token, ip, port)
}

// relayed points a policed sandbox's endpoints at its proxy's relay.
func (d *Driver) relayed(sb *driver.Sandbox, px *proxyInfo, ip netip.Addr, cfg *container.Config) {
	if px == nil || px.control == "" || px.token == "" {
		return
	}
	port := ServerPort
	if cfg != nil {
		if p, err := strconv.Atoi(envValue(cfg.Env, "port")); err == nil && p > 0 {
			port = p
		}
	}
	sb.Endpoint.URL = relayURL(px.control, px.token, ip, port)
	if swx, _ := swerexOf(cfg); swx != 0 {
		sb.SWEReX.URL = relayURL(px.control, px.token, ip, swx)
	}
}

// relayProxies maps the proxies' keys to their control URLs and tokens,
// for List: one inspect per proxy (one per policy in use), since a list
// of containers carries no environment.
func (d *Driver) relayProxies(ctx context.Context) map[string]*proxyInfo {
	out := map[string]*proxyInfo{}
	res, err := d.api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", labelKind+"="+kindEgress)})
	if err != nil {
		d.log.Debug("listing egress proxies", "err", err)
		return out
	}
	for _, c := range res.Items {
		ins, err := d.api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			d.log.Debug("inspecting an egress proxy", "id", c.ID, "err", err)
			continue
		}
		if px, err := proxyOf(ins.Container); err == nil {
			out[c.Labels[labelEgress]] = px
		}
	}
	return out
}

// waitProxy waits until the proxy's control endpoint answers, quoting its
// log if it exits instead.
func (d *Driver) waitProxy(ctx context.Context, px *proxyInfo, cid string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		err := d.control(ctx, px, http.MethodGet, "/v1/healthz", nil, nil)
		if err == nil {
			return nil
		}
		if xerr := d.exited(ctx, cid, nil); xerr != nil {
			return fmt.Errorf("egress proxy %s: %w", px.name, xerr)
		}
		select {
		case <-ctx.Done():
			return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Sprintf("egress proxy %s does not answer: %v", px.name, err), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *Driver) control(ctx context.Context, px *proxyInfo, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, px.control+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+px.token)
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return errdefs.FromHTTP(resp.StatusCode, fmt.Sprintf("egress proxy %s: %s %s: %s", px.name, method, path, strings.TrimSpace(string(msg))))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// sandboxAddr is a policed sandbox's address on its own network.
func sandboxAddr(c container.InspectResponse) netip.Addr {
	if c.NetworkSettings == nil || c.Config == nil {
		return netip.Addr{}
	}
	if ep := c.NetworkSettings.Networks[sandboxNetName(c.Config.Labels[driver.LabelSession])]; ep != nil {
		return ep.IPAddress
	}
	return netip.Addr{}
}

type registration struct {
	Sandbox string `json:"sandbox"`
	Policy  string `json:"policy"`
}

type proxyClient struct {
	Addr    string `json:"addr"`
	Sandbox string `json:"sandbox"`
	Policy  string `json:"policy"`
}

// register tells the proxy the sandbox's address. A policy it had under
// an earlier address (a restart gives it a new one) goes with it, so a
// changed policy outlives a stop and start.
func (d *Driver) register(ctx context.Context, px *proxyInfo, id string, ip netip.Addr, p netpolicy.Policy) error {
	var list []proxyClient
	if err := d.control(ctx, px, http.MethodGet, "/v1/clients", nil, &list); err != nil {
		return err
	}
	for _, c := range list {
		if c.Sandbox != id {
			continue
		}
		if q, err := netpolicy.Parse(c.Policy); err == nil {
			p = q
		}
		if c.Addr != ip.String() {
			if err := d.control(ctx, px, http.MethodDelete, "/v1/clients/"+c.Addr, nil, nil); err != nil {
				return err
			}
		}
	}
	return d.control(ctx, px, http.MethodPut, "/v1/clients/"+ip.String(), registration{Sandbox: id, Policy: p.String()}, nil)
}

// policed is what a sandbox container says of its policy.
type policed struct {
	key    string
	policy netpolicy.Policy
	ip     netip.Addr
}

func policedOf(c container.InspectResponse) (policed, bool) {
	if c.Config == nil || c.Config.Labels[labelEgress] == "" {
		return policed{}, false
	}
	key := c.Config.Labels[labelEgress]
	p, err := netpolicy.Parse(c.Config.Labels[labelEgressPolicy])
	if err != nil {
		p = netpolicy.Policy{Mode: netpolicy.None}
	}
	return policed{key: key, policy: p, ip: sandboxAddr(c)}, true
}

// proxyFor finds the running proxy of a key (starting it if it stopped).
func (d *Driver) proxyFor(ctx context.Context, pol policed) (*proxyInfo, error) {
	d.egressMu.Lock()
	defer d.egressMu.Unlock()
	return d.proxyByKey(ctx, pol.key, nil)
}

// restartEgress readies a policed sandbox's network for a start: the
// proxy (made anew if it was removed) is on it and knows the sandbox.
func (d *Driver) restartEgress(ctx context.Context, id string, c container.InspectResponse) error {
	pol, ok := policedOf(c)
	if !ok {
		return nil
	}
	d.egressMu.Lock()
	px, err := d.proxyByKey(ctx, pol.key, &pol.policy)
	d.egressMu.Unlock()
	if err != nil {
		return err
	}
	ins, err := d.api.NetworkInspect(ctx, sandboxNetName(id), client.NetworkInspectOptions{})
	if err != nil {
		return classify(err, fmt.Sprintf("sandbox %s's network (made before each sandbox had its own? remove and create it again)", id))
	}
	sn, err := sandboxNetOf(ins.Network, pol.key)
	if err != nil {
		return err
	}
	if err := d.connectProxy(ctx, px, sn); err != nil {
		return err
	}
	return d.register(ctx, px, id, sn.ip, pol.policy)
}

// NetworkPolicy implements driver.NetworkPolicer.
func (d *Driver) NetworkPolicy(ctx context.Context, id string) (netpolicy.Policy, error) {
	_, c, err := d.ownContainer(ctx, id)
	if err != nil {
		return netpolicy.Policy{}, err
	}
	pol, ok := policedOf(c)
	if !ok {
		return netpolicy.Policy{Mode: netpolicy.Open}, nil
	}
	px, err := d.proxyFor(ctx, pol)
	if err != nil {
		return netpolicy.Policy{}, err
	}
	var list []proxyClient
	if err := d.control(ctx, px, http.MethodGet, "/v1/clients", nil, &list); err != nil {
		return netpolicy.Policy{}, err
	}
	for _, cl := range list {
		if cl.Sandbox == id {
			return netpolicy.Parse(cl.Policy)
		}
	}
	return pol.policy, nil
}

// SetNetworkPolicy implements driver.NetworkPolicer: for a sandbox behind
// a proxy it is one call to the proxy, which decides every new connection
// and DNS answer by the new policy; connections already open go on.
func (d *Driver) SetNetworkPolicy(ctx context.Context, id string, p netpolicy.Policy) error {
	_, c, err := d.ownContainer(ctx, id)
	if err != nil {
		return err
	}
	pol, ok := policedOf(c)
	switch {
	case !ok && !p.Enforced():
		return nil
	case !ok:
		return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("sandbox %s was started with network policy open: its network has a route out, which cannot be taken away while it runs; start it with --network-policy", id))
	case pol.policy.Mode == netpolicy.None && p.Mode == netpolicy.None:
		return nil
	case pol.policy.Mode == netpolicy.None:
		return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("sandbox %s was started with network policy none: it has no proxy settings to widen into; start it with an allow-list (\"allow\" alone reaches nothing and can be widened)", id))
	}
	if c.State == nil || !c.State.Running || !pol.ip.IsValid() {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("sandbox %s is not running", id))
	}
	px, err := d.proxyFor(ctx, pol)
	if err != nil {
		return err
	}
	return d.control(ctx, px, http.MethodPut, "/v1/clients/"+pol.ip.String(), registration{Sandbox: id, Policy: p.String()}, nil)
}

// NetworkDenials implements driver.NetworkPolicer from the proxy's log.
func (d *Driver) NetworkDenials(ctx context.Context, id string) ([]netpolicy.Denial, error) {
	_, c, err := d.ownContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	pol, ok := policedOf(c)
	if !ok {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %s has network policy open: nothing is refused, so nothing is logged", id))
	}
	var buf bytes.Buffer
	if err := d.copyLogs(ctx, egressPrefix+pol.key, &buf, 0); err != nil {
		return nil, err
	}
	out := []netpolicy.Denial{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			netpolicy.Denial
			Msg     string `json:"msg"`
			Sandbox string `json:"sandbox"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "denied" || rec.Sandbox != id {
			continue
		}
		rec.Time = rec.Time.UTC()
		out = append(out, rec.Denial)
	}
	return out, sc.Err()
}

// pruneEgress removes proxies and networks of sbx's that no sandbox
// (running or not) uses and that are older than minAge.
// only, when not nil, limits it to those keys (a test's own).
func (d *Driver) pruneEgress(ctx context.Context, minAge time.Duration, dryRun bool, only map[string]bool) ([]string, error) {
	all, err := d.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", labelEgress)})
	if err != nil {
		return nil, classify(err, "list containers")
	}
	used := map[string]bool{}
	sandboxes := map[string]bool{}
	var proxies []container.Summary
	for _, c := range all.Items {
		if c.Labels[labelKind] == kindEgress {
			proxies = append(proxies, c)
		} else {
			used[c.Labels[labelEgress]] = true
			sandboxes[c.Labels[driver.LabelSession]] = true
		}
	}
	var out []string
	var errs []error
	// A sandbox's own network outlives it only when its removal was cut
	// short (or the engine removed it, --rm).
	snets, err := d.api.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", labelKind+"="+kindSandboxNet)})
	if err != nil {
		return nil, classify(err, "list networks")
	}
	for _, n := range snets.Items {
		id := n.Labels[driver.LabelSession]
		if id == "" || sandboxes[id] || time.Since(n.Created) < minAge || only != nil && !only[n.Labels[labelEgress]] {
			continue
		}
		out = append(out, "network "+n.Name)
		if !dryRun {
			if err := d.dropSandboxNet(ctx, id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, c := range proxies {
		key := c.Labels[labelEgress]
		if used[key] || time.Since(time.Unix(c.Created, 0)) < minAge || only != nil && !only[key] {
			continue
		}
		out = append(out, "container "+egressPrefix+key)
		if !dryRun {
			if _, err := d.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, classify(err, "remove egress proxy "+egressPrefix+key))
			}
		}
	}
	nets, err := d.api.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", labelKind+"="+kindEgressNet)})
	if err != nil {
		return out, errors.Join(append(errs, classify(err, "list networks"))...)
	}
	for _, n := range nets.Items {
		key := n.Labels[labelEgress]
		if used[key] || time.Since(n.Created) < minAge || only != nil && !only[key] {
			continue
		}
		out = append(out, "network "+n.Name)
		if !dryRun {
			if _, err := d.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, classify(err, "remove network "+n.Name))
			}
		}
	}
	imgs, err := d.pruneEgressImages(ctx, minAge, dryRun, only, proxies)
	return append(out, imgs...), errors.Join(append(errs, err)...)
}

// pruneEgressImages removes the proxy images of earlier sbx builds that no
// container uses. Only a GC of the whole machine does it, and only while
// this build's binary is known (else which image is current is unknown).
func (d *Driver) pruneEgressImages(ctx context.Context, minAge time.Duration, dryRun bool, only map[string]bool, proxies []container.Summary) ([]string, error) {
	if d.img == nil || only != nil {
		return nil, nil
	}
	bin, err := d.egressBin.Locate(ctx)
	if err != nil {
		d.log.Debug("not pruning egress images: this build's sbx-egress is unknown", "err", err)
		return nil, nil
	}
	current := "sbx-egress:" + bin.Digest[:16]
	inUse := map[string]bool{}
	for _, c := range proxies {
		inUse[c.ImageID] = true
	}
	res, err := d.img.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", driver.LabelManaged+"=true").Add("label", labelKind+"="+kindEgress)})
	if err != nil {
		return nil, classify(err, "list images")
	}
	var out []string
	var errs []error
	for _, im := range res.Items {
		if inUse[im.ID] || slices.Contains(im.RepoTags, current) || time.Since(time.Unix(im.Created, 0)) < minAge || im.Containers > 0 {
			continue
		}
		name := im.ID
		if len(im.RepoTags) > 0 {
			name = im.RepoTags[0]
		}
		out = append(out, "image "+name)
		if !dryRun {
			if _, err := d.img.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, classify(err, "remove image "+name))
			}
		}
	}
	return out, errors.Join(errs...)
}

// egressProxyPort is the proxy's HTTP_PROXY port (internal/egress).
const egressProxyPort = 3128

// unregisterAt forgets the registration at ip, best effort.
func (d *Driver) unregisterAt(ctx context.Context, px *proxyInfo, ip netip.Addr) {
	if px == nil || !ip.IsValid() {
		return
	}
	if err := d.control(ctx, px, http.MethodDelete, "/v1/clients/"+ip.String(), nil, nil); err != nil {
		d.log.Debug("unregistering from the egress proxy", "addr", ip.String(), "err", err)
	}
}

// NetworkPolicer is declared.
var _ driver.NetworkPolicer = (*Driver)(nil)

// unregister tells a sandbox's proxy to forget it, so a later sandbox
// given the same address does not inherit a policy changed for this one
// (it would only until its own registration, a moment after its start).
// It is best effort: a proxy already gone has nothing to forget.
func (d *Driver) unregister(ctx context.Context, id string, c container.InspectResponse) {
	pol, ok := policedOf(c)
	if !ok {
		return
	}
	d.egressMu.Lock()
	ins, err := d.api.ContainerInspect(ctx, egressPrefix+pol.key, client.ContainerInspectOptions{})
	d.egressMu.Unlock()
	if err != nil || ins.Container.State == nil || !ins.Container.State.Running {
		return
	}
	px, err := proxyOf(ins.Container)
	if err != nil {
		return
	}
	// By name: a stopped sandbox has no address any more, but its
	// registration is still under the one it had.
	var list []proxyClient
	err = d.control(ctx, px, http.MethodGet, "/v1/clients", nil, &list)
	for _, cl := range list {
		if cl.Sandbox == id && err == nil {
			err = d.control(ctx, px, http.MethodDelete, "/v1/clients/"+cl.Addr, nil, nil)
		}
	}
	if err != nil {
		d.log.Debug("unregistering from the egress proxy", "sandbox", id, "err", err)
	}
}
