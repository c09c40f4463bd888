package shell

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/reaper"
	"github.com/sbx-dev/sbx/internal/term"
)

// Terminal geometry, as OpenHands' tmux window: wide enough that ls and
// friends lay out on one line, and a scrollback of 10 000 lines plus the
// visible rows (spec §5.10).
const (
	termCols     = 1000
	termRows     = 1000
	editableRows = 200
	historyRows  = 10000 + termRows - editableRows
)

// proc is one incarnation of the agent's bash, a client of the terminal
// layer: it reads every byte through the terminal's tap, finds the prompt
// markers in them and renders the rest; Shell layers OpenHands' reply
// rules on top and replaces a proc that died.
type proc struct {
	log    *slog.Logger
	marker []byte // start of the prompt marker: ESC ] 697 ; sbx-<nonce> ;
	t      *term.Term
	pgid   int

	mu       sync.Mutex
	scr      *term.Screen
	pending  []byte
	readOff  int64       // terminal offset just past the last byte fed
	running  bool        // a command was typed and its prompt has not come back
	done     *completion // a prompt came back and nobody has reported it
	carry    string      // output of a reported-late command, prepended to the next one
	lastMeta promptMeta
	prompts  int   // markers seen; the first one ends initialisation
	outSeq   int64 // bumps on every byte read, for the no-change timeout
	exited   bool
	exitCode int
	notify   chan struct{}
	// preempted is a signal key delivered ahead of its request, while
	// another request held the shell; that request types nothing.
	preempted string
	// lastMarker is the terminal offset of the newest prompt marker, -1
	// before the first.
	lastMarker int64
}

type completion struct {
	meta      promptMeta
	output    string
	truncated bool
	end       int64 // terminal offset of the prompt marker that ended it
}

type promptMeta struct {
	exitCode int
	pid      int
	username string
	hostname string
	cwd      string
	path     string
}

// Starter starts a child process and reports its exit; it is the reaper in
// sandboxd. A consumer-side interface so tests can bring their own.
type Starter interface {
	Start(cmd *exec.Cmd) (<-chan reaper.Status, error)
}

func newNonce() string { return ids.New(8) }

// ps1 builds the prompt: an OSC sequence, invisible on any terminal, that
// carries the metadata OpenHands reads from its PS1 JSON block. Everything
// in it expands inside bash without forking (no $(pwd), no $(which
// python)); the interpreter path is looked up here from $PATH instead.
//
// $PATH is sent only when it changed since the previous prompt: bash's
// prompt expansion costs about half a microsecond per character, and PATH
// is often the longest thing in the prompt while rarely changing.
//
// The working directory and PATH travel %-escaped (%, BEL and US only), so
// that a directory named with those bytes cannot end the marker early.
func ps1(nonce string) string {
	return `\e]697;sbx-` + nonce + `;$?;$!;\u;\h\037$__sbx_wd\037$__sbx_pp\a`
}

// promptFunc runs before each prompt, in the shell itself (no fork). It is
// a function so that bash parses it once, not at every prompt; it also
// puts PS1 back in case a command (a venv's activate) changed it.
const promptFunc = `__sbx_prompt() { ` +
	`if [[ "$PWD" != "$__sbx_lw" ]]; then __sbx_lw=$PWD; __sbx_wd=${PWD//%/%25}; __sbx_wd=${__sbx_wd//$'\a'/%07}; __sbx_wd=${__sbx_wd//$'\037'/%1F}; fi; ` +
	`if [[ "$PATH" == "$__sbx_lp" ]]; then __sbx_pp=; else __sbx_lp=$PATH; __sbx_pp=${PATH//%/%25}; __sbx_pp=${__sbx_pp//$'\a'/%07}; __sbx_pp=${__sbx_pp//$'\037'/%1F}; fi; ` +
	`PS1=$__sbx_ps1; }`

func startProc(ctx context.Context, cfg *Config, dir string) (*proc, error) {
	nonce := newNonce()
	p := &proc{
		log:    cfg.Logger,
		marker: []byte("\x1b]697;sbx-" + nonce + ";"),
		scr:    term.NewScreen(termCols, editableRows, historyRows),
		notify: make(chan struct{}, 1),

		lastMarker: -1,
	}
	// Interactive, not a login shell: OpenHands runs `su <user> -`, where
	// the "-" after the user name is an argument for the shell, not su's
	// login flag, so bash reads ~/.bashrc and keeps the environment.
	t, err := term.Start(term.Config{
		Path: cfg.Shell, Args: []string{"-i"}, Dir: dir, Env: cfg.Env, Credential: cfg.Credential,
		Rows: termRows, Cols: termCols, NoEcho: true,
		Starter: cfg.Starter, Logger: cfg.Logger, Tap: p.tap, RingBytes: cfg.StreamBytes,
	})
	if err != nil {
		return nil, err
	}
	p.t, p.pgid = t, t.Pid()
	go p.waitExit()

	init := strings.Join([]string{
		`bind 'set disable-completion on' 2>/dev/null`,
		`bind 'set enable-bracketed-paste off' 2>/dev/null`,
		`bind 'set convert-meta off' 2>/dev/null`,
		`bind 'set input-meta on' 2>/dev/null`,
		`bind 'set output-meta on' 2>/dev/null`,
		`bind 'set bell-style none' 2>/dev/null`,
		`export __sbx_ps1='` + ps1(nonce) + `'`,
		promptFunc,
		`export -f __sbx_prompt`,
		`export PROMPT_COMMAND=__sbx_prompt`,
		`export PS2=''`,
		`alias git="git --no-pager"`,
	}, "; ")
	_ = p.t.Send([]byte(init + "\r"))

	// Wait for the first prompt of ours; what the login scripts printed
	// before it is not the agent's business.
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		ok, exited := p.prompts > 0, p.exited
		if ok {
			p.scr.Reset()
			p.done = nil
			p.running = false
		}
		p.mu.Unlock()
		if ok {
			return p, nil
		}
		if exited {
			p.close()
			return nil, fmt.Errorf("%s exited during start-up with status %d", cfg.Shell, p.exitCode)
		}
		select {
		case <-p.notify:
		case <-timer.C:
			p.close()
			return nil, fmt.Errorf("%s did not show its prompt within %s", cfg.Shell, cfg.StartTimeout)
		case <-ctx.Done():
			p.close()
			return nil, ctx.Err()
		}
	}
}

