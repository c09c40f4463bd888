// Package bench measures sandboxd as users meet it: the real static binary,
// started as a process, driven over loopback HTTP by sandboxapi.Client.
// Each benchmark that has a floor measures the floor in the same run, so
// ratios are quoted against numbers taken on the same machine at the same
// time:
//
//	go test ./bench -run XXX -bench . -benchtime 1x   # quick
//	go test ./bench -run XXX -bench . -count 6 | benchstat -
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/sandboxapi"
)

var sandboxdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sbx-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sandboxdBin = filepath.Join(dir, "sandboxd")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", sandboxdBin, "github.com/sbx-dev/sbx/cmd/sandboxd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sandboxd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type server struct {
	url  string
	cmd  *exec.Cmd
	c    *sandboxapi.Client
	done chan struct{}
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer starts sandboxd as the current user (OpenHands' local mode:
// no user switching) and returns once the process has started; waitReady
// polls /alive.
func startServer(tb testing.TB) *server {
	tb.Helper()
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	port := freePort(tb)
	work := tb.TempDir()
	cmd := exec.Command(sandboxdBin, strconv.Itoa(port), "--working-dir", work, "--username", u.Username, "--user-id", u.Uid, "--no-enable-browser", "--host", "127.0.0.1")
	// A fresh HOME: the figures are sandboxd's, not those of this
	// machine's ~/.bashrc.
	cmd.Env = append(os.Environ(), "USER="+u.Username, "HOME="+tb.TempDir(), "SU_TO_USER=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s := &server{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	s.c = sandboxapi.NewClient(s.url, "")
	go func() { cmd.Wait(); close(s.done) }()
	tb.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *server) waitReady(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := s.c.Alive(ctx)
		cancel()
		if err == nil && st == "ok" {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
	tb.Fatal("sandboxd did not become ready")
}

func procStatus(tb testing.TB, pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(rest)
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	if len(d) == 0 {
		return
	}
	p := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}

func run(tb testing.TB, c *sandboxapi.Client, command string) sandboxapi.CmdOutputExtras {
	_, ex, err := c.Run(context.Background(), sandboxapi.NewRunAction(command, 120))
	if err != nil {
		tb.Fatal(err)
	}
	return ex
}

// BenchmarkRunEcho: `run` of `echo hi`, request to observation.
func BenchmarkRunEcho(b *testing.B) {
	s := startServer(b)
	s.waitReady(b)
	act := sandboxapi.NewRunAction("echo hi", 120)
	ctx := context.Background()
	for range 50 { // warm the connection and the shell
		s.c.Execute(ctx, act)
	}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		o, err := s.c.Execute(ctx, act)
		lat = append(lat, time.Since(t0))
		if err != nil || o.Content != "hi" {
			b.Fatalf("%v %+v", err, o)
		}
	}
	reportPercentiles(b, lat)
}

// BenchmarkFloorHTTPHello: the same client against a Go HTTP server that
// answers a constant: the floor for any HTTP round trip here.
func BenchmarkFloorHTTPHello(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"message":"","observation":"run","content":"hi","extras":{}}`)
	}))
	defer ts.Close()
	c := sandboxapi.NewClient(ts.URL, "")
	act := sandboxapi.NewRunAction("echo hi", 120)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.Execute(ctx, act); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// BenchmarkFloorForkExec: starting and waiting for /bin/true, what a
// server that forks per command (or per prompt) pays at least.
func BenchmarkFloorForkExec(b *testing.B) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// BenchmarkThroughput8: 8 sandboxd, one client each, all at once.
func BenchmarkThroughput8(b *testing.B) {
	const n = 8
	servers := make([]*server, n)
	for i := range servers {
		servers[i] = startServer(b)
	}
	for _, s := range servers {
		s.waitReady(b)
	}
	act := sandboxapi.NewRunAction("echo hi", 120)
	per := 500
	b.ResetTimer()
	t0 := time.Now()
	total := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Go(func() {
				for range per {
					if o, err := s.c.Execute(context.Background(), act); err != nil || o.Content != "hi" {
						b.Errorf("%v %q", err, o.Content)
						return
					}
				}
			})
		}
		wg.Wait()
		total += n * per
	}
	b.ReportMetric(float64(total)/time.Since(t0).Seconds(), "actions/s")
}

// BenchmarkStartToFirstAction: exec of sandboxd to the first answered
// `echo hi`, including user and shell set-up.
func BenchmarkStartToFirstAction(b *testing.B) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		s := startServer(b)
		act := sandboxapi.NewRunAction("echo hi", 120)
		for {
			o, err := s.c.Execute(context.Background(), act)
			if err == nil && o.Content == "hi" {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
		s.stop()
	}
	reportPercentiles(b, lat)
}

// BenchmarkIdleRSS: resident memory of an idle sandboxd after one action.
func BenchmarkIdleRSS(b *testing.B) {
	var rss int64
	for b.Loop() {
		s := startServer(b)
		s.waitReady(b)
		run(b, s.c, "echo hi")
		time.Sleep(500 * time.Millisecond)
		rss = procStatus(b, s.cmd.Process.Pid, "VmRSS")
		s.stop()
	}
	b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
}

// patternReader yields n bytes of a fixed pattern, cheaply, so that the
// benchmarks measure the transfer rather than the data source.
type patternReader struct{ n int64 }

var pattern = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n := copy(p, pattern)
	r.n -= int64(n)
	return n, nil
}

// uploadDirs are where the upload benchmarks write: the test's disk and,
// when present, tmpfs, which shows the server's own speed without the VM
// disk's write-back limit.
func uploadDirs(b *testing.B) map[string]string {
	dirs := map[string]string{"disk": b.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "sbx-bench-")
		if err == nil {
			b.Cleanup(func() { os.RemoveAll(d) })
			dirs["tmpfs"] = d
		}
	}
	return dirs
}

// BenchmarkUpload100MB: a 100 MB file through /upload_file, with the
// server's peak RSS growth. Each round writes a new file name, and the
// previous one is removed outside the timer.
func BenchmarkUpload100MB(b *testing.B) {
	const size = 100 << 20
	s := startServer(b)
	s.waitReady(b)
	pid := s.cmd.Process.Pid
	for name, dest := range uploadDirs(b) {
		b.Run(name, func(b *testing.B) {
			before := procStatus(b, pid, "VmRSS")
			b.SetBytes(size)
			i := 0
			for b.Loop() {
				i++
				fn := fmt.Sprintf("big%d.bin", i)
				if _, err := s.c.Upload(context.Background(), dest, fn, &patternReader{n: size}, false); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.Remove(filepath.Join(dest, fn))
				b.StartTimer()
			}
			b.ReportMetric(float64(procStatus(b, pid, "VmHWM")-before)/(1<<20), "RSS-growth-MiB")
		})
	}
}

// BenchmarkFloorWrite100MB: the same bytes written straight to a file in
// the same place, without HTTP: the floor for an upload.
func BenchmarkFloorWrite100MB(b *testing.B) {
	const size = 100 << 20
	for name, dest := range uploadDirs(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			buf := make([]byte, 256<<10)
			i := 0
			for b.Loop() {
				i++
				p := filepath.Join(dest, fmt.Sprintf("floor%d.bin", i))
				f, err := os.Create(p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(f, &patternReader{n: size}, buf); err != nil {
					b.Fatal(err)
				}
				f.Close()
				b.StopTimer()
				os.Remove(p)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkOutput1GB: a command printing 1 GB (10 M lines of 100 bytes);
// reports the server's peak RSS and checks the reply kept the tail.
func BenchmarkOutput1GB(b *testing.B) {
	s := startServer(b)
	s.waitReady(b)
	pid := s.cmd.Process.Pid
	b.SetBytes(1e9)
	for b.Loop() {
		ex := run(b, s.c, `yes "$(printf '%099d' 7)" | head -n 10000000; echo END`)
		if ex.Metadata.ExitCode != 0 || !strings.Contains(ex.Metadata.Prefix, "Previous command outputs are truncated") {
			b.Fatalf("unexpected reply: %+v", ex.Metadata)
		}
	}
	b.ReportMetric(float64(procStatus(b, pid, "VmHWM"))/(1<<20), "peak-RSS-MiB")
}

// BenchmarkBinarySize reports the stripped static binary's size.
func BenchmarkBinarySize(b *testing.B) {
	st, err := os.Stat(sandboxdBin)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
}

// BenchmarkFloorHTTPUpload100MB: the same client upload to a Go server
// that discards the body: the floor for HTTP + multipart on the client.
func BenchmarkFloorHTTPUpload100MB(b *testing.B) {
	const size = 100 << 20
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyBuffer(io.Discard, r.Body, make([]byte, 256<<10))
		io.WriteString(w, `{"filename":"x","destination":"/","recursive":false}`)
	}))
	defer ts.Close()
	c := sandboxapi.NewClient(ts.URL, "")
	b.SetBytes(size)
	for b.Loop() {
		if _, err := c.Upload(context.Background(), "/x", "big.bin", &patternReader{n: size}, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorOutput1GB: the same command writing to /dev/null, no
// terminal, no server: what producing the bytes costs.
func BenchmarkFloorOutput1GB(b *testing.B) {
	b.SetBytes(1e9)
	for b.Loop() {
		cmd := exec.Command("bash", "-c", `yes "$(printf '%099d' 7)" | head -n 10000000 > /dev/null`)
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
