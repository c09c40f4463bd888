// Package pyliteral parses the subset of Python literal syntax that
// OpenHands users write in configuration and that old OpenHands clients
// send in actions: dicts, lists, tuples, strings, numbers, True, False and
// None — what ast.literal_eval accepts for data, without any evaluation.
package pyliteral

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

// Parse returns the value of a Python literal: map[string]any for a dict
// with string keys, []any for a list or tuple, string, int64 (or
// *big.Int when it does not fit), float64, bool, or nil for None.
func Parse(src string) (any, error) {
	p := &parser{s: src}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.errorf("unexpected %q after the value", p.rest(10))
	}
	return v, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("python literal at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *parser) rest(n int) string {
	r := p.s[p.i:]
	if len(r) > n {
		r = r[:n]
	}
	return r
}

func (p *parser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		case '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case '\\':
			if strings.HasPrefix(p.s[p.i:], "\\\n") {
				p.i += 2
				continue
			}
			return
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested too deeply")
	}
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end of input")
	}
	c := p.s[p.i]
	switch {
	case c == '{':
		return p.dict(depth)
	case c == '[':
		return p.seq(depth, '[', ']')
	case c == '(':
		return p.seq(depth, '(', ')')
	case c == '\'' || c == '"':
		return p.strings()
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	case isIdentStart(c):
		j := p.i
		for j < len(p.s) && (isIdentStart(p.s[j]) || (p.s[j] >= '0' && p.s[j] <= '9')) {
			j++
		}
		word := p.s[p.i:j]
		switch word {
		case "True":
			p.i = j
			return true, nil
		case "False":
			p.i = j
			return false, nil
		case "None":
			p.i = j
			return nil, nil
		}
		// A string prefix such as r'…', b'…', u'…'.
		if j < len(p.s) && (p.s[j] == '\'' || p.s[j] == '"') && len(word) <= 2 && strings.Trim(strings.ToLower(word), "rbu") == "" {
			return p.strings()
		}
		return nil, p.errorf("%q is not a literal", word)
	}
	return nil, p.errorf("unexpected %q", p.rest(10))
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func (p *parser) dict(depth int) (any, error) {
	p.i++ // {
	m := map[string]any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return m, nil
		}
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return nil, p.errorf("dict keys must be strings, got %v", k)
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errorf("expected ':' after a dict key")
		}
		p.i++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[ks] = v
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return m, nil
		}
		return nil, p.errorf("expected ',' or '}' in a dict")
	}
}

func (p *parser) seq(depth int, open, close byte) (any, error) {
	p.i++
	out := []any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == close {
			p.i++
			return out, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == close {
			p.i++
			return out, nil
		}
		return nil, p.errorf("expected ',' or %q", string(close))
	}
}

// strings parses one or more adjacent string literals, which Python
// concatenates.
func (p *parser) strings() (any, error) {
	var b strings.Builder
	n := 0
	for {
		p.space()
		start := p.i
		raw := false
		for p.i < len(p.s) && strings.IndexByte("rRbBuU", p.s[p.i]) >= 0 && p.i-start < 2 {
			if p.s[p.i] == 'r' || p.s[p.i] == 'R' {
				raw = true
			}
			p.i++
		}
		if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
			p.i = start
			if n == 0 {
				return nil, p.errorf("expected a string")
			}
			return b.String(), nil
		}
		if err := p.str(&b, raw); err != nil {
			return nil, err
		}
		n++
	}
}

func (p *parser) str(b *strings.Builder, raw bool) error {
	q := p.s[p.i]
	triple := strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))
	if triple {
		p.i += 3
	} else {
		p.i++
	}
	for {
		if p.i >= len(p.s) {
			return p.errorf("unterminated string")
		}
		c := p.s[p.i]
		if c == q {
			if !triple {
				p.i++
				return nil
			}
			if strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3)) {
				p.i += 3
				return nil
			}
		}
		if c == '\n' && !triple {
			return p.errorf("unterminated string")
		}
		if c == '\\' && p.i+1 < len(p.s) {
			if raw {
				b.WriteByte(c)
				b.WriteByte(p.s[p.i+1])
				p.i += 2
				continue
			}
			if err := p.escape(b); err != nil {
				return err
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(p.s[p.i:])
		b.WriteRune(r)
		p.i += size
	}
}

func (p *parser) escape(b *strings.Builder) error {
	e := p.s[p.i+1]
	p.i += 2
	simple := map[byte]string{'\\': "\\", '\'': "'", '"': "\"", 'n': "\n", 't': "\t", 'r': "\r", 'a': "\a", 'b': "\b", 'f': "\f", 'v': "\v", '0': "\x00", '\n': ""}
	hexLen := map[byte]int{'x': 2, 'u': 4, 'U': 8}
	if n, ok := hexLen[e]; ok {
		if p.i+n > len(p.s) {
			return p.errorf("truncated \\%c escape", e)
		}
		v, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
		if err != nil || v > utf8.MaxRune {
			return p.errorf("invalid \\%c escape", e)
		}
		b.WriteRune(rune(v))
		p.i += n
		return nil
	}
	if e >= '0' && e <= '7' {
		j := p.i - 1
		k := j
		for k < len(p.s) && k < j+3 && p.s[k] >= '0' && p.s[k] <= '7' {
			k++
		}
		v, _ := strconv.ParseUint(p.s[j:k], 8, 32)
		b.WriteRune(rune(v))
		p.i = k
		return nil
	}
	if s, ok := simple[e]; ok {
		b.WriteString(s)
		return nil
	}
	// Unknown escapes are kept verbatim, as Python does.
	b.WriteByte('\\')
	b.WriteByte(e)
	return nil
}

func (p *parser) number() (any, error) {
	start := p.i
	neg := false
	for p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] == '+') {
		if p.s[p.i] == '-' {
			neg = !neg
		}
		p.i++
		p.space()
	}
	j := p.i
	for j < len(p.s) && strings.IndexByte("0123456789.eE+-_xXoObBabcdefABCDEF", p.s[j]) >= 0 {
		// Stop at a sign that is not an exponent's.
		if (p.s[j] == '+' || p.s[j] == '-') && j > p.i && p.s[j-1] != 'e' && p.s[j-1] != 'E' {
			break
		}
		j++
	}
	lit := strings.ReplaceAll(p.s[p.i:j], "_", "")
	if lit == "" {
		p.i = start
		return nil, p.errorf("expected a number")
	}
	p.i = j
	sign := ""
	if neg {
		sign = "-"
	}
	if !strings.ContainsAny(lit, ".eE") || strings.HasPrefix(strings.ToLower(lit), "0x") {
		if n, err := strconv.ParseInt(sign+lit, 0, 64); err == nil {
			return n, nil
		}
		bi, ok := new(big.Int).SetString(sign+lit, 0)
		if ok {
			return bi, nil
		}
		return nil, errors.New("python literal: invalid number " + strconv.Quote(lit))
	}
	f, err := strconv.ParseFloat(sign+lit, 64)
	if err != nil {
		return nil, errors.New("python literal: invalid number " + strconv.Quote(lit))
	}
	return f, nil
}
