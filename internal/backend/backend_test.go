package backend

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

// An unknown or unbuilt runtime names the ones there are.
func TestUnknownRuntimeNamesTheKnownOnes(t *testing.T) {
	for name, class := range map[string]error{"modla": errdefs.ErrInvalidArgument, "kubernetes": errdefs.ErrNotImplemented} {
		_, err := Open(context.Background(), &config.Config{Runtime: name}, Options{})
		if !errors.Is(err, class) || !strings.Contains(err.Error(), "use one of docker, local, modal, remote") {
			t.Errorf("RUNTIME=%s: %v", name, err)
		}
	}
}
