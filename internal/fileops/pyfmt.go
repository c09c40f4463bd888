package fileops

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/internal/pyrepr"
)

// The observation texts are produced by Python code in OpenHands, so every
// value interpolated into them has to be rendered the way Python renders it:
// str() of paths, lists and floats, repr() of file names in OSError texts,
// Python's notion of whitespace and of line boundaries. The helpers here are
// the only place that knows those rules.

// pyIsSpace reports whether Python's str.isspace() holds for r. Go's
// unicode.IsSpace lacks the four information separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// pyIsLineBoundary reports whether str.splitlines() splits at r ("\r\n"
// is handled by the caller as one boundary).
func pyIsLineBoundary(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// pySplitlines is str.splitlines() without keepends.
func pySplitlines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !pyIsLineBoundary(r) {
			i += size
			continue
		}
		out = append(out, s[start:i])
		i += size
		if r == '\r' && i < len(s) && s[i] == '\n' {
			i++
		}
		start = i
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// pyListOfInts renders []int the way str(list) does: "[0, 12]".
func pyListOfInts(xs ...int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pyParseInt implements int(s) for a str argument in base 10: surrounding
// whitespace, an optional sign, Unicode decimal digits and single
// underscores between digits. It returns the canonical decimal text of the
// value and the value saturated to the int64 range.
func pyParseInt(s string) (text string, val int64, ok bool) {
	s = pyStrip(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var digits []byte
	prevUnderscore := true // forbids a leading underscore
	for _, r := range s {
		if r == '_' {
			if prevUnderscore {
				return "", 0, false
			}
			prevUnderscore = true
			continue
		}
		d, isDigit := pyDecimalValue(r)
		if !isDigit {
			return "", 0, false
		}
		digits = append(digits, byte('0'+d))
		prevUnderscore = false
	}
	if len(digits) == 0 || prevUnderscore {
		return "", 0, false
	}
	t := strings.TrimLeft(string(digits), "0")
	if t == "" {
		return "0", 0, true
	}
	if neg {
		t = "-" + t
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		v = math.MaxInt64
		if neg {
			v = math.MinInt64
		}
	}
	return t, v, true
}

// pyDecimalValue returns the value of a Unicode decimal digit (category Nd).
// Unicode guarantees those come in contiguous, ascending runs of ten, so the
// value is the distance from the start of the run modulo ten.
func pyDecimalValue(r rune) (int, bool) {
	if r >= '0' && r <= '9' {
		return int(r - '0'), true
	}
	if !unicode.Is(unicode.Nd, r) {
		return 0, false
	}
	for _, rg := range unicode.Nd.R16 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10, true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10, true
		}
	}
	return 0, false
}

// pyPath normalises a path the way str(pathlib.PurePosixPath(p)) does:
// repeated slashes and "." components go, ".." stays, a trailing slash goes,
// exactly two leading slashes are kept, and "" becomes ".".
func pyPath(p string) string {
	root := ""
	if strings.HasPrefix(p, "/") {
		root = "/"
		if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
			root = "//"
		}
	}
	parts := strings.Split(p, "/")
	kept := parts[:0]
	for _, s := range parts {
		if s != "" && s != "." {
			kept = append(kept, s)
		}
	}
	if root == "" && len(kept) == 0 {
		return "."
	}
	return root + strings.Join(kept, "/")
}

// pyJoin is str(Path(base) / rel).
func pyJoin(base, rel string) string {
	r := pyPath(rel)
	if strings.HasPrefix(r, "/") {
		return r
	}
	b := pyPath(base)
	if r == "." {
		return b
	}
	if b == "." {
		return r
	}
	if strings.HasSuffix(b, "/") {
		return b + r
	}
	return b + "/" + r
}

// pySuffix is PurePosixPath(p).suffix for a normalised path.
func pySuffix(p string) string {
	name := p[strings.LastIndexByte(p, '/')+1:]
	i := strings.LastIndexByte(name, '.')
	if i > 0 && i < len(name)-1 {
		return name[i:]
	}
	return ""
}

// pyOSError renders err as Python's str() of the OSError that the same
// system call raises for filename: "[Errno 2] No such file or directory:
// '/x'". glibc's strerror texts are Go's with the first letter upper-cased.
func pyOSError(err error, filename string) string {
	if strings.IndexByte(filename, 0) >= 0 {
		return "embedded null byte"
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err.Error()
		}
		return err.Error()
	}
	return fmt.Sprintf("[Errno %d] %s: %s", int(errno), pyStrerror(errno), pyrepr.Str(filename))
}

func pyStrerror(errno syscall.Errno) string {
	msg := errno.Error()
	if msg == "" {
		return msg
	}
	r, size := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[size:]
}

// pyExists is Path.exists(): stat through symbolic links, with the errors
// pathlib treats as "does not exist" reported as false and the others
// returned (OpenHands lets those escape as a failed request).
func pyExists(p string) (bool, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return false, nil
	}
	_, err := os.Stat(p)
	if err == nil {
		return true, nil
	}
	if isIgnoredStatError(err) {
		return false, nil
	}
	return false, err
}

// isIgnoredStatError mirrors pathlib's _ignore_error: ENOENT, ENOTDIR,
// EBADF and ELOOP mean "no such file".
func isIgnoredStatError(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.ELOOP)
}

// runeLen is Python's len() of a str.
func runeLen(s string) int { return utf8.RuneCountInString(s) }

// truncateRunes returns the first n code points of s and whether s was longer.
func truncateRunes(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i], true
		}
		count++
	}
	return s, false
}
