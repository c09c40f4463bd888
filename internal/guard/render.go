package guard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Counts sums a change list by kind.
type Counts struct {
	Added, Modified, Deleted, Metadata, Risky int
}

// Count sums changes.
func Count(cs []Change) Counts {
	var n Counts
	for _, c := range cs {
		switch c.Kind {
		case Added:
			n.Added++
		case Modified:
			n.Modified++
		case Deleted:
			n.Deleted++
		case Metadata:
			n.Metadata++
		}
		if c.Risky {
			n.Risky++
		}
	}
	return n
}

func (n Counts) String() string {
	s := fmt.Sprintf("%d changes: %d added, %d modified, %d deleted, %d metadata only",
		n.Added+n.Modified+n.Deleted+n.Metadata, n.Added, n.Modified, n.Deleted, n.Metadata)
	if n.Risky > 0 {
		s += fmt.Sprintf("; %d could run code on the host (marked !) and are applied only when named", n.Risky)
	}
	return s
}

// quoted is p as a listing may print it: as is when every byte is a
// printable character, else in Go's quoted form, so that a name cannot
// forge a line of the listing or send the terminal escape sequences (the
// listing is what the user reviews).
func quoted(p string) string {
	if !utf8.ValidString(p) || strings.HasPrefix(p, `"`) {
		return strconv.Quote(p)
	}
	for _, r := range p {
		if !unicode.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}

// name is a change's path as the listings show it.
func (c Change) name() string {
	s := quoted(c.Path)
	if c.Type == Dir {
		s += "/"
	}
	switch {
	case c.Type == Symlink && c.Kind != Deleted:
		s += " -> " + quoted(c.Link)
	case c.HardLink != "":
		s += " (hard link of " + quoted(c.HardLink) + ")"
	case c.Type == Special:
		s += " (" + c.Mode.Type().String() + ", not applied)"
	}
	if c.Mode&fs.ModeSetuid != 0 && c.Type != Symlink {
		s += " (setuid)"
	}
	if c.Mode&fs.ModeSetgid != 0 && c.Type == File {
		s += " (setgid)"
	}
	return s
}

// WriteText lists the changes one per line: a letter (A, M, D, T), "!"
// for a risky path, the path.
func WriteText(w io.Writer, cs []Change) error {
	bw := bufio.NewWriter(w)
	for _, c := range cs {
		mark := " "
		if c.Risky {
			mark = "!"
		}
		fmt.Fprintf(bw, "%s%s %s\n", c.Kind.Letter(), mark, c.name())
	}
	return bw.Flush()
}

// WriteStat lists each change with its lines added and removed (bytes
// for binary files), then the counts.
func WriteStat(w io.Writer, l Layer, cs []Change) error {
	bw := bufio.NewWriter(w)
	width := 0
	for _, c := range cs {
		width = max(width, len(c.name()))
	}
	width = min(width, 60)
	for _, c := range cs {
		fmt.Fprintf(bw, " %s %-*s | %s\n", c.Kind.Letter(), width, c.name(), statOf(l, c))
	}
	fmt.Fprintf(bw, " %s\n", Count(cs))
	return bw.Flush()
}

func statOf(l Layer, c Change) string {
	if c.Type != File {
		return ""
	}
	old, new, bin := contents(l, c)
	if bin {
		return fmt.Sprintf("bin %d -> %d bytes", len(old), len(new))
	}
	add, del := 0, 0
	for _, e := range lineDiff(splitLines(old), splitLines(new)) {
		switch e.op {
		case '+':
			add++
		case '-':
			del++
		}
	}
	return fmt.Sprintf("+%d -%d", add, del)
}

// maxPatchBytes bounds the files --patch and --stat read as text.
const maxPatchBytes = 8 << 20

// contents returns a file change's old (from the folder) and new
// content; bin is true when either is not text or is too large to show.
func contents(l Layer, c Change) (old, new []byte, bin bool) {
	read := func(p string) []byte {
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		b, _ := io.ReadAll(io.LimitReader(f, maxPatchBytes+1))
		return b
	}
	if c.Kind != Added {
		hp := filepath.Join(l.Host, filepath.FromSlash(c.Path))
		if fi, err := os.Lstat(hp); err == nil && fi.Mode().IsRegular() {
			old = read(hp)
		}
	}
	if c.Kind != Deleted {
		new = read(c.src)
	}
	isBin := func(b []byte) bool {
		return len(b) > maxPatchBytes || bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0
	}
	return old, new, isBin(old) || isBin(new)
}

// WritePatch writes a unified diff of every text file changed (old
// content from the folder as it is now), and one line for anything else.
func WritePatch(w io.Writer, l Layer, cs []Change) error {
	bw := bufio.NewWriter(w)
	for _, c := range cs {
		if c.Type != File || c.Kind == Metadata {
			fmt.Fprintf(bw, "%s %s\n", c.Kind.Letter(), c.name())
			continue
		}
		a, b := quoted("a/"+c.Path), quoted("b/"+c.Path)
		if c.Kind == Added {
			a = "/dev/null"
		}
		if c.Kind == Deleted {
			b = "/dev/null"
		}
		old, new, bin := contents(l, c)
		fmt.Fprintf(bw, "diff --sbx %s %s\n", quoted("a/"+c.Path), quoted("b/"+c.Path))
		if c.Risky {
			fmt.Fprintf(bw, "# risky: this file can make the host run code; apply it only by naming it\n")
		}
		if bin {
			fmt.Fprintf(bw, "Binary files %s and %s differ\n", a, b)
			continue
		}
		fmt.Fprintf(bw, "--- %s\n+++ %s\n", a, b)
		writeHunks(bw, splitLines(old), splitLines(new), 3)
	}
	return bw.Flush()
}

// JSONReport is what --json prints.
type JSONReport struct {
	Mounts []JSONMount `json:"mounts"`
}

// JSONMount is one guarded mount's changes.
type JSONMount struct {
	Target  string   `json:"target"`
	Source  string   `json:"source"`
	Mode    string   `json:"mode"`
	Changes []Change `json:"changes"`
	Counts  Counts   `json:"counts"`
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r JSONReport) error {
	for i := range r.Mounts {
		if r.Mounts[i].Changes == nil {
			r.Mounts[i].Changes = []Change{}
		}
		r.Mounts[i].Counts = Count(r.Mounts[i].Changes)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
