package session

import (
	"errors"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// prepare turns what the agent sent into the line typed into bash, so
// that bash prints exactly one prompt: nothing for blank or comment-only
// input (upstream sends an empty line), the text itself on one line, and
// several lines as one { …; } group, which bash reads whole before it
// runs any of it and so prompts once. Upstream joins bashlex's top-level
// pieces with " ; " for the same end.
func prepare(command string) string {
	c := pyStrip(command)
	if c == "" || allComments(c) {
		return ""
	}
	if !strings.Contains(c, "\n") {
		return c
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(c), "")
	if err == nil && len(f.Stmts) == 0 {
		return ""
	}
	return "{ " + c + "\n}"
}

func allComments(c string) bool {
	for _, l := range strings.Split(c, "\n") {
		if !strings.HasPrefix(pyStrip(l), "#") {
			return false
		}
	}
	return true
}

// pyIsSpace is str.isspace for one rune: Unicode white space plus the
// four ASCII separators Python also counts.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyLstrip(s string) string { return strings.TrimLeftFunc(s, pyIsSpace) }

// decode is Python's bytes.decode("utf-8", errors="backslashreplace").
func decode(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			const hex = "0123456789abcdef"
			sb.WriteString(`\x`)
			sb.WriteByte(hex[b[0]>>4])
			sb.WriteByte(hex[b[0]&15])
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
