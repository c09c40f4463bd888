package egress

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// RelayPrefix starts a relayed path: /relay/<key>/<sandbox-ip>:<port>/<path>
// reaches <path> on that port of a sandbox. A sandbox's network gives the
// host no address (the driver makes it so: a host address there would be
// a way out of every policy), so the host reaches sandboxd, and any other
// port of the sandbox, only through its proxy, which is on that network
// and on one the host reaches.
const RelayPrefix = "/relay/"

// RelayKey is the <key> of the relay paths to the sandbox at ip: a MAC of
// the address under the proxy's control token. The control side is
// reachable from more than the host (other containers on the engine's
// networks, and a sandbox whose policy lets it reach them), and without a
// key anything there could open any port of any registered sandbox;
// with one, only who was given a sandbox's URL reaches that sandbox.
func RelayKey(token string, ip netip.Addr) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("sbx-egress relay\x00" + ip.Unmap().String()))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// RelayPath is the relay path (without the sandbox's own path) to port of
// the sandbox at ip.
func RelayPath(token string, ip netip.Addr, port int) string {
	return RelayPrefix + RelayKey(token, ip) + "/" + netip.AddrPortFrom(ip.Unmap(), uint16(port)).String()
}

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
			http.Error(w, "want "+RelayPrefix+"<key>/<sandbox-address>:<port>/<path>", http.StatusBadRequest)
			return
		}
		// A wrong key and an unknown sandbox look the same, so the relay
		// tells nobody without a key which addresses are sandboxes.
		good := s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(t.key), []byte(RelayKey(s.cfg.Token, t.target.Addr()))) == 1
		if !good || !s.cfg.Pool.Contains(t.target.Addr()) || !s.registered(t.target.Addr()) {
			http.Error(w, "no sandbox of this proxy at "+t.target.Addr().String(), http.StatusNotFound)
			return
		}
		// A sandbox may answer before it has read the whole request
		// (sandboxd's streamed run flushes its start at once). Without
		// full duplex Go's server stops the request body once the
		// answer's headers are flushed, the transport then drops the
		// upstream connection, and both sides are cut.
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), relayTarget{}, t)))
	})
}

type relayed struct {
	key           string
	target        netip.AddrPort
	path, rawPath string
}

// parseRelay splits /relay/<key>/<ip>:<port>/<rest> keeping <rest>'s
// escaping.
func parseRelay(u *url.URL) (relayed, bool) {
	esc := u.EscapedPath()
	rest, ok := strings.CutPrefix(esc, RelayPrefix)
	if !ok {
		return relayed{}, false
	}
	key, rest, ok := strings.Cut(rest, "/")
	if !ok || key == "" {
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
	if ap.Addr().Zone() != "" {
		return relayed{}, false
	}
	t := relayed{key: key, target: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), path: path}
	if path != raw {
		t.rawPath = raw
	}
	return t, true
}

// ControlSideHandler is what the control side serves: the relay, which
// wants the sandbox's relay key (and sandboxd its own key, as on a
// published port), and the control endpoint, which wants the proxy's
// token.
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
