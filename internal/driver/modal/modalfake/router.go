package modalfake

import (
	"context"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	pb "github.com/modal-labs/modal-client/go/proto/modal_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// routerServer is the fake's task command router: execs in a sandbox,
// each a Docker exec whose stdin and output go through these calls.
type routerServer struct {
	pb.UnimplementedTaskCommandRouterServer
	s *Server
}

// execProc is one exec: its stdin connection and what it printed.
type execProc struct {
	dockerID string
	conn     client.HijackedResponse

	mu       sync.Mutex
	written  uint64
	stdinEOF bool
	out      [2][]byte // stdout, stderr
	done     bool      // output ended
	changed  chan struct{}
}

// appender is one of an exec's output streams.
type appender struct {
	p  *execProc
	fd int
}

func (a appender) Write(b []byte) (int, error) {
	a.p.mu.Lock()
	a.p.out[a.fd] = append(a.p.out[a.fd], b...)
	a.p.notifyLocked()
	a.p.mu.Unlock()
	return len(b), nil
}

func (p *execProc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (r *routerServer) sandboxOfTask(taskID string) (*sandbox, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for _, sb := range r.s.sandboxes {
		if sb.taskID == taskID && !sb.terminated && sb.container != "" {
			return sb, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "task %s not found", taskID)
}

func (r *routerServer) exec(taskID, execID string) (*execProc, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p, ok := r.s.execs[taskID+"/"+execID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "exec %s not found", execID)
	}
	return p, nil
}

// TaskExecStart starts the command with stdin open, as Modal does.
func (r *routerServer) TaskExecStart(ctx context.Context, req *pb.TaskExecStartRequest) (*pb.TaskExecStartResponse, error) {
	sb, err := r.sandboxOfTask(req.GetTaskId())
	if err != nil {
		return nil, err
	}
	var env []string
	for _, src := range req.GetSecretSources() {
		for k, v := range src.GetEnv().GetContents() {
			env = append(env, k+"="+v)
		}
	}
	cr, err := r.s.docker.ExecCreate(ctx, sb.container, client.ExecCreateOptions{
		AttachStdin: true, AttachStdout: true, AttachStderr: true, Cmd: req.GetCommandArgs(), Env: env, WorkingDir: req.GetWorkdir()})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
	}
	// The attach outlives this call: it is the exec's own connection.
	att, err := r.s.docker.ExecAttach(context.WithoutCancel(ctx), cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
	}
	p := &execProc{dockerID: cr.ID, conn: att.HijackedResponse, changed: make(chan struct{})}
	r.s.mu.Lock()
	r.s.execs[req.GetTaskId()+"/"+req.GetExecId()] = p
	r.s.mu.Unlock()
	go func() {
		_, _ = stdcopy.StdCopy(appender{p, 0}, appender{p, 1}, att.Reader)
		att.Close()
		p.mu.Lock()
		p.done = true
		p.notifyLocked()
		p.mu.Unlock()
	}()
	return pb.TaskExecStartResponse_builder{}.Build(), nil
}

// TaskExecStdinWrite writes at an offset; a retried write of bytes
// already written is accepted and skipped, as the SDK expects.
func (r *routerServer) TaskExecStdinWrite(_ context.Context, req *pb.TaskExecStdinWriteRequest) (*pb.TaskExecStdinWriteResponse, error) {
	p, err := r.exec(req.GetTaskId(), req.GetExecId())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdinEOF {
		return nil, status.Error(codes.FailedPrecondition, "stdin is closed")
	}
	off, data := req.GetOffset(), req.GetData()
	if off > p.written {
		return nil, status.Errorf(codes.InvalidArgument, "stdin offset %d is past %d written", off, p.written)
	}
	skip := p.written - off
	if skip < uint64(len(data)) {
		n, err := p.conn.Conn.Write(data[skip:])
		p.written += uint64(n)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "modalfake: stdin: %v", err)
		}
	}
	if req.GetEof() {
		p.stdinEOF = true
		if cw, ok := p.conn.Conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	return pb.TaskExecStdinWriteResponse_builder{}.Build(), nil
}

// TaskExecStdioRead streams one output from an offset until it ends.
func (r *routerServer) TaskExecStdioRead(req *pb.TaskExecStdioReadRequest, stream grpc.ServerStreamingServer[pb.TaskExecStdioReadResponse]) error {
	p, err := r.exec(req.GetTaskId(), req.GetExecId())
	if err != nil {
		return err
	}
	fd := 0
	if req.GetFileDescriptor() == pb.TaskExecStdioFileDescriptor_TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDERR {
		fd = 1
	}
	off := req.GetOffset()
	for {
		p.mu.Lock()
		buf, done, changed := p.out[fd], p.done, p.changed
		var chunk []byte
		if off < uint64(len(buf)) {
			chunk = append([]byte(nil), buf[off:]...)
		}
		p.mu.Unlock()
		if len(chunk) > 0 {
			if err := stream.Send(pb.TaskExecStdioReadResponse_builder{Data: chunk}.Build()); err != nil {
				return err
			}
			off += uint64(len(chunk))
			continue
		}
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		}
	}
}

// TaskExecWait waits for the exec's output to end, then for its exit code.
func (r *routerServer) TaskExecWait(ctx context.Context, req *pb.TaskExecWaitRequest) (*pb.TaskExecWaitResponse, error) {
	p, err := r.exec(req.GetTaskId(), req.GetExecId())
	if err != nil {
		return nil, err
	}
	for {
		p.mu.Lock()
		done, changed := p.done, p.changed
		p.mu.Unlock()
		if done {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	// The engine may report the exec running for a moment after its
	// output closed.
	for {
		ins, err := r.s.docker.ExecInspect(ctx, p.dockerID, client.ExecInspectOptions{})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "modalfake: %v", err)
		}
		if !ins.Running {
			code := int32(ins.ExitCode)
			return pb.TaskExecWaitResponse_builder{Code: &code}.Build(), nil
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}
