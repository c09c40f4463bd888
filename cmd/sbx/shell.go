package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// ttyPollSeconds bounds each action of a terminal session, so that output
// of a long command appears as it comes and Ctrl-C reaches the command
// even while it prints without pause (sandboxd runs one action at a time,
// so a key can only be sent between actions).
const ttyPollSeconds = 1

// session is the read-eval loop of `sbx run` without a command, over the
// sandbox's persistent shell.
type session struct {
	c      *sandboxapi.Client
	out    io.Writer
	errw   io.Writer
	tty    bool
	lines  <-chan string // closed at end of input
	eof    bool
	intr   chan struct{}
	user   string
	cwd    string
	hinted bool
}

// shell runs the loop until end of input or `exit [N]`; its status is
// that of the last command, as a shell's.
func (a *app) shell(ctx context.Context, c *sandboxapi.Client) error {
	stop := make(chan struct{})
	defer close(stop)
	s := &session{
		c: c, out: a.stdout, errw: a.stderr,
		tty:   isTerminal(a.stdin),
		lines: readLines(a.stdin, stop),
		intr:  make(chan struct{}, 1),
	}
	if s.tty {
		restore := interceptInterrupts(ctx, func() {
			select {
			case s.intr <- struct{}{}:
			default:
			}
		})
		defer restore()
		// One no-op fills in the prompt's user and directory.
		if obs, err := s.send(ctx, ":", false); err == nil {
			if ex, err := obs.CmdOutput(); err == nil {
				s.note(ex.Metadata)
			}
		}
	}
	last := 0
	for !s.eof {
		if s.tty {
			fmt.Fprintf(s.out, "%s@sbx:%s$ ", s.user, s.cwd)
		}
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.intr:
			fmt.Fprintln(s.out)
			continue
		case line, ok = <-s.lines:
		}
		if !ok {
			if s.tty {
				fmt.Fprintln(s.out)
			}
			break
		}
		cmd := strings.TrimSpace(line)
		if cmd == "" {
			continue
		}
		if code, ok := exitCommand(cmd, last); ok {
			return exitStatus(code)
		}
		code, err := s.execute(ctx, line)
		if err != nil {
			return err
		}
		last = code
	}
	return exitStatus(last)
}

// readLines feeds stdin to the loop line by line. It runs apart from the
// loop so that a line typed while a command runs can go to that command.
func readLines(r io.Reader, stop <-chan struct{}) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		br := bufio.NewReader(r)
		for {
			l, err := br.ReadString('\n')
			if l != "" {
				l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
				select {
				case ch <- l:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// exitCommand recognises `exit` and `exit N`, which end the session
// rather than the sandbox's shell.
func exitCommand(cmd string, last int) (int, bool) {
	f := strings.Fields(cmd)
	if len(f) == 0 || f[0] != "exit" || len(f) > 2 {
		return 0, false
	}
	if len(f) == 1 {
		return last, true
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, false
	}
	return n & 0xff, true
}

// execute runs one line and follows it until it completes: while it runs,
// further lines are its input, Ctrl-C is sent to it as C-c, and otherwise
// its output is fetched as it comes.
func (s *session) execute(ctx context.Context, line string) (int, error) {
	obs, err := s.send(ctx, line, false)
	s.hinted = false
	for {
		if err != nil {
			return 0, err
		}
		if obs.Observation != sandboxapi.ObservationRun {
			// e.g. several commands on one line: the shell's answer says
			// what to do instead.
			fmt.Fprintln(s.errw, obs.Content)
			return 1, nil
		}
		ex, err := obs.CmdOutput()
		if err != nil {
			return 0, err
		}
		writeOutput(s.out, obs.Content)
		if ex.Metadata.ExitCode != -1 {
			s.note(ex.Metadata)
			return ex.Metadata.ExitCode, nil
		}
		if s.tty && !s.hinted {
			fmt.Fprintln(s.errw, "[still running: type input for it, or press Ctrl-C to interrupt it]")
			s.hinted = true
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.intr:
			obs, err = s.send(ctx, "C-c", true)
		case l, ok := <-s.lines:
			if !ok {
				// End of input reaches the command as it would in a
				// terminal; then its end is awaited.
				s.lines, s.eof = nil, true
				obs, err = s.send(ctx, "C-d", true)
			} else {
				obs, err = s.send(ctx, l, true)
			}
		default:
			obs, err = s.send(ctx, "", false)
		}
	}
}

func (s *session) send(ctx context.Context, text string, input bool) (sandboxapi.Observation, error) {
	var timeout float64
	if s.tty {
		timeout = ttyPollSeconds
	}
	act := sandboxapi.NewRunAction(text, timeout)
	if input {
		act = sandboxapi.NewInputAction(text, timeout)
	}
	obs, err := s.c.Execute(ctx, act)
	if err != nil {
		return obs, fmt.Errorf("the sandbox's shell: %w", err)
	}
	return obs, nil
}

// note keeps the user and directory a completed command left the shell
// in, for the prompt.
func (s *session) note(md sandboxapi.CmdOutputMetadata) {
	if md.Username != nil && *md.Username != "" {
		s.user = *md.Username
	}
	if md.WorkingDir != nil && *md.WorkingDir != "" {
		s.cwd = *md.WorkingDir
	}
}
