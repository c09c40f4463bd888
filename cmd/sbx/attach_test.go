package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

func TestExecTTYNeedsATerminal(t *testing.T) {
	t.Parallel()
	r := sbxIn(t, baseEnv(), strings.NewReader("x"), "exec", "-it", "some-id", "--", "true")
	if r.code != exitFailure || !strings.Contains(r.stderr, "the input device is not a TTY") {
		t.Fatalf("exec -it from a pipe: %s", r)
	}
	r = sbxIn(t, baseEnv(), nil, "exec", "-i", "some-id", "--", "true")
	if r.code != exitUsage || !strings.Contains(r.stderr, "-i needs -t") {
		t.Fatalf("exec -i alone: %s", r)
	}
}

func TestDetachKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, out  string
		detached bool
	}{
		{"abc", "abc", false},
		{"a\x10b", "a\x10b", false},
		{"ab\x10\x11cd", "ab", true},
		{"\x10\x10\x11", "\x10", true},
	} {
		d := &detachKeys{r: &oneByte{s: tc.in}}
		got, err := io.ReadAll(d)
		if string(got) != tc.out || errors.Is(err, errDetached) != tc.detached {
			t.Errorf("%q: got %q, %v; want %q, detached %v", tc.in, got, err, tc.out, tc.detached)
		}
	}
}

// oneByte reads one byte at a time, so a Ctrl-P is held across reads.
type oneByte struct{ s string }

func (o *oneByte) Read(p []byte) (int, error) {
	if o.s == "" {
		return 0, io.EOF
	}
	p[0] = o.s[0]
	o.s = o.s[1:]
	return 1, nil
}

