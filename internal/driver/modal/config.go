package modal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sbx-dev/sbx/config"
	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/sandboxdbin"
)

// Credentials say how the driver authenticates to Modal.
type Credentials struct {
	// TokenID and TokenSecret are passed to the SDK; both empty means the
	// SDK reads Modal's profile file itself (FromProfile).
	TokenID, TokenSecret string
	// Source names where they came from, for messages; never the values.
	Source string
	// FromProfile is true when the credentials are a profile's in Modal's
	// own file (~/.modal.toml or MODAL_CONFIG_PATH).
	FromProfile bool
}

// ResolveCredentials finds Modal credentials the way sbx documents them:
// MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, else the seed's
// MODAL_API_TOKEN_ID / MODAL_API_TOKEN_SECRET (or [core]
// modal_api_token_id / _secret), else the active profile of Modal's own
// profile file. getenv reads the host environment for the profile file's
// location (MODAL_CONFIG_PATH) and name (MODAL_PROFILE), as the SDK does;
// home is the user's home directory ("" when there is none).
//
// A half-set pair is an error rather than a silent fall-through to the
// profile file: it is a typo, and the profile may well be someone else's
// account.
func ResolveCredentials(cfg *config.Config, getenv func(string) string, home string) (Credentials, error) {
	id, secret := cfg.ModalCredentials()
	source := "MODAL_API_TOKEN_ID / MODAL_API_TOKEN_SECRET"
	if cfg.Host.ModalTokenID != "" || cfg.Host.ModalTokenSecret != "" {
		source = "MODAL_TOKEN_ID / MODAL_TOKEN_SECRET"
	}
	switch {
	case id != "" && secret != "":
		return Credentials{TokenID: id, TokenSecret: secret, Source: source}, nil
	case id != "":
		return Credentials{}, errdefs.New(errdefs.ErrUnauthorized, "RUNTIME=modal: a Modal token id is set ("+source+") but no token secret")
	case secret != "":
		return Credentials{}, errdefs.New(errdefs.ErrUnauthorized, "RUNTIME=modal: a Modal token secret is set ("+source+") but no token id")
	}

	path, where := getenv("MODAL_CONFIG_PATH"), ""
	switch {
	case path != "":
		// `modal token new` writes to MODAL_CONFIG_PATH too.
		where = path + " (MODAL_CONFIG_PATH)"
	case home != "":
		path = filepath.Join(home, ".modal.toml")
		where = path
	default:
		where = "~/.modal.toml"
	}
	missing := errdefs.New(errdefs.ErrUnauthorized,
		"RUNTIME=modal needs Modal credentials: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (or MODAL_API_TOKEN_ID and MODAL_API_TOKEN_SECRET), or run `modal token new` to write a profile to "+where)
	if path == "" {
		return Credentials{}, missing
	}
	profiles, err := readProfiles(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, missing
	}
	if err != nil {
		return Credentials{}, err
	}
	name := getenv("MODAL_PROFILE")
	if name == "" {
		for n, p := range profiles {
			if p.Active {
				name = n
				break
			}
		}
	}
	if name == "" && len(profiles) > 0 {
		// The SDK would run with no credentials at all here; a profile
		// that looks complete makes "needs credentials" misleading.
		return Credentials{}, errdefs.New(errdefs.ErrUnauthorized, fmt.Sprintf(
			"RUNTIME=modal: no profile in %s is active (profiles: %s): set `active = true` in the one to use, or MODAL_PROFILE=<name>",
			path, profileNames(profiles)))
	}
	p, ok := profiles[name]
	if name != "" && !ok && getenv("MODAL_PROFILE") != "" {
		return Credentials{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("RUNTIME=modal: MODAL_PROFILE=%q names no profile in %s", name, path))
	}
	src := fmt.Sprintf("profile %q of %s", name, path)
	switch {
	case p.TokenID != "" && p.TokenSecret != "":
		return Credentials{Source: src, FromProfile: true}, nil
	case p.OAuthRefreshToken != "":
		// The SDK checks the rest of an OAuth profile itself.
		return Credentials{Source: src, FromProfile: true}, nil
	case name == "":
		return Credentials{}, missing // an empty file
	default:
		return Credentials{}, errdefs.New(errdefs.ErrUnauthorized, fmt.Sprintf("RUNTIME=modal: %s has no token_id and token_secret", src))
	}
}

