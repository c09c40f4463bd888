// Package suggest finds what a misspelt word most likely stands for: the
// did-you-mean of flags, configuration keys and network policies.
package suggest

// Distance is the optimal string alignment distance between a and b:
// Levenshtein's, with a swap of two neighbours counted as one edit, the
// commonest typo ("opne", --nmae). Callers compare short words, so the
// quadratic cost stays small.
func Distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// MaxEdits is how far a suggestion may be from what was typed.
const MaxEdits = 2

// Closest is the candidate nearest to word, at most MaxEdits away, the
// first of equals; "" when none is. A word far longer than any candidate
// is no typo of one, and is not compared.
func Closest(word string, candidates []string) string {
	best, bestDist := "", MaxEdits+1
	for _, c := range candidates {
		if len(word) > len(c)+MaxEdits {
			continue
		}
		if d := Distance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}
