package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The backend is docker unless --runtime, SANDBOX_API_RUNTIME or the
// config file says modal; anything else is refused before serving, and
// Modal's credential variables are carried to the configuration.
func TestRuntimeSetting(t *testing.T) {
	db := filepath.Join(t.TempDir(), "api.db")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
		err  string
	}{
		{args: nil, want: "docker"},
		{args: []string{"--runtime", "modal"}, want: "modal"},
		{env: map[string]string{"SANDBOX_API_RUNTIME": "modal"}, want: "modal"},
		{args: []string{"--runtime", "docker"}, env: map[string]string{"SANDBOX_API_RUNTIME": "modal"}, want: "docker"},
		{args: []string{"--runtime", "kubernetes"}, err: `runtime "kubernetes"`},
	} {
		env := map[string]string{"MODAL_TOKEN_ID": "ak-1", "MODAL_API_TOKEN_SECRET": "as-2"}
		for k, v := range tc.env {
			env[k] = v
		}
		s, err := load(flag.NewFlagSet("serve", flag.ContinueOnError), append([]string{"--db", db}, tc.args...), io.Discard, func(k string) string { return env[k] })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || s.Runtime != tc.want {
			t.Errorf("%v %v: runtime %q, %v; want %q", tc.args, tc.env, s.Runtime, err, tc.want)
		}
		if s.modalTokenID != "ak-1" || s.modalAPITokenSecret != "as-2" || s.modalTokenSecret != "" {
			t.Errorf("modal credentials carried: %q %q %q", s.modalTokenID, s.modalTokenSecret, s.modalAPITokenSecret)
		}
	}
}

// Subdomain mode's domain comes from --domain, SANDBOX_API_DOMAIN or the
// file's domain, in that order.
func TestDomainSetting(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "api.db")
	cfg := filepath.Join(dir, "api.toml")
	if err := os.WriteFile(cfg, []byte("domain = \"file.test\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{want: ""},
		{args: []string{"--config", cfg}, want: "file.test"},
		{args: []string{"--config", cfg}, env: map[string]string{"SANDBOX_API_DOMAIN": "env.test"}, want: "env.test"},
		{args: []string{"--config", cfg, "--domain", "flag.test"}, env: map[string]string{"SANDBOX_API_DOMAIN": "env.test"}, want: "flag.test"},
	} {
		s, err := load(flag.NewFlagSet("serve", flag.ContinueOnError), append([]string{"--db", db}, tc.args...), io.Discard, func(k string) string { return tc.env[k] })
		if err != nil || s.Domain != tc.want {
			t.Errorf("%v %v: domain %q, %v; want %q", tc.args, tc.env, s.Domain, err, tc.want)
		}
	}
}

// keys list --json: every key with its state, the secret never.
func TestKeysListJSON(t *testing.T) {
	db := filepath.Join(t.TempDir(), "api.db")
	env := func(string) string { return "" }
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"keys", "create", "alice", "--db", db}, &out, &errb, env); code != 0 {
		t.Fatalf("create: %d %s", code, errb.String())
	}
	secret := strings.TrimSpace(out.String())
	run(context.Background(), []string{"keys", "create", "bob", "--db", db}, io.Discard, io.Discard, env)
	if code := run(context.Background(), []string{"keys", "revoke", "bob", "--db", db}, io.Discard, io.Discard, env); code != 0 {
		t.Fatal("revoke")
	}
	out.Reset()
	if code := run(context.Background(), []string{"keys", "list", "--db", db, "--json"}, &out, &errb, env); code != 0 {
		t.Fatalf("list: %d %s", code, errb.String())
	}
	var ks []struct {
		Name    string
		ID      string
		Revoked *time.Time
	}
	if err := json.Unmarshal([]byte(out.String()), &ks); err != nil || len(ks) != 2 || ks[0].Name != "alice" || ks[0].Revoked != nil || ks[1].Revoked == nil {
		t.Fatalf("keys list --json: %v %s", err, out.String())
	}
	if strings.Contains(out.String(), secret) {
		t.Error("the list shows a secret")
	}
}
