package sandboxd

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// decodeJSONInPlace decodes a JSON text that json.Valid accepted into the
// values json.Decoder with UseNumber produces (map[string]any, []any,
// string, json.Number, bool, nil), without copying its strings: each
// string is unescaped in place, over its own quoted bytes (unescaping
// never lengthens a string), and refers to buf from then on.
//
// That is what keeps a write action's 64 MiB content at one copy (the
// body) instead of three (body, the decoder's buffer, the string). The
// caller gives up buf: it must never be written again. Strings whose
// decoding could grow (invalid UTF-8 becomes U+FFFD) or that hold
// surrogate escapes are left to encoding/json, which allocates them, so
// that every value is exactly what encoding/json would give.
func decodeJSONInPlace(buf []byte) (any, error) {
	d := &inPlace{buf: buf}
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	return v, nil
}

type inPlace struct {
	buf []byte
	off int
}

func (d *inPlace) skipSpace() {
	for d.off < len(d.buf) {
		switch d.buf[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// value decodes the value at d.off. The text is known to be valid JSON,
// so only its shape is followed, never checked.
func (d *inPlace) value() (any, error) {
	d.skipSpace()
	switch c := d.buf[d.off]; c {
	case '{':
		d.off++
		m := map[string]any{}
		for {
			d.skipSpace()
			if d.buf[d.off] == '}' {
				d.off++
				return m, nil
			}
			if d.buf[d.off] == ',' {
				d.off++
				d.skipSpace()
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			d.skipSpace()
			d.off++ // ':'
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	case '[':
		d.off++
		a := []any{}
		for {
			d.skipSpace()
			if d.buf[d.off] == ']' {
				d.off++
				return a, nil
			}
			if d.buf[d.off] == ',' {
				d.off++
			}
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case '"':
		return d.str()
	case 't':
		d.off += 4
		return true, nil
	case 'f':
		d.off += 5
		return false, nil
	case 'n':
		d.off += 4
		return nil, nil
	default:
		start := d.off
		for d.off < len(d.buf) {
			switch d.buf[d.off] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return json.Number(d.buf[start:d.off]), nil
			}
			d.off++
		}
		return json.Number(d.buf[start:d.off]), nil
	}
}

// str decodes the string whose opening quote is at d.off.
func (d *inPlace) str() (string, error) {
	start := d.off
	r := start + 1
	end := r // the closing quote
	simple := true
	for {
		c := d.buf[end]
		if c == '"' {
			break
		}
		if c == '\\' {
			if d.buf[end+1] == 'u' {
				if n, _ := strconv.ParseUint(string(d.buf[end+2:end+6]), 16, 32); n >= 0xD800 && n < 0xE000 {
					simple = false
				}
				end += 6
				continue
			}
			end += 2
			continue
		}
		end++
	}
	d.off = end + 1
	raw := d.buf[start+1 : end]
	if !simple || !utf8.Valid(raw) {
		var s string
		if err := json.Unmarshal(d.buf[start:end+1], &s); err != nil {
			return "", err
		}
		return s, nil
	}
	w := start + 1
	for r < end {
		c := d.buf[r]
		if c != '\\' {
			d.buf[w] = c
			w++
			r++
			continue
		}
		switch e := d.buf[r+1]; e {
		case 'u':
			n, _ := strconv.ParseUint(string(d.buf[r+2:r+6]), 16, 32)
			w += utf8.EncodeRune(d.buf[w:], rune(n))
			r += 6
			continue
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		default: // '"', '\\', '/'
			c = e
		}
		d.buf[w] = c
		w++
		r += 2
	}
	if w == start+1 {
		return "", nil
	}
	return unsafe.String(&d.buf[start+1], w-start-1), nil
}
