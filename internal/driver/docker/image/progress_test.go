package image

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Unix(1_700_000_000, 0)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func TestPullTracker(t *testing.T) {
	const ref = "nikolaik/python-nodejs:python3.12-nodejs22"
	tr := newPullTracker(ref, 0, fakeClock(time.Second))
	msgs := []jsonstream.Message{
		{Status: "Pulling from nikolaik/python-nodejs", ID: "python3.12-nodejs22"},
		{Status: "Already exists", ID: "aaa"},
		{Status: "Pulling fs layer", ID: "bbb"},
		{Status: "Pulling fs layer", ID: "ccc"},
		{Status: "Waiting", ID: "ccc"},
		{Status: "Downloading", ID: "bbb", Progress: &jsonstream.Progress{Current: 20e6, Total: 100e6}},
		{Status: "Downloading", ID: "ccc", Progress: &jsonstream.Progress{Current: 5e6, Total: 50e6}},
		{Status: "Download complete", ID: "ccc"},
		{Status: "Extracting", ID: "ccc", Progress: &jsonstream.Progress{Current: 1, Total: 50e6}},
		{Status: "Pull complete", ID: "ccc"},
		{Status: "Digest: sha256:0123"},
		{Status: "Status: Downloaded newer image for " + ref},
	}
	var lines []string
	for _, m := range msgs {
		if l, ok := tr.update(m); ok {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatal("no progress lines")
	}
	if got, want := lines[len(lines)-1], "[pull] "+ref+": 2/3 layers, 70 MB/150 MB"; got != want {
		t.Errorf("last line = %q, want %q\nall: %q", got, want, lines)
	}
	for _, l := range lines {
		if strings.Contains(l, "/4 layers") {
			t.Errorf("the tag was counted as a layer: %q", l)
		}
	}
	if got := tr.final(12 * time.Second); got != "[pull] pulled "+ref+" in 12s (3 layers, 150 MB downloaded)" {
		t.Errorf("final = %q", got)
	}

	// Throttled: messages faster than the interval print nothing new.
	tr = newPullTracker(ref, time.Minute, fakeClock(time.Second))
	tr.update(jsonstream.Message{Status: "Pulling fs layer", ID: "a"})
	if _, ok := tr.update(jsonstream.Message{Status: "Downloading", ID: "a", Progress: &jsonstream.Progress{Current: 1, Total: 2}}); ok {
		t.Error("a line within the interval")
	}

	up := newPullTracker(ref, 0, time.Now)
	up.update(jsonstream.Message{Status: "Status: Image is up to date for " + ref})
	if got := up.final(0); !strings.HasSuffix(got, "is up to date") {
		t.Errorf("final for an up-to-date image = %q", got)
	}
}

func TestPullErrorClass(t *testing.T) {
	err := pullError("x:1", streamError{&jsonstream.Error{Code: 404, Message: "manifest unknown"}})
	if !strings.Contains(err.Error(), "manifest unknown") || !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("404 mid-stream: %v", err)
	}
	err = pullError("x:1", errors.New(`Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host`))
	if got := err.Error(); got != "image x:1 cannot be pulled: cannot reach the registry registry-1.docker.io: dial tcp: lookup registry-1.docker.io: no such host" {
		t.Errorf("unreachable registry: %q", got)
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("unreachable registry class: %v", err)
	}
}

func TestDebootstrapProgress(t *testing.T) {
	var out strings.Builder
	p := newDebootstrapProgress(&out, time.Hour, fakeClock(time.Second))
	proto := `P: 0 100 DOWNREL
I: RETRIEVING
IA: InRelease
IA: 
IF: Retrieving %s %s
P: 100 100 DOWNREL
P: 0 1 DOWNRELSIG
P: 0 1 SIZEDEBS
I: CHECKINGSIZES
IA: main
IA: http://deb.debian.org/debian
IF: Checking component %s on %s...
P: 3 3 SIZEDEBS
P: 0 60000000 DOWNDEBS
PF: Downloading packages
I: RETRIEVING
IA: adduser
IA: 3.134
IF: Retrieving %s %s
P: 1000000 60000000
I: RETRIEVING
IA: apt
IA: 2.6.1
IF: Retrieving %s %s
P: 30000000 60000000
W: COULDNTDL
WA: foo
WF: Couldn't download package %s (100%% sure)
P: 1 2 EXTRACTPKGS
P: 2 2 EXTRACTPKGS
P: 1 2 UNPACKREQ
P: 1 2 CONFREQ
P: 2 2 CONFREQ
I: BASESUCCESS
IF: Base system installed successfully.
E: LEFTOVERDEBS
EA: nosuchpkg
EF: Couldn't find these debs: %s
`
	for line := range strings.Lines(proto) {
		p.Line(strings.TrimSuffix(line, "\n"))
	}
	want := `[bootstrap] retrieving package lists…
[bootstrap] resolving packages…
[bootstrap] retrieving packages… 0/3 (0 B/60 MB)
[bootstrap] warning: Couldn't download package foo (100% sure)
[bootstrap] extracting… 1/2
[bootstrap] unpacking… 1/2
[bootstrap] configuring… 1/2
[bootstrap] base system installed successfully
`
	if out.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", out.String(), want)
	}
	if p.errName != "LEFTOVERDEBS" || p.errMsg != "Couldn't find these debs: nosuchpkg" {
		t.Errorf("error = %s %q", p.errName, p.errMsg)
	}

	// With an interval that has passed, counts show up as they change.
	out.Reset()
	p = newDebootstrapProgress(&out, time.Second, fakeClock(time.Second))
	for _, l := range []string{"P: 141 141 SIZEDEBS", "P: 0 67000000 DOWNDEBS", "I: RETRIEVING", "IA: a", "IA: 1", "IF: Retrieving %s %s", "P: 52000000 67000000"} {
		p.Line(l)
	}
	if !strings.HasSuffix(out.String(), "[bootstrap] retrieving packages… 1/141 (52 MB/67 MB)\n") {
		t.Errorf("progress:\n%s", out.String())
	}
}

func TestDebootstrapError(t *testing.T) {
	err := debootstrapError(errors.New("exit status 1"), "NOGETREL", "Failed getting release file http://m/dists/x/Release", []string{"a", "b"}, "http://m")
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "http://m is reachable") || !strings.Contains(err.Error(), "\n    b") {
		t.Errorf("NOGETREL: %v", err)
	}
	err = debootstrapError(errors.New("exit status 1"), "", "", nil, "http://m")
	if !errors.Is(err, errdefs.ErrInternal) || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("unnamed: %v", err)
	}
}
