package docker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/netpolicy"
	"github.com/sbx-dev/sbx/sandboxapi"
)

// reqScript makes n fresh HTTPS connections with one small GET each and
// prints the mean time of one in nanoseconds: through the proxy by
// CONNECT (mode "proxy", as HTTPS_PROXY clients do), or to host by name
// (allowed.test: in a policed sandbox the resolver names the proxy, which
// goes on by SNI, "transparent"; in the open one /etc/hosts names the
// server, "direct", the baseline). It is timed inside the sandbox, so the benchmark's own
// round trips to sandboxd do not count.
const reqScript = `
import http.client, ssl, sys, time
n, mode, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl._create_unverified_context()
def one():
    if mode == "proxy":
        c = http.client.HTTPSConnection(host, 3128, context=ctx)
        c.set_tunnel("allowed.test", 443)
    else:
        c = http.client.HTTPSConnection(host, 443, context=ctx)
    c.request("GET", "/", headers={"Host": "allowed.test"})
    r = c.getresponse(); r.read(); c.close()
    assert r.status == 200, r.status
one()
t = time.perf_counter()
for _ in range(n): one()
print(int((time.perf_counter() - t) / n * 1e9))
`

// benchWorld is a world with a policed sandbox and an open one that
// reaches the servers directly, the same-run baseline: open as today,
// with the world's network as an additional network.
func benchWorld(b *testing.B) (w *world, policed, open *sandboxapi.Client, proxyIP string) {
	w = newWorld(b)
	_, policed = w.sandbox(b, "allowed.test")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := driver.Spec{ID: "eg-" + ids.New(4), Image: testImage(), Network: driver.Network{Additional: []string{w.net}}}
	w.sandboxes = append(w.sandboxes, spec.ID)
	sb, err := w.d.Create(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	open = sandboxapi.NewClient(sb.Endpoint.URL, sb.Endpoint.Token)
	for _, c := range []*sandboxapi.Client{policed, open} {
		if out, code := sh(b, c, "cat > /tmp/req.py <<'EOF'\n"+reqScript+"\nEOF"); code != 0 {
			b.Fatal(out)
		}
	}
	// The open sandbox names allowed.test as the world's resolver would.
	if out, code := sh(b, open, "echo '"+w.allowed.String()+" allowed.test' >> /etc/hosts"); code != 0 {
		b.Fatal(out)
	}
	proxyIP, _ = sh(b, policed, "getent hosts allowed.test | cut -d' ' -f1")
	return w, policed, open, proxyIP
}

// BenchmarkEgressHTTPSRequest: a small HTTPS request on a fresh
// connection, open (direct) against through the proxy (CONNECT, and
// transparent by SNI). Compare ns/req of the sub-benchmarks.
func BenchmarkEgressHTTPSRequest(b *testing.B) {
	_, policed, open, proxyIP := benchWorld(b)
	for _, c := range []struct {
		name, mode, host string
		sb               *sandboxapi.Client
	}{
		{"open", "direct", "allowed.test", open},
		{"proxy", "proxy", proxyIP, policed},
		{"transparent", "transparent", "allowed.test", policed},
	} {
		b.Run(c.name, func(b *testing.B) {
			cmd := fmt.Sprintf("python3 /tmp/req.py %d %s %s", b.N, c.mode, c.host)
			out, code := sh(b, c.sb, cmd)
			if code != 0 {
				b.Fatalf("%s: %s", cmd, out)
			}
			ns, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
			if err != nil {
				b.Fatalf("%s: %q", cmd, out)
			}
			b.ReportMetric(ns, "ns/req")
		})
	}
}

// BenchmarkEgressDownload: 100 MB over HTTPS, open against through the
// proxy; compare MB/s.
func BenchmarkEgressDownload(b *testing.B) {
	w, policed, open, _ := benchWorld(b)
	const size = 100_000_000
	for _, c := range []struct {
		name, curl string
		sb         *sandboxapi.Client
	}{
		{"open", "curl -fsSk --resolve allowed.test:443:" + w.allowed.String(), open},
		{"proxy", "curl -fsSk", policed},
		{"transparent", "curl -fsSk --noproxy '*'", policed},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			cmd := fmt.Sprintf("for i in $(seq %d); do %s -o /dev/null 'https://allowed.test/?n=%d' || exit 1; done", b.N, c.curl, size)
			if out, code := sh(b, c.sb, cmd); code != 0 {
				b.Fatalf("%s: %s", cmd, out)
			}
		})
	}
}

// BenchmarkEgressProxyRSS: the proxy's resident memory with one sandbox
// (the baseline) and with 50 sandboxes of its policy, each making HTTPS
// requests through it at the same time.
func BenchmarkEgressProxyRSS(b *testing.B) {
	if os.Getenv("SBX_BENCH_RSS_SANDBOXES") == "0" {
		b.Skip("SBX_BENCH_RSS_SANDBOXES=0")
	}
	n := 50
	if v, err := strconv.Atoi(os.Getenv("SBX_BENCH_RSS_SANDBOXES")); err == nil && v > 0 {
		n = v
	}
	w := newWorld(b)
	p := netpolicy.MustParse("allowed.test")
	rss := func(b *testing.B) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ins, err := w.d.api.ContainerInspect(ctx, egressPrefix+w.d.proxyKey(p), client.ContainerInspectOptions{})
		if err != nil {
			b.Fatal(err)
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ins.Container.State.Pid))
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
		b.Fatal("no VmRSS")
		return 0
	}
	load := func(b *testing.B, clients []*sandboxapi.Client) {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range b.N {
					if out, code := sh(b, c, curl+"-o /dev/null 'https://allowed.test/?n=1000000' && "+curl+"-o /dev/null --noproxy '*' https://allowed.test/"); code != 0 {
						b.Errorf("request: %s", out)
					}
				}
			}()
		}
		wg.Wait()
	}
	_, first := w.sandbox(b, p.String())
	b.Run("sandboxes=1", func(b *testing.B) {
		load(b, []*sandboxapi.Client{first})
		b.ReportMetric(rss(b), "MB-rss")
	})
	clients := []*sandboxapi.Client{first}
	var mu sync.Mutex
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, c := w.sandbox(b, p.String())
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.Run(fmt.Sprintf("sandboxes=%d", n), func(b *testing.B) {
		load(b, clients)
		b.ReportMetric(rss(b), "MB-rss")
	})
}
