// Package modal links RUNTIME=modal into a program: sandboxes in Modal's
// cloud, made through Modal's official Go SDK. It is a package of its own
// so that the SDK (package sbx) never links Modal's client and its gRPC
// stack; a program that wants Modal passes Drivers to sbx.Options:
//
//	rt, err := sbx.Open(ctx, sbx.Options{Config: cfg, Drivers: modal.Drivers()})
//
// The `sbx` CLI does. Credentials come from MODAL_TOKEN_ID /
// MODAL_TOKEN_SECRET, MODAL_API_TOKEN_ID / MODAL_API_TOKEN_SECRET (or
// [core] modal_api_token_id / _secret), or Modal's profile file
// (~/.modal.toml, MODAL_CONFIG_PATH, MODAL_PROFILE).
package modal

import (
	"context"
	"io"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/backend"
	"github.com/sbx-dev/sbx/internal/driver"
	modaldriver "github.com/sbx-dev/sbx/internal/driver/modal"
)

// Name is the runtime's name, RUNTIME=modal.
const Name = modaldriver.Name

// Factory opens the Modal driver from the configuration.
func Factory(ctx context.Context, cfg *config.Config, o backend.Options) (driver.Driver, io.Closer, error) {
	d, closer, err := modaldriver.Open(ctx, cfg, o.Logger, o.Sandboxd)
	if err != nil {
		return nil, nil, err
	}
	return d, closer, nil
}

// Drivers is sbx.Options.Drivers with RUNTIME=modal in it.
func Drivers() map[string]sbx.DriverFactory {
	return map[string]sbx.DriverFactory{Name: Factory}
}
