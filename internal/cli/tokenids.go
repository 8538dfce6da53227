package cli

import (
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/schemas"
)

// TokenIDs is the token id setting of every command that decodes events or
// commands: the pattern that token ids other than fingerprints must match
// (schemas.SetTokenIDPattern), from -token-id-pattern,
// REVOKED_TOKEN_ID_PATTERN or token_id_pattern in YAML. A configuration
// struct holds it as an untagged field, which puts the setting at its top
// level. Unset, values that look like random secrets are refused instead.
type TokenIDs struct {
	Pattern string `flag:"token-id-pattern" env:"REVOKED_TOKEN_ID_PATTERN" yaml:"token_id_pattern" usage:"regular expression (anchored) that token ids other than tfp_ fingerprints must match, e.g. your IdP's token id format; unset: long random-looking values are refused"`
}

// Validate reports a pattern that does not compile.
func (t TokenIDs) Validate() error {
	var p config.Problems
	if _, err := schemas.CompileTokenIDPattern(t.Pattern); err != nil {
		p.Addf("token-id-pattern", "%v", err)
	}
	return p.Err()
}

// Apply sets the pattern for the whole process. Commands call it once,
// after validating their configuration and before decoding anything.
func (t TokenIDs) Apply() error {
	return schemas.SetTokenIDPattern(t.Pattern)
}
