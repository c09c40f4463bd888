// Package pyrepr formats values the way Python's repr() does, for error
// messages that Python clients (SWE-ReX, SWE-agent) show to agents and
// that must read the same whichever server produced them.
package pyrepr

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Str is repr(s) for a Python str: single quotes unless s holds a single
// quote and no double quote, the usual escapes, \xNN / \uNNNN / \UNNNNNNNN
// for what Python does not print. Bytes that are not UTF-8 are shown as
// the surrogate escapes Python's backslashreplace decoding would give
// (\udcNN), so nothing is lost.
func Str(s string) string {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(quote)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\udc`)
			b.WriteString(hex2(s[i]))
			i++
			continue
		}
		i += size
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case r < 0x80 || printable(r):
			b.WriteRune(r)
		case r <= 0xff:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case r <= 0xffff:
			b.WriteString(`\u`)
			b.WriteString(pad(strconv.FormatInt(int64(r), 16), 4))
		default:
			b.WriteString(`\U`)
			b.WriteString(pad(strconv.FormatInt(int64(r), 16), 8))
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// printable approximates str.isprintable for one non-ASCII rune: Python
// prints letters, marks, numbers, punctuation and symbols, and escapes
// separators, controls, format characters and unassigned code points,
// which is unicode.IsPrint's split too.
func printable(r rune) bool { return unicode.IsPrint(r) }

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

// Float is repr(f) for a Python float: the shortest digits that read back
// as f, in positional notation for exponents from -4 to 15 (always with a
// fractional part, "5.0") and scientific beyond ("1e-05", "1.5e+16").
func Float(f float64) string {
	switch {
	case f != f:
		return "nan"
	case f > 1.7976931348623157e308:
		return "inf"
	case f < -1.7976931348623157e308:
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	return mant + "e" + sign + pad(strconv.Itoa(exp), 2)
}
