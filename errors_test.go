package sbx_test

import (
	"testing"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

// The SDK's callers cannot import internal/errdefs, so a class the SDK does
// not re-export is one they cannot test for.
func TestEveryErrorClassIsExported(t *testing.T) {
	exported := map[error]string{
		sbx.ErrNotFound:            "ErrNotFound",
		sbx.ErrAlreadyExists:       "ErrAlreadyExists",
		sbx.ErrInvalid:             "ErrInvalid",
		sbx.ErrUnavailable:         "ErrUnavailable",
		sbx.ErrNotSupported:        "ErrNotSupported",
		sbx.ErrConflict:            "ErrConflict",
		sbx.ErrPermission:          "ErrPermission",
		sbx.ErrUnauthorized:        "ErrUnauthorized",
		sbx.ErrTooLarge:            "ErrTooLarge",
		sbx.ErrInsufficientStorage: "ErrInsufficientStorage",
		sbx.ErrInternal:            "ErrInternal",
	}
	classes := map[error]bool{}
	for _, c := range errdefs.Classes() {
		classes[c] = true
		if _, ok := exported[c]; !ok {
			t.Errorf("errdefs class %q is not re-exported by the SDK: add it to the error var block in sbx.go and here", c)
		}
	}
	for c, name := range exported {
		if !classes[c] {
			t.Errorf("sbx.%s (%q) is not an errdefs class", name, c)
		}
	}
}
