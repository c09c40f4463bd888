package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// engineAnswer is one answer of the engine as observed from Docker Engine
// 20.10.24 (`curl --unix-socket /var/run/docker.sock`), provoked as the
// comment of each case says, unless it says otherwise.
type engineAnswer struct {
	status  int
	message string
}

// answeringEngine answers every request with a, through the real moby client, so
// the predicates see the error values the driver sees in production.
func answeringEngine(t *testing.T, a engineAnswer) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": a.message})
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEngineErrorPredicates(t *testing.T) {
	ctx := context.Background()
	type call func(c *client.Client) error
	remove := func(c *client.Client) error {
		_, err := c.ContainerRemove(ctx, "sbx-x", client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return err
	}
	kill := func(c *client.Client) error {
		_, err := c.ContainerKill(ctx, "sbx-x", client.ContainerKillOptions{Signal: "TERM"})
		return err
	}
	start := func(c *client.Client) error {
		_, err := c.ContainerStart(ctx, "sbx-x", client.ContainerStartOptions{})
		return err
	}
	for _, tc := range []struct {
		name   string
		call   call
		answer engineAnswer
		pred   func(error) bool
		want   bool
	}{
		// `docker run -d --rm … sleep 100`, then two `docker rm -f` at once.
		{"removal in progress", remove, engineAnswer{409, "removal of container sbx-x is already in progress"}, isRemovalInProgress, true},
		{"remove a missing container", remove, engineAnswer{404, "No such container: sbx-x"}, isRemovalInProgress, false},
		// A 409 of another kind must not pass for a removal under way (text
		// from moby's daemon source; not provoked here).
		{"remove refused otherwise", remove, engineAnswer{409, "You cannot remove a running container 0123abcd. Stop the container before attempting removal or force remove"}, isRemovalInProgress, false},
		// `docker create … true`, then `docker kill`.
		{"kill a created container", kill, engineAnswer{409, "Cannot kill container: sbx-x: Container 03acddccc62242ca37b3cff27572856d212da42e8cf3d5e18701b160361d5d28 is not running"}, isNotRunning, true},
		// Text from moby's daemon source; not provoked here.
		{"kill refused otherwise", kill, engineAnswer{409, "Cannot kill container: sbx-x: Container 03acddccc622 is paused. Unpause the container before stopping or killing"}, isNotRunning, false},
		// `docker create --entrypoint /opt/sbx/sandboxd` without the volume, then start.
		{"start without sandboxd", start, engineAnswer{400, `failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/opt/sbx/sandboxd": stat /opt/sbx/sandboxd: no such file or directory: unknown`}, isMissingSandboxd, true},
		// The same failure for another program is the image's problem, not
		// a missing volume.
		{"start without another program", start, engineAnswer{400, `failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/bin/nope": stat /bin/nope: no such file or directory: unknown`}, isMissingSandboxd, false},
		// A `local` volume of type overlay whose lowerdir does not exist,
		// mounted by `docker run -v vol:/workspace` (the status is not
		// what the predicate reads).
		{"start with an overlay the engine cannot mount", start, engineAnswer{500, `error while mounting volume '/var/lib/docker/volumes/guardprobe/_data': failed to mount local volume: mount overlay:/var/lib/docker/volumes/guardprobe/_data, data: lowerdir=/nonexistent-guard,upperdir=/tmp/u,workdir=/tmp/w: no such file or directory`}, isVolumeMountFailure, true},
		{"start failing otherwise", start, engineAnswer{400, `failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/bin/nope": stat /bin/nope: no such file or directory: unknown`}, isVolumeMountFailure, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(answeringEngine(t, tc.answer))
			if err == nil {
				t.Fatal("the fake engine's error was lost")
			}
			if got := tc.pred(err); got != tc.want {
				t.Errorf("predicate(%q) = %v, want %v", err, got, tc.want)
			}
		})
	}
	for _, pred := range []func(error) bool{isRemovalInProgress, isNotRunning, isMissingSandboxd, isVolumeMountFailure} {
		if pred(nil) {
			t.Error("a predicate holds for nil")
		}
	}
}
