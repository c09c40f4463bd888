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

// UUID is a random (version 4) UUID in its usual text form, as Python's
// str(uuid.uuid4()): the shape of the tokens SWE-ReX's own deployments
// generate, so that tools which print or check them see a familiar one.
func UUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
