// Package modalfake is a FAKE of Modal's API, for tests only: a gRPC
// server on 127.0.0.1 that answers the calls Modal's Go SDK makes for
// sandboxes (apps, registry images, create, tunnels, exec with stdin,
// wait/poll, terminate, list by tags, logs), built on the SDK's own
// generated protocol types (modal_proto), so the SDK talks to it exactly
// as to Modal. It is not Modal: there is no account, scheduling, gVisor,
// idle detection or image building, and only what sbx's driver uses is
// answered (the rest is Unimplemented).
//
// Its sandboxes are real: each is a Docker container on this machine,
// made from a local image as Modal makes one from a registry image, with
// the sandbox's entrypoint and environment, and each encrypted port
// reached through a TLS tunnel on 127.0.0.1 whose certificate the test
// trusts (Cert). Execs are Docker execs with their stdin and output
// streamed through the SDK's command-router calls.
//
// The SDK speaks plain gRPC to a server on localhost (an http://
// MODAL_SERVER_URL, and no TLS to the command router when the server is
// local), so the control plane needs no certificate.
package modalfake

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	pb "github.com/modal-labs/modal-client/go/proto/modal_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sbx-dev/sbx/internal/ids"
)

// Label marks the fake's containers, with the server's instance id as
// value, so that only its own are ever removed.
const Label = "dev.sbx.modalfake"

// Cert is the tunnels' TLS identity: a self-signed certificate for
// 127.0.0.1 that a test adds to its trusted roots.
type Cert struct {
	TLS tls.Certificate
	PEM []byte
}

