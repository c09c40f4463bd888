package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// debootstrapGrace is how long debootstrap and its children get to stop
// after SIGTERM before they are killed.
const debootstrapGrace = 10 * time.Second

// debootstrapLogLines is how much of debootstrap's own log a failure quotes.
const debootstrapLogLines = 25

// findDebootstrap returns the program to run. Non-root users' PATH often
// lacks the sbin directories, so those are tried too: the error should be
// "needs root", not "not installed", for someone who has it.
func findDebootstrap(prog string) (string, error) {
	if prog != "" {
		if _, err := exec.LookPath(prog); err != nil {
			return "", errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("debootstrap program %s: %v", prog, err), err)
		}
		return prog, nil
	}
	if p, err := exec.LookPath("debootstrap"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/debootstrap", "/sbin/debootstrap", "/usr/local/sbin/debootstrap"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errdefs.New(errdefs.ErrNotFound, "debootstrap is not installed; install it (as root): apt-get update && apt-get install -y debootstrap")
}

// runDebootstrap runs debootstrap in its own process group: progress
// from file descriptor 3 goes to w, its log to the logger (and its tail
// into the error when it fails). Cancelling ctx stops the whole group.
//
// Both outputs are plain pipes read here rather than writers handed to
// exec: with writers, Wait would also wait for every process still holding
// them, and a straggler in the group would hold up the kill meant for it.
func runDebootstrap(ctx context.Context, log *slog.Logger, w io.Writer, prog string, args []string, mirror string) error {
	progR, progW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer progR.Close()
	logR, logW, err := os.Pipe()
	if err != nil {
		progW.Close()
		return err
	}
	defer logR.Close()

	cmd := exec.CommandContext(ctx, prog, args...)
	inOwnGroup(cmd)
	// After a SIGTERM that debootstrap ignores, exec kills it once
	// WaitDelay has passed.
	cmd.WaitDelay = debootstrapGrace
	cmd.Env = debootstrapEnv()
	cmd.Stdout = logW
	cmd.Stderr = logW
	cmd.ExtraFiles = []*os.File{progW} // fd 3
	log.Debug("starting debootstrap", "argv", append([]string{prog}, args...))
	err = cmd.Start()
	// The child has its copies; ours must go for EOF to come when it and
	// its children are gone.
	progW.Close()
	logW.Close()
	if err != nil {
		return fmt.Errorf("starting debootstrap: %w", err)
	}
	pid := cmd.Process.Pid

	progress := newDebootstrapProgress(w, debootstrapInterval, time.Now)
	logTail := &lineTail{max: debootstrapLogLines, log: log}
	var readers sync.WaitGroup
	readers.Go(func() { readLines(progR, progress.Line) })
	readers.Go(func() { readLines(logR, logTail.add) })

	werr := cmd.Wait()
	// Whatever debootstrap left in its group (a dpkg, a wget) goes too,
	// whether debootstrap ended by itself or was stopped. The group's ID
	// cannot be handed out again while any member lives, so this reaches
	// only stragglers (or, once they are all gone, nobody).
	if err := killGroup(pid, syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		log.Warn("killing debootstrap's process group", "pgid", pid, "err", err)
	}
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// Something outside the group still holds a pipe open.
		progR.Close()
		logR.Close()
		<-done
	}

	if ctx.Err() != nil {
		return fmt.Errorf("debootstrap stopped: %w", ctx.Err())
	}
	if werr == nil {
		return nil
	}
	return debootstrapError(werr, progress.errName, progress.errMsg, logTail.lines(), mirror)
}

// debootstrapError turns a failed run into advice, classified by the name
// debootstrap gave its error.
func debootstrapError(werr error, name, msg string, tail []string, mirror string) error {
	class, hint := errdefs.ErrInternal, "see the log above"
	switch name {
	case "LEFTOVERDEBS", "NOSCRIPT", "WRONGSUITE", "BADARG":
		class, hint = errdefs.ErrInvalidArgument, "check the suite and package names"
	case "NOGETREL", "NOGETRELSIG", "COULDNTDL", "COULDNTDLPKGS":
		class, hint = errdefs.ErrUnavailable, fmt.Sprintf("check that the mirror %s is reachable from this machine, or choose another with --mirror", mirror)
	case "NOEXEC":
		class, hint = errdefs.ErrInvalidArgument, "choose a temporary directory on a file system mounted with exec and dev"
	}
	if msg == "" {
		msg = werr.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "debootstrap failed: %s; %s", msg, hint)
	if len(tail) > 0 {
		b.WriteString("\nlast lines of its log:\n    ")
		b.WriteString(strings.Join(tail, "\n    "))
	}
	return errdefs.Wrap(class, b.String(), werr)
}

// debootstrapEnv is debootstrap's whole environment: a known PATH and
// locale, and the proxy settings a machine may need to reach its mirror.
func debootstrapEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C",
		"DEBIAN_FRONTEND=noninteractive",
		"HOME=/root",
	}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// readLines calls fn for each line of r until EOF or an error.
func readLines(r io.Reader, fn func(string)) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			fn(strings.TrimSuffix(line, "\n"))
		}
		if err != nil {
			return
		}
	}
}

// lineTail keeps the last lines given to it and logs each at debug.
type lineTail struct {
	max  int
	log  *slog.Logger
	tail []string
}

func (t *lineTail) add(line string) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return
	}
	t.log.Debug("debootstrap", "line", line)
	t.tail = append(t.tail, line)
	if len(t.tail) > t.max {
		t.tail = t.tail[len(t.tail)-t.max:]
	}
}

// lines is the tail, read after the reader has finished.
func (t *lineTail) lines() []string { return t.tail }