// tap is the terminal's reader handing over what bash printed.
func (p *proc) tap(b []byte, off int64) {
	p.mu.Lock()
	p.feed(b, off)
	p.outSeq++
	p.mu.Unlock()
	p.signal()
}

func (p *proc) waitExit() {
	st := p.t.ExitStatus()
	p.mu.Lock()
	p.exited = true
	p.exitCode = st.ExitCode
	p.mu.Unlock()
	p.signal()
}

func (p *proc) signal() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// send types b. Called with p.mu held, which Term.Send never waits under.
func (p *proc) send(b []byte) error { return p.t.Send(b) }

func (p *proc) close() { p.t.Close() }

// feed splits terminal output into text for the screen and our prompt
// markers. Called with p.mu held.
func (p *proc) feed(b []byte, off int64) {
	data := b
	base := off // terminal offset of data[0]
	if len(p.pending) > 0 {
		base -= int64(len(p.pending))
		data = append(p.pending, b...)
		p.pending = nil
	}
	p.readOff = off + int64(len(b))
	for len(data) > 0 {
		i := bytes.Index(data, p.marker)
		if i < 0 {
			k := partialPrefix(data, p.marker)
			p.scr.Write(data[:len(data)-k])
			if k > 0 {
				p.pending = append([]byte(nil), data[len(data)-k:]...)
			}
			return
		}
		p.scr.Write(data[:i])
		rest := data[i+len(p.marker):]
		j := bytes.IndexByte(rest, 0x07)
		if j < 0 {
			if len(rest) > 64<<10 {
				// Not a prompt of ours after all.
				p.scr.Write(data[i:])
				return
			}
			p.pending = append([]byte(nil), data[i:]...)
			return
		}
		p.onPrompt(parsePrompt(rest[:j]), base+int64(i))
		consumed := len(data) - len(rest[j+1:])
		base += int64(consumed)
		data = rest[j+1:]
	}
}

// partialPrefix returns the length of the longest tail of data that is a
// proper prefix of marker, so that a marker split across reads is found.
func partialPrefix(data, marker []byte) int {
	start := len(data) - len(marker) + 1
	if start < 0 {
		start = 0
	}
	for i := start; i < len(data); i++ {
		if data[i] == marker[0] && bytes.HasPrefix(marker, data[i:]) {
			return len(data) - i
		}
	}
	return 0
}

func (p *proc) onPrompt(m promptMeta, at int64) {
	if m.path == "" {
		m.path = p.lastMeta.path // unchanged since the previous prompt
	}
	p.prompts++
	p.lastMeta = m
	p.lastMarker = at
	if !p.running && p.done == nil {
		return // a prompt while idle (start-up, or a key pressed at the prompt)
	}
	text := p.scr.Text()
	truncated := p.scr.Dropped() > 0
	p.scr.Reset()
	if p.carry != "" {
		text = joinSegments(p.carry, text)
		p.carry = ""
	}
	if p.done != nil {
		// Another prompt before anyone collected the first: bash ran more
		// input. Keep it all, with the newest metadata.
		p.done.output = joinSegments(p.done.output, text)
		p.done.meta = m
		p.done.truncated = p.done.truncated || truncated
		p.done.end = at
		return
	}
	p.running = false
	p.done = &completion{meta: m, output: text, truncated: truncated, end: at}
}

// joinSegments joins the output of two commands separated by a prompt the
// way OpenHands' pane capture does: its PS1 starts with a newline and the
// segments are joined with another, which leaves two blank lines between.
func joinSegments(a, b string) string {
	return a + "\n\n" + b
}

func parsePrompt(b []byte) promptMeta {
	m := promptMeta{exitCode: -1, pid: -1}
	s := string(b)
	head, tail, _ := strings.Cut(s, "\x1f")
	f := strings.SplitN(head, ";", 4)
	if len(f) == 4 {
		m.exitCode = pyInt(f[0])
		m.pid = pyInt(f[1])
		m.username = f[2]
		m.hostname = f[3]
	}
	cwd, path, _ := strings.Cut(tail, "\x1f")
	m.cwd, m.path = unescapeField(cwd), unescapeField(path)
	return m
}

// unescapeField undoes the prompt's %-escaping of %, BEL and US.
func unescapeField(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	return strings.NewReplacer("%25", "%", "%07", "\a", "%1F", "\x1f").Replace(s)
}

// pyInt parses as int(float(str(x))) does, falling back to -1.
func pyInt(s string) int {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) {
		return -1
	}
	return int(f)
}

// outputLimit is how far the terminal's ring holds output of a request
// that started at start: up to the prompt that ended it, or, while it
// runs, up to what the reader has fed minus a marker still incomplete.
func (p *proc) outputLimit(start int64) func() int64 {
	return func() int64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.lastMarker >= start {
			return p.lastMarker
		}
		return p.readOff - int64(len(p.pending))
	}
}
