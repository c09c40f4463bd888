package fileops

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// textEncoding is the character encoding the editor reads and writes a file
// with. OpenHands asks charset_normalizer (see detectEncoding for how sbx
// approximates it) and then opens the file in Python text mode, which also
// turns "\r\n" and "\r" into "\n" when reading. Both halves are reproduced:
// textDecoder decodes and translates newlines, encodeText writes verbatim.
type textEncoding uint8

const (
	encUTF8    textEncoding = iota
	encUTF8SIG              // UTF-8 with a BOM, which reads hide and writes restore
	encUTF16LE              // UTF-16 with a BOM; BE/LE only says which BOM was found
	encUTF16BE
	encUTF32LE
	encUTF32BE
	encCP1252 // the single-byte fallback for Western text
	encCP1251 // Cyrillic, Windows
	encKOI8R  // Cyrillic, Unix
)

// codecName is the name Python puts into Unicode error messages.
func (e textEncoding) codecName() string {
	switch e {
	case encUTF8, encUTF8SIG:
		return "utf-8"
	case encUTF16LE:
		return "utf-16-le"
	case encUTF16BE:
		return "utf-16-be"
	case encUTF32LE:
		return "utf-32-le"
	case encUTF32BE:
		return "utf-32-be"
	default:
		return "charmap"
	}
}

func (e textEncoding) bom() []byte {
	switch e {
	case encUTF8SIG:
		return []byte{0xEF, 0xBB, 0xBF}
	case encUTF16LE:
		return []byte{0xFF, 0xFE}
	case encUTF16BE:
		return []byte{0xFE, 0xFF}
	case encUTF32LE:
		return []byte{0xFF, 0xFE, 0x00, 0x00}
	case encUTF32BE:
		return []byte{0x00, 0x00, 0xFE, 0xFF}
	}
	return nil
}

// singleByteTable returns the upper half of a single-byte code page.
func (e textEncoding) singleByteTable() ([128]rune, bool) {
	switch e {
	case encCP1252:
		return cp1252High(), true
	case encCP1251:
		return cp1251High(), true
	case encKOI8R:
		return koi8rHigh(), true
	}
	return [128]rune{}, false
}

// detectSampleSize is how much of a file OpenHands shows charset_normalizer.
const detectSampleSize = 1 << 20

// detectEncoding approximates charset_normalizer.detect() on the first MiB,
// with OpenHands' post-processing (confidence threshold 0.9, "ascii"
// promoted to UTF-8, UTF-8 when unsure):
//
//   - a UTF-8, UTF-32 or UTF-16 byte-order mark selects that encoding;
//   - a sample that is valid UTF-8 (pure ASCII included; an incomplete
//     sequence cut by the 1 MiB boundary is allowed) is UTF-8;
//   - anything else is single-byte text: Cyrillic (cp1251 or KOI8-R, see
//     encodingSniffer.cyrillic) when it looks like it, Windows-1252 otherwise.
//
// charset_normalizer knows dozens of legacy encodings and can decline to
// answer (OpenHands then reads as UTF-8 and fails); sbx always picks one of
// the three single-byte tables, which decode every byte. The sample is
// streamed through a small buffer rather than held.
func detectEncoding(path string) (textEncoding, error) {
	f, err := os.Open(path)
	if err != nil {
		if isIgnoredStatError(err) {
			return encUTF8, nil
		}
		return encUTF8, err
	}
	defer f.Close()
	var s encodingSniffer
	n, err := io.CopyBuffer(&s, io.LimitReader(f, detectSampleSize), make([]byte, 32<<10))
	if err != nil {
		return encUTF8, err
	}
	return s.result(n == detectSampleSize), nil
}

// encodingSniffer gathers, in one streaming pass, what detectEncoding needs:
// the first bytes (for a BOM), whether the bytes are valid UTF-8, and the
// letter statistics of the Cyrillic heuristic.
type encodingSniffer struct {
	head     [4]byte
	headLen  int
	carry    [4]byte // an incomplete UTF-8 sequence at the end of the last write
	carryLen int
	badUTF8  bool

	high, letters, paired, upperHalf int
	prevLetter, prevCounted          bool
}

