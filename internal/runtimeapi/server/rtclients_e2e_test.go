// These tests run test/runtimeapi/clients against this package's real
// server (newEnv: the Docker engine, a SQLite store, labels of the test
// only), with the agent-server stand-in image for V1 and sandboxd for V0.

package server

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

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
	return res.Tag
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
