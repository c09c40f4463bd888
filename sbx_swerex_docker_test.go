package sbx_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/sbx-dev/sbx"
)

// CreateOptions.SWEReX gives a sandbox a SWE-ReX listener on 127.0.0.1
// with a UUID token; another Runtime finds both again with Get; SWE-ReX's
// health check answers with the token; attaching a SWE-ReX request to a
// sandbox without one is refused.
func TestDockerSWEReX(t *testing.T) {
	rt := openRuntime(t)
	sb := create(t, rt, sbx.CreateOptions{SWEReX: true, NoAppPorts: true})
	e := sb.SWEReX()
	if e == nil || e.Host != "127.0.0.1" || e.Port <= 0 || e.URL != "http://127.0.0.1:"+strconv.Itoa(e.Port) ||
		!regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(e.Token) {
		t.Fatalf("SWEReX() = %+v", e)
	}
	if got := exec(t, sb, "echo ok"); got != "ok" {
		t.Fatalf("OpenHands side: %q", got)
	}
	in, err := openRuntime(t).Get(context.Background(), sb.ID())
	if err != nil || in.SWEReX == nil || *in.SWEReX != *e {
		t.Fatalf("Get: %+v, %v; want %+v", in.SWEReX, err, e)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.URL+"/is_alive", nil)
	req.Header.Set("X-API-Key", e.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var alive struct {
		IsAlive bool `json:"is_alive"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &alive) != nil || !alive.IsAlive {
		t.Errorf("GET /is_alive: %d %s", resp.StatusCode, b)
	}

	plain := create(t, rt, sbx.CreateOptions{NoAppPorts: true})
	if plain.SWEReX() != nil {
		t.Errorf("a sandbox without SWEReX has %+v", plain.SWEReX())
	}
	if _, err := rt.Create(context.Background(), sbx.CreateOptions{ID: plain.ID(), Attach: true, SWEReX: true}); !errors.Is(err, sbx.ErrConflict) {
		t.Errorf("attach with SWEReX to a sandbox without: %v, want ErrConflict", err)
	}
}
