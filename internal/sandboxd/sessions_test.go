package sandboxd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sbx-dev/sbx/internal/term"
	"github.com/sbx-dev/sbx/sandboxapi"
)

func (s *testServer) do(ctx context.Context, t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, s.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return http.DefaultClient.Do(req)
}

func (s *testServer) jsonCall(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	resp, err := s.do(ctx, t, method, path, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var e sandboxapi.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, e.Detail)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

type event struct {
	Type        string                 `json:"type"`
	RunID       string                 `json:"run_id"`
	Offset      int64                  `json:"offset"`
	Data        string                 `json:"data"`
	Skipped     int64                  `json:"skipped"`
	Next        int64                  `json:"next"`
	Observation sandboxapi.Observation `json:"observation"`
	at          time.Time
}

// readEvents reads NDJSON events until the stream ends or stop says so.
func readEvents(t *testing.T, resp *http.Response, stop func(event) bool) []event {
	t.Helper()
	var evs []event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("bad event %q: %v", sc.Text(), err)
		}
		e.at = time.Now()
		evs = append(evs, e)
		if stop != nil && stop(e) {
			break
		}
	}
	return evs
}

func outputOf(evs []event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Type == "output" {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

func runJSON(cmd string, stream bool) string {
	b, _ := json.Marshal(sandboxapi.SessionRunRequest{Command: cmd, Blocking: true, Stream: stream})
	return string(b)
}

func TestSessionsRunAtOnce(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	ts.jsonCall(t, "POST", "/sbx/v1/sessions", `{"name":"a"}`, 201, nil)
	ts.jsonCall(t, "POST", "/sbx/v1/sessions", `{"name":"b"}`, 201, nil)
	ts.jsonCall(t, "POST", "/sbx/v1/sessions", `{"name":"a"}`, 409, nil)
	ts.jsonCall(t, "POST", "/sbx/v1/sessions", `{"name":"../x"}`, 400, nil)
	var wg sync.WaitGroup
	spans := map[string][2]int64{}
	var mu sync.Mutex
	for _, name := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var obs sandboxapi.Observation
			ts.jsonCall(t, "POST", "/sbx/v1/sessions/"+name+"/run", runJSON("date +%s%N; sleep 1; date +%s%N", false), 200, &obs)
			f := strings.Fields(obs.Content)
			if len(f) != 2 {
				t.Errorf("%s: %q", name, obs.Content)
				return
			}
			a, _ := strconv.ParseInt(f[0], 10, 64)
			b, _ := strconv.ParseInt(f[1], 10, 64)
			mu.Lock()
			spans[name] = [2]int64{a, b}
			mu.Unlock()
		}()
	}
	wg.Wait()
	a, b := spans["a"], spans["b"]
	if !(a[0] < b[1] && b[0] < a[1]) {
		t.Fatalf("the two sessions' sleeps did not overlap: a %v, b %v", a, b)
	}
}

func TestFiftySessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts.jsonCall(t, "POST", "/sbx/v1/sessions", fmt.Sprintf(`{"name":"s-%d","env":{"N":"%d"}}`, i, i), 201, nil)
			var obs sandboxapi.Observation
			ts.jsonCall(t, "POST", fmt.Sprintf("/sbx/v1/sessions/s-%d/run", i), runJSON("echo $N", false), 200, &obs)
			if obs.Content != strconv.Itoa(i) {
				t.Errorf("session s-%d: %q", i, obs.Content)
			}
		}()
	}
	wg.Wait()
	var list []sandboxapi.SessionInfo
	ts.jsonCall(t, "GET", "/sbx/v1/sessions", "", 200, &list)
	if len(list) != 51 || list[0].Name != DefaultSession {
		t.Fatalf("%d sessions listed, first %q", len(list), list[0].Name)
	}
	for i := range 50 {
		ts.jsonCall(t, "DELETE", fmt.Sprintf("/sbx/v1/sessions/s-%d", i), "", 204, nil)
	}
	ts.jsonCall(t, "DELETE", "/sbx/v1/sessions/default", "", 412, nil) // errdefs.ErrConflict
	ts.jsonCall(t, "GET", "/sbx/v1/sessions/s-1", "", 404, nil)
}