// profileNames lists a file's profiles for a message, sorted and quoted
// (a name is whatever the file says), the first few only.
func profileNames(profiles map[string]profile) string {
	const most = 10
	names := slices.Sorted(maps.Keys(profiles))
	q := make([]string, 0, min(len(names), most)+1)
	for _, n := range names[:min(len(names), most)] {
		q = append(q, strconv.Quote(n))
	}
	if len(names) > most {
		q = append(q, fmt.Sprintf("and %d more", len(names)-most))
	}
	return strings.Join(q, ", ")
}

// profile is the part of a Modal profile the driver looks at: whether it
// holds credentials. The SDK reads the file again for everything else.
type profile struct {
	TokenID           string `toml:"token_id"`
	TokenSecret       string `toml:"token_secret"`
	OAuthRefreshToken string `toml:"oauth_refresh_token"`
	Active            bool   `toml:"active"`
}

func readProfiles(path string) (map[string]profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("RUNTIME=modal: reading Modal's profile file: %v", err), err)
	}
	var profiles map[string]profile
	if _, err := toml.Decode(string(b), &profiles); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Sprintf("RUNTIME=modal: %s is not a Modal profile file: %v", path, err), err)
	}
	return profiles, nil
}

// Base resources of one sandbox at remote_runtime_resource_factor 1, as
// OpenHands' remote runtimes size theirs: the factor multiplies both.
const (
	BaseCPU       = 1.0
	BaseMemoryMiB = 2048
)

// DefaultTimeout is the most Modal lets a sandbox live. The SDK's own
// default (five minutes) would end an agent's session under it.
const DefaultTimeout = 24 * time.Hour

// Settings are the driver's Options that come from sbx's configuration.
type Settings struct {
	Images       Images
	Resources    Resources
	Timeout      time.Duration
	IdleTimeout  time.Duration
	StartTimeout time.Duration
}

// SettingsFromConfig maps sbx's configuration onto the driver:
// runtime_container_image / base_container_image, resources scaled by
// remote_runtime_resource_factor, close_delay as Modal's idle timeout (a
// sandbox nobody talks to for that long is ended by Modal, which is what
// close_delay asks of the app server), remote_runtime_init_timeout as the
// start-up bound. A sandbox's own limits (docker_runtime_kwargs, `sbx run
// --cpus/--memory`) arrive in driver.Spec.Resources and win over these.
func SettingsFromConfig(cfg *config.Config) Settings {
	f := cfg.Sandbox.RemoteRuntimeResourceFactor
	if f <= 0 {
		f = 1
	}
	s := Settings{
		Images:    Images{Runtime: cfg.Sandbox.RuntimeContainerImage, Base: cfg.Sandbox.BaseContainerImage},
		Resources: Resources{CPU: BaseCPU * float64(f), MemoryMiB: BaseMemoryMiB * f},
		Timeout:   DefaultTimeout,
	}
	if s.Images.Base == "" {
		s.Images.Base = config.DefaultBaseContainerImage
	}
	if d := cfg.Sandbox.CloseDelay; d > 0 {
		s.IdleTimeout = time.Duration(d) * time.Second
		if s.IdleTimeout > s.Timeout {
			s.IdleTimeout = 0
		}
	}
	if t := cfg.Sandbox.RemoteRuntimeInitTimeout; t > 0 {
		s.StartTimeout = time.Duration(t) * time.Second
	}
	return s
}

// Open is RUNTIME=modal from configuration: credentials resolved (a clear
// ErrUnauthorized when there are none), the SDK client made, the driver
// on it. The closer closes the client.
func Open(_ context.Context, cfg *config.Config, log *slog.Logger, loc *sandboxdbin.Locator) (*Driver, io.Closer, error) {
	// The profile file is found through the process environment, not the
	// configuration's: the SDK reads that file (and MODAL_SERVER_URL,
	// MODAL_ENVIRONMENT, …) from there too, and both must agree on it.
	home, _ := os.UserHomeDir()
	creds, err := ResolveCredentials(cfg, os.Getenv, home)
	if err != nil {
		return nil, nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := NewClient(creds, log)
	if err != nil {
		return nil, nil, err
	}
	s := SettingsFromConfig(cfg)
	d, err := New(Options{Client: c, Sandboxd: loc, Logger: log, Images: s.Images, Resources: s.Resources,
		Timeout: s.Timeout, IdleTimeout: s.IdleTimeout, StartTimeout: s.StartTimeout})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return d, closerFunc(func() error { c.Close(); return nil }), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
