package sandboxd

import (
	"testing"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// BenchmarkExecuteEcho is one `echo hi` through the HTTP layer, in process.
func BenchmarkExecuteEcho(b *testing.B) {
	s := newBenchServer(b)
	act := sandboxapi.NewRunAction("echo hi", 120)
	ctx := b.Context()
	for b.Loop() {
		if o, err := s.c.Execute(ctx, act); err != nil || o.Content != "hi" {
			b.Fatalf("%v %+v", err, o)
		}
	}
}
