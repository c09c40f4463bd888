package fileops

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func runes(s string) []int32 {
	out := make([]int32, 0, len(s))
	for _, r := range s {
		out = append(out, r)
	}
	return out
}

// The examples of CPython's difflib documentation.
func TestSequenceMatcherDocExamples(t *testing.T) {
	m := newSequenceMatcher(runes(" abcd"), runes("abcd abcd"))
	if got := m.findLongestMatch(0, 5, 0, 9); got != (match{0, 4, 5}) {
		t.Errorf("find_longest_match = %v", got)
	}
	m = newSequenceMatcher(runes("ab"), runes("c"))
	if got := m.findLongestMatch(0, 2, 0, 1); got != (match{0, 0, 0}) {
		t.Errorf("no match = %v", got)
	}
	m = newSequenceMatcher(runes("abxcd"), runes("abcd"))
	blocks, err := m.matchingBlocks(context.Background())
	mustDo(t, err)
	if want := []match{{0, 0, 2}, {3, 2, 2}, {5, 4, 0}}; !reflect.DeepEqual(blocks, want) {
		t.Errorf("matching blocks = %v", blocks)
	}

	// get_grouped_opcodes' docstring example, with the default n=3.
	var a []string
	for i := 1; i < 40; i++ {
		a = append(a, fmt.Sprint(i))
	}
	b := append([]string(nil), a...)
	b = append(b[:8], append([]string{"i"}, b[8:]...)...)
	b[20] += "x"
	b = append(b[:23], b[28:]...)
	b[30] += "y"
	ia, ib := internLines(newLineIndex(strings.Join(a, "\n")), newLineIndex(strings.Join(b, "\n")))
	ops, err := newSequenceMatcher(ia, ib).opcodes(context.Background())
	mustDo(t, err)
	want := [][]opcode{
		{{opEqual, 5, 8, 5, 8}, {opInsert, 8, 8, 8, 9}, {opEqual, 8, 11, 9, 12}},
		{{opEqual, 16, 19, 17, 20}, {opReplace, 19, 20, 20, 21}, {opEqual, 20, 22, 21, 23}, {opDelete, 22, 27, 23, 23}, {opEqual, 27, 30, 23, 26}},
		{{opEqual, 31, 34, 27, 30}, {opReplace, 34, 35, 30, 31}, {opEqual, 35, 38, 31, 34}},
	}
	if got := groupedOpcodes(ops, 3); !reflect.DeepEqual(got, want) {
		t.Errorf("grouped opcodes:\n got  %v\n want %v", got, want)
	}
}

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"identical", "a\nb", "a\nb", ""},
		{"both empty", "", "", ""},
		{"spec example", "foo", "bar", "--- p\n+++ p\n@@ -1 +1 @@\n-foo\n+bar"},
		{"from empty", "", "x\ny", "--- p\n+++ p\n@@ -1 +1,2 @@\n-\n+x\n+y"},
		{"difflib doc words, n=0", "one\ntwo\nthree\nfour", "zero\none\ntree\nfour", "--- p\n+++ p\n@@ -0,0 +1 @@\n+zero\n@@ -2,2 +3 @@\n-two\n-three\n+tree"},
		{"deletion range", "a\nb\nc\nd", "a\nd", "--- p\n+++ p\n@@ -2,2 +1,0 @@\n-b\n-c"},
		{"lines are right-stripped", "a  \nb", "a\t\nb ", "--- p\n+++ p\n@@ -1,2 +1,2 @@\n-a\n-b\n+a\n+b"},
		// 200 lines or more: a line found in more than 1% + 1 of b is
		// "popular" and cannot seed a match, so difflib aligns on "y".
		{"autojunk", "y\nx\nx", strings.Repeat("x\n", 200) + "y", "--- p\n+++ p\n@@ -0,0 +1,200 @@\n" + strings.Repeat("+x\n", 200) + "@@ -2,2 +201,0 @@\n-x\n-x"},
		{"no autojunk below 200", "y\nx\nx", strings.Repeat("x\n", 150) + "y", "--- p\n+++ p\n@@ -1 +0,0 @@\n-y\n@@ -3,0 +3,149 @@\n" + strings.Repeat("+x\n", 148) + "+y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := unifiedDiff(context.Background(), tc.old, tc.new, "p")
			mustDo(t, err)
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestUnifiedDiffCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := unifiedDiff(ctx, "a", "b", "p"); err == nil {
		t.Error("cancelled diff succeeded")
	}
}
