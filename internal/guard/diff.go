package guard

import (
	"fmt"
	"io"
	"strings"
)

// edit is one line of an edit script: ' ' kept, '-' removed, '+' added.
type edit struct {
	op   byte
	text string
}

// maxEditDistance bounds Myers' search; beyond it the files are shown
// as all removed and all added, which is still a correct patch.
const maxEditDistance = 1000

// lineDiff is Myers' O(ND) shortest edit script between a and b.
func lineDiff(a, b []string) []edit {
	// Common prefix and suffix cost nothing and make D small.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	out := make([]edit, 0, len(a)+len(b))
	for _, s := range a[:pre] {
		out = append(out, edit{' ', s})
	}
	out = append(out, myers(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, s := range a[len(a)-suf:] {
		out = append(out, edit{' ', s})
	}
	return out
}

func myers(a, b []string) []edit {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return replaceAll(a, b)
	}
	maxD := min(n+m, maxEditDistance)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int
	for d := 0; d <= maxD; d++ {
		snap := make([]int, len(v))
		copy(snap, v)
		trace = append(trace, snap)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(trace, a, b, off, d)
			}
		}
	}
	return replaceAll(a, b)
}

func backtrack(trace [][]int, a, b []string, off, d int) []edit {
	x, y := len(a), len(b)
	var rev []edit
	for ; d > 0; d-- {
		v := trace[d]
		k := x - y
		var pk int
		if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := v[off+pk]
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, edit{' ', a[x]})
		}
		if x == px {
			y--
			rev = append(rev, edit{'+', b[y]})
		} else {
			x--
			rev = append(rev, edit{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, edit{' ', a[x]})
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

func replaceAll(a, b []string) []edit {
	out := make([]edit, 0, len(a)+len(b))
	for _, s := range a {
		out = append(out, edit{'-', s})
	}
	for _, s := range b {
		out = append(out, edit{'+', s})
	}
	return out
}

// writeHunks writes the unified-diff hunks of a → b with ctx lines of
// context.
func writeHunks(w io.Writer, a, b []string, ctx int) {
	es := lineDiff(a, b)
	i := 0
	ai, bi := 0, 0 // lines of a and b before es[i]
	for i < len(es) {
		// Find the next change.
		j := i
		aj, bj := ai, bi
		for j < len(es) && es[j].op == ' ' {
			j++
			aj++
			bj++
		}
		if j == len(es) {
			return
		}
		start := max(i, j-ctx)
		as, bs := aj-(j-start), bj-(j-start)
		// Extend while changes are within 2*ctx of each other.
		end := j
		ae, be := aj, bj
		for end < len(es) {
			if es[end].op != ' ' {
				if es[end].op == '-' {
					ae++
				} else {
					be++
				}
				end++
				continue
			}
			run := 0
			for end+run < len(es) && es[end+run].op == ' ' {
				run++
			}
			if end+run == len(es) || run > 2*ctx {
				keep := min(run, ctx)
				end += keep
				ae += keep
				be += keep
				break
			}
			end += run
			ae += run
			be += run
		}
		fmt.Fprintf(w, "@@ -%s +%s @@\n", rng(as, ae-as), rng(bs, be-bs))
		for _, e := range es[start:end] {
			w.Write([]byte{e.op})
			io.WriteString(w, e.text)
			if !strings.HasSuffix(e.text, "\n") {
				io.WriteString(w, "\n\\ No newline at end of file\n")
			}
		}
		i, ai, bi = end, ae, be
	}
}

func rng(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
