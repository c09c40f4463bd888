package fileops

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"unicode/utf16"
	"unicode/utf8"
)

// binarySniffSize is how much of a file binaryornot looks at.
const binarySniffSize = 1024

// isBinaryPath is binaryornot 0.4.4's is_binary(), which OpenHands uses
// both for the read action's first check and for the editor's validation:
// a name ending in ".pyc" is binary whether or not it exists; a file that
// cannot be opened (missing, a directory) is text; otherwise the first 1 KiB
// decides (looksBinary).
//
// Only regular files are opened: binaryornot would also read a FIFO or a
// device (and block on a FIFO with no writer), sbx calls them text and lets
// the caller refuse them.
func isBinaryPath(path string) bool {
	if strings.HasSuffix(path, ".pyc") {
		return true
	}
	if strings.IndexByte(path, 0) >= 0 {
		return false
	}
	// O_NONBLOCK so that a FIFO swapped in after any earlier stat cannot
	// block the open; it has no effect on regular files.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	buf := make([]byte, binarySniffSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false
	}
	return looksBinary(buf[:n])
}

// looksBinary is binaryornot's is_binary_string(): a ratio test on control
// and high bytes, overridden by a confident character-set guess that
// decodes the chunk, and finally the presence of NUL or 0xFF bytes.
func looksBinary(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	notPrintableASCII, notHigh := 0, 0
	for _, c := range b {
		if !(c >= 32 && c <= 126) && !isBinaryornotControl(c) {
			notPrintableASCII++
		}
		if c < 127 {
			notHigh++
		}
	}
	r1 := float64(notPrintableASCII) / float64(len(b))
	r2 := float64(notHigh) / float64(len(b))
	likelyBinary := (r1 > 0.3 && r2 < 0.05) || (r1 > 0.8 && r2 > 0.8)
	decodable := confidentlyDecodable(b)
	if likelyBinary {
		return !decodable
	}
	if decodable {
		return false
	}
	return bytes.IndexByte(b, 0x00) >= 0 || bytes.IndexByte(b, 0xFF) >= 0
}

func isBinaryornotControl(c byte) bool {
	switch c {
	case '\n', '\r', '\t', '\f', '\b':
		return true
	}
	return false
}

// confidentlyDecodable approximates binaryornot's use of chardet: true when
// chardet would name an encoding other than ASCII with confidence above 0.9
// and the chunk decodes strictly with it.
//
//   - A UTF-8, UTF-32 or UTF-16 BOM is certain (confidence 1.0); the chunk
//     must then decode as a whole (a character cut at the 1 KiB boundary
//     fails, as in Python).
//   - Without a BOM, chardet's UTF-8 prober reaches 0.9 at four multi-byte
//     characters (1 - 0.99·0.5^n).
//   - Pure ASCII is "ascii", which binaryornot ignores.
//   - chardet's single-byte language models are approximated by the
//     Cyrillic heuristic of the encoding detector only; other legacy
//     encodings are never "decodable" here.
func confidentlyDecodable(b []byte) bool {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return utf8.Valid(b[3:])
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0x00, 0x00}):
		return validUTF32(b[4:], true)
	case bytes.HasPrefix(b, []byte{0x00, 0x00, 0xFE, 0xFF}):
		return validUTF32(b[4:], false)
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF, 0x00, 0x00}), bytes.HasPrefix(b, []byte{0x00, 0x00, 0xFF, 0xFE}):
		// UCS-4 in unusual octet orders: chardet names it, Python has no
		// codec for it.
		return false
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		return validUTF16(b[2:], true)
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return validUTF16(b[2:], false)
	}
	hasHigh := false
	for _, c := range b {
		if c >= 0x80 {
			hasHigh = true
			break
		}
	}
	if !hasHigh {
		return false
	}
	if utf8.Valid(b) {
		multi := 0
		for _, r := range string(b) {
			if r >= 0x80 {
				multi++
			}
		}
		return multi >= 4
	}
	var s encodingSniffer
	s.Write(b)
	_, ok := s.cyrillic()
	return ok
}

func validUTF16(b []byte, le bool) bool {
	if len(b)%2 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 2 {
		u := unit16(b[i:], le)
		if !utf16.IsSurrogate(rune(u)) {
			continue
		}
		if u >= 0xDC00 || i+4 > len(b) {
			return false
		}
		u2 := unit16(b[i+2:], le)
		if u2 < 0xDC00 || u2 > 0xDFFF {
			return false
		}
		i += 2
	}
	return true
}

func unit16(b []byte, le bool) uint16 {
	if le {
		return uint16(b[0]) | uint16(b[1])<<8
	}
	return uint16(b[1]) | uint16(b[0])<<8
}

func validUTF32(b []byte, le bool) bool {
	if len(b)%4 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 4 {
		var v uint32
		if le {
			v = uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
		} else {
			v = uint32(b[i+3]) | uint32(b[i+2])<<8 | uint32(b[i+1])<<16 | uint32(b[i])<<24
		}
		if v > utf8.MaxRune || (v >= 0xD800 && v < 0xE000) {
			return false
		}
	}
	return true
}
