package egress

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// RelayPrefix starts a relayed path: /relay/<sandbox-ip>:<port>/<path>
// reaches <path> on that port of a sandbox. A sandbox's network gives the
// host no address (the driver makes it so: a host address there would be
// a way out of every policy), so the host reaches sandboxd, and any other
// port of the sandbox, only through its proxy, which is on that network
// and on one the host reaches.
const RelayPrefix = "/relay/"

type relayTarget struct{}

// newRelay is the relay's handler: a streaming reverse proxy (upgrades,
// event streams and chunked bodies pass through as they come) to
// registered sandboxes only.
func (s *Server) newRelay() http.Handler {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(relayTarget{}).(relayed)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = t.target.String()
			pr.Out.URL.Path, pr.Out.URL.RawPath = t.path, t.rawPath
			pr.Out.Host = t.target.String()
		},
		Transport:     tr,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "relay to the sandbox: "+err.Error(), http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := parseRelay(r.URL)
		if !ok {
			http.Error(w, "want "+RelayPrefix+"<sandbox-address>:<port>/<path>", http.StatusBadRequest)
			return
		}
		if !s.cfg.Pool.Contains(t.target.Addr()) || !s.registered(t.target.Addr()) {
			http.Error(w, "no sandbox of this proxy at "+t.target.Addr().String(), http.StatusNotFound)
			return
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), relayTarget{}, t)))
	})
}

type relayed struct {
	target        netip.AddrPort
	path, rawPath string
}

// parseRelay splits /relay/<ip>:<port>/<rest> keeping <rest>'s escaping.
func parseRelay(u *url.URL) (relayed, bool) {
	esc := u.EscapedPath()
	rest, ok := strings.CutPrefix(esc, RelayPrefix)
	if !ok {
		return relayed{}, false
	}
	target, tail, _ := strings.Cut(rest, "/")
	ap, err := netip.ParseAddrPort(target)
	if err != nil || ap.Port() == 0 {
		return relayed{}, false
	}
	raw := "/" + tail
	path, err := url.PathUnescape(raw)
	if err != nil {
		return relayed{}, false
	}
	t := relayed{target: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), path: path}
	if path != raw {
		t.rawPath = raw
	}
	return t, true
}

// ControlSideHandler is what the control side serves: the relay, which
// sandboxd's own key guards as it does a published port, and the control
// endpoint, which wants the proxy's token.
func (s *Server) ControlSideHandler() http.Handler {
	ctl := s.ControlHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, RelayPrefix) {
			s.relay.ServeHTTP(w, r)
			return
		}
		ctl.ServeHTTP(w, r)
	})
}