func (s *encodingSniffer) Write(p []byte) (int, error) {
	if s.headLen < len(s.head) {
		s.headLen += copy(s.head[s.headLen:], p)
	}
	s.feedUTF8(p)
	for _, c := range p {
		letter := c >= 0xC0
		if c >= 0x80 {
			s.high++
		}
		if letter {
			s.letters++
			if c >= 0xE0 {
				s.upperHalf++
			}
			if s.prevLetter {
				s.paired++
				if !s.prevCounted {
					s.paired++
				}
			}
		}
		s.prevCounted = letter && s.prevLetter
		s.prevLetter = letter
	}
	return len(p), nil
}

func (s *encodingSniffer) feedUTF8(p []byte) {
	if s.badUTF8 || len(p) == 0 {
		return
	}
	if s.carryLen > 0 {
		var tmp [8]byte
		k := copy(tmp[:], s.carry[:s.carryLen])
		m := copy(tmp[k:], p[:min(len(p), 4)])
		buf := tmp[:k+m]
		if !utf8.FullRune(buf) {
			if _, _, incomplete := utf8Invalid(buf, false); !incomplete {
				s.badUTF8 = true
				return
			}
			s.carryLen = copy(s.carry[:], buf)
			return
		}
		r, size := utf8.DecodeRune(buf)
		if r == utf8.RuneError && size == 1 {
			s.badUTF8 = true
			return
		}
		p = p[size-k:]
		s.carryLen = 0
	}
	end := len(p)
	for k := 1; k <= 3 && k <= len(p); k++ {
		if utf8.RuneStart(p[len(p)-k]) {
			if !utf8.FullRune(p[len(p)-k:]) {
				end = len(p) - k
			}
			break
		}
	}
	if !utf8.Valid(p[:end]) {
		s.badUTF8 = true
		return
	}
	if tail := p[end:]; len(tail) > 0 {
		if _, _, incomplete := utf8Invalid(tail, false); !incomplete {
			s.badUTF8 = true
			return
		}
		s.carryLen = copy(s.carry[:], tail)
	}
}

// result picks the encoding; truncated says the bytes were a prefix of a
// longer file, so an incomplete final UTF-8 sequence is not an error.
func (s *encodingSniffer) result(truncated bool) textEncoding {
	head := s.head[:s.headLen]
	switch {
	case bytes.HasPrefix(head, encUTF8SIG.bom()):
		return encUTF8SIG
	case bytes.HasPrefix(head, encUTF32LE.bom()):
		return encUTF32LE
	case bytes.HasPrefix(head, encUTF32BE.bom()):
		return encUTF32BE
	case bytes.HasPrefix(head, encUTF16LE.bom()):
		return encUTF16LE
	case bytes.HasPrefix(head, encUTF16BE.bom()):
		return encUTF16BE
	}
	if !s.badUTF8 && (s.carryLen == 0 || truncated) {
		return encUTF8
	}
	if enc, ok := s.cyrillic(); ok {
		return enc
	}
	return encCP1252
}

// cyrillic recognises Russian-like single-byte text: in both cp1251 and
// KOI8-R the letters occupy 0xC0..0xFF, and Cyrillic words are runs of such
// bytes, whereas accented letters in Western text mostly sit alone between
// ASCII letters. Lower case dominates running text, which tells the two
// tables apart (cp1251 puts it in 0xE0..0xFF, KOI8-R in 0xC0..0xDF).
func (s *encodingSniffer) cyrillic() (textEncoding, bool) {
	if s.letters < 6 || s.letters*10 < s.high*8 || s.paired*10 < s.letters*6 {
		return 0, false
	}
	if s.upperHalf*2 >= s.letters {
		return encCP1251, true
	}
	return encKOI8R, true
}

// utf8Invalid examines b, which starts where utf8 decoding failed, and
// returns how many bytes Python's decoder reports as the bad sequence and
// why. incomplete is true when b is only a valid prefix cut short (which is
// "unexpected end of data" at the end of a file).
func utf8Invalid(b []byte, atEOF bool) (n int, reason string, incomplete bool) {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 2
	case c >= 0xE0 && c <= 0xEF:
		need = 3
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 4
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1, "invalid start byte", false
	}
	for k := 1; k < need; k++ {
		if k >= len(b) {
			if atEOF {
				return len(b), "unexpected end of data", false
			}
			return len(b), "", true
		}
		if b[k] < lo || b[k] > hi {
			return k, "invalid continuation byte", false
		}
		lo, hi = 0x80, 0xBF
	}
	return need, "", false // not reached for input that failed to decode
}

// decodeError is a UnicodeDecodeError as Python words it.
type decodeError struct {
	codec  string
	pos    int64 // of the first bad byte, in the text after a UTF-8 BOM
	n      int
	first  byte
	reason string
}

