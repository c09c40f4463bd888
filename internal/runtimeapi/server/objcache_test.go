package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/runtimeapi/store"
)

// A cached answer is the answer writeJSON gives, and a new generation of
// the record replaces it.
func TestObjectCache(t *testing.T) {
	s := &Server{cfg: Config{PublicURL: "http://svc"}}
	spec, _ := json.Marshal(workloadSpec{Kind: kindV0, Image: "img", Labels: map[string]string{"a": "b"}})
	rec := store.Runtime{ID: "rt-x", Tenant: "k", SessionID: "s", State: store.Starting, Spec: spec, Generation: 1,
		Created: time.Unix(100, 5), Updated: time.Unix(101, 0)}
	want := func(rec store.Runtime) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		writeJSON(w, http.StatusOK, s.object(rec))
		return w
	}
	for i, r := range []store.Runtime{rec, rec, func() store.Runtime {
		rec.State, rec.PodStatus, rec.Generation, rec.Updated = store.Running, "ready", 2, time.Unix(102, 0)
		return rec
	}(), rec} {
		got := httptest.NewRecorder()
		s.objects.write(got, s, r)
		exp := want(r)
		if got.Code != exp.Code || got.Body.String() != exp.Body.String() || got.Header().Get("Content-Type") != exp.Header().Get("Content-Type") {
			t.Errorf("answer %d: %d %q %v, want %d %q %v", i, got.Code, got.Body, got.Header(), exp.Code, exp.Body, exp.Header())
		}
	}
	// An older generation read late does not replace a newer answer.
	old := rec
	old.Generation, old.State = 1, store.Starting
	s.objects.write(httptest.NewRecorder(), s, old)
	if e := s.objects.m[rec.ID]; e.gen != 2 {
		t.Errorf("cached generation %d, want 2", e.gen)
	}
}
