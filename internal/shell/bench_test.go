package shell

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkRunEcho is one `echo hi` through the persistent shell: type it,
// wait for the prompt marker, render the reply.
func BenchmarkRunEcho(b *testing.B) {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + b.TempDir(), "LANG=C.UTF-8"}
	sh, err := New(context.Background(), Config{Dir: b.TempDir(), Env: env, Starter: testReaper, NoChangeTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer sh.Close()
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		res, err := sh.Run(ctx, Request{Command: "echo hi", Timeout: 120})
		if err != nil || res.Content != "hi" {
			b.Fatalf("%v %+v", err, res)
		}
	}
}

// BenchmarkForkExecTrue is the floor a shell that forks per command pays:
// starting /bin/true and waiting for it.
func BenchmarkForkExecTrue(b *testing.B) {
	for b.Loop() {
		cmd := exec.Command("/bin/true")
		ch, err := testReaper.Start(cmd)
		if err != nil {
			b.Fatal(err)
		}
		<-ch
	}
}