func (e *decodeError) Error() string {
	if e.n == 1 {
		return fmt.Sprintf("'%s' codec can't decode byte 0x%02x in position %d: %s", e.codec, e.first, e.pos, e.reason)
	}
	return fmt.Sprintf("'%s' codec can't decode bytes in position %d-%d: %s", e.codec, e.pos, e.pos+int64(e.n)-1, e.reason)
}

// textDecoder streams a file as UTF-8 text with Python's universal-newline
// translation ("\r\n" and lone "\r" become "\n").
type textDecoder struct {
	r         io.Reader
	enc       textEncoding
	raw       []byte // undecoded bytes carried over plus freshly read ones
	rawOff    int64  // position of raw[0], as Python counts it
	bomDone   bool
	pendingCR bool
	eof       bool
	done      bool
	out       []byte
}

const decodeChunk = 64 << 10

func newTextDecoder(r io.Reader, enc textEncoding) *textDecoder {
	return &textDecoder{r: r, enc: enc}
}

// next returns the next piece of text (valid only until the following call)
// or io.EOF.
func (d *textDecoder) next() ([]byte, error) {
	for {
		if d.done {
			return nil, io.EOF
		}
		if d.raw == nil {
			// Room for a chunk plus the few bytes of a character split
			// across two reads.
			d.raw = make([]byte, 0, decodeChunk+8)
		}
		if !d.eof {
			n := len(d.raw)
			m, err := io.ReadFull(d.r, d.raw[n:cap(d.raw)])
			d.raw = d.raw[:n+m]
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, err
				}
				d.eof = true
			}
		}
		if !d.bomDone {
			if bom := d.enc.bom(); bom != nil && bytes.HasPrefix(d.raw, bom) {
				d.raw = d.raw[len(bom):]
				if d.enc != encUTF8SIG {
					d.rawOff += int64(len(bom))
				}
			}
			d.bomDone = true
		}
		d.out = d.out[:0]
		used, err := d.decode()
		if err != nil {
			return nil, err
		}
		d.rawOff += int64(used)
		d.raw = append(d.raw[:0], d.raw[used:]...)
		if d.eof {
			if len(d.raw) != 0 {
				return nil, d.trailingError()
			}
			if d.pendingCR {
				d.out = append(d.out, '\n')
				d.pendingCR = false
			}
			d.done = true
		}
		if len(d.out) > 0 {
			return d.out, nil
		}
	}
}

// emit appends r to the output with newline translation.
func (d *textDecoder) emit(r rune) {
	if d.pendingCR {
		d.pendingCR = false
		d.out = append(d.out, '\n')
		if r == '\n' {
			return
		}
	}
	if r == '\r' {
		d.pendingCR = true
		return
	}
	d.out = utf8.AppendRune(d.out, r)
}

// decode converts as much of d.raw as forms complete characters.
func (d *textDecoder) decode() (int, error) {
	b := d.raw
	switch d.enc {
	case encUTF8, encUTF8SIG:
		i := 0
		for i < len(b) {
			c := b[i]
			if c < utf8.RuneSelf {
				if c == '\r' || d.pendingCR {
					d.emit(rune(c))
				} else {
					d.out = append(d.out, c)
				}
				i++
				continue
			}
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				n, reason, incomplete := utf8Invalid(b[i:], d.eof)
				if incomplete {
					return i, nil
				}
				return 0, &decodeError{codec: "utf-8", pos: d.rawOff + int64(i), n: n, first: c, reason: reason}
			}
			d.emit(r)
			i += size
		}
		return i, nil
	case encUTF16LE, encUTF16BE:
		i := 0
		for i+2 <= len(b) {
			u := d.unit16(b[i:])
			if !utf16.IsSurrogate(rune(u)) {
				d.emit(rune(u))
				i += 2
				continue
			}
			if u >= 0xDC00 {
				return 0, &decodeError{codec: d.enc.codecName(), pos: d.rawOff + int64(i), n: 2, reason: "illegal encoding"}
			}
			if i+4 > len(b) {
				if d.eof {
					return 0, &decodeError{codec: d.enc.codecName(), pos: d.rawOff + int64(i), n: len(b) - i, first: b[i], reason: "unexpected end of data"}
				}
				return i, nil
			}
			u2 := d.unit16(b[i+2:])
			if u2 < 0xDC00 || u2 > 0xDFFF {
				return 0, &decodeError{codec: d.enc.codecName(), pos: d.rawOff + int64(i), n: 2, reason: "illegal UTF-16 surrogate"}
			}
			d.emit(utf16.DecodeRune(rune(u), rune(u2)))
			i += 4
		}
		return i, nil
	case encUTF32LE, encUTF32BE:
		i := 0
		for i+4 <= len(b) {
			var v uint32
			if d.enc == encUTF32LE {
				v = uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
			} else {
				v = uint32(b[i+3]) | uint32(b[i+2])<<8 | uint32(b[i+1])<<16 | uint32(b[i])<<24
			}
			switch {
			case v > utf8.MaxRune:
				return 0, &decodeError{codec: d.enc.codecName(), pos: d.rawOff + int64(i), n: 4, reason: "code point not in range(0x110000)"}
			case v >= 0xD800 && v < 0xE000:
				return 0, &decodeError{codec: d.enc.codecName(), pos: d.rawOff + int64(i), n: 4, reason: "code point in surrogate code point range(0xd800, 0xe000)"}
			}
			d.emit(rune(v))
			i += 4
		}
		return i, nil
	default:
		table, _ := d.enc.singleByteTable()
		for _, c := range b {
			if c < 0x80 {
				d.emit(rune(c))
			} else {
				d.emit(table[c-0x80])
			}
		}
		return len(b), nil
	}
}

