package cli

import (
	"fmt"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/schemas"
)

// SigningKey is the setting of the Ed25519 key that signs revoke commands:
// PKCS #8 PEM or the base64 of its 32-byte seed, from REVOKED_SIGNING_KEY,
// from the file REVOKED_SIGNING_KEY_FILE names, or from the file
// -signing-key-file names. It is never a flag value, which would show in
// the process list. A configuration struct holds it as an untagged field,
// which puts these settings at its top level.
type SigningKey struct {
	// Key comes from REVOKED_SIGNING_KEY, or from the file named by
	// REVOKED_SIGNING_KEY_FILE.
	Key  config.Secret `env:"REVOKED_SIGNING_KEY"`
	File string        `flag:"signing-key-file" yaml:"signing_key_file" usage:"file holding the Ed25519 signing key (PKCS #8 PEM or base64 seed); or set REVOKED_SIGNING_KEY_FILE or REVOKED_SIGNING_KEY"`
}

// Validate reports every problem at once: the key must be given exactly
// one way.
func (k SigningKey) Validate() error {
	var p config.Problems
	p.Check(k.Key.IsSet() || k.File != "", "signing-key-file",
		"a signing key is required: set -signing-key-file, REVOKED_SIGNING_KEY_FILE or REVOKED_SIGNING_KEY")
	p.Check(!(k.Key.IsSet() && k.File != ""), "signing-key-file",
		"give the signing key one way: -signing-key-file or REVOKED_SIGNING_KEY(_FILE), not both")
	return p.Err()
}

// Signer parses the key, read from File when that is set.
func (k SigningKey) Signer() (*schemas.Signer, error) {
	if k.File != "" {
		priv, err := schemas.LoadPrivateKeyFile(k.File)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.File, err)
		}
		return schemas.NewSigner(priv), nil
	}
	priv, err := schemas.ParsePrivateKey([]byte(k.Key.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("signing key from REVOKED_SIGNING_KEY(_FILE): %w", err)
	}
	return schemas.NewSigner(priv), nil
}