// NewCert makes a fresh Cert.
func NewCert() (Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Cert{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return Cert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "modalfake tunnels"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Cert{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Cert{}, err
	}
	return Cert{
		TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// Options configure a Server.
type Options struct {
	Docker *client.Client
	Cert   Cert
	Logger *slog.Logger
	// TokenID and TokenSecret are the credentials it accepts; "" picks
	// random ones (read them from the Server).
	TokenID, TokenSecret string
}

// Server is a running fake.
type Server struct {
	// URL is the control plane, for MODAL_SERVER_URL or a profile's
	// server_url.
	URL                  string
	TokenID, TokenSecret string

	pb.UnimplementedModalClientServer
	router routerServer

	docker   *client.Client
	cert     Cert
	log      *slog.Logger
	instance string
	authTok  string
	jwt      string
	lis      net.Listener
	gs       *grpc.Server

	// making counts creates under way, which a client that left does not
	// stop: Close waits for them. Added to under mu, and only before
	// closed is set, so no Add races Close's Wait.
	making sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	calls     map[string]int
	apps      map[string]string // name → id
	images    map[string]string // id → tag
	sandboxes map[string]*sandbox
	execs     map[string]*execProc
	secrets   map[string][]string // ephemeral secrets (V1 creates): id → NAME=value
}

type sandbox struct {
	id, appID, name, taskID, container string
	tags                               map[string]string
	def                                *pb.Sandbox
	created                            time.Time
	tunnels                            []*tunnel
	terminated                         bool
	timer                              *time.Timer
}

type tunnel struct {
	containerPort int
	lis           net.Listener
}

// Start serves a fake on 127.0.0.1.
func Start(o Options) (*Server, error) {
	if o.Docker == nil {
		return nil, errors.New("modalfake: no Docker client")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL: "http://" + lis.Addr().String(), TokenID: o.TokenID, TokenSecret: o.TokenSecret,
		docker: o.Docker, cert: o.Cert, log: o.Logger, instance: ids.New(6), lis: lis,
		calls: map[string]int{}, apps: map[string]string{}, images: map[string]string{},
		sandboxes: map[string]*sandbox{}, execs: map[string]*execProc{}, secrets: map[string][]string{},
	}
	if s.TokenID == "" {
		s.TokenID, s.TokenSecret = "ak-"+ids.New(8), "as-"+ids.New(8)
	}
	s.authTok = fakeJWT()
	s.jwt = fakeJWT()
	s.router.s = s
	s.gs = grpc.NewServer(grpc.ChainUnaryInterceptor(s.unaryAuth), grpc.ChainStreamInterceptor(s.streamAuth))
	pb.RegisterModalClientServer(s.gs, s)
	pb.RegisterTaskCommandRouterServer(s.gs, &s.router)
	go func() { _ = s.gs.Serve(lis) }()
	return s, nil
}

// fakeJWT is shaped as the SDK parses tokens (three parts, an exp claim a
// day ahead) and carries nothing else.
func fakeJWT() string {
	enc := base64.RawURLEncoding
	claims := fmt.Sprintf(`{"exp":%d,"fake":"%s"}`, time.Now().Add(24*time.Hour).Unix(), ids.New(6))
	return enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString([]byte(claims)) + ".fake"
}

// Close ends every sandbox the fake made and stops serving.
func (s *Server) Close() error {
	s.gs.Stop()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// gRPC's Stop does not wait for handlers; a create whose client left
	// would make its container after Close, and a test binary exiting
	// then leaves it on the engine.
	s.making.Wait()
	s.mu.Lock()
	sbs := make([]*sandbox, 0, len(s.sandboxes))
	for _, sb := range s.sandboxes {
		sbs = append(sbs, sb)
	}
	s.mu.Unlock()
	var errs []error
	for _, sb := range sbs {
		if err := s.terminate(context.Background(), sb); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Containers lists the IDs of the Docker containers this fake made that
// are still on the engine, whatever state they are in.
func (s *Server) Containers(ctx context.Context) ([]string, error) {
	res, err := s.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", Label+"="+s.instance)})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(res.Items))
	for _, c := range res.Items {
		out = append(out, c.ID)
	}
	return out, nil
}

// Calls reports how often each RPC was answered, by method name.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Definition is what the SDK asked for when it made the running sandbox
// named name (resources, timeouts, entrypoint, ports), or nil.
func (s *Server) Definition(name string) *pb.Sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sb := range s.sandboxes {
		if sb.name == name && !sb.terminated {
			return sb.def
		}
	}
	return nil
}

func (s *Server) count(method string) {
	i := strings.LastIndex(method, "/")
	s.mu.Lock()
	s.calls[method[i+1:]]++
	s.mu.Unlock()
}

// authorised checks what the SDK sends: the token pair on every control
// plane call (and the auth token it got, after AuthTokenGet), the
// router's JWT on command-router calls.
func (s *Server) authorised(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if strings.HasPrefix(method, "/modal.task_command_router.") {
		if !eq(get("authorization"), "Bearer "+s.jwt) {
			return status.Error(codes.Unauthenticated, "modalfake: bad command router token")
		}
		return nil
	}
	if !eq(get("x-modal-token-id"), s.TokenID) || !eq(get("x-modal-token-secret"), s.TokenSecret) {
		return status.Error(codes.Unauthenticated, "modalfake: token id or secret not accepted")
	}
	if !strings.HasSuffix(method, "/AuthTokenGet") && !eq(get("x-modal-auth-token"), s.authTok) {
		return status.Error(codes.Unauthenticated, "modalfake: no or wrong x-modal-auth-token")
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorised(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	s.count(info.FullMethod)
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorised(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	s.count(info.FullMethod)
	return h(srv, ss)
}

// AuthTokenGet implements the SDK's token exchange.
func (s *Server) AuthTokenGet(context.Context, *pb.AuthTokenGetRequest) (*pb.AuthTokenGetResponse, error) {
	return pb.AuthTokenGetResponse_builder{Token: s.authTok}.Build(), nil
}

// EnvironmentGetOrCreate answers the image builder version lookup.
func (s *Server) EnvironmentGetOrCreate(_ context.Context, req *pb.EnvironmentGetOrCreateRequest) (*pb.EnvironmentGetOrCreateResponse, error) {
	return pb.EnvironmentGetOrCreateResponse_builder{
		EnvironmentId: "en-fake",
		Metadata: pb.EnvironmentMetadata_builder{Name: req.GetDeploymentName(),
			Settings: pb.EnvironmentSettings_builder{ImageBuilderVersion: "2024.10"}.Build()}.Build(),
	}.Build(), nil
}

// AppGetOrCreate finds or (when asked) makes an app by name.
func (s *Server) AppGetOrCreate(_ context.Context, req *pb.AppGetOrCreateRequest) (*pb.AppGetOrCreateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.apps[req.GetAppName()]
	if !ok {
		if req.GetObjectCreationType() != pb.ObjectCreationType_OBJECT_CREATION_TYPE_CREATE_IF_MISSING {
			return nil, status.Errorf(codes.NotFound, "App '%s' not found", req.GetAppName())
		}
		id = "ap-" + ids.New(11)
		s.apps[req.GetAppName()] = id
	}
	return pb.AppGetOrCreateResponse_builder{AppId: id}.Build(), nil
}

// ImageGetOrCreate accepts one layer, "FROM <tag>" (an image from a
// registry as is), and takes the tag from this machine's Docker images:
// the fake pulls nothing.
func (s *Server) ImageGetOrCreate(ctx context.Context, req *pb.ImageGetOrCreateRequest) (*pb.ImageGetOrCreateResponse, error) {
	cmds := req.GetImage().GetDockerfileCommands()
	if len(cmds) != 1 || !strings.HasPrefix(cmds[0], "FROM ") {
		return nil, status.Errorf(codes.Unimplemented, "modalfake builds no images; it takes registry images as is, got %q", cmds)
	}
	tag := strings.TrimSpace(strings.TrimPrefix(cmds[0], "FROM "))
	id := "im-" + ids.New(11)
	if _, err := s.docker.ImageInspect(ctx, tag); err != nil {
		return pb.ImageGetOrCreateResponse_builder{ImageId: id, Result: pb.GenericResult_builder{
			Status: pb.GenericResult_GENERIC_STATUS_FAILURE, Exception: fmt.Sprintf("modalfake: image %s is not on this machine: %v", tag, err)}.Build()}.Build(), nil
	}
	s.mu.Lock()
	s.images[id] = tag
	s.mu.Unlock()
	return pb.ImageGetOrCreateResponse_builder{ImageId: id,
		Result: pb.GenericResult_builder{Status: pb.GenericResult_GENERIC_STATUS_SUCCESS}.Build()}.Build(), nil
}

// SandboxCreateV2 starts the sandbox's container, publishes its ports on
// 127.0.0.1 and puts a TLS tunnel in front of each encrypted one.
func (s *Server) SandboxCreateV2(ctx context.Context, req *pb.SandboxCreateV2Request) (*pb.SandboxCreateV2Response, error) {
	var env []string
	for _, src := range req.GetSecretSources() {
		if src.HasSecretId() {
			return nil, status.Error(codes.Unimplemented, "modalfake: named secrets are not supported")
		}
		env = append(env, envList(src.GetEnv().GetContents())...)
	}
	// A client that gives up does not stop the making, as with Modal.
	sb, err := s.create(context.WithoutCancel(ctx), req.GetAppId(), req.GetDefinition(), req.GetTags(), env, "sbv2-"+ids.New(10))
	if err != nil {
		return nil, err
	}
	return pb.SandboxCreateV2Response_builder{
		SandboxId: sb.id, TaskId: sb.taskID, Tunnels: s.tunnelData(sb),
		CommandRouterAccess: pb.CommandRouterAccess_builder{Jwt: s.jwt, Url: "https://" + s.lis.Addr().String()}.Build(),
	}.Build(), nil
}

// SandboxCreate is the V1 create (MODAL_SANDBOX_V2=0): the environment
// comes in ephemeral secrets made just before, and the id has V1's shape
// ("sb-" and 22 letters or digits), by which the SDK routes later calls.
func (s *Server) SandboxCreate(ctx context.Context, req *pb.SandboxCreateRequest) (*pb.SandboxCreateResponse, error) {
	var env []string
	s.mu.Lock()
	for _, id := range req.GetDefinition().GetSecretIds() {
		e, ok := s.secrets[id]
		if !ok {
			s.mu.Unlock()
			return nil, status.Errorf(codes.NotFound, "secret %s not found", id)
		}
		env = append(env, e...)
	}
	s.mu.Unlock()
	sb, err := s.create(context.WithoutCancel(ctx), req.GetAppId(), req.GetDefinition(), req.GetTags(), env, "sb-"+ids.New(11))
	if err != nil {
		return nil, err
	}
	return pb.SandboxCreateResponse_builder{SandboxId: sb.id}.Build(), nil
}

// SecretGetOrCreate makes the ephemeral secret of a V1 create's
// environment.
func (s *Server) SecretGetOrCreate(_ context.Context, req *pb.SecretGetOrCreateRequest) (*pb.SecretGetOrCreateResponse, error) {
	if req.GetObjectCreationType() != pb.ObjectCreationType_OBJECT_CREATION_TYPE_EPHEMERAL {
		return nil, status.Error(codes.Unimplemented, "modalfake: only ephemeral secrets")
	}
	id := "st-" + ids.New(11)
	s.mu.Lock()
	s.secrets[id] = envList(req.GetEnvDict())
	s.mu.Unlock()
	return pb.SecretGetOrCreateResponse_builder{SecretId: id}.Build(), nil
}

func envList(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

func (s *Server) create(ctx context.Context, appID string, def *pb.Sandbox, tags []*pb.SandboxTag, env []string, id string) (*sandbox, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "modalfake: closed")
	}
	s.making.Add(1)
	defer s.making.Done()
	tag, ok := s.images[def.GetImageId()]
	if !ok {
		s.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "image %s not found", def.GetImageId())
	}
	name := def.GetName()
	if name != "" {
		for _, o := range s.sandboxes {
			if o.appID == appID && o.name == name && !o.terminated {
				s.mu.Unlock()
				return nil, status.Errorf(codes.AlreadyExists, "a sandbox named %q is already running in this app", name)
			}
		}
	}
	sb := &sandbox{id: id, appID: appID, name: name, def: def, created: time.Now(), tags: map[string]string{}}
	sb.taskID = "ta-" + sb.id
	for _, t := range tags {
		sb.tags[t.GetTagName()] = t.GetTagValue()
	}
	// Held by name from here, so a concurrent create of the same name
	// conflicts.
	s.sandboxes[sb.id] = sb
	s.mu.Unlock()

	if err := s.start(ctx, sb, tag, env); err != nil {
		_ = s.terminate(context.WithoutCancel(ctx), sb)
		return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
	}
	if secs := def.GetTimeoutSecs(); secs > 0 {
		// Modal's hard lifetime.
		s.mu.Lock()
		sb.timer = time.AfterFunc(time.Duration(secs)*time.Second, func() { _ = s.terminate(context.Background(), sb) })
		s.mu.Unlock()
	}
	return sb, nil
}

func (s *Server) start(ctx context.Context, sb *sandbox, tag string, env []string) error {
	def := sb.def
	args := def.GetEntrypointArgs()
	if len(args) == 0 {
		return errors.New("no entrypoint")
	}
	cfg := &container.Config{
		Image: tag, Entrypoint: args[:1], Cmd: args[1:], Env: env,
		Labels: map[string]string{Label: s.instance, Label + ".sandbox": sb.id}, ExposedPorts: network.PortSet{},
	}
	if w := def.GetWorkdir(); w != "" {
		cfg.WorkingDir = w
	}
	hc := &container.HostConfig{PortBindings: network.PortMap{}}
	for _, p := range def.GetOpenPorts().GetPorts() {
		np := network.MustParsePort(strconv.Itoa(int(p.GetPort())) + "/tcp")
		cfg.ExposedPorts[np] = struct{}{}
		hc.PortBindings[np] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
	}
	res, err := s.docker.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: "modalfake-" + sb.id})
	if err != nil {
		return err
	}
	s.mu.Lock()
	sb.container = res.ID
	gone := sb.terminated
	s.mu.Unlock()
	if gone {
		// Terminated while it was being made: its container goes too.
		_, _ = s.docker.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true})
		return errors.New("terminated while starting")
	}
	if _, err := s.docker.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	ins, err := s.docker.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	for _, p := range def.GetOpenPorts().GetPorts() {
		np := network.MustParsePort(strconv.Itoa(int(p.GetPort())) + "/tcp")
		var binds []network.PortBinding
		if ns := ins.Container.NetworkSettings; ns != nil {
			binds = ns.Ports[np]
		}
		if len(binds) == 0 {
			return fmt.Errorf("port %d was not published", p.GetPort())
		}
		backend := net.JoinHostPort("127.0.0.1", binds[0].HostPort)
		t, err := s.openTunnel(int(p.GetPort()), backend, !p.GetUnencrypted())
		if err != nil {
			return err
		}
		s.mu.Lock()
		sb.tunnels = append(sb.tunnels, t)
		s.mu.Unlock()
	}
	return nil
}

// openTunnel listens on 127.0.0.1 and forwards each connection to
// backend, ending TLS first when encrypted.
func (s *Server) openTunnel(containerPort int, backend string, encrypted bool) (*tunnel, error) {
	var lis net.Listener
	var err error
	if encrypted {
		lis, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{s.cert.TLS}, MinVersion: tls.VersionTLS12})
	} else {
		lis, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go forward(c, backend)
		}
	}()
	return &tunnel{containerPort: containerPort, lis: lis}, nil
}