func TestStreamedRunEndsWithTheSameObservation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	ts.jsonCall(t, "POST", "/sbx/v1/sessions", `{"name":"plain"}`, 201, nil)
	cmd := "for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done; printf 'é😀\\n'"
	var want sandboxapi.Observation
	ts.jsonCall(t, "POST", "/sbx/v1/sessions/plain/run", runJSON(cmd, false), 200, &want)

	resp, err := ts.do(t.Context(), t, "POST", "/sbx/v1/sessions/default/run", runJSON(cmd, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	evs := readEvents(t, resp, nil)
	if evs[0].Type != "start" || evs[len(evs)-1].Type != "observation" {
		t.Fatalf("events %+v", evs)
	}
	out := outputOf(evs)
	if out != "line1\r\nline2\r\nline3\r\nline4\r\nline5\r\né😀\r\n" {
		t.Fatalf("streamed output %q", out)
	}
	var lines int
	for _, e := range evs {
		if e.Type == "output" {
			lines++
		}
	}
	if lines < 5 {
		t.Fatalf("output came in %d events: not as it was produced", lines)
	}
	got := evs[len(evs)-1].Observation
	if got.Content != want.Content || got.Message != want.Message || string(got.Extras) == "" {
		t.Fatalf("streamed observation %+v, plain %+v", got, want)
	}
	var gx, wx sandboxapi.CmdOutputExtras
	json.Unmarshal(got.Extras, &gx)
	json.Unmarshal(want.Extras, &wx)
	if gx.Metadata.ExitCode != 0 || gx.Metadata.Suffix != wx.Metadata.Suffix || gx.Command != wx.Command {
		t.Fatalf("streamed extras %+v, plain %+v", gx, wx)
	}
}

func TestStreamReconnectShowsWhatWasMissed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	resp, err := ts.do(ctx, t, "POST", "/sbx/v1/sessions/default/run", runJSON("echo first; sleep 0.5; echo second", true), nil)
	if err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, resp, func(e event) bool { return e.Type == "output" })
	cancel() // the client goes away after the first line
	resp.Body.Close()
	id := evs[0].RunID
	next := evs[len(evs)-1].Offset + int64(len(evs[len(evs)-1].Data))

	resp, err = ts.do(t.Context(), t, "GET", fmt.Sprintf("/sbx/v1/sessions/default/runs/%s?offset=%d", id, next), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rest := readEvents(t, resp, nil)
	if out := outputOf(rest); out != "second\r\n" {
		t.Fatalf("after reconnecting at %d: %q", next, out)
	}
	obs := rest[len(rest)-1]
	if obs.Type != "observation" || obs.Observation.Content != "first\nsecond" {
		t.Fatalf("the command did not run to its end after the disconnect: %+v", obs)
	}
	// From the start, by the same id.
	resp2, err := ts.do(t.Context(), t, "GET", "/sbx/v1/sessions/default/runs/"+id, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if out := outputOf(readEvents(t, resp2, nil)); out != "first\r\nsecond\r\n" {
		t.Fatalf("replay from the start: %q", out)
	}
	ts.jsonCall(t, "GET", "/sbx/v1/sessions/default/runs/999", "", 404, nil)
}

// A slow client loses its place and is told; the command is not slowed.
func TestSlowStreamClientIsToldWhatItLost(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	resp, err := ts.do(t.Context(), t, "POST", "/sbx/v1/sessions/default/run", runJSON("head -c 40000000 /dev/zero | tr '\\0' y | fold -w 100", true), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read nothing until the command is done: first see it running (the
	// headers can come before the shell takes the command), then done.
	deadline := time.Now().Add(60 * time.Second)
	for !ts.srv.shell.Busy() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for ts.srv.shell.Busy() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if time.Now().After(deadline) {
		t.Fatal("the command did not run and end within 60 s")
	}
	evs := readEvents(t, resp, nil)
	var lost, got int64
	for _, e := range evs {
		switch e.Type {
		case "lost":
			lost += e.Skipped
		case "output":
			got += int64(len(e.Data))
		}
	}
	// fold ends the last line without a newline; the terminal makes each
	// other one \r\n.
	// Loopback socket buffers hold several MB: the output is well beyond them
	// and the 1 MiB ring.
	if want := int64(40000000 + 399999*2); lost == 0 || got+lost != want {
		t.Fatalf("received %d bytes and was told of %d lost; want a loss and %d in all", got, lost, want)
	}
	if evs[len(evs)-1].Type != "observation" {
		t.Fatalf("last event %+v", evs[len(evs)-1])
	}
}

func TestCancelOnDisconnectInterrupts(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := ts.do(ctx, t, "POST", "/sbx/v1/sessions/default/run", runJSON("sleep 300", false), map[string]string{sandboxapi.HeaderCancelOnDisconnect: "1"})
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitBusy(t, ts)
	sid := ts.srv.shell.Terminal().Pid()
	cancel()
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.shell.Busy() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ts.srv.shell.Busy() {
		t.Fatal("the command still runs after its client left")
	}
	if pids := term.SessionPids(sid); len(pids) != 1 {
		t.Fatalf("processes in the shell's session: %v, want bash alone", pids)
	}
}

func TestInterruptRoute(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	var r sandboxapi.InterruptResult
	ts.jsonCall(t, "POST", "/sbx/v1/sessions/default/interrupt", "", 200, &r)
	if r.Interrupted {
		t.Fatal("nothing was running, yet it says it interrupted")
	}
	res := make(chan sandboxapi.Observation, 1)
	go func() {
		var obs sandboxapi.Observation
		ts.jsonCall(t, "POST", "/sbx/v1/sessions/default/run", runJSON("sleep 1000", false), 200, &obs)
		res <- obs
	}()
	waitBusy(t, ts)
	ts.jsonCall(t, "POST", "/sbx/v1/sessions/default/interrupt", "", 200, &r)
	if !r.Interrupted {
		t.Fatal("not interrupted")
	}
	obs := <-res
	var ex sandboxapi.CmdOutputExtras
	json.Unmarshal(obs.Extras, &ex)
	if ex.Metadata.ExitCode != 130 {
		t.Fatalf("exit %d", ex.Metadata.ExitCode)
	}
	ts.jsonCall(t, "POST", "/sbx/v1/sessions/nope/interrupt", "", 404, nil)
}

func TestServerInfoNamesTheExtensions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	si, err := ts.c.ServerInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if si.Sbx == nil || si.Sbx.API != "v1" || !slices.Contains(si.Sbx.Capabilities, "sessions") || !slices.Contains(si.Sbx.Capabilities, "streaming") {
		t.Fatalf("server_info sbx: %+v", si.Sbx)
	}
}
