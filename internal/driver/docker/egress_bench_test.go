package docker

import (
	"context"
	"fmt"
	"os"
	"slices"
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
// prints the mean time of one in nanoseconds. Every mode runs the same
// code: a TCP connection to ip, then (mode "proxy", as HTTPS_PROXY
// clients do) a CONNECT, then TLS with the server name allowed.test and
// one request. "direct" is the open baseline (ip is the server's),
// "transparent" goes to the proxy's address, which forwards by SNI. The
// name is resolved once, outside the timing, in every mode. It is timed
// inside the sandbox, so the benchmark's round trips to sandboxd do not
// count.
const reqScript = `
import socket, ssl, sys, time
n, mode, ip = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl._create_unverified_context()
def one():
    s = socket.create_connection((ip, 3128 if mode == "proxy" else 443))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as curl does
    if mode == "proxy":
        s.sendall(b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
    t = ctx.wrap_socket(s, server_hostname="allowed.test")
    t.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
    resp = b""
    while b"\r\n\r\n" not in resp:
        resp += t.recv(65536)
    head, body = resp.split(b"\r\n\r\n", 1)
    assert b" 200 " in head.split(b"\r\n")[0], head[:80]
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < n:
        body += t.recv(65536)
    t.close()
one()
t0 = time.perf_counter()
for _ in range(n): one()
print(int((time.perf_counter() - t0) / n * 1e9))
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
// connection, open (direct to the server) against through the proxy
// (CONNECT, and transparent by SNI). The modes take turns in every round,
// so a busy machine weighs on all alike; the figures are the medians over
// the rounds of each mode's ns/req and of each proxied mode's difference
// from open in the same round (added-ns/req): a round disturbed by another
// process on the machine moves the median little.
func BenchmarkEgressHTTPSRequest(b *testing.B) {
	w, policed, open, proxyIP := benchWorld(b)
	const per = 40
	modes := []struct {
		name, mode, ip string
		sb             *sandboxapi.Client
	}{
		{"open", "direct", w.allowed.String(), open},
		{"proxy", "proxy", proxyIP, policed},
		{"transparent", "transparent", proxyIP, policed},
	}
	rounds := make([][]float64, len(modes))
	b.ResetTimer()
	for range b.N {
		for i, m := range modes {
			cmd := fmt.Sprintf("python3 /tmp/req.py %d %s %s", per, m.mode, m.ip)
			out, code := sh(b, m.sb, cmd)
			ns, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
			if code != 0 || err != nil {
				b.Fatalf("%s: exit %d: %s", cmd, code, out)
			}
			rounds[i] = append(rounds[i], ns)
		}
	}
	for i, m := range modes {
		b.ReportMetric(median(rounds[i]), m.name+"-ns/req")
		if i > 0 {
			diff := make([]float64, len(rounds[i]))
			for r := range diff {
				diff[r] = rounds[i][r] - rounds[0][r]
			}
			b.ReportMetric(median(diff), m.name+"-added-ns/req")
		}
	}
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// BenchmarkEgressDownload: 100 MB over HTTPS, open against through the
// proxy, the modes taking turns in every round; the figures are the
// medians over the rounds of each mode's MB/s and of each proxied mode's
// ratio to open in the same round.
func BenchmarkEgressDownload(b *testing.B) {
	w, policed, open, _ := benchWorld(b)
	const size = 100_000_000
	modes := []struct {
		name, curl string
		sb         *sandboxapi.Client
	}{
		{"open", "curl -fsSk --resolve allowed.test:443:" + w.allowed.String(), open},
		{"proxy", "curl -fsSk", policed},
		{"transparent", "curl -fsSk --noproxy '*'", policed},
	}
	rates := make([][]float64, len(modes))
	b.ResetTimer()
	for range b.N {
		for i, m := range modes {
			cmd := fmt.Sprintf("%s -o /dev/null -w '%%{time_total}' 'https://allowed.test/?n=%d'", m.curl, size)
			out, code := sh(b, m.sb, cmd)
			t, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
			if code != 0 || err != nil {
				b.Fatalf("%s: exit %d: %s", cmd, code, out)
			}
			rates[i] = append(rates[i], size/t/1e6)
		}
	}
	for i, m := range modes {
		b.ReportMetric(median(rates[i]), m.name+"-MB/s")
		if i > 0 {
			ratio := make([]float64, len(rates[i]))
			for r := range ratio {
				ratio[r] = rates[i][r] / rates[0][r]
			}
			b.ReportMetric(median(ratio), m.name+"/open")
		}
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

// BenchmarkEgressCreate: Create to ready of a sandbox of policy open (the
// baseline) and of an allow-list (its own network, the proxy connected to
// it, the registration), one after the other in one run (-count
// alternates them), each sandbox removed untimed.
func BenchmarkEgressCreate(b *testing.B) {
	w := newWorld(b)
	// The proxy exists before timing starts, as for every sandbox but a
	// policy's first.
	w.sandbox(b, "allowed.test")
	for _, mode := range []string{"open", "allow"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				spec := driver.Spec{ID: "egb-" + ids.New(4), Image: testImage()}
				if mode == "allow" {
					p := netpolicy.MustParse("allowed.test")
					spec.Network.Policy = &p
				}
				b.StartTimer()
				if _, err := w.d.Create(ctx, spec); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := w.d.Remove(ctx, spec.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
