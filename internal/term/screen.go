package term

import (
	"bytes"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Screen turns the bytes a program writes to its terminal into the text a
// person would read off that terminal, the way tmux's capture-pane does for
// OpenHands: carriage returns overwrite, tabs move to the next stop, escape
// sequences vanish, lines that wrap at the terminal width are joined again,
// and only the most recent rows are kept.
//
// The last screenRows rows stay editable (cursor movement can reach them);
// older rows move to an immutable history stored as UTF-8, so memory is
// bounded by historyRows × cols whatever a command prints.
type Screen struct {
	cols        int
	screenRows  int
	historyRows int

	history  rowRing // rows that scrolled off the editable window
	rows     []row   // editable window; the cursor is in it
	cur      int     // cursor row, an index into rows
	col      int     // cursor column
	dropped  int     // rows dropped from the front of history
	free     [][]rune
	alt      *savedScreen // set while a program uses the alternate screen
	esc      escState
	escParam []byte // parameters of the CSI sequence being read
	utf      [utf8.UTFMax]byte
	utfN     int
}

// savedScreen is the normal screen kept aside while a full-screen program
// draws on the alternate one; what it drew there vanishes on return, as in
// tmux.
type savedScreen struct {
	rows     []row
	cur, col int
}

type row struct {
	cells   []rune
	wrapped bool // the row continues on the next one (joined without a newline)
}

type escState uint8

const (
	escNone    escState = iota
	escStart            // after ESC
	escCSI              // after ESC [
	escOSC              // after ESC ] (or P, X, ^, _): until BEL or ST
	escOSCEsc           // ESC seen inside an OSC: expect '\'
	escCharset          // after ESC ( ) * + : one more byte
)

func NewScreen(cols, screenRows, historyRows int) *Screen {
	s := &Screen{cols: cols, screenRows: screenRows, historyRows: historyRows}
	s.history.limit = historyRows
	s.Reset()
	return s
}

// reset forgets everything, as OpenHands' clear-screen + clear-history does
// after each completed command.
func (s *Screen) Reset() {
	s.history.clear()
	s.rows = s.rows[:0]
	s.rows = append(s.rows, row{})
	s.cur, s.col = 0, 0
	s.dropped = 0
	s.esc = escNone
	s.escParam = s.escParam[:0]
	s.utfN = 0
	s.alt = nil
}

// write feeds program output.
func (s *Screen) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	for i := 0; i < len(p); i++ {
		b := p[i]
		if s.esc != escNone {
			s.escByte(b)
			continue
		}
		if s.utfN > 0 {
			s.utfByte(b)
			continue
		}
		switch {
		case b >= 0x20 && b < 0x7f:
			// Fast path: a run of printable ASCII.
			j := i + 1
			for j < len(p) && p[j] >= 0x20 && p[j] < 0x7f {
				j++
			}
			s.putASCII(p[i:j])
			i = j - 1
		case b >= 0x80:
			s.utf[0] = b
			s.utfN = 1
			if !utf8.RuneStart(b) || b >= 0xf8 {
				s.utfN = 0
				s.put(utf8.RuneError)
			}
		default:
			s.control(b)
		}
	}
}

func (s *Screen) utfByte(b byte) {
	if b&0xc0 != 0x80 {
		// Broken sequence: show a replacement and reprocess b on its own.
		s.utfN = 0
		s.put(utf8.RuneError)
		s.Write([]byte{b})
		return
	}
	s.utf[s.utfN] = b
	s.utfN++
	need := 0
	switch {
	case s.utf[0] >= 0xf0:
		need = 4
	case s.utf[0] >= 0xe0:
		need = 3
	default:
		need = 2
	}
	if s.utfN < need {
		return
	}
	r, _ := utf8.DecodeRune(s.utf[:s.utfN])
	s.utfN = 0
	if r >= 0x80 && r < 0xa0 {
		return // C1 controls are not printed
	}
	s.put(r)
}

func (s *Screen) control(b byte) {
	switch b {
	case '\r':
		s.col = 0
	case '\n', '\v', '\f':
		s.lineFeed()
	case '\b':
		if s.col > 0 {
			s.col--
		}
	case '\t':
		next := (s.col/8 + 1) * 8
		if next > s.cols-1 {
			next = s.cols - 1
		}
		r := &s.rows[s.cur]
		for len(r.cells) < next {
			r.cells = append(r.cells, ' ')
		}
		s.col = next
	case 0x1b:
		s.esc = escStart
	}
	// Everything else (NUL, BEL, SO/SI, DEL…) prints nothing.
}

