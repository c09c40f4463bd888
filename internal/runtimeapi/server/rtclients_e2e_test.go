// These tests run test/runtimeapi/clients against this package's real
// server (newEnv: the Docker engine, a SQLite store, labels of the test
// only), with the agent-server stand-in image for V1 and sandboxd for V0.

package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"mime/multipart"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/ids"
	"github.com/sbx-dev/sbx/test/runtimeapi/agentserver/image"
	"github.com/sbx-dev/sbx/test/runtimeapi/clients"
)

func standin(t *testing.T) string {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	res, err := image.Ensure(ctx, c, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Ref
}

func TestRTClientsSDK(t *testing.T) {
	e := newEnv(t)
	img := standin(t)
	cfg := clients.Config{BaseURL: e.url, APIKey: e.key("sdk"), Poll: 100 * time.Millisecond, ReadyTimeout: time.Minute}
	rep, err := clients.RunSDK(t.Context(), clients.SDKOptions{Config: cfg, ServerImage: img})
	t.Logf("report %+v", rep)
	if err != nil {
		t.Fatal(err)
	}
}

func TestRTClientsApp(t *testing.T) {
	e := newEnv(t)
	img := standin(t)
	for _, v := range []clients.AppVariant{clients.AppA, clients.AppB, clients.AppC} {
		t.Run(string(v), func(t *testing.T) {
			cfg := clients.Config{BaseURL: e.url, APIKey: e.key("app" + string(v)), Poll: 100 * time.Millisecond, ReadyTimeout: time.Minute}
			rep, err := clients.RunApp(t.Context(), clients.AppOptions{Config: cfg, Variant: v, Image: img})
			t.Logf("report %+v", rep)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRTClientsV0(t *testing.T) {
	e := newEnv(t)
	cfg := clients.Config{BaseURL: e.url, APIKey: e.key("v0"), Poll: 100 * time.Millisecond, ReadyTimeout: time.Minute}
	rep, err := clients.RunV0(t.Context(), clients.V0Options{Config: cfg, Image: testImage(), SessionID: "conv-1", StartupEnv: map[string]string{"FOO": "x y"}})
	t.Logf("report %+v", rep)
	if err != nil {
		t.Fatal(err)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// V0's remote builder, as OpenHands' RemoteRuntimeBuilder sends it: the
// image is built by the engine, a runtime starts from it, the same
// context again is only tagged, a failing build says why, and a tag
// outside the tenant's prefix is refused.
func TestRTClientsV0Build(t *testing.T) {
	e := newEnv(t)
	key := e.key("builder")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mark := ids.New(6)
	bctx := tarGz(t, map[string]string{"Dockerfile": "FROM " + testImage() + "\nRUN echo built-" + mark + " > /built\nLABEL sbx.test=1\n"})
	cfg := clients.Config{BaseURL: e.url, APIKey: key, Poll: 100 * time.Millisecond, ReadyTimeout: time.Minute}
	var made []string
	t.Cleanup(func() {
		for _, ref := range made {
			exec.Command("docker", "rmi", ref).Run()
		}
	})
	res, err := clients.V0Build(ctx, clients.V0BuildOptions{Config: cfg, Context: bctx, Tags: []string{"oh_v0_test_" + mark}, RetryAfter429: time.Second, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	made = append(made, res.Image)
	if res.BuildID == "" || !strings.HasPrefix(res.Image, "sbx.local/") {
		t.Fatalf("build: %+v", res)
	}
	body := v0Start("built")
	body["image"] = res.Image
	var o runtimeObject
	e.call("POST", "/start", map[string]string{"X-API-Key": key}, body, &o)
	o = e.waitRunning(key, o.RuntimeID)
	if code, out := e.run(o, "cat /built"); code != 200 || !strings.Contains(out, "built-"+mark) {
		t.Errorf("a runtime of the built image: %d %q", code, out)
	}
	// The same context under another tag: the cache, in well under a build.
	t0 := time.Now()
	again, err := clients.V0Build(ctx, clients.V0BuildOptions{Config: cfg, Context: bctx, Tags: []string{"oh_v0_again_" + mark}, RetryAfter429: time.Second, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	made = append(made, again.Image)
	t.Logf("second build of the same context: %v", time.Since(t0))
	// A failing build.
	bad := tarGz(t, map[string]string{"Dockerfile": "FROM " + testImage() + "\nRUN echo broken-step-" + mark + " && false\n"})
	_, err = clients.V0Build(ctx, clients.V0BuildOptions{Config: cfg, Context: bad, Tags: []string{"oh_v0_bad_" + mark}, RetryAfter429: time.Second, Timeout: 2 * time.Minute})
	if err == nil || !strings.Contains(err.Error(), "FAILURE") {
		t.Errorf("a failing build: %v", err)
	}
	// A tag outside the tenant's prefix, sent by hand.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("context", "context.tar.gz")
	fw.Write([]byte(base64.StdEncoding.EncodeToString(bctx)))
	mw.WriteField("target_image", "ubuntu:latest")
	mw.Close()
	req, _ := http.NewRequest("POST", e.url+"/build", &mp)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a build tagged outside the prefix: %d, want 403", resp.StatusCode)
	}
	// Another tenant cannot read this tenant's build status.
	other := e.key("other")
	if code := e.call("GET", "/build_status?build_id="+res.BuildID, map[string]string{"X-API-Key": other}, nil, nil); code != 404 {
		t.Errorf("another tenant's build status: %d", code)
	}
}
