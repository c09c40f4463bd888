package session

import (
	"os"
	"testing"

	"github.com/sbx-dev/sbx/internal/reaper"
)

// testReaper is the one reaper of the test process, as in sandboxd.
var testReaper *reaper.Reaper

func TestMain(m *testing.M) {
	testReaper = reaper.New(nil)
	code := m.Run()
	testReaper.Close()
	os.Exit(code)
}
