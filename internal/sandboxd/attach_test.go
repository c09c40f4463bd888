package sandboxd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/term"
	"github.com/sbx-dev/sbx/sandboxapi"
	"github.com/sbx-dev/sbx/sandboxapi/attach"
)

// screen collects what an attached terminal prints, for a test to wait
// on; notices are kept too.
type screen struct {
	mu      sync.Mutex
	out     bytes.Buffer
	notices []sandboxapi.Control
	grew    chan struct{}
	eof     chan struct{}
}

func newScreen() *screen {
	return &screen{grew: make(chan struct{}, 1), eof: make(chan struct{})}
}

func (sc *screen) notice(c sandboxapi.Control) {
	sc.mu.Lock()
	sc.notices = append(sc.notices, c)
	sc.mu.Unlock()
	sc.poke()
}

func (sc *screen) poke() {
	select {
	case sc.grew <- struct{}{}:
	default:
	}
}

func (sc *screen) copyFrom(r io.Reader) {
	defer close(sc.eof)
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		sc.mu.Lock()
		sc.out.Write(buf[:n])
		sc.mu.Unlock()
		sc.poke()
		if err != nil {
			return
		}
	}
}

func (sc *screen) String() string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.out.String()
}

// waitFor waits until cond holds of the output so far.
func (sc *screen) waitFor(t *testing.T, what string, cond func(out string, notices []sandboxapi.Control) bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		sc.mu.Lock()
		ok := cond(sc.out.String(), sc.notices)
		sc.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-sc.grew:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; output so far:\n%q", what, sc.String())
		}
	}
}

func (sc *screen) waitText(t *testing.T, text string) {
	t.Helper()
	sc.waitFor(t, strconv.Quote(text), func(out string, _ []sandboxapi.Control) bool { return strings.Contains(out, text) })
}

func dialTerm(t *testing.T, s *testServer, key string, o attach.Options) (*attach.Conn, *screen) {
	t.Helper()
	sc := newScreen()
	o.OnNotice = sc.notice
	c, err := attach.Dial(t.Context(), s.ts.URL, key, o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	go sc.copyFrom(c)
	return c, sc
}

func send(t *testing.T, c *attach.Conn, keys string) {
	t.Helper()
	if _, err := c.Write([]byte(keys)); err != nil {
		t.Fatalf("send %q: %v", keys, err)
	}
}

func waitExit(t *testing.T, c *attach.Conn) int {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the program did not exit")
	}
	code, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return code
}

func TestAttachExitCode(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "k")
	c, sc := dialTerm(t, s, "k", attach.Options{Script: "echo before-exit; exit 3"})
	if code := waitExit(t, c); code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	<-sc.eof
	if !strings.Contains(sc.String(), "before-exit") {
		t.Errorf("output %q lacks what the program printed before exiting", sc.String())
	}
}

func TestAttachLoginShellEchoes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	c, sc := dialTerm(t, s, "", attach.Options{Rows: 24, Cols: 80})
	// The quotes make what the shell prints differ from what was typed,
	// so both the echo and the output are seen.
	send(t, c, "echo at-$((6*7))-'x'\r")
	sc.waitText(t, "echo at-$((6*7))-'x'")
	sc.waitText(t, "at-42-x")
	send(t, c, "stty size; tty\r")
	sc.waitText(t, "24 80")
	sc.waitText(t, "/dev/pts/")
	send(t, c, "exit 0\r")
	if code := waitExit(t, c); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

