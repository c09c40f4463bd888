package sbx_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx"
)

// TestMain points the examples at the test image, as a user's
// SANDBOX_BASE_CONTAINER_IMAGE would, and skips them where there is no
// Docker engine (unless SBX_REQUIRE_DOCKER says there must be one): an
// example cannot skip itself.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("SANDBOX_BASE_CONTAINER_IMAGE") == "" {
		os.Setenv("SANDBOX_BASE_CONTAINER_IMAGE", testImage())
	}
	if os.Getenv("SBX_REQUIRE_DOCKER") == "" && !dockerAnswers() {
		fmt.Fprintln(os.Stderr, "no docker engine: the examples are skipped")
		skip := "^Example"
		if s := flag.Lookup("test.skip").Value.String(); s != "" {
			skip += "|" + s
		}
		flag.Set("test.skip", skip)
	}
	os.Exit(m.Run())
}

func dockerAnswers() bool {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Ping(ctx, client.PingOptions{})
	return err == nil
}

// The few lines of the README: a sandbox from the environment's
// configuration, one command, and the sandbox removed at the end. sandboxd
// is found as the CLI finds it ($SBX_SANDBOXD, beside the program, or built
// with the Go toolchain).
func Example() {
	ctx := context.Background()
	sb, err := sbx.Start(ctx, sbx.CreateOptions{Remove: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close(context.Background())
	out, code, err := sb.Exec(ctx, "echo hi from a sandbox", 0)
	fmt.Println(out, code, err)
	// Output: hi from a sandbox 0 <nil>
}
