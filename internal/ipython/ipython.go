// Package ipython runs the agent's IPython cells (spec §4.4) in a
// persistent Python process, without Jupyter: a small driver (driver.py,
// embedded) executes each cell in one namespace, shows the value of a
// trailing expression, understands the common IPython syntax (!cmd,
// %pip, %cd, %%bash) and formats errors like IPython's plain-colour
// tracebacks. Requests and answers travel on their own pipes, so the
// cell's standard streams are its own.
package ipython

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/reaper"
)

//go:embed driver.py
var driver string

// Starter starts a child and reports its exit (the reaper in sandboxd).
type Starter interface {
	Start(cmd *exec.Cmd) (<-chan reaper.Status, error)
}

// Config says how to start the kernel.
type Config struct {
	Python     string // interpreter; "" finds python3 then python in Env's PATH
	Env        []string
	Dir        string
	Credential *syscall.Credential
	Starter    Starter
	Logger     *slog.Logger
}

// Result is one cell's output.
type Result struct {
	Text        string
	Images      []string
	Interpreter string
	TimedOut    bool
}

// Kernel is a lazily started Python process. Run calls are serialised.
type Kernel struct {
	cfg Config

	mu      sync.Mutex
	cmd     *exec.Cmd
	req     *os.File
	resp    *bufio.Reader
	respF   *os.File
	exited  <-chan reaper.Status
	exe     string
	nextID  int
	lastCwd string
}

// New returns a kernel that starts on its first Run.
func New(cfg Config) *Kernel {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Kernel{cfg: cfg}
}

// ErrNoPython is returned when no interpreter can be found.
var ErrNoPython = errors.New("no python3 or python in the sandbox's PATH: IPython cells need a Python interpreter")

func (k *Kernel) python() (string, error) {
	if k.cfg.Python != "" {
		return k.cfg.Python, nil
	}
	path := ""
	for _, kv := range k.cfg.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, name := range []string{"python3", "python"} {
		for _, dir := range strings.Split(path, ":") {
			if dir == "" {
				continue
			}
			p := dir + "/" + name
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", ErrNoPython
}

func (k *Kernel) start(ctx context.Context) error {
	py, err := k.python()
	if err != nil {
		return err
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return err
	}
	cmd := exec.Command(py, "-u", "-c", driver)
	cmd.Env = k.cfg.Env
	cmd.Dir = k.cfg.Dir
	cmd.ExtraFiles = []*os.File{reqR, respW} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: k.cfg.Credential}
	exited, err := k.cfg.Starter.Start(cmd)
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		return fmt.Errorf("start %s: %w", py, err)
	}
	k.cmd, k.req, k.respF, k.resp, k.exited = cmd, reqW, respR, bufio.NewReaderSize(respR, 64<<10), exited
	hello, err := k.read(ctx, 0, 30*time.Second)
	if err != nil {
		k.stop()
		return fmt.Errorf("python kernel did not start: %w", err)
	}
	k.exe = hello.Executable
	return nil
}

type answer struct {
	ID         int      `json:"id"`
	Outputs    []string `json:"outputs"`
	Images     []string `json:"images"`
	Executable string   `json:"executable"`
}

var errTimeout = errors.New("timed out")

// read waits for the answer with the given id, skipping older ones (the
// answers of interrupted cells).
func (k *Kernel) read(ctx context.Context, id int, timeout time.Duration) (answer, error) {
	if timeout > 0 {
		_ = k.respF.SetReadDeadline(time.Now().Add(timeout))
	} else {
		_ = k.respF.SetReadDeadline(time.Time{})
	}
	for {
		line, err := k.resp.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return answer{}, errTimeout
			}
			return answer{}, fmt.Errorf("python kernel exited: %w", err)
		}
		var a answer
		if json.Unmarshal(line, &a) == nil && a.ID == id {
			return a, nil
		}
		if ctx.Err() != nil {
			return answer{}, ctx.Err()
		}
	}
}

func (k *Kernel) stop() {
	if k.cmd == nil {
		return
	}
	_ = unix.Kill(-k.cmd.Process.Pid, unix.SIGKILL)
	k.req.Close()
	k.respF.Close()
	<-k.exited
	k.cmd = nil
}

// Close ends the kernel.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stop()
	return nil
}

// Run executes one cell in cwd (the shell's directory, which the kernel
// follows as OpenHands' does). timeout 0 waits as long as the cell runs.
func (k *Kernel) Run(ctx context.Context, code, cwd string, timeout float64) (Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		select {
		case <-k.exited:
			k.stop() // it died (os._exit, a crash): start a fresh one
		default:
		}
	}
	if k.cmd == nil {
		if err := k.start(ctx); err != nil {
			return Result{}, err
		}
		k.lastCwd = ""
	}
	k.nextID++
	id := k.nextID
	req := map[string]any{"id": id, "code": code}
	if cwd != k.lastCwd {
		req["cwd"] = cwd
		k.lastCwd = cwd
	}
	b, _ := json.Marshal(req)
	if _, err := k.req.Write(append(b, '\n')); err != nil {
		k.stop()
		return Result{}, fmt.Errorf("python kernel exited: %w", err)
	}
	var d time.Duration
	if timeout > 0 && timeout < 1e9 {
		d = time.Duration(timeout * float64(time.Second))
	}
	a, err := k.read(ctx, id, d)
	if errors.Is(err, errTimeout) {
		// Interrupt the cell as Jupyter does; its answer is skipped later.
		_ = unix.Kill(k.cmd.Process.Pid, unix.SIGINT)
		return Result{Text: fmt.Sprintf("[Execution timed out (%s seconds).]", formatTimeout(timeout)), Interpreter: k.exe, TimedOut: true}, nil
	}
	if err != nil {
		k.stop()
		return Result{}, err
	}
	text := strings.Join(a.Outputs, "")
	if len(a.Outputs) == 0 {
		text = "[Code executed successfully with no output]"
	}
	return Result{Text: text, Images: a.Images, Interpreter: k.exe}, nil
}

// formatTimeout prints the timeout as OpenHands does: as given, so an
// integral float keeps its ".0".
func formatTimeout(t float64) string {
	s := fmt.Sprintf("%g", t)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