func forward(c net.Conn, backend string) {
	defer c.Close()
	b, err := net.DialTimeout("tcp", backend, 10*time.Second)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

func (s *Server) tunnelData(sb *sandbox) []*pb.TunnelData {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pb.TunnelData
	for _, t := range sb.tunnels {
		port := t.lis.Addr().(*net.TCPAddr).Port
		out = append(out, pb.TunnelData_builder{Host: "127.0.0.1", Port: uint32(port), ContainerPort: uint32(t.containerPort)}.Build())
	}
	return out
}

// terminate ends a sandbox: its container is removed and its tunnels closed.
func (s *Server) terminate(ctx context.Context, sb *sandbox) error {
	s.mu.Lock()
	sb.terminated = true
	tunnels := sb.tunnels
	sb.tunnels = nil
	cid := sb.container
	if sb.timer != nil {
		sb.timer.Stop()
	}
	s.mu.Unlock()
	for _, t := range tunnels {
		t.lis.Close()
	}
	if cid == "" {
		return nil
	}
	_, err := s.docker.ContainerRemove(ctx, cid, client.ContainerRemoveOptions{Force: true})
	if err != nil && strings.Contains(err.Error(), "No such container") {
		err = nil
	}
	return err
}

func (s *Server) lookup(id string) (*sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sandboxes[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "sandbox %s not found", id)
	}
	return sb, nil
}