func (d *textDecoder) unit16(b []byte) uint16 { return unit16(b, d.enc == encUTF16LE) }

// trailingError reports bytes left over at the end of the file.
func (d *textDecoder) trailingError() error {
	b := d.raw
	switch d.enc {
	case encUTF8, encUTF8SIG:
		n, reason, _ := utf8Invalid(b, true)
		return &decodeError{codec: "utf-8", pos: d.rawOff, n: n, first: b[0], reason: reason}
	default:
		return &decodeError{codec: d.enc.codecName(), pos: d.rawOff, n: len(b), first: b[0], reason: "truncated data"}
	}
}

// readAllText decodes a whole file.
func readAllText(path string, enc textEncoding) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var sb strings.Builder
	if st, err := f.Stat(); err == nil && st.Size() > 0 && st.Size() < 1<<30 {
		sb.Grow(int(st.Size()))
	}
	d := newTextDecoder(f, enc)
	for {
		chunk, err := d.next()
		if errors.Is(err, io.EOF) {
			return sb.String(), nil
		}
		if err != nil {
			return "", err
		}
		sb.Write(chunk)
	}
}

// lineReader yields the lines of a decoded file the way iterating a Python
// text file does: split after each "\n", the last line possibly without one.
type lineReader struct {
	d       *textDecoder
	pending []byte
	chunk   []byte
	err     error
}

func newLineReader(r io.Reader, enc textEncoding) *lineReader {
	return &lineReader{d: newTextDecoder(r, enc)}
}

// next returns the next line, including its "\n"; the slice is only valid
// until the following call. It returns io.EOF after the last line.
func (lr *lineReader) next() ([]byte, error) {
	for {
		if i := bytes.IndexByte(lr.chunk, '\n'); i >= 0 {
			line := lr.chunk[:i+1]
			lr.chunk = lr.chunk[i+1:]
			if len(lr.pending) > 0 {
				lr.pending = append(lr.pending, line...)
				line = lr.pending
				lr.pending = lr.pending[:0]
			}
			return line, nil
		}
		lr.pending = append(lr.pending, lr.chunk...)
		lr.chunk = nil
		if lr.err != nil {
			if len(lr.pending) > 0 {
				line := lr.pending
				lr.pending = nil
				return line, nil
			}
			return nil, lr.err
		}
		lr.chunk, lr.err = lr.d.next()
	}
}

