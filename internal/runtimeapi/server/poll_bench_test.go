package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// BenchmarkSessionGet is GET /sessions/{id} in process (a real SQLite
// store and HTTP over loopback, no engine): the service's own cost of the
// pollers' request, 30 at once.
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
	b.ResetTimer()
	var wg sync.WaitGroup
	per := max(1, b.N/30)
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/sessions/s%d", ts.URL, g), nil)
				req.Header.Set("X-API-Key", secret)
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}
