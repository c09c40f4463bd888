package fileops

import (
	"context"
	"slices"
	"strconv"
	"strings"
)

// The edit observation's diff field is what openhands_aci.utils.diff.get_diff
// returns: Python's difflib.unified_diff over the two texts split on "\n",
// with zero context lines, every output line right-stripped and the lines
// joined by "\n". Agents and UIs see the hunks, so this file reproduces
// difflib's SequenceMatcher exactly (longest-match recursion, tie-breaking,
// and the "autojunk" rule for sequences of 200 elements or more), not just
// some valid diff.

// unifiedDiff returns get_diff(old, new, path).
func unifiedDiff(ctx context.Context, oldText, newText, path string) (string, error) {
	a, b := newLineIndex(oldText), newLineIndex(newText)
	ia, ib := internLines(a, b)
	m := newSequenceMatcher(ia, ib)
	ops, err := m.opcodes(ctx)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	started := false
	writeLine := func(prefix, s string) {
		if out.Len() > 0 {
			out.WriteByte('\n')
		}
		out.WriteString(pyRStrip(prefix + s))
	}
	for _, group := range groupedOpcodes(ops, 0) {
		if !started {
			started = true
			writeLine("--- ", path)
			writeLine("+++ ", path)
		}
		first, last := group[0], group[len(group)-1]
		writeLine("@@ -"+unifiedRange(first.i1, last.i2)+" +"+unifiedRange(first.j1, last.j2)+" @@", "")
		for _, op := range group {
			if op.tag == opEqual {
				for i := op.i1; i < op.i2; i++ {
					writeLine(" ", a.line(i))
				}
				continue
			}
			if op.tag == opReplace || op.tag == opDelete {
				for i := op.i1; i < op.i2; i++ {
					writeLine("-", a.line(i))
				}
			}
			if op.tag == opReplace || op.tag == opInsert {
				for j := op.j1; j < op.j2; j++ {
					writeLine("+", b.line(j))
				}
			}
		}
	}
	return out.String(), nil
}

// lineIndex is s.split("\n") kept as offsets into s: a 10 MB file can have
// hundreds of thousands of lines, and a string header per line would cost
// four times the memory of an offset.
type lineIndex struct {
	s      string
	starts []int // start of each line; line i ends one byte before starts[i+1]
}

func newLineIndex(s string) lineIndex {
	starts := make([]int, 0, strings.Count(s, "\n")+2)
	starts = append(starts, 0)
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	return lineIndex{s: s, starts: append(starts, len(s)+1)}
}

func (l lineIndex) len() int { return len(l.starts) - 1 }

func (l lineIndex) line(i int) string { return l.s[l.starts[i] : l.starts[i+1]-1] }

// unifiedRange is difflib's _format_range_unified.
func unifiedRange(start, stop int) string {
	beginning := start + 1
	length := stop - start
	if length == 1 {
		return strconv.Itoa(beginning)
	}
	if length == 0 {
		beginning--
	}
	return strconv.Itoa(beginning) + "," + strconv.Itoa(length)
}

// internLines maps equal lines to equal small integers so that the matcher
// compares and hashes ints, not strings. The map is not presized: edited
// files repeat many lines, and a hint for every line would allocate a table
// for lines that are never distinct.
func internLines(a, b lineIndex) ([]int32, []int32) {
	ids := make(map[string]int32)
	conv := func(l lineIndex) []int32 {
		out := make([]int32, l.len())
		for i := range out {
			s := l.line(i)
			id, ok := ids[s]
			if !ok {
				id = int32(len(ids))
				ids[s] = id
			}
			out[i] = id
		}
		return out
	}
	return conv(a), conv(b)
}

type opTag uint8

const (
	opEqual opTag = iota
	opReplace
	opDelete
	opInsert
)

type opcode struct {
	tag            opTag
	i1, i2, j1, j2 int
}

type match struct{ a, b, size int }

// sequenceMatcher is difflib.SequenceMatcher(None, a, b) with autojunk.
type sequenceMatcher struct {
	a, b []int32
	b2j  [][]int32 // positions of each id in b, ascending; nil when absent or popular

	// find's j2len dictionaries as two generation-stamped arrays: slot j
	// of buffer g&1 holds a length only if its stamp is g.
	lens  [2][]int32
	stamp [2][]uint32
	gen   uint32
}

func newSequenceMatcher(a, b []int32) *sequenceMatcher {
	m := &sequenceMatcher{a: a, b: b}
	maxID := int32(-1)
	for _, x := range a {
		maxID = max(maxID, x)
	}
	for _, x := range b {
		maxID = max(maxID, x)
	}
	// Count first, so that every position list is a window of one backing
	// array, and popular elements (autojunk: more than 1% + 1 of b when b
	// has 200 elements or more) are never stored.
	counts := make([]int32, maxID+1)
	for _, x := range b {
		counts[x]++
	}
	ntest := int32(-1)
	if n := len(b); n >= 200 {
		ntest = int32(n/100 + 1)
	}
	backing := make([]int32, 0, len(b))
	m.b2j = make([][]int32, maxID+1)
	for x, c := range counts {
		if c == 0 || (ntest >= 0 && c > ntest) {
			continue
		}
		m.b2j[x] = backing[len(backing) : len(backing) : len(backing)+int(c)]
		backing = backing[:len(backing)+int(c)]
	}
	for j, x := range b {
		if m.b2j[x] != nil {
			m.b2j[x] = append(m.b2j[x], int32(j))
		}
	}
	for k := range m.lens {
		m.lens[k] = make([]int32, len(b)+1)
		m.stamp[k] = make([]uint32, len(b)+1)
	}
	return m
}

