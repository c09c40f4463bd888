// Package ids makes the random names and secrets sbx needs: session ids,
// API keys, shell nonces, temporary file names. One generator, so that
// every one of them comes from crypto/rand.
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns n random bytes as 2n lower-case hex digits. crypto/rand
// never fails on the systems Go supports (since Go 1.24 it crashes the
// program instead of returning an error), so neither does New.
func New(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Token is a 128-bit secret in hex, for session API keys.
func Token() string { return New(16) }