// ptyRun runs the sbx binary on a new PTY, feeds it keys once it printed
// each wait string, and returns what it printed and its exit code, and
// whether the PTY was back in cooked mode after it exited.
type ptyRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startPTY(t *testing.T, bin string, e env, args ...string) *ptyRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(e, "TERM=xterm")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 90})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyRun{t: t, cmd: cmd, ptmx: ptmx, done: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		ptmx.Close()
	})
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *ptyRun) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *ptyRun) waitText(s string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.String(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %q; output:\n%q", s, p.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait returns the exit code and whether the terminal was restored.
func (p *ptyRun) wait() (int, bool) {
	p.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("sbx did not exit; output:\n%q", p.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatal(err)
	}
	tio, terr := unix.IoctlGetTermios(int(p.ptmx.Fd()), unix.TCGETS)
	cooked := terr == nil && tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
	return code, cooked
}

// TestExecTTYAndAttach runs the sbx binary on a real PTY, as a user's
// terminal: exec -it gets a terminal in the sandbox, with the local
// window size, and the remote exit status; attach gives a login shell
// that is typed into; the local terminal is restored after each.
func TestExecTTYAndAttach(t *testing.T) {
	needDocker(t)
	t.Parallel()
	e := baseEnv()
	bin := filepath.Join(t.TempDir(), "sbx")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build sbx: %v\n%s", err, out)
	}
	id := sandboxName(t, e)
	mustSbx(t, e, "run", "-d", "--name", id)

	p := startPTY(t, bin, e, "exec", "-it", id, "--", "tty; stty size; exit 7")
	code, cooked := p.wait()
	if code != 7 || !strings.Contains(p.String(), "/dev/pts/") || !strings.Contains(p.String(), "30 90") {
		t.Errorf("exec -it: exit %d, output %q; want 7, a /dev/pts/ path and the size 30 90", code, p.String())
	}
	if !cooked {
		t.Error("exec -it left the terminal in raw mode")
	}

	p = startPTY(t, bin, e, "attach", id)
	// Typed ahead of the prompt, as a quick typist would; the quotes make
	// what the shell prints differ from what was typed.
	if _, err := p.ptmx.WriteString("echo at-$((6*7))-'x'\r"); err != nil {
		t.Fatal(err)
	}
	p.waitText("at-42-x")
	if _, err := p.ptmx.WriteString("exit 4\r"); err != nil {
		t.Fatal(err)
	}
	code, cooked = p.wait()
	if code != 4 {
		t.Errorf("attach: exit %d, want 4; output %q", code, p.String())
	}
	if !cooked {
		t.Error("attach left the terminal in raw mode")
	}

	// Ctrl-P Ctrl-Q detaches, with status 0.
	p = startPTY(t, bin, e, "attach", id)
	if _, err := p.ptmx.WriteString("echo up-$((1+1))\r"); err != nil {
		t.Fatal(err)
	}
	p.waitText("up-2")
	if _, err := p.ptmx.Write([]byte{0x10, 0x11}); err != nil {
		t.Fatal(err)
	}
	if code, cooked := p.wait(); code != 0 || !cooked || !strings.Contains(p.String(), "sbx: detached") {
		t.Errorf("detach keys: exit %d, cooked %v, output %q", code, cooked, p.String())
	}

	// A local window change (SIGWINCH) reaches the remote terminal.
	p = startPTY(t, bin, e, "exec", "-it", id, "--", "stty size; read x; stty size")
	p.waitText("30 90")
	if err := pty.Setsize(p.ptmx, &pty.Winsize{Rows: 50, Cols: 140}); err != nil {
		t.Fatal(err)
	}
	// The resize travels as a message of its own; the key after it must
	// not overtake it, so give the signal a moment.
	time.Sleep(200 * time.Millisecond)
	if _, err := p.ptmx.WriteString("\r"); err != nil {
		t.Fatal(err)
	}
	p.waitText("50 140")
	if code, _ := p.wait(); code != 0 {
		t.Errorf("exec -it stty: exit %d; output %q", code, p.String())
	}

	// SIGTERM ends sbx, restores the terminal, and ends the remote program.
	p = startPTY(t, bin, e, "exec", "-it", id, "--", "echo ready; sleep 600")
	p.waitText("ready")
	if err := p.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, cooked = p.wait()
	if code != 128+int(unix.SIGTERM) || !cooked {
		t.Errorf("exec -it after SIGTERM: exit %d, cooked %v; want %d and a restored terminal", code, cooked, 128+int(unix.SIGTERM))
	}
	// sandboxd ends it once it sees the connection go: soon, not at once.
	for i := 0; ; i++ {
		r := mustSbx(t, e, "exec", id, "--", "pgrep -c -f 'sleep 600' || true")
		if strings.TrimSpace(r.stdout) == "0" {
			break
		}
		if i == 50 {
			t.Fatalf("the program of a terminal whose sbx was terminated still runs: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Watching the agent's shell: a command run there is seen; Ctrl-C
	// detaches with status 0 and the shell goes on.
	p = startPTY(t, bin, e, "attach", "--session", "default", id)
	// Output is sent from the moment of attach, which the test cannot
	// see: it runs commands until one shows.
	for i := 0; !strings.Contains(p.String(), "seen-42"); i++ {
		if i == 100 {
			t.Fatalf("the watcher never saw the agent's command: %q", p.String())
		}
		mustSbx(t, e, "exec", id, "--", "echo seen-$((40+2))")
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := p.ptmx.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	if code, cooked = p.wait(); code != 0 || !cooked {
		t.Errorf("detach from the default session: exit %d, cooked %v; output %q", code, cooked, p.String())
	}
	if r := mustSbx(t, e, "exec", id, "--", "echo after"); r.stdout != "after\n" {
		t.Errorf("the shell after a watcher left: %s", r)
	}
}

func TestAttachUsage(t *testing.T) {
	t.Parallel()
	e := baseEnv()
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{[]string{"exec", "-t", "--timeout", "1s", "id", "true"}, 2, "", "--timeout is for commands run without -t"},
		{[]string{"attach"}, 2, "", "want one sandbox id"},
		{[]string{"attach", "a", "b"}, 2, "", "want one sandbox id"},
		{[]string{"attach", "-h"}, 0, "--session", ""},
		{[]string{"exec", "-h"}, 0, "--tty", ""},
		{[]string{"help"}, 0, "attach", ""},
	} {
		r := sbxCmd(t, e, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.out) || !strings.Contains(r.stderr, tc.err) {
			t.Errorf("sbx %q: want exit %d, stdout with %q, stderr with %q; got %s", tc.args, tc.code, tc.out, tc.err, r)
		}
	}
}