// nextGen advances the generation, clearing the stamps on wrap-around so
// that a stale stamp can never look current.
func (m *sequenceMatcher) nextGen() uint32 {
	m.gen++
	if m.gen == 0 {
		for k := range m.stamp {
			clear(m.stamp[k])
		}
		m.gen = 2
	}
	return m.gen
}

// findLongestMatch is SequenceMatcher.find_longest_match without junk: of
// all longest blocks, the one starting earliest in a, then earliest in b;
// then extended over equal (possibly popular) neighbours.
func (m *sequenceMatcher) findLongestMatch(alo, ahi, blo, bhi int) match {
	a, b := m.a, m.b
	besti, bestj, bestsize := alo, blo, 0
	// A fresh generation gap, so this call never reads the previous call's
	// last row as its own.
	m.nextGen()
	for i := alo; i < ahi; i++ {
		g := m.nextGen()
		cur, prev := g&1, (g&1)^1
		for _, j32 := range m.b2j[a[i]] {
			j := int(j32)
			if j < blo {
				continue
			}
			if j >= bhi {
				break
			}
			k := int32(1)
			if j > 0 && m.stamp[prev][j-1] == g-1 {
				k = m.lens[prev][j-1] + 1
			}
			m.lens[cur][j] = k
			m.stamp[cur][j] = g
			if int(k) > bestsize {
				besti, bestj, bestsize = i-int(k)+1, j-int(k)+1, int(k)
			}
		}
	}
	for besti > alo && bestj > blo && a[besti-1] == b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && a[besti+bestsize] == b[bestj+bestsize] {
		bestsize++
	}
	return match{besti, bestj, bestsize}
}

// matchingBlocks is get_matching_blocks, including the final (la, lb, 0).
func (m *sequenceMatcher) matchingBlocks(ctx context.Context) ([]match, error) {
	la, lb := len(m.a), len(m.b)
	type span struct{ alo, ahi, blo, bhi int }
	queue := []span{{0, la, 0, lb}}
	var blocks []match
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		x := m.findLongestMatch(s.alo, s.ahi, s.blo, s.bhi)
		if x.size == 0 {
			continue
		}
		blocks = append(blocks, x)
		if s.alo < x.a && s.blo < x.b {
			queue = append(queue, span{s.alo, x.a, s.blo, x.b})
		}
		if x.a+x.size < s.ahi && x.b+x.size < s.bhi {
			queue = append(queue, span{x.a + x.size, s.ahi, x.b + x.size, s.bhi})
		}
	}
	slices.SortFunc(blocks, func(p, q match) int {
		if p.a != q.a {
			return p.a - q.a
		}
		if p.b != q.b {
			return p.b - q.b
		}
		return p.size - q.size
	})
	var merged []match
	cur := match{}
	for _, x := range blocks {
		if cur.a+cur.size == x.a && cur.b+cur.size == x.b {
			cur.size += x.size
			continue
		}
		if cur.size > 0 {
			merged = append(merged, cur)
		}
		cur = x
	}
	if cur.size > 0 {
		merged = append(merged, cur)
	}
	return append(merged, match{la, lb, 0}), nil
}

// opcodes is get_opcodes.
func (m *sequenceMatcher) opcodes(ctx context.Context) ([]opcode, error) {
	blocks, err := m.matchingBlocks(ctx)
	if err != nil {
		return nil, err
	}
	var ops []opcode
	i, j := 0, 0
	for _, x := range blocks {
		switch {
		case i < x.a && j < x.b:
			ops = append(ops, opcode{opReplace, i, x.a, j, x.b})
		case i < x.a:
			ops = append(ops, opcode{opDelete, i, x.a, j, x.b})
		case j < x.b:
			ops = append(ops, opcode{opInsert, i, x.a, j, x.b})
		}
		i, j = x.a+x.size, x.b+x.size
		if x.size > 0 {
			ops = append(ops, opcode{opEqual, x.a, i, x.b, j})
		}
	}
	return ops, nil
}

// groupedOpcodes is get_grouped_opcodes(n).
func groupedOpcodes(codes []opcode, n int) [][]opcode {
	codes = slices.Clone(codes)
	if len(codes) == 0 {
		codes = []opcode{{opEqual, 0, 1, 0, 1}}
	}
	if c := &codes[0]; c.tag == opEqual {
		c.i1, c.j1 = max(c.i1, c.i2-n), max(c.j1, c.j2-n)
	}
	if c := &codes[len(codes)-1]; c.tag == opEqual {
		c.i2, c.j2 = min(c.i2, c.i1+n), min(c.j2, c.j1+n)
	}
	nn := n + n
	var groups [][]opcode
	var group []opcode
	for _, c := range codes {
		if c.tag == opEqual && c.i2-c.i1 > nn {
			group = append(group, opcode{opEqual, c.i1, min(c.i2, c.i1+n), c.j1, min(c.j2, c.j1+n)})
			groups = append(groups, group)
			group = nil
			c.i1, c.j1 = max(c.i1, c.i2-n), max(c.j1, c.j2-n)
		}
		group = append(group, c)
	}
	if len(group) > 0 && !(len(group) == 1 && group[0].tag == opEqual) {
		groups = append(groups, group)
	}
	return groups
}
