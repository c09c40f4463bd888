package server

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// BenchmarkProxyInProcess: a GET (and a small JSON POST, as an action
// is) through the proxy and straight to the same backend (a real HTTP
// server on loopback), so the proxy's own cost shows without an engine:
// direct/op vs proxied/op. The proxy uses the service's own transport.
func BenchmarkProxyInProcess(b *testing.B) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer back.Close()
	bu, _ := url.Parse(back.URL)
	srv := &Server{routes: newRouteTable(), cfg: Config{Store: nopStore{}}, log: slog.New(slog.DiscardHandler), tr: newTransport()}
	srv.routes.set(route{id: "rt-a", state: store.Running, targets: map[string]*url.URL{svcMain: bu}})
	front := httptest.NewServer(http.HandlerFunc(srv.proxy))
	defer front.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	action := []byte(`{"action":{"action":"run","args":{"command":"true","blocking":true,"timeout":10}}}`)
	send := func(b *testing.B, u string, body []byte) {
		method, rd := "GET", io.Reader(nil)
		if body != nil {
			method, rd = "POST", bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, u, rd)
		req.Header.Set("X-Session-API-Key", "sk")
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", u, resp.StatusCode)
		}
	}
	for _, c := range []struct {
		name, url string
		body      []byte
	}{
		{"direct", back.URL + "/alive", nil},
		{"proxied", front.URL + "/rt-a/alive", nil},
		{"direct-post", back.URL + "/execute_action", action},
		{"proxied-post", front.URL + "/rt-a/execute_action", action},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c0 := cpuTime()
			for range b.N {
				send(b, c.url, c.body)
			}
			reportCPU(b, c0)
		})
	}
}

// cpuTime is the process's CPU time so far (user and system): per op it
// is the cost of a request to client and servers together, less swayed
// than ns/op by other work on a busy machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64((cpuTime()-since).Nanoseconds())/float64(b.N)/1000, "cpu-µs/op")
}