// result is the sandbox's end, or nil while it runs.
func (s *Server) result(ctx context.Context, sb *sandbox) (*pb.GenericResult, error) {
	s.mu.Lock()
	term, cid := sb.terminated, sb.container
	s.mu.Unlock()
	if term {
		return pb.GenericResult_builder{Status: pb.GenericResult_GENERIC_STATUS_TERMINATED}.Build(), nil
	}
	if cid == "" {
		return nil, nil
	}
	ins, err := s.docker.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
	}
	st := ins.Container.State
	if st == nil || st.Running || st.Status == "created" {
		return nil, nil
	}
	r := pb.GenericResult_builder{Status: pb.GenericResult_GENERIC_STATUS_SUCCESS, Exitcode: int32(st.ExitCode)}
	if st.ExitCode != 0 {
		r.Status = pb.GenericResult_GENERIC_STATUS_FAILURE
		r.Exception = "entrypoint exited with code " + strconv.Itoa(st.ExitCode)
	}
	return r.Build(), nil
}

// SandboxGetTaskIdV2 reports the task, or the result of a finished one.
func (s *Server) SandboxGetTaskIdV2(ctx context.Context, req *pb.SandboxGetTaskIdRequest) (*pb.SandboxGetTaskIdResponse, error) {
	sb, err := s.lookup(req.GetSandboxId())
	if err != nil {
		return nil, err
	}
	r, err := s.result(ctx, sb)
	if err != nil {
		return nil, err
	}
	// A task once assigned keeps its id after it ends (its logs are
	// fetched by it), with the result beside it.
	return pb.SandboxGetTaskIdResponse_builder{TaskId: &sb.taskID, TaskResult: r}.Build(), nil
}

