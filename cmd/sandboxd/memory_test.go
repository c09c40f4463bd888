package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// vmHWM is the peak resident set of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestParallelLargeWritesBoundedMemory: ten concurrent write actions of
// 60 MiB each (under the 64 MiB per-request cap) once took sandboxd to
// 2.48 GB, because every body was read, decoded and copied in parallel.
// The bytes in flight are now bounded server-wide: each request either
// writes its file completely or is refused with 503 and Retry-After, and
// the peak resident set (VmHWM, measured on the real binary) stays under
// 300 MB.
func TestParallelLargeWritesBoundedMemory(t *testing.T) {
	bin := buildSandboxd(t)
	dir := t.TempDir()
	c := startSandboxd(t, bin, filepath.Join(t.TempDir(), "work"), "SBX_STATE_DIR="+t.TempDir())
	base := vmHWM(t, c.cmd.Process.Pid)

	const n, size = 10, 60 << 20
	line := strings.Repeat("x", 63) + "\n"
	content := strings.Repeat(line, size/len(line))
	enc, _ := json.Marshal(content) // shared by every body
	type result struct {
		status     int
		retryAfter string
		body       string
		err        error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, _ := json.Marshal(filepath.Join(dir, fmt.Sprintf("f%d.txt", i)))
			head := `{"action":{"action":"write","args":{"path":` + string(path) + `,"content":`
			const tail = `}}}`
			req, _ := http.NewRequest(http.MethodPost, c.url+"/execute_action",
				io.MultiReader(strings.NewReader(head), bytes.NewReader(enc), strings.NewReader(tail)))
			req.ContentLength = int64(len(head) + len(enc) + len(tail))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			results[i] = result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
		}()
	}
	wg.Wait()
	peak := vmHWM(t, c.cmd.Process.Pid)

	ok, busy := 0, 0
	for i, r := range results {
		path := filepath.Join(dir, fmt.Sprintf("f%d.txt", i))
		got, rerr := os.ReadFile(path)
		switch {
		case r.err != nil:
			t.Errorf("request %d: %v", i, r.err)
		case r.status == http.StatusOK && strings.Contains(r.body, `"observation":"write"`):
			ok++
			if rerr != nil || len(got) != len(content)+1 || string(got[:len(content)]) != content {
				t.Errorf("request %d succeeded but %s has %d bytes (%v), want %d", i, path, len(got), rerr, len(content)+1)
			}
		case r.status == http.StatusServiceUnavailable && r.retryAfter != "":
			busy++
			if rerr == nil {
				t.Errorf("request %d was refused but %s exists (%d bytes)", i, path, len(got))
			}
		default:
			t.Errorf("request %d: %d (Retry-After %q) %.300s", i, r.status, r.retryAfter, r.body)
		}
	}
	if left := stagingFiles(t, dir); len(left) > 0 {
		t.Errorf("staging files left: %q", left)
	}
	t.Logf("%d written, %d refused with 503; VmHWM %d MB at start, %d MB peak", ok, busy, base/1e6, peak/1e6)
	if ok == 0 {
		t.Errorf("no write succeeded")
	}
	if peak > 300e6 {
		t.Errorf("peak RSS (VmHWM) %d MB, want <= 300 MB", peak/1e6)
	}
}
