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
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/netpolicy"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
	"github.com/sbx-dev/sbx/internal/version"
)

// Egress enforcement on Docker: a sandbox with a policy other than open
// is on an --internal network (no route out) of its policy; for none that
// network has nothing else on it, for the others an egress proxy of
// sbx's (cmd/sbx-egress, one container per policy, shared) is on it and
// on a network with a route. The sandbox's resolver is the proxy, which
// answers allowed names with its own address, and HTTP(S)_PROXY point at
// it. sandboxd is reached at the sandbox's address on that network,
// since the engine publishes no port of a container on an internal one.
const (
	// labelEgress is on sandboxes, proxies and their networks: the
	// policy's key, "none" for none.
	labelEgress = "dev.sbx.egress"
	// labelEgressPolicy is the policy a sandbox or proxy started with.
	labelEgressPolicy = "dev.sbx.egress.policy"
	labelKind         = "dev.sbx.kind"
	kindEgress        = "egress"
	kindEgressNet     = "egress-network"
	// egressPrefix names proxies and networks; "sbx_", not "sbx-", so
	// no sandbox's container (sbx-<id>) can ever have the name.
	egressPrefix = "sbx_egress-"
	noneKey      = "none"
	// envEgressToken is the proxy's control token (cmd/sbx-egress).
	envEgressToken = "SBX_EGRESS_TOKEN"
)

// EgressOptions configure enforcement.
type EgressOptions struct {
	// Upstream are the networks with a route that proxies join; empty is
	// the engine's default bridge. The first must not be internal (the
	// proxy's control port is published through it).
	Upstream []string
	// DNS is the resolver (host:port) proxies resolve destinations with;
	// "" is the one the engine gives their containers.
	DNS string
	// Binary finds cmd/sbx-egress; nil is the default search.
	Binary *sandboxdbin.Locator
}

func egressNetName(key string) string { return egressPrefix + key }

// sandboxNet is what a policed sandbox's container is configured with.
type sandboxNet struct {
	key     string
	network string
	dns     netip.Addr // the proxy; invalid for none
	proxy   *proxyInfo
}

type proxyInfo struct {
	key     string
	name    string
	network string
	ip      netip.Addr // on the sandbox network
	control string     // base URL of the control endpoint
	token   string
}

// egressFor prepares the network (and proxy) of a sandbox's policy.
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
		return nil, errdefs.New(errdefs.ErrNotImplemented, "a network policy needs sbx on the engine's host: sandboxd is reached at its address on an internal network, which DOCKER_HOST_ADDR / local_runtime_url cannot reach")
	}
	d.egressMu.Lock()
	defer d.egressMu.Unlock()
	if p.Mode == netpolicy.None {
		// Inter-container traffic is off too: sandboxes of policy none
		// do not see each other.
		if _, err := d.ensureNetwork(ctx, egressNetName(noneKey), noneKey, map[string]string{"com.docker.network.bridge.enable_icc": "false"}); err != nil {
			return nil, err
		}
		return &sandboxNet{key: noneKey, network: egressNetName(noneKey)}, nil
	}
	px, err := d.ensureProxy(ctx, *p)
	if err != nil {
		return nil, err
	}
	return &sandboxNet{key: px.key, network: px.network, dns: px.ip, proxy: px}, nil
}

