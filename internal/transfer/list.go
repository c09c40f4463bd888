package transfer

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ListFiles returns the entries of a directory the way /list_files does.
//
// path "" means workdir (the server's initial working directory, not the
// shell's current one); a relative path is joined to workdir; an absolute
// one is used as is. A missing path, a path that is not a directory, and any
// error give an empty, non-nil list, so that it encodes as JSON [].
//
// Entries are those of the directory, hidden ones included, whose target
// exists: os.path.exists follows symbolic links, so a dangling link is left
// out and a link to a directory counts as a directory. Directories get a
// trailing "/" and come first, then files; each group is sorted by its
// lower-cased name, directories compared with their "/" (so "ab-c/" sorts
// before "ab/"). Names whose lower-cased forms are equal are ordered by their
// bytes, where Python keeps the file system's order.
func ListFiles(workdir, path string) []string {
	full := path
	switch {
	case path == "":
		full = workdir
	case !filepath.IsAbs(path):
		full = pyJoin(workdir, path)
	}
	entries, err := os.ReadDir(full)
	if err != nil {
		return []string{}
	}
	var dirs, files []string
	for _, e := range entries {
		fi, err := os.Stat(pyJoin(full, e.Name()))
		if err != nil {
			continue
		}
		if fi.IsDir() {
			dirs = append(dirs, e.Name()+"/")
		} else {
			files = append(files, e.Name())
		}
	}
	sortByLowerName(dirs)
	sortByLowerName(files)
	return append(append(make([]string, 0, len(dirs)+len(files)), dirs...), files...)
}

// pyJoin joins like os.path.join for a relative second part: without
// cleaning, so that "link/../x" resolves the way the kernel does, not the
// way filepath.Clean would.
func pyJoin(dir, name string) string {
	if dir == "" || strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

func sortByLowerName(names []string) {
	keys := make(map[string][]rune, len(names))
	for _, n := range names {
		keys[n] = pythonLower(n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(slices.Compare(keys[a], keys[b]), strings.Compare(a, b))
	})
}

// pythonLower returns the code points of Python's str.lower() of a file name
// as os.listdir decodes it, so that comparing them orders names the way
// Python's sort does: bytes that are not UTF-8 become the surrogates
// U+DC80..U+DCFF (surrogateescape), and "İ" lowers to "i̇" (two code points)
// as in Python. Python's context-dependent final-sigma rule is not applied.
func pythonLower(s string) []rune {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, 0xDC00+rune(s[i]))
		case r == 'İ':
			out = append(out, 'i', '\u0307')
		default:
			out = append(out, unicode.ToLower(r))
		}
		i += size
	}
	return out
}
