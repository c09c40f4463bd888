package sandboxd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/sandboxapi"
)

const testPoolSecret = "pool-secret"

func newClaimServer(t *testing.T, key string) *testServer {
	t.Helper()
	return newTestServerOpts(t, key, nil, func(o *Options) { o.PoolSecret = testPoolSecret })
}

func (s *testServer) call(t *testing.T, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	resp, err := s.do(ctx, t, method, path, body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *testServer) claimWith(t *testing.T, secret, body string) (int, string) {
	t.Helper()
	return s.call(t, "POST", PathClaim, body, map[string]string{HeaderPoolSecret: secret})
}

// echoIn runs cmd in session (the default one when "") with key.
func (s *testServer) echoIn(t *testing.T, key, session, cmd string) string {
	t.Helper()
	hdr := map[string]string{sandboxapi.HeaderSessionAPIKey: key}
	if session == "" {
		obs, _, err := sandboxapi.NewClient(s.ts.URL, key).Run(t.Context(), sandboxapi.NewRunAction(cmd, 30))
		if err != nil {
			t.Fatal(err)
		}
		return obs.Content
	}
	st, body := s.call(t, "POST", "/sbx/v1/sessions/"+session+"/run", runJSON(cmd, false), hdr)
	if st != 200 {
		t.Fatalf("run in %s: %d %s", session, st, body)
	}
	var obs sandboxapi.Observation
	if err := json.Unmarshal([]byte(body), &obs); err != nil {
		t.Fatal(err)
	}
	return obs.Content
}

// awkward holds what a careless quoting would let the shell interpret.
const awkward = "it's $HOME `id` \"q\" \\x\n second line '\\''"

func claimBody(t *testing.T, key string, env map[string]string) string {
	t.Helper()
	b, err := json.Marshal(ClaimRequest{SessionAPIKey: key, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClaimRekeysAndSetsEnv(t *testing.T) {
	t.Parallel()
	s := newClaimServer(t, "old")
	old := map[string]string{sandboxapi.HeaderSessionAPIKey: "old"}
	if st, body := s.call(t, "POST", "/sbx/v1/sessions", `{"name":"before"}`, old); st != 201 {
		t.Fatalf("create session: %d %s", st, body)
	}
	st, body := s.claimWith(t, testPoolSecret, claimBody(t, "new", map[string]string{"K": awkward, "TENANT": "t1"}))
	if st != 200 || strings.TrimSpace(body) != `{"claimed":true,"sessions":2}` {
		t.Fatalf("claim: %d %s", st, body)
	}
	if st, _ := s.call(t, "GET", "/sbx/v1/sessions", "", old); st != 403 {
		t.Fatalf("old key after the claim: %d, want 403", st)
	}
	if st, _ := s.call(t, "GET", "/alive", "", nil); st != 200 {
		t.Fatalf("/alive after the claim: %d", st)
	}
	const show = `printf '%s|' "$K"; echo "$TENANT"`
	want := awkward + "|t1"
	if got := s.echoIn(t, "new", "", show); got != want {
		t.Errorf("default session: %q, want %q", got, want)
	}
	if got := s.echoIn(t, "new", "before", show); got != want {
		t.Errorf("session created before the claim: %q, want %q", got, want)
	}
	newKey := map[string]string{sandboxapi.HeaderSessionAPIKey: "new"}
	if st, body := s.call(t, "POST", "/sbx/v1/sessions", `{"name":"after"}`, newKey); st != 201 {
		t.Fatalf("create session: %d %s", st, body)
	}
	if got := s.echoIn(t, "new", "after", show); got != want {
		t.Errorf("session created after the claim: %q, want %q", got, want)
	}
	// Exactly once: the pool secret no longer re-keys the sandbox.
	if st, body := s.claimWith(t, testPoolSecret, claimBody(t, "evil", nil)); st != http.StatusPreconditionFailed || !strings.Contains(body, "already claimed") {
		t.Fatalf("second claim: %d %s", st, body)
	}
	if got := s.echoIn(t, "new", "", "echo ok"); got != "ok" {
		t.Fatalf("new key after a refused second claim: %q", got)
	}
}

func TestClaimWrongSecret(t *testing.T) {
	t.Parallel()
	s := newClaimServer(t, "old")
	for _, secret := range []string{"", "pool-secreT", testPoolSecret + "x"} {
		st, body := s.claimWith(t, secret, claimBody(t, "new", map[string]string{"K": "v"}))
		if st != 403 || strings.TrimSpace(body) != `{"detail":"Invalid pool secret"}` {
			t.Fatalf("secret %q: %d %s", secret, st, body)
		}
	}
	// A session key is no pool secret either.
	st, _ := s.call(t, "POST", PathClaim, claimBody(t, "new", nil), map[string]string{sandboxapi.HeaderSessionAPIKey: "old"})
	if st != 403 {
		t.Fatalf("session key as secret: %d", st)
	}
	if got := s.echoIn(t, "old", "", `echo "[$K]"`); got != "[]" {
		t.Fatalf("env after refused claims: %q", got)
	}
	// Nothing was claimed: the right secret still works.
	if st, body := s.claimWith(t, testPoolSecret, claimBody(t, "new", nil)); st != 200 {
		t.Fatalf("claim after refusals: %d %s", st, body)
	}
}

func TestClaimBusySessionChangesNothing(t *testing.T) {
	t.Parallel()
	s := newClaimServer(t, "")
	if st, body := s.call(t, "POST", "/sbx/v1/sessions", `{"name":"busy"}`, nil); st != 201 {
		t.Fatalf("create session: %d %s", st, body)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if resp, err := s.do(ctx, t, "POST", "/sbx/v1/sessions/busy/run", runJSON("sleep 3", false), nil); err == nil {
			resp.Body.Close()
		}
	}()
	ss, err := s.srv.reg.get("busy")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ss.sh.Busy() {
		if time.Now().After(deadline) {
			t.Fatal("session never became busy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, body := s.claimWith(t, testPoolSecret, claimBody(t, "new", map[string]string{"K": "v"}))
	if st != http.StatusPreconditionFailed || !strings.Contains(body, "busy") {
		t.Fatalf("claim with a busy session: %d %s", st, body)
	}
	<-done
	// The key is unchanged (none), and no shell got K.
	if got := s.echoIn(t, "", "", `echo "[$K]"`); got != "[]" {
		t.Fatalf("default session after a refused claim: %q", got)
	}
	if got := s.echoIn(t, "", "busy", `echo "[$K]"`); got != "[]" {
		t.Fatalf("busy session after a refused claim: %q", got)
	}
	if st, body := s.claimWith(t, testPoolSecret, claimBody(t, "new", map[string]string{"K": "v"})); st != 200 {
		t.Fatalf("claim once idle: %d %s", st, body)
	}
}

func TestClaimBadEnv(t *testing.T) {
	t.Parallel()
	s := newClaimServer(t, "")
	for _, body := range []string{
		`{"env":{"1X":"v"}}`,
		`{"env":{"A-B":"v"}}`,
		`{"env":{"":"v"}}`,
		`{"env":{"A B":"v"}}`,
		`{"env":{"SESSION_API_KEY":"v"}}`,
		`{"env":{"SBX_POOL_SECRET":"v"}}`,
		`{"env":{"SBX_STATE_DIR":"/x"}}`,
		`{"env":{"K":"a\u0000b"}}`,
		`{"env":{"K":1}}`,
		`{"unknown":1}`,
		`not json`,
	} {
		if st, got := s.claimWith(t, testPoolSecret, body); st != 400 {
			t.Errorf("%s: %d %s, want 400", body, st, got)
		}
	}
	if got := s.echoIn(t, "", "", `echo "[$K]"`); got != "[]" {
		t.Fatalf("env after refused claims: %q", got)
	}
}

func TestClaimWithoutPoolSecretIsUnknown(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, "")
	st, _ := s.claimWith(t, "", claimBody(t, "new", nil))
	want, _ := s.call(t, "POST", "/sbx/v1/no-such-route", "{}", nil)
	if st != 404 || want != 404 {
		t.Fatalf("claim without a pool secret: %d (unknown route %d), want 404", st, want)
	}
	// With a session key, it is behind the key like any unknown route.
	k := newTestServer(t, "key")
	if st, _ := k.claimWith(t, "", claimBody(t, "new", nil)); st != 403 {
		t.Fatalf("claim without a pool secret, keyed server: %d, want 403", st)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "''", "a": "'a'", "it's": `'it'\''s'`, "''": `''\'''\'''`} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzDecodeClaim: every refusal is a 400, and every accepted variable
// survives the export quoting: bash reads back exactly the value.
func FuzzDecodeClaim(f *testing.F) {
	f.Add([]byte(`{"session_api_key":"k","env":{"K":"V"}}`))
	f.Add([]byte(`{"env":{"SBX_POOL_SECRET":"x"}}`))
	f.Add([]byte(`{"env":{"_a1":"it's $HOME` + "`id`" + `\n"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeClaim(body)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error without a class: %v", err)
			}
			return
		}
		for k, v := range req.Env {
			if !envName.MatchString(k) || strings.HasPrefix(k, "SBX_") || k == "SESSION_API_KEY" || strings.ContainsRune(v, 0) {
				t.Fatalf("accepted %q=%q", k, v)
			}
			q := shellQuote(v)
			if !strings.HasPrefix(q, "'") || !strings.HasSuffix(q, "'") {
				t.Fatalf("quote %q -> %s", v, q)
			}
			// Outside the quotes only \' may appear.
			if got := strings.ReplaceAll(q[1:len(q)-1], `'\''`, "'"); got != v {
				t.Fatalf("quote of %q does not read back: %s", v, q)
			}
		}
	})
}