// ensureNetwork finds or creates an internal bridge network of sbx's.
func (d *Driver) ensureNetwork(ctx context.Context, name, key string, opts map[string]string) (netip.Prefix, error) {
	ins, err := d.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		_, err = d.api.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Internal: true, Options: opts,
			Labels: map[string]string{driver.LabelManaged: "true", driver.LabelVersion: version.Version, labelKind: kindEgressNet, labelEgress: key}})
		if err != nil && !cerrdefs.IsConflict(err) && !cerrdefs.IsAlreadyExists(err) {
			return netip.Prefix{}, classify(err, "create network "+name)
		}
		ins, err = d.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	}
	if err != nil {
		return netip.Prefix{}, classify(err, "inspect network "+name)
	}
	n := ins.Network
	if n.Labels[driver.LabelManaged] != "true" || !n.Internal {
		return netip.Prefix{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network %s is not an internal network of sbx's; remove or rename it", name))
	}
	for _, c := range n.IPAM.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
			return c.Subnet, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("network %s has no IPv4 subnet", name)
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
// settings: a proxy made for other networks or another resolver is
// another proxy.
func (d *Driver) proxyKey(p netpolicy.Policy) string {
	h := sha256.Sum256([]byte(p.String() + "\x00" + strings.Join(d.egress.Upstream, ",") + "\x00" + d.egress.DNS))
	return hex.EncodeToString(h[:6])
}

// ensureProxy finds, starts or creates the proxy of policy p.
func (d *Driver) ensureProxy(ctx context.Context, p netpolicy.Policy) (*proxyInfo, error) {
	return d.proxyByKey(ctx, d.proxyKey(p), &p)
}

// proxyByKey finds (and starts) the proxy called key, creating it for
// policy create when it is missing and create is not nil.
func (d *Driver) proxyByKey(ctx context.Context, key string, create *netpolicy.Policy) (*proxyInfo, error) {
	name, netName := egressPrefix+key, egressNetName(key)
	subnet, err := d.ensureNetwork(ctx, netName, key, nil)
	if err != nil {
		return nil, err
	}
	ins, err := d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) && create == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("egress proxy %s is gone (was it removed by hand?): restart the sandbox to get a new one", name))
	}
	if cerrdefs.IsNotFound(err) {
		p := *create
		if err := d.createProxy(ctx, p, key, netName, subnet); err != nil {
			return nil, err
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
	px, err := proxyOf(c, netName)
	if err != nil {
		return nil, err
	}
	px.key = key
	if err := d.waitProxy(ctx, px, c.ID); err != nil {
		return nil, err
	}
	return px, nil
}

func (d *Driver) createProxy(ctx context.Context, p netpolicy.Policy, key, netName string, subnet netip.Prefix) error {
	name := egressPrefix + key
	img, err := d.egressImage(ctx)
	if err != nil {
		return err
	}
	upstream := d.egress.Upstream
	if len(upstream) == 0 {
		upstream = []string{"bridge"}
	}
	args := []string{"--internal", subnet.String(), "--policy", p.String()}
	if d.egress.DNS != "" {
		args = append(args, "--dns", d.egress.DNS)
	}
	ctl := network.MustParsePort(strconv.Itoa(egressControlPort) + "/tcp")
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
		PortBindings:  network.PortMap{ctl: {{HostIP: netip.MustParseAddr("127.0.0.1")}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		// Binding 53, 80 and 443 is all it needs.
		CapDrop:        []string{"ALL"},
		CapAdd:         []string{"NET_BIND_SERVICE"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: false,
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
	// Before the start, so the proxy sees all its interfaces at once.
	for _, n := range append([]string{netName}, upstream[1:]...) {
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

func proxyOf(c container.InspectResponse, netName string) (*proxyInfo, error) {
	px := &proxyInfo{name: strings.TrimPrefix(c.Name, "/"), network: netName, token: envValue(c.Config.Env, envEgressToken)}
	if c.NetworkSettings != nil {
		if ep := c.NetworkSettings.Networks[netName]; ep != nil {
			px.ip = ep.IPAddress
		}
		for p, binds := range c.NetworkSettings.Ports {
			if int(p.Num()) == egressControlPort && len(binds) > 0 {
				px.control = "http://" + net.JoinHostPort("127.0.0.1", binds[0].HostPort)
			}
		}
	}
	if !px.ip.IsValid() || px.control == "" || px.token == "" {
		return nil, fmt.Errorf("egress proxy %s: no address on %s or no control port (is it running?)", px.name, netName)
	}
	return px, nil
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

// sandboxAddr is a policed sandbox's address on its network.
func sandboxAddr(c container.InspectResponse, netName string) netip.Addr {
	if c.NetworkSettings == nil {
		return netip.Addr{}
	}
	if ep := c.NetworkSettings.Networks[netName]; ep != nil {
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
	return policed{key: key, policy: p, ip: sandboxAddr(c, egressNetName(key))}, true
}

// proxyFor finds the running proxy of a key (starting it if it stopped).
func (d *Driver) proxyFor(ctx context.Context, pol policed) (*proxyInfo, error) {
	d.egressMu.Lock()
	defer d.egressMu.Unlock()
	return d.proxyByKey(ctx, pol.key, nil)
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
	if pol.key == noneKey {
		return pol.policy, nil
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
	case pol.key == noneKey && p.Mode == netpolicy.None:
		return nil
	case pol.key == noneKey:
		return errdefs.New(errdefs.ErrNotImplemented, fmt.Sprintf("sandbox %s was started with network policy none, which has no proxy to widen; start it with an allow-list (\"allow\" alone reaches nothing and can be widened)", id))
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

// NetworkLog implements driver.NetworkPolicer from the proxy's log.
func (d *Driver) NetworkLog(ctx context.Context, id string, w io.Writer) error {
	_, c, err := d.ownContainer(ctx, id)
	if err != nil {
		return err
	}
	pol, ok := policedOf(c)
	if !ok {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %s has network policy open: nothing is refused, so nothing is logged", id))
	}
	if pol.key == noneKey {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("sandbox %s has network policy none: it has no route and no proxy, so its attempts fail in its own kernel and are not logged", id))
	}
	var buf bytes.Buffer
	if err := d.copyLogs(ctx, egressPrefix+pol.key, &buf, 0); err != nil {
		return err
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Sandbox string    `json:"sandbox"`
			Dest    string    `json:"dest"`
			Via     string    `json:"via"`
			Reason  string    `json:"reason"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "denied" || rec.Sandbox != id {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s  denied  %-40s  %-7s  %s\n", rec.Time.UTC().Format(time.RFC3339Nano), rec.Dest, rec.Via, rec.Reason); err != nil {
			return err
		}
	}
	return sc.Err()
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
	var proxies []container.Summary
	for _, c := range all.Items {
		if c.Labels[labelKind] == kindEgress {
			proxies = append(proxies, c)
		} else {
			used[c.Labels[labelEgress]] = true
		}
	}
	var out []string
	var errs []error
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

// registerStarted registers a just-started sandbox with its proxy.
func (d *Driver) registerStarted(ctx context.Context, px *proxyInfo, id, cid string, p netpolicy.Policy) error {
	ins, err := d.api.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil {
		return classify(err, "inspect "+ContainerName(id))
	}
	ip := sandboxAddr(ins.Container, px.network)
	if !ip.IsValid() {
		return fmt.Errorf("sandbox %s has no address on %s", id, px.network)
	}
	return d.register(ctx, px, id, ip, p)
}

// NetworkPolicer is declared.
var _ driver.NetworkPolicer = (*Driver)(nil)

// unregister tells a sandbox's proxy to forget it, so a later sandbox
// given the same address does not inherit a policy changed for this one
// (it would only until its own registration, a moment after its start).
// It is best effort: a proxy already gone has nothing to forget.
func (d *Driver) unregister(ctx context.Context, id string, c container.InspectResponse) {
	pol, ok := policedOf(c)
	if !ok || pol.key == noneKey {
		return
	}
	d.egressMu.Lock()
	ins, err := d.api.ContainerInspect(ctx, egressPrefix+pol.key, client.ContainerInspectOptions{})
	d.egressMu.Unlock()
	if err != nil || ins.Container.State == nil || !ins.Container.State.Running {
		return
	}
	px, err := proxyOf(ins.Container, egressNetName(pol.key))
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
