package sandboxd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// postAction posts an action and decodes the observation; ctx bounds it.
func postAction(ctx context.Context, t *testing.T, ts *testServer, body string) (map[string]any, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.ts.URL+"/execute_action", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var obs map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&obs); err != nil {
		return nil, err
	}
	return obs, nil
}

func runBody(cmd string, extra string) string {
	b, _ := json.Marshal(cmd)
	return `{"action":{"action":"run","args":{"command":` + string(b) + extra + `}` + `}}`
}

// Defect 1: a blocking run without a timeout whose client went away held
// the action lock for ever; the C-c that would end it queued behind it.
func TestAbandonedBlockingRunDoesNotWedgeTheSandbox(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	gone := make(chan error, 1)
	go func() {
		_, err := postAction(ctx, t, ts, `{"action":{"action":"run","args":{"command":"sleep infinity","blocking":true}}}`)
		gone <- err
	}()
	waitBusy(t, ts)
	cancel() // Ctrl-C of `sbx exec X -- 'sleep infinity'`
	<-gone

	actx, acancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer acancel()
	obs, err := postAction(actx, t, ts, runBody("C-c", `,"is_input":true`))
	if err != nil {
		t.Fatalf("C-c after the client left: %v (the sandbox is wedged)", err)
	}
	if s := obs["extras"].(map[string]any)["metadata"].(map[string]any)["suffix"].(string); !strings.Contains(s, "CTRL+C was sent") {
		t.Fatalf("C-c reply: %v", obs)
	}
	obs, err = postAction(actx, t, ts, runBody("echo usable", ""))
	if err != nil || obs["content"] != "usable" {
		t.Fatalf("next command: %v %v", obs, err)
	}
}

// An interrupt does not wait for the request that holds the shell: a C-c
// from a second client ends a blocking command whose client is still
// waiting, and both get their answers.
func TestInterruptDoesNotQueueBehindTheLock(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	first := make(chan map[string]any, 1)
	go func() {
		obs, _ := postAction(t.Context(), t, ts, `{"action":{"action":"run","args":{"command":"sleep 1000","blocking":true}}}`)
		first <- obs
	}()
	waitBusy(t, ts)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	obs, err := postAction(ctx, t, ts, runBody("C-c", `,"is_input":true`))
	if err != nil {
		t.Fatalf("C-c: %v", err)
	}
	select {
	case o := <-first:
		md := o["extras"].(map[string]any)["metadata"].(map[string]any)
		if md["exit_code"].(float64) != 130 {
			t.Fatalf("the interrupted command: %v", o)
		}
	case <-ctx.Done():
		t.Fatal("the blocking command did not end")
	}
	if s := obs["extras"].(map[string]any)["metadata"].(map[string]any)["suffix"].(string); !strings.Contains(s, "exit code 130. CTRL+C was sent") {
		t.Fatalf("C-c reply: %v", obs)
	}
}

// Defect 4: a negative timeout was accepted, the command timed out at
// once and its output showed up in the next command's observation.
func TestNegativeTimeoutIsRefusedAndOutputNeverCrosses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	b := `{"action":{"action":"run","args":{"command":"echo early; sleep 0.2; echo late","blocking":true},"timeout":-1}}`
	obs, err := postAction(ctx, t, ts, b)
	if err != nil {
		t.Fatal(err)
	}
	if obs["observation"] != "error" || !strings.Contains(obs["content"].(string), "must not be negative") {
		t.Fatalf("timeout -1: %v", obs)
	}
	// 0 is OpenHands' "no hard timeout": the command completes in its own
	// observation.
	obs, err = postAction(ctx, t, ts, `{"action":{"action":"run","args":{"command":"echo early; sleep 0.2; echo late","blocking":true},"timeout":0}}`)
	if err != nil || obs["content"] != "early\nlate" {
		t.Fatalf("timeout 0: %v %v", obs, err)
	}
	obs, err = postAction(ctx, t, ts, runBody("echo next", ""))
	if err != nil || obs["content"] != "next" {
		t.Fatalf("the next command's observation: %v %v", obs, err)
	}
}

// waitBusy waits until the default session runs a command: typed, and in
// the terminal's foreground (a C-c before that would hit bash reading it).
func waitBusy(t *testing.T, ts *testServer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if sh := ts.srv.shell; sh != nil && sh.Busy() {
			// The foreground must be sleep itself: a SIGINT between bash's
			// fork and exec is caught by bash's handler and lost, on any
			// terminal.
			if tm := sh.Terminal(); tm.Foreground() != tm.Pid() {
				if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", tm.Foreground())); string(comm) == "sleep\n" {
					return
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("the command did not start")
}
