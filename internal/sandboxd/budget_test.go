package sandboxd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/sandboxapi"
)

// TestBudgetBusyIs503: a body that does not fit in what other requests
// leave of the budget waits BusyWait, then is answered 503 with
// Retry-After; once the budget is free it is served.
func TestBudgetBusyIs503(t *testing.T) {
	srv := New(Options{WorkDir: t.TempDir(), MaxInFlightBytes: 1 << 20, BusyWait: 50 * time.Millisecond})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	if err := srv.budget.acquire(t.Context(), 1<<20, time.Second); err != nil {
		t.Fatal(err)
	}
	body := `{"action":{"action":"think","args":{}}}`
	resp, err := http.Post(ts.URL+sandboxapi.PathExecuteAction, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("full budget: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Chunked (no Content-Length) is bounded too.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+sandboxapi.PathExecuteAction, struct{ *strings.Reader }{strings.NewReader(body)})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("full budget, chunked: %d, want 503", resp.StatusCode)
	}
	srv.budget.release(1 << 20)
	if srv.budget.used != 0 {
		t.Errorf("budget used %d after every request, want 0", srv.budget.used)
	}
}

// TestBudgetWaitsForRelease: a waiting request gets the bytes another
// releases within BusyWait.
func TestBudgetWaitsForRelease(t *testing.T) {
	b := newBudget(100)
	if err := b.acquire(t.Context(), 80, time.Second); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() { defer wg.Done(); err = b.acquire(t.Context(), 50, 5*time.Second) }()
	time.Sleep(20 * time.Millisecond)
	b.release(80)
	wg.Wait()
	if err != nil || b.used != 50 {
		t.Errorf("acquire after release: %v, used %d", err, b.used)
	}
	// Larger than the whole budget: waits for all of it rather than never.
	b.release(50)
	if err := b.acquire(t.Context(), 1000, time.Second); err != nil || b.used != 100 {
		t.Errorf("oversized acquire: %v, used %d", err, b.used)
	}
}

// TestBindArgsMovesLargeStrings: large strings bind as the JSON round trip
// would, into string, *string and case-folded fields, and a wrong type
// is still reported.
func TestBindArgsMovesLargeStrings(t *testing.T) {
	big := strings.Repeat("é\n", movedStringBytes)
	d := &decodedAction{args: map[string]any{"path": "/p", "content": big}, raw: map[string]any{}}
	var w sandboxapi.FileWriteArgs
	if err := bindArgs(d, &w); err != nil || w.Content != big || w.Path != "/p" {
		t.Errorf("write: %v, content %d bytes, path %q", err, len(w.Content), w.Path)
	}
	d = &decodedAction{args: map[string]any{"FILE_TEXT": big, "new_str": big}, raw: map[string]any{}}
	var e sandboxapi.FileEditArgs
	if err := bindArgs(d, &e); err != nil || e.FileText == nil || *e.FileText != big || e.NewStr == nil || *e.NewStr != big {
		t.Errorf("edit: %v", err)
	}
	d = &decodedAction{args: map[string]any{"start": big}, raw: map[string]any{}}
	err := bindArgs(d, &w)
	if err == nil || !strings.Contains(err.Error(), `argument "start" must be an integer, not string`) {
		t.Errorf("wrong type: %v", err)
	}
	// Two keys that fold together: the round trip decides, as before.
	d = &decodedAction{args: map[string]any{"Content": big, "content": "small"}, raw: map[string]any{}}
	var w2 sandboxapi.FileWriteArgs
	if err := bindArgs(d, &w2); err != nil || w2.Content != "small" {
		b, _ := json.Marshal(len(w2.Content))
		t.Errorf("folded keys: %v, content of %s bytes", err, b)
	}
}