// TestAttachFullScreen drives vim: keys, a resize it sees, and a file
// written through it.
func TestAttachFullScreen(t *testing.T) {
	t.Parallel()
	vim, err := exec.LookPath("vim")
	if err != nil {
		vim, err = exec.LookPath("vi")
	}
	if err != nil {
		t.Skip("no vi or vim here")
	}
	s := newTestServer(t, "")
	file := filepath.Join(s.work, "note.txt")
	c, sc := dialTerm(t, s, "", attach.Options{Command: []string{vim, "-u", "NONE", "-N", "-n", "-i", "NONE", file}, Rows: 24, Cols: 80})
	// The window size reaches vim: its status line shows the file name.
	sc.waitText(t, "note.txt")
	if err := c.Resize(30, 100); err != nil {
		t.Fatal(err)
	}
	// vim handles SIGWINCH between keys; asking it for its size after the
	// resize shows what it saw.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		mark := "sz" + strconv.Itoa(i)
		send(t, c, ":echo '"+mark+"' &lines &columns\r")
		sc.waitText(t, mark)
		sc.waitFor(t, mark+" size", func(out string, _ []sandboxapi.Control) bool {
			return regexp.MustCompile(mark + ` \d+ \d+`).MatchString(out)
		})
		if strings.Contains(sc.String(), mark+" 30 100") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vim never saw the 30x100 resize: %q", sc.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	send(t, c, "ihello from vim\x1b:wq\r")
	if code := waitExit(t, c); code != 0 {
		t.Errorf("vim exit code = %d, want 0", code)
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != "hello from vim\n" {
		t.Errorf("file = %q, %v; want what was typed in vim", b, err)
	}
}

func TestAttachCloseEndsProgram(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	c, sc := dialTerm(t, s, "", attach.Options{Script: "echo PID=$$.; sleep 1000 & sleep 1000; wait"})
	sc.waitFor(t, "the pid", func(out string, _ []sandboxapi.Control) bool { return strings.Contains(out, ".") })
	m := regexp.MustCompile(`PID=(\d+)\.`).FindStringSubmatch(sc.String())
	if m == nil {
		t.Fatalf("no pid in %q", sc.String())
	}
	sid, _ := strconv.Atoi(m[1])
	deadline := time.Now().Add(10 * time.Second)
	for len(term.SessionPids(sid)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the shell and its two sleeps are not all running: %v", term.SessionPids(sid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	deadline = time.Now().Add(5 * time.Second)
	for len(term.SessionPids(sid)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the closed terminal still run: %v", term.SessionPids(sid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAttachSessionDetachLeavesItRunning(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	if st, body := s.post(t, sandboxapi.PathSessions, `{"name":"w"}`, nil); st != http.StatusCreated {
		t.Fatalf("create session: %d %s", st, body)
	}
	c, sc := dialTerm(t, s, "", attach.Options{Session: "w"})
	// What a run prints is seen by the watcher.
	if st, body := s.post(t, sandboxapi.PathSessions+"/w/run", `{"command":"echo watched-$((6*7))"}`, nil); st != http.StatusOK || !strings.Contains(body, "watched-42") {
		t.Fatalf("run: %d %s", st, body)
	}
	sc.waitText(t, "watched-42")
	// A named session takes keys, but keeps its size.
	if err := c.Resize(10, 10); err != nil {
		t.Fatal(err)
	}
	sc.waitFor(t, "the resize refused", func(_ string, ns []sandboxapi.Control) bool {
		return len(ns) > 0 && ns[0].Type == sandboxapi.ControlError && strings.Contains(ns[0].Detail, "resize refused")
	})
	c.Close()
	<-c.Done()
	st, body := s.post(t, sandboxapi.PathSessions+"/w/run", `{"command":"echo still-$((2+3))"}`, nil)
	if st != http.StatusOK || !strings.Contains(body, "still-5") {
		t.Fatalf("run after detach: %d %s", st, body)
	}
}

func TestAttachDefaultSessionIsWatchOnly(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	c, sc := dialTerm(t, s, "", attach.Options{Session: DefaultSession})
	send(t, c, "echo typed-by-watcher\r")
	sc.waitFor(t, "input refused", func(_ string, ns []sandboxapi.Control) bool {
		return len(ns) > 0 && strings.Contains(ns[0].Detail, "input ignored")
	})
	if err := c.Resize(10, 10); err != nil {
		t.Fatal(err)
	}
	sc.waitFor(t, "resize refused", func(_ string, ns []sandboxapi.Control) bool {
		return len(ns) > 1 && strings.Contains(ns[1].Detail, "resize refused")
	})
	obs, err := s.c.Execute(t.Context(), sandboxapi.NewRunAction("echo agent-$((1+1)); stty size", 10))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(obs.Content, "typed-by-watcher") || !strings.Contains(obs.Content, "agent-2") || strings.Contains(obs.Content, "10 10") {
		t.Errorf("the agent's command saw the watcher: %q", obs.Content)
	}
	sc.waitText(t, "agent-2")
}

func TestAttachErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "k")
	for _, tc := range []struct {
		name   string
		key    string
		o      attach.Options
		status int
	}{
		{"no key", "", attach.Options{}, http.StatusForbidden},
		{"no such session", "k", attach.Options{Session: "nope"}, http.StatusNotFound},
		{"bad cwd", "k", attach.Options{Cwd: "/no/such/dir"}, http.StatusNotFound},
		{"relative cwd", "k", attach.Options{Cwd: "rel"}, http.StatusBadRequest},
		{"bad term", "k", attach.Options{Term: "x;y"}, http.StatusBadRequest},
	} {
		_, err := attach.Dial(t.Context(), s.ts.URL, tc.key, tc.o)
		var he *sandboxapi.HTTPError
		if !errors.As(err, &he) || he.Status != tc.status {
			t.Errorf("%s: err = %v, want HTTP %d", tc.name, err, tc.status)
		}
	}
	// A bad size is refused before any program starts.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.ts.URL+sandboxapi.PathAttach+"?rows=0&cols=80", nil)
	req.Header.Set(sandboxapi.HeaderSessionAPIKey, "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("rows=0: %d, want 400", resp.StatusCode)
	}
}

