package schemas

import (
	"crypto/sha256"
	"encoding/base64"
)

// FingerprintPrefix starts every token fingerprint.
const FingerprintPrefix = "tfp_"

// Fingerprint returns the stable, non-reversible identifier of a raw token:
// "tfp_" followed by the unpadded base64url SHA-256 of the token's bytes,
// truncated to 128 bits. Events, commands, logs and the audit trail refer to
// tokens only by fingerprint; the raw value never leaves the token API or a
// sealed command.
func Fingerprint(rawToken string) string {
	sum := sha256.Sum256([]byte(rawToken))
	return FingerprintPrefix + base64.RawURLEncoding.EncodeToString(sum[:16])
}