// SandboxWaitV2 waits up to the request's timeout for the sandbox to end.
func (s *Server) SandboxWaitV2(ctx context.Context, req *pb.SandboxWaitRequest) (*pb.SandboxWaitResponse, error) {
	sb, err := s.lookup(req.GetSandboxId())
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Duration(float64(req.GetTimeout()) * float64(time.Second)))
	for {
		r, err := s.result(ctx, sb)
		if err != nil {
			return nil, err
		}
		if r != nil || !time.Now().Before(deadline) {
			md := pb.SandboxHandleMetadata_builder{AppId: sb.appID, Result: r}.Build()
			return pb.SandboxWaitResponse_builder{Result: r, Metadata: md}.Build(), nil
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SandboxTerminateV2 ends the sandbox.
func (s *Server) SandboxTerminateV2(ctx context.Context, req *pb.SandboxTerminateRequest) (*pb.SandboxTerminateResponse, error) {
	sb, err := s.lookup(req.GetSandboxId())
	if err != nil {
		return nil, err
	}
	if err := s.terminate(ctx, sb); err != nil {
		return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
	}
	return pb.SandboxTerminateResponse_builder{}.Build(), nil
}

// SandboxGetTunnelsV2 lists the sandbox's tunnels, waiting up to the
// request's timeout while a starting sandbox has none yet, as Modal does;
// past it the result is a timeout.
func (s *Server) SandboxGetTunnelsV2(ctx context.Context, req *pb.SandboxGetTunnelsRequest) (*pb.SandboxGetTunnelsResponse, error) {
	sb, err := s.lookup(req.GetSandboxId())
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Duration(float64(req.GetTimeout()) * float64(time.Second)))
	for {
		s.mu.Lock()
		ready, term := len(sb.tunnels) > 0, sb.terminated
		s.mu.Unlock()
		if ready || term {
			return pb.SandboxGetTunnelsResponse_builder{Tunnels: s.tunnelData(sb),
				Result: pb.GenericResult_builder{Status: pb.GenericResult_GENERIC_STATUS_SUCCESS}.Build()}.Build(), nil
		}
		if !time.Now().Before(deadline) {
			return pb.SandboxGetTunnelsResponse_builder{
				Result: pb.GenericResult_builder{Status: pb.GenericResult_GENERIC_STATUS_TIMEOUT}.Build()}.Build(), nil
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SandboxGetCommandRouterAccess hands out the command router's address,
// which is this server.
func (s *Server) SandboxGetCommandRouterAccess(_ context.Context, req *pb.SandboxGetCommandRouterAccessRequest) (*pb.SandboxGetCommandRouterAccessResponse, error) {
	if _, err := s.lookup(req.GetSandboxId()); err != nil {
		return nil, err
	}
	return pb.SandboxGetCommandRouterAccessResponse_builder{Jwt: s.jwt, Url: "https://" + s.lis.Addr().String()}.Build(), nil
}

// running reports whether sb counts as running for names and listings:
// neither terminated nor exited.
func (s *Server) running(ctx context.Context, sb *sandbox) bool {
	r, err := s.result(ctx, sb)
	return err == nil && r == nil
}

// SandboxGetFromNameV2 finds the running sandbox of a name in an app.
func (s *Server) SandboxGetFromNameV2(ctx context.Context, req *pb.SandboxGetFromNameRequest) (*pb.SandboxGetFromNameResponse, error) {
	s.mu.Lock()
	appID := s.apps[req.GetAppName()]
	var cands []*sandbox
	for _, sb := range s.sandboxes {
		if sb.appID == appID && appID != "" && sb.name == req.GetSandboxName() {
			cands = append(cands, sb)
		}
	}
	s.mu.Unlock()
	for _, sb := range cands {
		if s.running(ctx, sb) {
			return pb.SandboxGetFromNameResponse_builder{SandboxId: sb.id}.Build(), nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no running sandbox named %q in app %q", req.GetSandboxName(), req.GetAppName())
}

// SandboxListV2 lists running sandboxes of an app with all the given
// tags, newest first, created before BeforeTimestamp when it is set.
func (s *Server) SandboxListV2(ctx context.Context, req *pb.SandboxListRequest) (*pb.SandboxListResponse, error) {
	want := map[string]string{}
	for _, t := range req.GetTags() {
		want[t.GetTagName()] = t.GetTagValue()
	}
	s.mu.Lock()
	var cands []*sandbox
	for _, sb := range s.sandboxes {
		if req.GetAppId() != "" && sb.appID != req.GetAppId() {
			continue
		}
		ok := true
		for k, v := range want {
			if sb.tags[k] != v {
				ok = false
			}
		}
		created := float64(sb.created.UnixNano()) / 1e9
		if b := req.GetBeforeTimestamp(); b != 0 && created >= b {
			ok = false
		}
		if ok {
			cands = append(cands, sb)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(cands, func(a, b *sandbox) int { return b.created.Compare(a.created) })
	var out []*pb.SandboxInfo
	for _, sb := range cands {
		if !req.GetIncludeFinished() && !s.running(ctx, sb) {
			continue
		}
		out = append(out, pb.SandboxInfo_builder{Id: sb.id, AppId: sb.appID, Name: sb.name,
			CreatedAt: float64(sb.created.UnixNano()) / 1e9}.Build())
	}
	return pb.SandboxListResponse_builder{Sandboxes: out}.Build(), nil
}

// SandboxTagsGetV2 returns the sandbox's tags.
func (s *Server) SandboxTagsGetV2(_ context.Context, req *pb.SandboxTagsGetRequest) (*pb.SandboxTagsGetResponse, error) {
	sb, err := s.lookup(req.GetSandboxId())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var tags []*pb.SandboxTag
	for k, v := range sb.tags {
		tags = append(tags, pb.SandboxTag_builder{TagName: k, TagValue: v}.Build())
	}
	return pb.SandboxTagsGetResponse_builder{Tags: tags}.Build(), nil
}

// AppFetchLogs returns the last Limit lines of a sandbox's entrypoint
// output, one log item per line, read from its container.
func (s *Server) AppFetchLogs(ctx context.Context, req *pb.AppFetchLogsRequest) (*pb.AppFetchLogsResponse, error) {
	// The SDK names a sandbox's logs by its task.
	var sb *sandbox
	s.mu.Lock()
	for _, o := range s.sandboxes {
		if o.appID == req.GetAppId() && (o.taskID == req.GetTaskId() || o.id == req.GetSandboxId()) {
			sb = o
		}
	}
	s.mu.Unlock()
	if sb == nil {
		return nil, status.Errorf(codes.NotFound, "no task %q in app %q", req.GetTaskId(), req.GetAppId())
	}
	s.mu.Lock()
	cid := sb.container
	s.mu.Unlock()
	if cid == "" {
		return pb.AppFetchLogsResponse_builder{}.Build(), nil
	}
	rc, err := s.docker.ContainerLogs(ctx, cid, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if n := int(req.GetLimit()); n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	items := make([]*pb.TaskLogs, 0, len(lines))
	now := float64(time.Now().UnixNano()) / 1e9
	for _, l := range lines {
		items = append(items, pb.TaskLogs_builder{Data: l, Timestamp: now, FileDescriptor: pb.FileDescriptor_FILE_DESCRIPTOR_STDOUT}.Build())
	}
	return pb.AppFetchLogsResponse_builder{Batches: []*pb.TaskLogsBatch{
		pb.TaskLogsBatch_builder{TaskId: sb.taskID, SandboxId: sb.id, Items: items}.Build()}}.Build(), nil
}

// SandboxGetFromName is the SDK's second look-up by name (V1 sandboxes),
// made when the V2 one finds nothing. The fake keeps one kind of sandbox,
// so it answers as the V2 look-up does.
func (s *Server) SandboxGetFromName(ctx context.Context, req *pb.SandboxGetFromNameRequest) (*pb.SandboxGetFromNameResponse, error) {
	return s.SandboxGetFromNameV2(ctx, req)
}

// RootsFile writes the system's trusted roots and c into dir/roots.pem,
// for a test's TestMain to name in SSL_CERT_FILE before the first TLS
// handshake (Go reads the roots once per process). sbx's clients then
// check the fake's tunnels as they check Modal's, with no switch of
// their own.
func (c Cert) RootsFile(dir string) (string, error) {
	var roots []byte
	for _, f := range []string{os.Getenv("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"} {
		if b, err := os.ReadFile(f); f != "" && err == nil {
			roots = b
			break
		}
	}
	p := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(p, append(append(roots, '\n'), c.PEM...), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// ProfileFile writes a Modal profile file (the format of ~/.modal.toml)
// whose active profile points at the fake with its token, for
// MODAL_CONFIG_PATH: the SDK is then aimed at the fake the way a user
// aims it at any Modal server.
func (s *Server) ProfileFile(dir string) (string, error) {
	p := filepath.Join(dir, "modal.toml")
	text := fmt.Sprintf("[fake]\nserver_url = %q\ntoken_id = %q\ntoken_secret = %q\nactive = true\n", s.URL, s.TokenID, s.TokenSecret)
	return p, os.WriteFile(p, []byte(text), 0o600)
}

// The V1 calls (MODAL_SANDBOX_V2=0) take the V2 calls' messages; the fake
// keeps one kind of sandbox and answers them alike.

// SandboxGetTaskId is V1's SandboxGetTaskIdV2.
func (s *Server) SandboxGetTaskId(ctx context.Context, req *pb.SandboxGetTaskIdRequest) (*pb.SandboxGetTaskIdResponse, error) {
	return s.SandboxGetTaskIdV2(ctx, req)
}

// SandboxWait is V1's SandboxWaitV2.
func (s *Server) SandboxWait(ctx context.Context, req *pb.SandboxWaitRequest) (*pb.SandboxWaitResponse, error) {
	return s.SandboxWaitV2(ctx, req)
}

// SandboxTerminate is V1's SandboxTerminateV2.
func (s *Server) SandboxTerminate(ctx context.Context, req *pb.SandboxTerminateRequest) (*pb.SandboxTerminateResponse, error) {
	return s.SandboxTerminateV2(ctx, req)
}

// SandboxGetTunnels is V1's SandboxGetTunnelsV2.
func (s *Server) SandboxGetTunnels(ctx context.Context, req *pb.SandboxGetTunnelsRequest) (*pb.SandboxGetTunnelsResponse, error) {
	return s.SandboxGetTunnelsV2(ctx, req)
}

// SandboxList is V1's SandboxListV2.
func (s *Server) SandboxList(ctx context.Context, req *pb.SandboxListRequest) (*pb.SandboxListResponse, error) {
	return s.SandboxListV2(ctx, req)
}

// SandboxTagsGet is V1's SandboxTagsGetV2.
func (s *Server) SandboxTagsGet(ctx context.Context, req *pb.SandboxTagsGetRequest) (*pb.SandboxTagsGetResponse, error) {
	return s.SandboxTagsGetV2(ctx, req)
}

// TaskGetCommandRouterAccess is V1's way to the command router, by task.
func (s *Server) TaskGetCommandRouterAccess(_ context.Context, req *pb.TaskGetCommandRouterAccessRequest) (*pb.TaskGetCommandRouterAccessResponse, error) {
	if _, err := s.router.sandboxOfTask(req.GetTaskId()); err != nil {
		return nil, err
	}
	return pb.TaskGetCommandRouterAccessResponse_builder{Jwt: s.jwt, Url: "https://" + s.lis.Addr().String()}.Build(), nil
}
