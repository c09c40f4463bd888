package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// BenchmarkSessionGet is GET /sessions/{id} in process (a real SQLite
// store and HTTP over loopback, no engine): the service's own cost of the
// pollers' request, 30 at once: req/s, p50 and p99 latency, and the
// CPU per request of client and server together.
func BenchmarkSessionGet(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	k, secret, _ := st.CreateKey(ctx, "k")
	spec, _ := json.Marshal(workloadSpec{Kind: kindV0, Image: "x"})
	for i := range 30 {
		if _, err := st.CreateRuntime(ctx, store.Runtime{ID: "rt-" + ids.New(6), Tenant: k.ID, SessionID: fmt.Sprintf("s%d", i), Spec: spec}); err != nil {
			b.Fatal(err)
		}
	}
	srv := &Server{cfg: Config{Store: newCachedStore(st), PublicURL: "http://x"}, routes: newRouteTable()}
	srv.mux = http.NewServeMux()
	srv.mux.HandleFunc("GET /sessions/{session_id}", srv.auth(srv.session))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	c0, t0 := cpuTime(), time.Now()
	var wg sync.WaitGroup
	per := max(1, b.N/30)
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, per)
			u := fmt.Sprintf("%s/sessions/s%d", ts.URL, g)
			for range per {
				req, _ := http.NewRequest("GET", u, nil)
				req.Header.Set("X-API-Key", secret)
				t := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(t))
				if resp.StatusCode != 200 {
					b.Errorf("%s: %d", u, resp.StatusCode)
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	reportCPU(b, c0)
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