// TestAttachServerCloseEndsTerminals: shutdown ends attached terminals,
// whose clients are told the exit.
func TestAttachServerCloseEndsTerminals(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	c, sc := dialTerm(t, s, "", attach.Options{Script: "echo up; sleep 1000"})
	sc.waitText(t, "up")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go s.srv.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the client was not told")
	}
	if code, err := c.Wait(); err != nil || code != 128+1 {
		t.Errorf("wait = %d, %v; want 129 (SIGHUP)", code, err)
	}
}

// TestAttachSlowClientIsToldWhatItLost: a client that stops reading
// never stalls the program; when it reads again it is told how much of
// the output went past, then gets the rest.
func TestAttachSlowClientIsToldWhatItLost(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	var mu sync.Mutex
	var lost int64
	c, err := attach.Dial(t.Context(), s.ts.URL, "", attach.Options{
		Script: "head -c 6000000 /dev/zero | tr '\\0' x; echo; echo done-$((1+1))",
		OnNotice: func(n sandboxapi.Control) {
			if n.Type == sandboxapi.ControlLost {
				mu.Lock()
				lost += n.Skipped
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not reading: the program must finish anyway (its output outruns
	// the 1 MiB ring and the socket's buffers).
	s.srv.terms.mu.Lock()
	var tm *term.Term
	for t := range s.srv.terms.m {
		tm = t
	}
	s.srv.terms.mu.Unlock()
	if tm == nil {
		t.Fatal("no terminal registered")
	}
	select {
	case <-tm.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("the program stalled behind a client that does not read")
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(); err != nil || code != 0 {
		t.Fatalf("wait = %d, %v", code, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if lost == 0 || !bytes.Contains(out, []byte("done-2")) {
		t.Fatalf("lost %d bytes, output ends %q; want a loss and the end of the output", lost, out[max(0, len(out)-40):])
	}
	if got := int64(len(out)) + lost; got < 6000000 {
		t.Errorf("received %d + lost %d < the 6000000 bytes printed", len(out), lost)
	}
}