// translateNewlines applies the universal-newline translation to text that
// is about to be written and read back.
func translateNewlines(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// encodeError is a UnicodeEncodeError as Python words it.
type encodeError struct {
	codec  string
	char   rune
	start  int
	end    int // exclusive, in code points
	reason string
}

func (e *encodeError) Error() string {
	if e.end-e.start == 1 {
		return fmt.Sprintf("'%s' codec can't encode character %s in position %d: %s", e.codec, pyCharEscape(e.char), e.start, e.reason)
	}
	return fmt.Sprintf("'%s' codec can't encode characters in position %d-%d: %s", e.codec, e.start, e.end-1, e.reason)
}

// pyCharEscape renders one character the way UnicodeEncodeError does.
func pyCharEscape(r rune) string {
	switch {
	case r < 0x100:
		return fmt.Sprintf("'\\x%02x'", r)
	case r < 0x10000:
		return fmt.Sprintf("'\\u%04x'", r)
	default:
		return fmt.Sprintf("'\\U%08x'", r)
	}
}

// encodeText writes s in enc (with the encoding's BOM first). Nothing is
// written when s cannot be encoded: the check runs before the first byte,
// so a caller writing to a temporary file never leaves a partial result.
func encodeText(w io.Writer, s string, enc textEncoding) error {
	table, singleByte := enc.singleByteTable()
	if singleByte {
		if err := checkSingleByte(s, &table); err != nil {
			return err
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(enc.bom())
	switch enc {
	case encUTF8, encUTF8SIG:
		bw.WriteString(s)
	case encUTF16LE, encUTF16BE:
		var buf [4]byte
		for _, r := range s {
			r1, r2 := r, rune(-1)
			if r >= 0x10000 {
				r1, r2 = utf16.EncodeRune(r)
			}
			n := put16(buf[:], uint16(r1), enc == encUTF16LE)
			if r2 >= 0 {
				n += put16(buf[2:], uint16(r2), enc == encUTF16LE)
			}
			bw.Write(buf[:n])
		}
	case encUTF32LE, encUTF32BE:
		var buf [4]byte
		for _, r := range s {
			v := uint32(r)
			if enc == encUTF32LE {
				buf = [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
			} else {
				buf = [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
			}
			bw.Write(buf[:])
		}
	default:
		for _, r := range s {
			c, _ := singleByteOf(r, &table)
			bw.WriteByte(c)
		}
	}
	return bw.Flush()
}

func put16(b []byte, u uint16, le bool) int {
	if le {
		b[0], b[1] = byte(u), byte(u>>8)
	} else {
		b[0], b[1] = byte(u>>8), byte(u)
	}
	return 2
}

func singleByteOf(r rune, table *[128]rune) (byte, bool) {
	if r < 0x80 {
		return byte(r), true
	}
	for i, t := range table {
		if t == r {
			return byte(0x80 + i), true
		}
	}
	return 0, false
}

// checkSingleByte reports the first run of characters the table cannot
// represent, positioned in code points as Python does.
func checkSingleByte(s string, table *[128]rune) error {
	pos := 0
	start := -1
	var first rune
	for _, r := range s {
		_, ok := singleByteOf(r, table)
		switch {
		case !ok && start < 0:
			start, first = pos, r
		case ok && start >= 0:
			return &encodeError{codec: "charmap", char: first, start: start, end: pos, reason: "character maps to <undefined>"}
		}
		pos++
	}
	if start >= 0 {
		return &encodeError{codec: "charmap", char: first, start: start, end: pos, reason: "character maps to <undefined>"}
	}
	return nil
}

// The upper halves of the single-byte code pages (bytes 0x80..0xFF). Bytes
// a code page leaves undefined map to the code point of the same number, as
// in Latin-1, so every file decodes and round-trips byte for byte. They are
// functions returning arrays so that no package-level table can be mutated.

func cp1252High() [128]rune {
	return [128]rune{
		0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
		0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
		0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
		0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
		0x00A0, 0x00A1, 0x00A2, 0x00A3, 0x00A4, 0x00A5, 0x00A6, 0x00A7,
		0x00A8, 0x00A9, 0x00AA, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x00AF,
		0x00B0, 0x00B1, 0x00B2, 0x00B3, 0x00B4, 0x00B5, 0x00B6, 0x00B7,
		0x00B8, 0x00B9, 0x00BA, 0x00BB, 0x00BC, 0x00BD, 0x00BE, 0x00BF,
		0x00C0, 0x00C1, 0x00C2, 0x00C3, 0x00C4, 0x00C5, 0x00C6, 0x00C7,
		0x00C8, 0x00C9, 0x00CA, 0x00CB, 0x00CC, 0x00CD, 0x00CE, 0x00CF,
		0x00D0, 0x00D1, 0x00D2, 0x00D3, 0x00D4, 0x00D5, 0x00D6, 0x00D7,
		0x00D8, 0x00D9, 0x00DA, 0x00DB, 0x00DC, 0x00DD, 0x00DE, 0x00DF,
		0x00E0, 0x00E1, 0x00E2, 0x00E3, 0x00E4, 0x00E5, 0x00E6, 0x00E7,
		0x00E8, 0x00E9, 0x00EA, 0x00EB, 0x00EC, 0x00ED, 0x00EE, 0x00EF,
		0x00F0, 0x00F1, 0x00F2, 0x00F3, 0x00F4, 0x00F5, 0x00F6, 0x00F7,
		0x00F8, 0x00F9, 0x00FA, 0x00FB, 0x00FC, 0x00FD, 0x00FE, 0x00FF,
	}
}

func cp1251High() [128]rune {
	return [128]rune{
		0x0402, 0x0403, 0x201A, 0x0453, 0x201E, 0x2026, 0x2020, 0x2021,
		0x20AC, 0x2030, 0x0409, 0x2039, 0x040A, 0x040C, 0x040B, 0x040F,
		0x0452, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
		0x0098, 0x2122, 0x0459, 0x203A, 0x045A, 0x045C, 0x045B, 0x045F,
		0x00A0, 0x040E, 0x045E, 0x0408, 0x00A4, 0x0490, 0x00A6, 0x00A7,
		0x0401, 0x00A9, 0x0404, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x0407,
		0x00B0, 0x00B1, 0x0406, 0x0456, 0x0491, 0x00B5, 0x00B6, 0x00B7,
		0x0451, 0x2116, 0x0454, 0x00BB, 0x0458, 0x0405, 0x0455, 0x0457,
		0x0410, 0x0411, 0x0412, 0x0413, 0x0414, 0x0415, 0x0416, 0x0417,
		0x0418, 0x0419, 0x041A, 0x041B, 0x041C, 0x041D, 0x041E, 0x041F,
		0x0420, 0x0421, 0x0422, 0x0423, 0x0424, 0x0425, 0x0426, 0x0427,
		0x0428, 0x0429, 0x042A, 0x042B, 0x042C, 0x042D, 0x042E, 0x042F,
		0x0430, 0x0431, 0x0432, 0x0433, 0x0434, 0x0435, 0x0436, 0x0437,
		0x0438, 0x0439, 0x043A, 0x043B, 0x043C, 0x043D, 0x043E, 0x043F,
		0x0440, 0x0441, 0x0442, 0x0443, 0x0444, 0x0445, 0x0446, 0x0447,
		0x0448, 0x0449, 0x044A, 0x044B, 0x044C, 0x044D, 0x044E, 0x044F,
	}
}

func koi8rHigh() [128]rune {
	return [128]rune{
		0x2500, 0x2502, 0x250C, 0x2510, 0x2514, 0x2518, 0x251C, 0x2524,
		0x252C, 0x2534, 0x253C, 0x2580, 0x2584, 0x2588, 0x258C, 0x2590,
		0x2591, 0x2592, 0x2593, 0x2320, 0x25A0, 0x2219, 0x221A, 0x2248,
		0x2264, 0x2265, 0x00A0, 0x2321, 0x00B0, 0x00B2, 0x00B7, 0x00F7,
		0x2550, 0x2551, 0x2552, 0x0451, 0x2553, 0x2554, 0x2555, 0x2556,
		0x2557, 0x2558, 0x2559, 0x255A, 0x255B, 0x255C, 0x255D, 0x255E,
		0x255F, 0x2560, 0x2561, 0x0401, 0x2562, 0x2563, 0x2564, 0x2565,
		0x2566, 0x2567, 0x2568, 0x2569, 0x256A, 0x256B, 0x256C, 0x00A9,
		0x044E, 0x0430, 0x0431, 0x0446, 0x0434, 0x0435, 0x0444, 0x0433,
		0x0445, 0x0438, 0x0439, 0x043A, 0x043B, 0x043C, 0x043D, 0x043E,
		0x043F, 0x044F, 0x0440, 0x0441, 0x0442, 0x0443, 0x0436, 0x0432,
		0x044C, 0x044B, 0x0437, 0x0448, 0x044D, 0x0449, 0x0447, 0x044A,
		0x042E, 0x0410, 0x0411, 0x0426, 0x0414, 0x0415, 0x0424, 0x0413,
		0x0425, 0x0418, 0x0419, 0x041A, 0x041B, 0x041C, 0x041D, 0x041E,
		0x041F, 0x042F, 0x0420, 0x0421, 0x0422, 0x0423, 0x0416, 0x0412,
		0x042C, 0x042B, 0x0417, 0x0428, 0x042D, 0x0429, 0x0427, 0x042A,
	}
}
