package transfer

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const benchSize = 100 << 20

// benchDir returns a fresh directory for a benchmark, under $SBX_BENCH_DIR
// when set (e.g. /dev/shm, to measure this code rather than the disk's
// write-back rate) or else in the default temporary directory.
func benchDir(b *testing.B) string {
	base := os.Getenv("SBX_BENCH_DIR")
	if base == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(base, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// reportHeap adds the growth of the Go heap in use across the run, in MB,
// next to B/op: it shows what stays resident, not only what was allocated.
func reportHeap(b *testing.B, before *runtime.MemStats) {
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heapMB")
}

func heapBefore() *runtime.MemStats {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return &m
}

// BenchmarkUpload100MB uploads a single 100 MB file, as a new file (the
// previous one is deleted outside the timer) and over an existing one (the
// file system then also frees the old blocks inside the rename).
func BenchmarkUpload100MB(b *testing.B) {
	for _, replace := range []bool{false, true} {
		b.Run(map[bool]string{false: "new", true: "replace"}[replace], func(b *testing.B) {
			dest := benchDir(b)
			body := newPattern(benchSize)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			before := heapBefore()
			for b.Loop() {
				body.n, body.off = benchSize, 0
				if err := Upload(b.Context(), dest, "big.bin", false, body, Options{}); err != nil {
					b.Fatal(err)
				}
				if !replace {
					b.StopTimer()
					os.Remove(filepath.Join(dest, "big.bin"))
					b.StartTimer()
				}
			}
			reportHeap(b, before)
		})
	}
}

// BenchmarkUploadZip100MB: spool + extract + move of 100 MB in 10 files,
// stored (what OpenHands' client sends) and deflated.
func BenchmarkUploadZip100MB(b *testing.B) {
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i := range 10 {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("dir/f%d", i), Method: method})
			io.Copy(w, newPattern(benchSize/10))
		}
		zw.Close()
		data := buf.Bytes()
		b.Run(map[uint16]string{zip.Store: "store", zip.Deflate: "deflate"}[method], func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			before := heapBefore()
			for b.Loop() {
				dest := filepath.Join(benchDir(b), "d")
				if err := Upload(b.Context(), dest, "a.zip", true, bytes.NewReader(data), Options{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dest)
				b.StartTimer()
			}
			reportHeap(b, before)
		})
	}
}

// BenchmarkUploadZipManyFiles: 10 000 small files, where per-entry costs
// (os.Root path walks, chmod, rename) dominate.
func BenchmarkUploadZipManyFiles(b *testing.B) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 10_000 {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("pkg%d/sub/file%d.go", i%100, i), Method: zip.Deflate})
		io.WriteString(w, strings.Repeat("package x\n", 50))
	}
	zw.Close()
	data := buf.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		dest := filepath.Join(benchDir(b), "d")
		if err := Upload(b.Context(), dest, "a.zip", true, bytes.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dest)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N)/10_000*1e6, "µs/entry")
}

// BenchmarkDownload100MB streams 100 files of 1 MB to a counting writer:
// Go source (deflated), random bytes (detected and stored), and a mix.
func BenchmarkDownload100MB(b *testing.B) {
	text := realSource(b, 1<<20)
	random := make([]byte, 1<<20)
	rand.Read(random)
	for _, kind := range []string{"text", "random", "mixed"} {
		dir := benchDir(b)
		for i := range 100 {
			src := text
			if kind == "random" || (kind == "mixed" && i%2 == 0) {
				src = random
			}
			p := filepath.Join(dir, fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%d", i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, src[:1<<20], 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(kind, func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			before := heapBefore()
			var out countWriter
			for b.Loop() {
				out = 0
				if err := Download(b.Context(), &out, dir); err != nil {
					b.Fatal(err)
				}
			}
			reportHeap(b, before)
			b.ReportMetric(float64(out)/benchSize, "ratio")
		})
	}
}

// realSource returns n bytes of real Go source (the toolchain's own
// net/http), which Deflate at BestSpeed shrinks to about a quarter; repeated
// or synthetic text would misrepresent both speed and ratio.
func realSource(b *testing.B, n int) []byte {
	dir := filepath.Join(runtime.GOROOT(), "src", "net", "http")
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Skip("Go sources not available:", err)
	}
	var buf bytes.Buffer
	for buf.Len() < n {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".go") {
				src, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				buf.Write(src)
			}
		}
	}
	return buf.Bytes()[:n]
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
