package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWarnsWithoutSessionKey: serving without SESSION_API_KEY is what
// OpenHands does, but it must not be silent; the warning names the
// address anyone could reach.
func TestWarnsWithoutSessionKey(t *testing.T) {
	bin := buildSandboxd(t)
	c := startSandboxd(t, bin, filepath.Join(t.TempDir(), "work"), "SESSION_API_KEY=", "SBX_STATE_DIR="+t.TempDir())
	want := `level=WARN msg="SESSION_API_KEY is empty: serving without authentication" addr=127.0.0.1:`
	if !strings.Contains(c.log.String(), want) {
		t.Errorf("no warning %q in the log:\n%s", want, c.log.String())
	}
	d := startSandboxd(t, bin, filepath.Join(t.TempDir(), "work"), "SESSION_API_KEY=k", "SBX_STATE_DIR="+t.TempDir())
	if strings.Contains(d.log.String(), "without authentication") {
		t.Errorf("warned although a key is set:\n%s", d.log.String())
	}
}

// TestURLFileFromLaunch: the file viewer's URL goes to the file the launch
// names (the local driver's per-sandbox directory), not to the host's
// shared /tmp/oh-server-url.
func TestURLFileFromLaunch(t *testing.T) {
	bin := buildSandboxd(t)
	urlFile := filepath.Join(t.TempDir(), "oh-server-url")
	startSandboxd(t, bin, filepath.Join(t.TempDir(), "work"), "SBX_URL_FILE="+urlFile, "SBX_STATE_DIR="+t.TempDir())
	// The viewer starts before readiness; the file is written right after.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(urlFile)
		if err == nil && strings.HasPrefix(string(b), "http://localhost:") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q, %v; want the viewer's URL", urlFile, b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
