package swerex

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/internal/pyrepr"
	"github.com/sbx-dev/sbx/internal/reaper"
)

// maxCommandOutput bounds what execute keeps of each stream.
const maxCommandOutput = 64 << 20

type commandResponse struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode *int   `json:"exit_code"`
}

// command is the Command model.
type command struct {
	str     *string
	list    []string
	timeout *float64
	shell   bool
	check   bool
	errMsg  string
	env     map[string]string
	hasEnv  bool
	cwd     *string
	merge   bool
}

func parseCommand(body []byte) (command, error) {
	o, err := decodeObject(body)
	if err != nil {
		return command{}, err
	}
	var c command
	switch v := o.m["command"].(type) {
	case nil:
		if _, ok := o.m["command"]; ok {
			o.fail("command", "string_type", "Input should be a valid string", nil)
		} else {
			o.missing("command")
		}
	case string:
		c.str = &v
	case []any:
		c.list = o.strList("command")
	default:
		// str | list[str]: pydantic reports each member of the union.
		o.errs = append(o.errs,
			fieldError{Type: "string_type", Loc: []any{"body", "command", "str"}, Msg: "Input should be a valid string", Input: sanitize(v)},
			fieldError{Type: "list_type", Loc: []any{"body", "command", "list[str]"}, Msg: "Input should be a valid list", Input: sanitize(v)})
	}
	c.timeout = o.optFloat("timeout")
	c.shell = o.bool("shell", false)
	c.check = o.bool("check", false)
	c.errMsg = o.str("error_msg", "", false)
	if v, ok := o.m["env"]; ok && v != nil {
		m, isMap := v.(map[string]any)
		if !isMap {
			o.fail("env", "dict_type", "Input should be a valid dictionary", v)
		}
		c.env, c.hasEnv = make(map[string]string, len(m)), true
		for k, val := range m {
			s, isStr := val.(string)
			if !isStr {
				o.errs = append(o.errs, fieldError{Type: "string_type", Loc: []any{"body", "env", k}, Msg: "Input should be a valid string", Input: sanitize(val)})
			}
			c.env[k] = s
		}
	}
	c.cwd = o.optStr("cwd")
	c.merge = o.bool("merge_output_streams", false)
	return c, o.err()
}

