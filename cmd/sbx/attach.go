package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
	xterm "golang.org/x/term"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/sandboxapi"
)

const attachAbout = `
Open a terminal in a running sandbox: a login shell on a new terminal, as
'docker exec -it ID bash -l' would. The local terminal is put in raw
mode, so every key (Ctrl-C included) goes to the sandbox; the window size
follows the local one. Exiting the shell ends the command, with its exit
status. Ctrl-P Ctrl-Q detaches (which ends a new terminal's shell).

With --session, attach to a shell session's terminal instead; detaching
leaves the session running. The "default" session is the agent's shell:
it can be watched, not typed into (Ctrl-C detaches).`

func (a *app) attachCmd() *cobra.Command {
	var session string
	c := newCommand("attach [OPTIONS] ID", "Open a terminal in a running sandbox", attachAbout,
		func(c *cobra.Command, rest []string) error {
			if len(rest) != 1 {
				return usageErrorf("attach", "want one sandbox id: sbx attach ID")
			}
			m := ttyMode{stdin: true, tty: true}
			if session == "default" {
				m.stdin = false
			}
			return a.terminal(c.Context(), rest[0], sbx.TerminalOptions{Session: session}, m)
		})
	c.Flags().StringVar(&session, "session", "", "attach to the shell session `NAME` instead of a new login shell")
	c.ValidArgsFunction = a.completeIDs(1)
	return c
}

// ttyMode is what `-i` and `-t` ask for.
type ttyMode struct {
	stdin bool // -i: forward stdin
	tty   bool // -t: the local side is a terminal (raw mode, window size)
}

// execTTY is `sbx exec -it`: the command on a new terminal in the
// sandbox, run by a login shell as sbx exec's shell would run it.
func (a *app) execTTY(ctx context.Context, o execOptions) error {
	if o.Interactive && !o.TTY {
		return usageErrorf("exec", "-i needs -t: the command runs on a terminal in the sandbox (without either, sbx exec runs it in the sandbox's shell and prints its output)")
	}
	if o.Timeout > 0 {
		return usageErrorf("exec", "--timeout is for commands run without -t")
	}
	return a.terminal(ctx, o.ID, sbx.TerminalOptions{Script: shellJoin(o.Command)}, ttyMode{stdin: o.Interactive, tty: o.TTY})
}

// fdOf is f's descriptor when it is a terminal.
func fdOf(f any) (int, bool) {
	x, ok := f.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(x.Fd())
	return fd, xterm.IsTerminal(fd)
}

// errDetached ends the input copy when the user typed the detach keys.
var errDetached = errors.New("detached")

// terminal connects the local terminal to a terminal in the sandbox until
// the program there exits (its status is sbx's), the user detaches, or a
// signal ends sbx. The local terminal is restored on every way out.
func (a *app) terminal(ctx context.Context, id string, o sbx.TerminalOptions, m ttyMode) error {
	inFd, inTTY := fdOf(a.stdin)
	outFd, outTTY := fdOf(a.stdout)
	if m.stdin && m.tty && !inTTY {
		return errors.New("the input device is not a TTY (use sbx exec without -it to run a command from a script)")
	}
	watch := o.Session == "default"
	if o.Session == "" {
		sizeFd, ok := outFd, outTTY
		if !ok {
			sizeFd, ok = inFd, inTTY
		}
		if ok {
			if cols, rows, err := xterm.GetSize(sizeFd); err == nil && rows > 0 && cols > 0 {
				o.Rows, o.Cols = uint16(rows), uint16(cols)
			}
		}
		if t := a.getenv("TERM"); t != "" && m.tty {
			o.Term = t
		}
	}
	var noticeMu sync.Mutex
	o.OnNotice = func(c sandboxapi.Control) {
		// Lost output is worth a word; a refused key or resize was
		// announced by the server once and needs no more.
		if c.Type == sandboxapi.ControlLost {
			noticeMu.Lock()
			fmt.Fprintf(a.stderr, "\r\nsbx: %d bytes of output were lost (the terminal printed faster than it was read)\r\n", c.Skipped)
			noticeMu.Unlock()
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if watch {
		// Nothing typed reaches the agent's shell: Ctrl-C detaches.
		restore := interceptInterrupts(ctx, func() { cancel(errDetached) })
		defer restore()
	}

	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	conn, err := rt.AttachTerminal(ctx, id, o)
	if err != nil {
		return withHint(err, id)
	}
	defer conn.Close()

	if m.stdin && inTTY {
		state, err := xterm.MakeRaw(inFd)
		if err != nil {
			return fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		var once sync.Once
		restore := func() { once.Do(func() { _ = xterm.Restore(inFd, state) }) }
		defer restore()
		defer func() {
			if p := recover(); p != nil {
				restore()
				panic(p)
			}
		}()
	}
	if m.tty && o.Session == "" && (outTTY || inTTY) {
		stop := onWindowChange(func() {
			fd := outFd
			if !outTTY {
				fd = inFd
			}
			if cols, rows, err := xterm.GetSize(fd); err == nil && rows > 0 && cols > 0 {
				_ = conn.Resize(uint16(rows), uint16(cols))
			}
		})
		defer stop()
	}
	if m.stdin && !watch {
		go func() {
			_, err := io.Copy(conn, &detachKeys{r: a.stdin})
			if errors.Is(err, errDetached) {
				cancel(errDetached)
			}
		}()
	}
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		_, _ = io.Copy(a.stdout, conn)
	}()

	select {
	case <-conn.Done():
	case <-ctx.Done():
		conn.Close()
	}
	code, err := conn.Wait()
	conn.Close()
	<-outDone
	if errors.Is(context.Cause(ctx), errDetached) {
		// \r: the terminal may still be raw here.
		fmt.Fprint(a.stderr, "\r\nsbx: detached\r\n")
		return nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	return exitStatus(code)
}

// detachKeys passes input through until Ctrl-P Ctrl-Q, docker's detach
// keys; a Ctrl-P followed by anything else is passed on with it.
type detachKeys struct {
	r       io.Reader
	pending bool // a Ctrl-P was read last and held back
	buf     []byte
}

func (d *detachKeys) Read(p []byte) (int, error) {
	if len(p) < 2 {
		return 0, errors.New("detachKeys: read buffer under 2 bytes")
	}
	if cap(d.buf) < len(p) {
		d.buf = make([]byte, len(p))
	}
	in := d.buf[:len(p)-1] // room for a held Ctrl-P
	n, err := d.r.Read(in)
	out := p[:0]
	for _, b := range in[:n] {
		if d.pending {
			d.pending = false
			if b == 0x11 {
				return len(out), errDetached
			}
			out = append(out, 0x10)
		}
		if b == 0x10 {
			d.pending = true
			continue
		}
		out = append(out, b)
	}
	return len(out), err
}
