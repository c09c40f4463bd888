package shell

import (
	"context"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/term"
)

// BenchmarkOutput100MB: a command printing 100 MB in 1 M lines through the
// shell.
func BenchmarkOutput100MB(b *testing.B) {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + b.TempDir(), "LANG=C.UTF-8"}
	sh, err := New(context.Background(), Config{Dir: b.TempDir(), Env: env, Starter: testReaper, NoChangeTimeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer sh.Close()
	b.SetBytes(1e8)
	for b.Loop() {
		res, err := sh.Run(context.Background(), Request{Command: `yes "$(printf '%099d' 7)" | head -n 1000000`, Timeout: 120})
		if err != nil || res.Metadata.ExitCode != 0 {
			b.Fatalf("%v %+v", err, res.Metadata)
		}
	}
}

// BenchmarkScreenWrite: the renderer alone on 100-byte lines.
func BenchmarkScreenWrite(b *testing.B) {
	line := []byte("0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000007\r\n")
	chunk := make([]byte, 0, 32<<10)
	for len(chunk)+len(line) <= cap(chunk) {
		chunk = append(chunk, line...)
	}
	s := term.NewScreen(termCols, editableRows, historyRows)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		s.Write(chunk)
	}
}
