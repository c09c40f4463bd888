package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// BenchmarkProxyInProcess: a GET through the proxy and straight to the
// same backend (a real HTTP server on loopback), alternating, so the
// proxy's own cost shows without an engine: direct/op vs proxied/op.
func BenchmarkProxyInProcess(b *testing.B) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"ok"}`) }))
	defer back.Close()
	bu, _ := url.Parse(back.URL)
	srv := &Server{routes: newRouteTable(), cfg: Config{Store: nopStore{}}, log: slog.New(slog.DiscardHandler)}
	srv.routes.set(route{id: "rt-a", state: store.Running, targets: map[string]*url.URL{svcMain: bu}})
	front := httptest.NewServer(http.HandlerFunc(srv.proxy))
	defer front.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func(u string) {
		resp, err := hc.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.Run("direct", func(b *testing.B) {
		for range b.N {
			get(back.URL + "/alive")
		}
	})
	b.Run("proxied", func(b *testing.B) {
		for range b.N {
			get(front.URL + "/rt-a/alive")
		}
	})
}
