package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stagingFiles lists the hidden staging files in dir.
func stagingFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".sbx-upload-") || strings.HasPrefix(e.Name(), ".sbx-write-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitStaging polls dir until a staging file appears or done is closed.
func waitStaging(t *testing.T, dir string, done <-chan struct{}, limit time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if len(stagingFiles(t, dir)) > 0 {
			return true
		}
		select {
		case <-done:
			return len(stagingFiles(t, dir)) > 0
		default:
		}
	}
	return false
}

// TestKilledUploadLeavesNoStagingFile: sandboxd killed with SIGKILL in the
// middle of an upload leaves its hidden staging file beside the target;
// the next start with the same state directory removes it and leaves the
// target as it was.
func TestKilledUploadLeavesNoStagingFile(t *testing.T) {
	bin := buildSandboxd(t)
	state, work := t.TempDir(), filepath.Join(t.TempDir(), "work")
	dest := t.TempDir()
	target := filepath.Join(dest, "big.bin")
	if err := os.WriteFile(target, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dest, ".sbx-upload-mine") // a user's file of a similar name
	os.WriteFile(mine, []byte("mine"), 0o644)
	c := startSandboxd(t, bin, work, "SBX_STATE_DIR="+state)

	// The body is streamed and never finished: the upload is mid-way for
	// as long as the test wants.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, _ := http.NewRequest(http.MethodPost, c.url+"/upload_file?destination="+dest, pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	go func() {
		fw, _ := mw.CreateFormFile("file", "big.bin")
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for i := 0; i < 8; i++ {
			if _, err := fw.Write(chunk); err != nil {
				return
			}
		}
		// Then hang until the server dies.
	}()
	respErr := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("upload answered %s", resp.Status)
		}
		respErr <- err
	}()
	if !waitStaging(t, dest, nil, 10*time.Second) {
		t.Fatalf("no staging file appeared in %s", dest)
	}
	time.Sleep(50 * time.Millisecond) // let it write some of the 8 MiB
	c.kill9(t)
	pw.CloseWithError(io.ErrClosedPipe)
	if err := <-respErr; err == nil || strings.Contains(err.Error(), "answered") {
		t.Fatalf("upload finished before the kill: %v", err)
	}
	if left := stagingFiles(t, dest); len(left) < 2 {
		t.Fatalf("want the staging file (and the user's) after the kill, have %q", left)
	}

	startSandboxd(t, bin, work, "SBX_STATE_DIR="+state)
	if left := stagingFiles(t, dest); len(left) != 1 || left[0] != ".sbx-upload-mine" {
		t.Errorf("after the restart: %q, want only the user's .sbx-upload-mine", left)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "old\n" {
		t.Errorf("target: %q, %v; want it untouched", b, err)
	}
}

// TestKilledWriteLeavesNoStagingFile is the same for the write action's
// atomic write (fileops): the kill lands while the new content is being
// written to the staging file, before the rename.
func TestKilledWriteLeavesNoStagingFile(t *testing.T) {
	bin := buildSandboxd(t)
	state, work := t.TempDir(), filepath.Join(t.TempDir(), "work")
	dir := t.TempDir()
	target := filepath.Join(dir, "f.txt")
	body, _ := json.Marshal(map[string]any{"action": map[string]any{"action": "write",
		"args": map[string]any{"path": target, "content": strings.Repeat("0123456789abcdef\n", 3<<20)}}})
	caught := false
	for attempt := 0; attempt < 10 && !caught; attempt++ {
		if err := os.WriteFile(target, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := startSandboxd(t, bin, work, "SBX_STATE_DIR="+state)
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := http.Post(c.url+"/execute_action", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
			}
		}()
		seen := waitStaging(t, dir, done, 20*time.Second)
		c.kill9(t)
		<-done
		// Caught only if the staging file outlived the server: then the
		// rename never happened and the target must be the old one.
		caught = seen && len(stagingFiles(t, dir)) > 0
		if !caught {
			t.Logf("attempt %d: the write finished before the kill; again", attempt)
		}
	}
	if !caught {
		t.Fatal("never killed sandboxd in the middle of a write")
	}
	startSandboxd(t, bin, work, "SBX_STATE_DIR="+state)
	if left := stagingFiles(t, dir); len(left) != 0 {
		t.Errorf("after the restart: %q left beside the target", left)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "old\n" {
		t.Errorf("target: %.20q, %v; want it untouched", b, err)
	}
}