// repr is repr(command.command): a str or a list of str.
func (c command) repr() string {
	if c.str != nil {
		return pyrepr.Str(*c.str)
	}
	parts := make([]string, len(c.list))
	for i, a := range c.list {
		parts[i] = pyrepr.Str(a)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// argv is what subprocess.run would execute.
func (c command) argv() []string {
	switch {
	case c.shell && c.str != nil:
		return []string{"/bin/sh", "-c", *c.str}
	case c.shell:
		return append([]string{"/bin/sh", "-c"}, c.list...)
	case c.str != nil:
		// Without a shell a string is the program's name, not a command
		// line.
		return []string{*c.str}
	}
	return c.list
}

func (s *Server) execute(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	c, err := parseCommand(body)
	if err != nil {
		return nil, err
	}
	argv := c.argv()
	if len(argv) == 0 {
		return nil, exc("builtins.IndexError", "list index out of range")
	}
	env := s.env()
	if c.hasEnv {
		env = make([]string, 0, len(c.env))
		for k, v := range c.env {
			env = append(env, k+"="+v)
		}
	}
	dir := s.cfg.Dir
	if c.cwd != nil {
		dir = s.abs(*c.cwd)
		if fi, err := os.Stat(dir); err != nil {
			return nil, osError(err, *c.cwd)
		} else if !fi.IsDir() {
			return nil, osError(syscall.ENOTDIR, *c.cwd)
		}
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := lookPathIn(path, env)
		if err != nil {
			return nil, osError(syscall.ENOENT, path)
		}
		path = p
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env, cmd.Dir = env, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cfg.Credential}
	stdout, stderr, code, err := s.runCommand(ctx, cmd, c.merge, c.timeout)
	if err != nil {
		var timedOut *timeoutError
		if errors.As(err, &timedOut) {
			return nil, exc("swerex.exceptions.CommandTimeoutError", "Timeout ("+pyrepr.Float(*c.timeout)+"s) exceeded while running command")
		}
		var ee *os.PathError
		if errors.As(err, &ee) {
			return nil, osError(ee.Err, argv[0])
		}
		return nil, err
	}
	r := commandResponse{Stdout: stdout, Stderr: stderr, ExitCode: &code}
	if c.check && code != 0 {
		msg := "Command " + c.repr() + " failed with exit code " + strconv.Itoa(code) + ". Stdout:\n" +
			pyrepr.Str(stdout) + "\nStderr:\n" + pyrepr.Str(stderr)
		if c.errMsg != "" {
			msg = c.errMsg + ": " + msg
		}
		return nil, exc("swerex.exceptions.NonZeroExitCodeError", msg)
	}
	return r, nil
}

type timeoutError struct{}

func (*timeoutError) Error() string { return "timed out" }

// runCommand runs cmd with standard input from /dev/null, through the
// reaper when there is one, and kills its whole process group on timeout
// (upstream kills only the child, and then waits on pipes its
// grandchildren may hold open forever).
func (s *Server) runCommand(ctx context.Context, cmd *exec.Cmd, merge bool, timeout *float64) (string, string, int, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return "", "", 0, err
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return "", "", 0, err
	}
	defer outR.Close()
	errR, errW := outR, outW
	if !merge {
		if errR, errW, err = os.Pipe(); err != nil {
			outW.Close()
			return "", "", 0, err
		}
		defer errR.Close()
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, outW, errW
	exited, err := s.start(cmd)
	outW.Close()
	if !merge {
		errW.Close()
	}
	if err != nil {
		return "", "", 0, err
	}
	outc := readStream(outR)
	errc := make(chan []byte, 1)
	if merge {
		errc <- nil
	} else {
		errc = readStream(errR)
	}
	var timer <-chan time.Time
	if timeout != nil {
		t := time.NewTimer(time.Duration(max(0, *timeout) * float64(time.Second)))
		defer t.Stop()
		timer = t.C
	}
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		outR.SetReadDeadline(time.Now().Add(time.Second))
		if !merge {
			errR.SetReadDeadline(time.Now().Add(time.Second))
		}
		<-outc
		<-errc
	}
	select {
	case st := <-exited:
		code := st.ExitCode
		if st.Signaled {
			// Python reports death by signal N as -N.
			code = -(st.ExitCode - 128)
		}
		// The child is gone; a grandchild holding the pipes open must not
		// hold the reply.
		go func() {
			time.Sleep(2 * time.Second)
			outR.SetReadDeadline(time.Now())
			errR.SetReadDeadline(time.Now())
		}()
		return decodeBytes(<-outc), decodeBytes(<-errc), code, nil
	case <-timer:
		kill()
		return "", "", 0, &timeoutError{}
	case <-ctx.Done():
		kill()
		return "", "", 0, ctx.Err()
	}
}

// start starts cmd through the reaper (sandboxd is PID 1 and a process can
// be waited for once) or, without one, with a goroutine waiting.
func (s *Server) start(cmd *exec.Cmd) (<-chan reaper.Status, error) {
	if s.cfg.Starter != nil {
		return s.cfg.Starter.Start(cmd)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := make(chan reaper.Status, 1)
	go func() {
		err := cmd.Wait()
		st := reaper.Status{Pid: cmd.Process.Pid}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ws := ee.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				st.Signaled, st.ExitCode = true, 128+int(ws.Signal())
			} else {
				st.ExitCode = ws.ExitStatus()
			}
		}
		c <- st
	}()
	return c, nil
}

func readStream(r io.Reader) chan []byte {
	c := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, maxCommandOutput))
		io.Copy(io.Discard, r)
		c <- b
	}()
	return c
}

func lookPathIn(name string, env []string) (string, error) {
	path, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true
		}
	}
	if !found {
		// Python's os.defpath.
		path = "/bin:/usr/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}
