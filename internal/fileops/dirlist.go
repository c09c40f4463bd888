package fileops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"
)

// OpenHands lists a directory by running, through a shell,
//
//	find -L <path> -maxdepth 2 -not \( -path '<path>/\.*' -o -path '<path>/*/\.*' \) | sort
//
// and counts hidden entries with find -mindepth 1 -maxdepth 1 -name '.*'.
// listDir reproduces what the agent sees from that pipeline in the runtime
// image's C.UTF-8 locale, without a subprocess:
//
//   - symbolic links are followed; a dangling link is listed as a file;
//   - hidden entries are filtered with fnmatch semantics on the whole path
//     ("*" crosses "/"), so glob characters in <path> behave as they do in
//     find, and hidden directories are still walked (their errors count);
//   - order is byte order of the full paths (sort in C.UTF-8 compares code
//     points, i.e. UTF-8 bytes), so "ab-c" sorts before "ab/x";
//   - find's diagnostics are reproduced for the cases it reports: a
//     directory that cannot be read, an entry that cannot be stat'ed (for
//     example a symbolic-link loop) and a directory that is one of its own
//     ancestors ("File system loop detected"). Any diagnostic turns the
//     whole observation into "ERROR:\n" + the diagnostics, as in OpenHands.
//
// Differences: the diagnostics come in name order, find's in readdir order;
// the quoting inside them is plain ‘…’ even for names find would escape;
// and paths containing spaces or quotes work here, while OpenHands'
// unquoted shell command breaks on them.
type dirListing struct {
	stdout string // the sorted listing, one path per line, "\n"-terminated
	stderr string // find's diagnostics
	hidden int    // entries at depth 1 whose name starts with "."
	isDir  map[string]bool
}

type devIno struct{ dev, ino uint64 }

func devInoOf(st fs.FileInfo) (devIno, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return devIno{}, false
	}
	return devIno{uint64(sys.Dev), sys.Ino}, true
}

type ancestor struct {
	id   devIno
	path string
}

func listDir(ctx context.Context, root string) (*dirListing, error) {
	l := &dirListing{isDir: make(map[string]bool)}
	var out []string
	var diag strings.Builder
	excl1 := root + `/\.*`
	excl2 := root + `/*/\.*`
	emit := func(p string, dir bool) {
		if fnmatch(excl1, p) || fnmatch(excl2, p) {
			return
		}
		out = append(out, p)
		if dir {
			l.isDir[p] = true
		}
	}

	rootSt, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	rootID, _ := devInoOf(rootSt)
	emit(root, true)
	chain := []ancestor{{rootID, root}}

	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			fmt.Fprintf(&diag, "find: ‘%s’: %s\n", dir, findStrerror(err))
		}
		for _, e := range entries {
			name := e.Name()
			p := childPath(dir, name)
			if depth == 1 && strings.HasPrefix(name, ".") {
				l.hidden++
			}
			st, err := os.Stat(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					if _, lerr := os.Lstat(p); lerr == nil {
						emit(p, false) // dangling symbolic link
						continue
					}
				}
				fmt.Fprintf(&diag, "find: ‘%s’: %s\n", p, findStrerror(err))
				continue
			}
			if !st.IsDir() {
				emit(p, false)
				continue
			}
			id, _ := devInoOf(st)
			if i := slices.IndexFunc(chain, func(a ancestor) bool { return a.id == id }); i >= 0 {
				fmt.Fprintf(&diag, "find: File system loop detected; ‘%s’ is part of the same file system loop as ‘%s’.\n", p, chain[i].path)
				continue
			}
			emit(p, true)
			if depth < 2 {
				chain = append(chain, ancestor{id, p})
				if err := walk(p, depth+1); err != nil {
					return err
				}
				chain = chain[:len(chain)-1]
			}
		}
		return nil
	}
	if err := walk(root, 1); err != nil {
		return nil, err
	}
	slices.Sort(out)
	var sb strings.Builder
	for _, p := range out {
		sb.WriteString(p)
		sb.WriteByte('\n')
	}
	l.stdout = sb.String()
	l.stderr = diag.String()
	return l, nil
}

// childPath joins like fts: one trailing slash of the parent is dropped
// before the separator, so "/" gives "/bin" and "//" gives "//bin".
func childPath(dir, name string) string {
	return strings.TrimSuffix(dir, "/") + "/" + name
}

func findStrerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return pyStrerror(errno)
	}
	return err.Error()
}

// fnmatch is fnmatch(3) without flags, as find's -path uses it: "*" and
// "?" match any character including "/", "[...]" is a bracket expression
// ("!" or "^" negates, ranges allowed), and "\" quotes the next character.
// An unterminated "[" matches itself.
func fnmatch(pattern, name string) bool {
	px, nx := 0, 0
	starPx, starNx := -1, -1
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					_, size := utf8.DecodeRuneInString(name[nx:])
					px++
					nx += size
					continue
				}
			case '[':
				if nx < len(name) {
					r, size := utf8.DecodeRuneInString(name[nx:])
					if matched, width, ok := matchBracket(pattern[px:], r); ok {
						if matched {
							px += width
							nx += size
							continue
						}
					} else if name[nx] == '[' {
						px++
						nx++
						continue
					}
				}
			default:
				pc := c
				pw := 1
				if c == '\\' && px+1 < len(pattern) {
					pc = pattern[px+1]
					pw = 2
				}
				if nx < len(name) && name[nx] == pc {
					px += pw
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			_, size := utf8.DecodeRuneInString(name[starNx:])
			starNx += size
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

// matchBracket matches r against the bracket expression at the start of p.
// ok is false when the expression is unterminated.
func matchBracket(p string, r rune) (matched bool, width int, ok bool) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return matched != negate, i + 1, true
		}
		first = false
		lo, size := bracketChar(p[i:])
		i += size
		hi := lo
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			hi, size = bracketChar(p[i+1:])
			i += 1 + size
		}
		if lo <= r && r <= hi {
			matched = true
		}
	}
	return false, 0, false
}

func bracketChar(p string) (rune, int) {
	if p[0] == '\\' && len(p) > 1 {
		r, size := utf8.DecodeRuneInString(p[1:])
		return r, 1 + size
	}
	return utf8.DecodeRuneInString(p)
}
