package image

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// debootstrap is run with --debian-installer, which makes it report on
// file descriptor 3 in the line protocol debian-installer reads:
//
//	P: <now> <end> [<NAME>]      progress; without a name, bytes downloaded
//	I: <NAME>                    an info message, then IA: <arg>... and
//	IF: <printf format>          the format that completes it
//	W: / WA: / WF:, E: / EA: / EF: warnings and errors, likewise
//
// Unlike its plain output, this carries totals ("141 packages", "67 MB"),
// which is what makes "retrieving packages… 120/141" possible, and stable
// message names, which let errors be classified without matching text.

// debootstrapInterval is the most often a phase in progress prints a line.
const debootstrapInterval = 2 * time.Second

// debootstrapProgress condenses the fd 3 protocol into lines such as
// "[bootstrap] retrieving packages… 120/141 (52 MB/67 MB)".
type debootstrapProgress struct {
	w     io.Writer
	every time.Duration
	now   func() time.Time
	last  time.Time

	phase       string // the NAME of the last named P: line
	step, steps int64  // its counts
	debs        int64  // packages to retrieve (the end of SIZEDEBS)
	retrieved   int64
	bytesNow    int64
	bytesEnd    int64

	rec struct {
		kind byte // 'I', 'W' or 'E'; 0 when no message is open
		name string
		args []string
	}

	// errName and errMsg are the last E: message, for the error report.
	errName, errMsg string
}

func newDebootstrapProgress(w io.Writer, every time.Duration, now func() time.Time) *debootstrapProgress {
	return &debootstrapProgress{w: w, every: every, now: now}
}

// phaseLabel is what a progress NAME is called on screen ("" for names
// it does not show).
func phaseLabel(name string) string {
	switch name {
	case "DOWNREL", "DOWNRELSIG", "DOWNPKGS", "DOWNMAINPKGS":
		return "retrieving package lists"
	case "SIZEDEBS":
		return "resolving packages"
	case "DOWNDEBS":
		return "retrieving packages"
	case "EXTRACTPKGS":
		return "extracting"
	case "INSTCORE":
		return "installing core packages"
	case "UNPACKREQ", "UNPACKBASE":
		return "unpacking"
	case "CONFREQ", "CONFBASE":
		return "configuring"
	}
	return ""
}

// Line handles one line of the protocol.
func (p *debootstrapProgress) Line(line string) {
	tag, rest, _ := strings.Cut(line, ": ")
	if rest == "" && strings.HasSuffix(line, ":") {
		tag = strings.TrimSuffix(line, ":")
	}
	switch tag {
	case "P":
		p.progress(strings.Fields(rest))
	case "I", "W", "E":
		p.rec.kind = tag[0]
		p.rec.name = strings.TrimSpace(rest)
		p.rec.args = p.rec.args[:0]
	case "IA", "WA", "EA":
		if p.rec.kind == tag[0] {
			p.rec.args = append(p.rec.args, rest)
		}
	case "IF", "WF", "EF":
		if p.rec.kind == tag[0] {
			p.message(p.rec.kind, p.rec.name, debootstrapf(rest, p.rec.args))
			p.rec.kind = 0
		}
	}
}

func (p *debootstrapProgress) progress(f []string) {
	if len(f) < 2 {
		return
	}
	now, err1 := strconv.ParseInt(f[0], 10, 64)
	end, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	if len(f) == 2 {
		// wget's progress while a package downloads, in bytes. It is
		// estimated from the package's own percentage and can go back
		// when the next package starts; only the high mark is shown.
		p.bytesNow, p.bytesEnd = max(p.bytesNow, now), end
		p.maybeEmit(false)
		return
	}
	name := f[2]
	switch name {
	case "SIZEDEBS":
		p.debs = end
	case "DOWNDEBS":
		p.bytesNow, p.bytesEnd = now, end
	}
	// Phases that look the same on screen (the release file, then the
	// indices) continue a line rather than start one.
	changed := phaseLabel(name) != phaseLabel(p.phase)
	p.phase, p.step, p.steps = name, now, end
	p.maybeEmit(changed)
}

func (p *debootstrapProgress) message(kind byte, name, text string) {
	switch kind {
	case 'I':
		switch name {
		case "RETRIEVING":
			if p.phase == "DOWNDEBS" {
				p.retrieved++
				p.maybeEmit(false)
			}
		case "BASESUCCESS":
			fmt.Fprintf(p.w, "[bootstrap] %s\n", firstLower(strings.TrimSuffix(text, ".")))
			p.last = p.now()
		}
	case 'W':
		fmt.Fprintf(p.w, "[bootstrap] warning: %s\n", text)
	case 'E':
		p.errName, p.errMsg = name, text
	}
}

// maybeEmit prints the current line at a phase change, or when the last
// line is older than the interval.
func (p *debootstrapProgress) maybeEmit(changed bool) {
	label := phaseLabel(p.phase)
	if label == "" {
		return
	}
	now := p.now()
	if !changed && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	s := "[bootstrap] " + label + "…"
	switch p.phase {
	case "DOWNDEBS":
		if p.debs > 0 {
			s += fmt.Sprintf(" %d/%d", p.retrieved, p.debs)
		}
		if p.bytesEnd > 0 {
			s += fmt.Sprintf(" (%s/%s)", humanBytes(p.bytesNow), humanBytes(p.bytesEnd))
		}
	case "EXTRACTPKGS", "UNPACKREQ", "CONFREQ", "UNPACKBASE", "CONFBASE":
		if p.steps > 0 {
			s += fmt.Sprintf(" %d/%d", p.step, p.steps)
		}
	}
	fmt.Fprintln(p.w, s)
}

// debootstrapf fills a debootstrap printf format with its arguments;
// debootstrap's messages only use %s (and %% for a percent sign).
func debootstrapf(format string, args []string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		if format[i] == '%' {
			b.WriteByte('%')
			continue
		}
		if len(args) > 0 {
			b.WriteString(args[0])
			args = args[1:]
		}
	}
	return strings.TrimSpace(strings.ReplaceAll(b.String(), `\n`, "\n"))
}

func firstLower(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
