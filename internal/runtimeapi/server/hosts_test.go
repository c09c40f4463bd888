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

func TestURLsModes(t *testing.T) {
	path, err := newURLs("http://127.0.0.1:8000", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := path.runtime("rt-ab"); got != "http://127.0.0.1:8000/rt-ab" {
		t.Errorf("path mode url %q", got)
	}
	if got := path.service("rt-ab", svcWorker1); got != "http://127.0.0.1:8000/rt-ab/work-1" {
		t.Errorf("path mode work-1 %q", got)
	}
	sub, err := newURLs("https://api.sbx.example:8443/", "Sbx.Example.")
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.runtime("rt-ab"); got != "https://rt-ab.sbx.example:8443" {
		t.Errorf("subdomain url %q", got)
	}
	// What the clients derive from the url (scheme://<service>-<netloc>)
	// is what the service serves.
	for _, svc := range []string{svcVSCode, svcWorker1, svcWorker2} {
		u, _ := url.Parse(sub.runtime("rt-ab"))
		derived := u.Scheme + "://" + svc + "-" + u.Host
		if got := sub.service("rt-ab", svc); got != derived {
			t.Errorf("%s: served at %q, clients derive %q", svc, got, derived)
		}
	}
	for _, bad := range []string{"http://x.test/a:b", "a b.test", "-a.test", "a..test", "x.test:80", "https://x.test"} {
		if _, err := newURLs("http://127.0.0.1:8000", bad); err == nil {
			t.Errorf("domain %q accepted", bad)
		}
	}
	if _, err := newURLs("127.0.0.1:8000", ""); err == nil {
		t.Error("a PublicURL without a scheme accepted")
	}
}

func TestURLsRoute(t *testing.T) {
	u, err := newURLs("http://api.sbx.test:8000", "sbx.test")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string][2]string{
		"rt-ab.sbx.test:8000":        {"rt-ab", svcMain},
		"RT-AB.SBX.TEST.":            {"rt-ab", svcMain},
		"vscode-rt-ab.sbx.test":      {"rt-ab", svcVSCode},
		"work-1-rt-ab.sbx.test:8000": {"rt-ab", svcWorker1},
		"work-2-rt-ab.sbx.test":      {"rt-ab", svcWorker2},
		"vscode-api.sbx.test:8000":   {"", svcVSCode}, // the app server of Nov 2025 in path mode
	} {
		id, svc, err := u.route(host)
		if err != nil || id != want[0] || svc != want[1] {
			t.Errorf("route(%q) = %q %q %v, want %q %q", host, id, svc, err, want[0], want[1])
		}
	}
	for _, host := range []string{"api.sbx.test:8000", "sbx.test", "x.rt-ab.sbx.test", "rt-.sbx.test", "vscode-.sbx.test", "foo.sbx.test", "rt-ab.other.test", "127.0.0.1:8000", "other-api.sbx.test", ""} {
		if id, svc, err := u.route(host); err == nil {
			t.Errorf("route(%q) = %q %q, want the API", host, id, svc)
		}
	}
	path, _ := newURLs("http://127.0.0.1:8000", "")
	if _, _, err := path.route("rt-ab.sbx.test"); err == nil {
		t.Error("path mode routed a host name")
	}
}

// Through ServeHTTP: a runtime's host name reaches its service with the
// whole path; the API host does not.
func TestSubdomainProxy(t *testing.T) {
	main := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "main "+r.URL.Path) }))
	defer main.Close()
	vs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "vscode "+r.URL.Path) }))
	defer vs.Close()
	mu, _ := url.Parse(main.URL)
	vu, _ := url.Parse(vs.URL)
	us, err := newURLs("http://api.sbx.test:8000", "sbx.test")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{routes: newRouteTable(), cfg: Config{Store: nopStore{}}, urls: us, log: slog.New(slog.DiscardHandler), mux: http.NewServeMux()}
	srv.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api "+r.URL.Path) })
	srv.routes.set(route{id: "rt-ab", state: store.Running, targets: map[string]*url.URL{svcMain: mu, svcVSCode: vu}})
	front := httptest.NewServer(srv)
	defer front.Close()
	get := func(host, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", front.URL+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct{ host, path, want string }{
		{"rt-ab.sbx.test:8000", "/alive", "main /alive"},
		{"rt-ab.sbx.test:8000", "/rt-ab/x", "main /rt-ab/x"}, // the whole path is the workload's
		{"vscode-rt-ab.sbx.test:8000", "/", "vscode /"},
		{"vscode-api.sbx.test:8000", "/rt-ab/?tkn=x", "vscode /"},
		{"api.sbx.test:8000", "/list", "api /list"},
		{"api.sbx.test:8000", "/rt-ab/alive", "main /alive"}, // path mode still works
	} {
		if code, body := get(c.host, c.path); code != 200 || body != c.want {
			t.Errorf("%s%s: %d %q, want %q", c.host, c.path, code, body, c.want)
		}
	}
	if code, _ := get("work-1-rt-ab.sbx.test:8000", "/"); code != http.StatusNotFound {
		t.Errorf("a service the runtime does not have: %d, want 404", code)
	}
	if code, _ := get("rt-zz.sbx.test:8000", "/"); code != http.StatusNotFound {
		t.Errorf("an unknown runtime's host name: %d, want 404", code)
	}
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"rt-ab.sbx.test:8000", "vscode-rt-ab.sbx.test", "vscode-api.sbx.test", "work-1-.sbx.test", "[::1]:80", "rt-ab.sbx.test.", "a.b.sbx.test", ""} {
		f.Add(s)
	}
	u, err := newURLs("http://api.sbx.test:8000", "sbx.test")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host string) {
		id, svc, err := u.route(host)
		if err != nil {
			return
		}
		switch svc {
		case svcMain, svcVSCode, svcWorker1, svcWorker2:
		default:
			t.Fatalf("route(%q): service %q", host, svc)
		}
		if id == "" {
			if svc == svcMain {
				t.Fatalf("route(%q): neither a runtime nor a service", host)
			}
			return
		}
		if len(id) <= len(runtimeIDPrefix) || id[:len(runtimeIDPrefix)] != runtimeIDPrefix {
			t.Fatalf("route(%q): id %q", host, id)
		}
		for _, c := range id {
			if c == '.' || c == '/' || c == ':' {
				t.Fatalf("route(%q): id %q", host, id)
			}
		}
	})
}