func (s *Screen) escByte(b byte) {
	switch s.esc {
	case escStart:
		switch b {
		case '[':
			s.esc = escCSI
			s.escParam = s.escParam[:0]
		case ']', 'P', 'X', '^', '_':
			s.esc = escOSC
		case '(', ')', '*', '+', '-', '.', '/', '#', '%':
			s.esc = escCharset
		case 'D': // index
			s.esc = escNone
			s.lineFeed()
		case 'E': // next line
			s.esc = escNone
			s.col = 0
			s.lineFeed()
		case 'M': // reverse index
			s.esc = escNone
			if s.cur > 0 {
				s.cur--
			}
		default:
			s.esc = escNone
		}
	case escCharset:
		s.esc = escNone
	case escOSC:
		switch b {
		case 0x07:
			s.esc = escNone
		case 0x1b:
			s.esc = escOSCEsc
		}
	case escOSCEsc:
		if b == '\\' {
			s.esc = escNone
		} else {
			s.esc = escOSC
		}
	case escCSI:
		if b >= 0x40 && b <= 0x7e {
			s.esc = escNone
			s.csi(b)
			return
		}
		if len(s.escParam) < 64 {
			s.escParam = append(s.escParam, b)
		}
	}
}

// csi applies the handful of cursor and erase sequences that progress bars
// and line editors use; colours and modes are dropped as capture-pane does.
func (s *Screen) csi(final byte) {
	p := s.escParam
	if len(p) > 0 && p[0] == '?' && (final == 'h' || final == 'l') {
		for _, mode := range strings.Split(string(p[1:]), ";") {
			if mode == "1049" || mode == "1047" || mode == "47" {
				s.alternate(final == 'h')
			}
		}
		return
	}
	if len(p) > 0 && (p[0] == '?' || p[0] == '>' || p[0] == '=' || p[0] == '<') {
		return // other private modes
	}
	// A count never needs to exceed the screen: bound it so hostile output
	// cannot make the renderer allocate or loop without limit.
	n1 := min(csiArg(p, 0, 1), s.screenRows)
	switch final {
	case 'A':
		s.cur -= n1
		if s.cur < 0 {
			s.cur = 0
		}
	case 'B', 'e':
		s.cur += n1
		for s.cur >= len(s.rows) {
			s.rows = append(s.rows, row{})
		}
		s.scrollIfNeeded()
	case 'C', 'a':
		s.col = min(s.col+n1, s.cols-1)
	case 'D':
		s.col = max(s.col-n1, 0)
	case 'G', '`':
		s.col = min(max(n1-1, 0), s.cols-1)
	case 'E':
		s.col = 0
		for range n1 {
			s.lineFeed()
		}
	case 'F':
		s.col = 0
		s.cur = max(s.cur-n1, 0)
	case 'H', 'f':
		r := csiArg(p, 0, 1)
		c := csiArg(p, 1, 1)
		s.cur = min(max(r-1, 0), len(s.rows)-1)
		s.col = min(max(c-1, 0), s.cols-1)
	case 'K':
		r := &s.rows[s.cur]
		switch csiArg(p, 0, 0) {
		case 0:
			if s.col < len(r.cells) {
				r.cells = r.cells[:s.col]
			}
			r.wrapped = false
		case 1:
			for i := 0; i <= s.col && i < len(r.cells); i++ {
				r.cells[i] = ' '
			}
		case 2:
			r.cells = r.cells[:0]
			r.wrapped = false
		}
	case 'J':
		switch csiArg(p, 0, 0) {
		case 0:
			r := &s.rows[s.cur]
			if s.col < len(r.cells) {
				r.cells = r.cells[:s.col]
			}
			s.rows = s.rows[:s.cur+1]
		case 2, 3:
			for i := range s.rows {
				s.rows[i].cells = s.rows[i].cells[:0]
				s.rows[i].wrapped = false
			}
		}
	}
}

func (s *Screen) alternate(on bool) {
	switch {
	case on && s.alt == nil:
		s.alt = &savedScreen{rows: s.rows, cur: s.cur, col: s.col}
		s.rows = []row{{}}
		s.cur, s.col = 0, 0
	case !on && s.alt != nil:
		s.rows, s.cur, s.col = s.alt.rows, s.alt.cur, s.alt.col
		s.alt = nil
	}
}

func csiArg(p []byte, idx, def int) int {
	field := 0
	val, seen := 0, false
	for _, c := range p {
		switch {
		case c == ';':
			if field == idx {
				if !seen {
					return def
				}
				return val
			}
			field++
			val, seen = 0, false
		case c >= '0' && c <= '9':
			if val < 100000 {
				val = val*10 + int(c-'0')
			}
			seen = true
		}
	}
	if field == idx && seen {
		if val == 0 {
			return def
		}
		return val
	}
	return def
}

func (s *Screen) put(r rune) {
	if s.col >= s.cols {
		s.rows[s.cur].wrapped = true
		s.col = 0
		s.lineFeed()
	}
	rw := &s.rows[s.cur]
	for len(rw.cells) < s.col {
		rw.cells = append(rw.cells, ' ')
	}
	if s.col < len(rw.cells) {
		rw.cells[s.col] = r
	} else {
		rw.cells = append(rw.cells, r)
	}
	s.col++
}

