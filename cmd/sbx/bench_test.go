package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// BenchmarkRunRmEchoHi is the whole of `sbx run --rm -- echo hi` as one
// invocation runs it: configuration, engine connection, sandbox creation,
// the command, and removal.
func BenchmarkRunRmEchoHi(b *testing.B) {
	needDocker(b)
	e := baseEnv()
	ctx := context.Background()
	// A first run fills the sandboxd volume, so the loop measures the warm
	// path the target is about.
	if r := sbxCmd(b, e, "run", "--rm", "--", "true"); r.code != 0 {
		b.Fatalf("warm-up: %s", r)
	}
	var out strings.Builder
	for b.Loop() {
		out.Reset()
		code := run(ctx, []string{"run", "--rm", "--", "echo", "hi"}, e.getenv, e.environ, strings.NewReader(""), &out, io.Discard)
		if code != 0 || out.String() != "hi\n" {
			b.Fatalf("exit %d, output %q", code, out.String())
		}
	}
}
