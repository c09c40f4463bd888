package egress

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/netip"

	"github.com/sbx-dev/sbx/internal/netpolicy"
)

// Registration is the body of PUT /v1/clients/{addr}.
type Registration struct {
	Sandbox string `json:"sandbox"`
	Policy  string `json:"policy"`
}

// ControlHandler is the control endpoint: register, change and forget a
// sandbox's address and policy, list them. It wants the bearer token, and
// cmd/sbx-egress serves it only on addresses off the sandbox network.
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /v1/clients", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Clients())
	})
	mux.HandleFunc("PUT /v1/clients/{addr}", func(w http.ResponseWriter, r *http.Request) {
		ip, err := netip.ParseAddr(r.PathValue("addr"))
		if err != nil {
			http.Error(w, "bad address", http.StatusBadRequest)
			return
		}
		var reg Registration
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&reg); err != nil {
			http.Error(w, "bad body: "+err.Error(), http.StatusBadRequest)
			return
		}
		p, err := netpolicy.Parse(reg.Policy)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.Register(ip, reg.Sandbox, p); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /v1/clients/{addr}", func(w http.ResponseWriter, r *http.Request) {
		ip, err := netip.ParseAddr(r.PathValue("addr"))
		if err != nil {
			http.Error(w, "bad address", http.StatusBadRequest)
			return
		}
		if err := s.Unregister(ip); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