// putASCII is put for a run of printable ASCII, appending in bulk when
// the cursor is at the end of its row (the common case).
func (s *Screen) putASCII(run []byte) {
	for len(run) > 0 {
		if s.col >= s.cols {
			s.rows[s.cur].wrapped = true
			s.col = 0
			s.lineFeed()
		}
		rw := &s.rows[s.cur]
		n := min(len(run), s.cols-s.col)
		if s.col != len(rw.cells) {
			for _, c := range run[:n] {
				s.put(rune(c))
			}
			run = run[n:]
			continue
		}
		cells := slices.Grow(rw.cells, n)[:len(rw.cells)+n]
		for k, c := range run[:n] {
			cells[s.col+k] = rune(c)
		}
		rw.cells = cells
		s.col += n
		run = run[n:]
	}
}

func (s *Screen) lineFeed() {
	s.cur++
	if s.cur >= len(s.rows) {
		s.rows = append(s.rows, s.newRow())
	}
	s.scrollIfNeeded()
}

// scrollIfNeeded moves rows beyond the editable window into history. It
// evicts in batches so that a command printing millions of lines costs
// amortised O(1) per line.
func (s *Screen) scrollIfNeeded() {
	if len(s.rows) <= 2*s.screenRows {
		return
	}
	k := len(s.rows) - s.screenRows
	for _, top := range s.rows[:k] {
		if s.alt == nil {
			// The alternate screen has no scrollback.
			s.dropped += s.history.push(top.cells, top.wrapped)
		}
		if cap(top.cells) <= 4*s.cols {
			s.free = append(s.free, top.cells[:0])
		}
	}
	n := copy(s.rows, s.rows[k:])
	clear(s.rows[n:])
	s.rows = s.rows[:n]
	s.cur -= k
}

func (s *Screen) newRow() row {
	if n := len(s.free); n > 0 {
		c := s.free[n-1]
		s.free = s.free[:n-1]
		return row{cells: c}
	}
	return row{}
}

// text renders what is held as capture-pane -J would, each logical line
// right-stripped, lines joined with "\n". Trailing empty lines are kept so
// that callers can apply Python's rstrip themselves.
func (s *Screen) Text() string {
	// Sized once: a capture of a full history is megabytes, and growing
	// the builder by doubling would allocate several times that.
	size := len(s.rows) * (s.cols + 1)
	if s.alt == nil {
		s.history.each(func(cells []byte, _ bool) { size += len(cells) + 1 })
	}
	var b strings.Builder
	b.Grow(size)
	var line []byte
	first := true
	flush := func() {
		if !first {
			b.WriteByte('\n')
		}
		first = false
		b.Write(bytes.TrimRightFunc(line, IsSpace))
		line = line[:0]
	}
	if s.alt == nil {
		s.history.each(func(cells []byte, wrapped bool) {
			line = append(line, cells...)
			if !wrapped {
				flush()
			}
		})
	}
	for i, r := range s.rows {
		for _, c := range r.cells {
			line = utf8.AppendRune(line, c)
		}
		if !r.wrapped || i == len(s.rows)-1 {
			flush()
		}
	}
	return b.String()
}

// rowRing is a bounded FIFO of immutable rows stored as UTF-8, reusing buffers.
type rowRing struct {
	limit   int
	buf     [][]byte
	wrapped []bool
	start   int
	n       int
}

func (r *rowRing) clear() { r.start, r.n = 0, 0 }

func (r *rowRing) len() int { return r.n }

// push appends a row and reports how many rows were dropped (0 or 1).
func (r *rowRing) push(cells []rune, wrapped bool) int {
	if r.limit <= 0 {
		return 1
	}
	dropped := 0
	var idx int
	if r.n < r.limit {
		idx = (r.start + r.n) % r.limit
		if idx >= len(r.buf) {
			r.buf = append(r.buf, nil)
			r.wrapped = append(r.wrapped, false)
		}
		r.n++
	} else {
		idx = r.start
		r.start = (r.start + 1) % r.limit
		dropped = 1
	}
	b := r.buf[idx][:0]
	for _, c := range cells {
		if c < utf8.RuneSelf {
			b = append(b, byte(c))
		} else {
			b = utf8.AppendRune(b, c)
		}
	}
	r.buf[idx] = b
	r.wrapped[idx] = wrapped
	return dropped
}

func (r *rowRing) each(fn func(cells []byte, wrapped bool)) {
	for i := 0; i < r.n; i++ {
		idx := (r.start + i) % r.limit
		fn(r.buf[idx], r.wrapped[idx])
	}
}

// Dropped is how many rows fell off the front of the history since the
// last Reset: the text is the tail of what was printed.
func (s *Screen) Dropped() int { return s.dropped }

// IsSpace reports whether Python's str.strip() would strip r: rows are
// right-stripped as OpenHands' capture is, and the shell strips replies by
// the same rule.
func IsSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85:
		return true
	}
	return r > 0x7f && unicode.IsSpace(r)
}
