// Command testsummary reads `go test -json` events on stdin (from one or more
// go test runs, one after the other) and prints a compact report: package
// result lines as they arrive, the output of every failed test, one line per
// skipped test with its reason, and a closing count line
//
//	tests: N passed, N failed, N skipped
//
// It exits 1 if any test or package failed (including build failures and
// packages whose test binary died), 0 otherwise. Lines that are not JSON
// events are copied through unchanged.
//
// It lives under .ci/ so that `go ... ./...` patterns never see it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json) output.
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
	ImportPath  string
}

type key struct{ pkg, test string }

type summary struct {
	out                     io.Writer
	passed, failed, skipped int
	pending                 map[key][]string // output of tests still running
	order                   []key            // start order, for flushing
	failedPkgs              map[string]bool
	started                 map[string]bool // packages with a start event and no result yet
	startOrder              []string
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, pending: map[key][]string{}, failedPkgs: map[string]bool{}, started: map[string]bool{}}
}

// chatter reports lines that only trace test progress.
func chatter(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

func (s *summary) print(lines []string) {
	for _, l := range lines {
		if !chatter(l) {
			fmt.Fprint(s.out, l)
		}
	}
}

func (s *summary) line(raw string) {
	var e event
	if !strings.HasPrefix(raw, "{") || json.Unmarshal([]byte(raw), &e) != nil || e.Action == "" {
		fmt.Fprintln(s.out, raw)
		return
	}
	k := key{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
	case "build-fail":
		s.failedPkgs[e.ImportPath] = true
	case "start":
		if !s.started[e.Package] {
			s.started[e.Package] = true
			s.startOrder = append(s.startOrder, e.Package)
		}
	case "run":
		if e.Test != "" {
			if _, ok := s.pending[k]; !ok {
				s.order = append(s.order, k)
			}
			s.pending[k] = s.pending[k][:0:0]
		}
	case "output":
		if e.Test == "" {
			if strings.TrimSpace(e.Output) != "PASS" {
				fmt.Fprint(s.out, e.Output)
			}
			return
		}
		s.pending[k] = append(s.pending[k], e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			delete(s.started, e.Package)
			if e.Action == "fail" {
				s.failedPkgs[e.Package] = true
				s.flushPackage(e.Package)
			}
			return
		}
		lines := s.pending[k]
		delete(s.pending, k)
		switch e.Action {
		case "pass":
			s.passed++
		case "skip":
			s.skipped++
			s.print(lines)
		case "fail":
			s.failed++
			s.print(lines)
		}
	}
}

// flushPackage prints the output of tests of pkg that never reported a result
// (the test binary panicked, timed out or was killed while they ran).
func (s *summary) flushPackage(pkg string) {
	for _, k := range s.order {
		lines, ok := s.pending[k]
		if !ok || k.pkg != pkg {
			continue
		}
		fmt.Fprintf(s.out, "--- INCOMPLETE: %s (no result; the test binary ended while it ran)\n", k.test)
		s.print(lines)
		delete(s.pending, k)
		s.failed++
	}
}

func (s *summary) finish() bool {
	// Packages that started but never reported a result: go test itself was
	// stopped (for instance by an outer timeout) while their tests ran.
	for _, pkg := range s.startOrder {
		if !s.started[pkg] {
			continue
		}
		fmt.Fprintf(s.out, "FAIL\t%s\t(no result: go test ended while this package's tests ran)\n", pkg)
		s.failedPkgs[pkg] = true
		s.flushPackage(pkg)
	}
	ok := s.failed == 0 && len(s.failedPkgs) == 0
	if len(s.failedPkgs) > 0 {
		pkgs := make([]string, 0, len(s.failedPkgs))
		for p := range s.failedPkgs {
			pkgs = append(pkgs, p)
		}
		sort.Strings(pkgs)
		fmt.Fprintf(s.out, "failed packages: %s\n", strings.Join(pkgs, " "))
	}
	fmt.Fprintf(s.out, "tests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	return ok
}

func main() {
	s := newSummary(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		s.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stdout, "testsummary: reading input: %v\n", err)
		s.finish()
		os.Exit(1)
	}
	if !s.finish() {
		os.Exit(1)
	}
}
