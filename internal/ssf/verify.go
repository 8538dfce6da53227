package ssf

import (
	"context"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySource finds the public keys that may have signed a JWT. Keys
// returns the keys with key id kid, or every signing key when kid is
// empty; none found is not an error (the caller reports an unknown key).
// An error means the source could not be read (a transmitter's JWKS
// endpoint down): the JWT was not judged and may be retried.
type KeySource interface {
	Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

// Algorithms are the JWS algorithms a signature is accepted with:
// asymmetric ones only, so a public key can never be used as an HMAC
// secret, and never "none".
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Verified is a JWS whose signature verified: its protected header and
// payload.
type Verified struct {
	KeyID   string
	Alg     string
	Typ     string
	Payload []byte
}

// VerifyJWS checks the signature of a JWS in compact serialization with
// a key of keys (the one its kid names, or any when it names none) and
// returns its header and payload. A JWS that does not verify is a
// *SETError (invalid_request when it does not parse, invalid_key when no
// key verifies it); an error reading keys is returned as it is.
func VerifyJWS(ctx context.Context, compact string, keys KeySource) (Verified, error) {
	if len(compact) > MaxSETBytes {
		return Verified{}, Errorf(ErrCodeInvalidRequest, "JWT of %d bytes, limit %d", len(compact), MaxSETBytes)
	}
	obj, err := jose.ParseSignedCompact(strings.TrimSpace(compact), Algorithms)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return Verified{}, Errorf(ErrCodeInvalidKey, "signature algorithm %s is not accepted", alg.Got)
		}
		return Verified{}, Errorf(ErrCodeInvalidRequest, "not a signed JWT in compact serialization: %v", err)
	}
	if len(obj.Signatures) != 1 {
		return Verified{}, Errorf(ErrCodeInvalidRequest, "want one signature, got %d", len(obj.Signatures))
	}
	h := obj.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	candidates, err := keys.Keys(ctx, h.KeyID)
	if err != nil {
		return Verified{}, fmt.Errorf("reading the signing keys: %w", err)
	}
	for _, k := range candidates {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		payload, err := obj.Verify(k.Key)
		if err == nil {
			return Verified{KeyID: h.KeyID, Alg: h.Algorithm, Typ: typ, Payload: payload}, nil
		}
	}
	if len(candidates) == 0 {
		return Verified{}, Errorf(ErrCodeInvalidKey, "no signing key with kid %q", truncate(h.KeyID, 64))
	}
	return Verified{}, Errorf(ErrCodeInvalidKey, "signature does not verify with the key %q", truncate(h.KeyID, 64))
}

// IsSETType reports whether typ is the explicit type of a SET:
// "secevent+jwt", or its media type form "application/secevent+jwt"
// (RFC 7515 section 4.1.9), compared without regard to case.
func IsSETType(typ string) bool {
	t := strings.ToLower(strings.TrimSpace(typ))
	return t == TypSecEvent || t == ContentTypeSET
}

// VerifySET verifies a SET's signature (VerifyJWS), its explicit type
// (SSF 1.0 section 4.1.1) and decodes its claims. The caller checks the
// claims (Claims.Check).
func VerifySET(ctx context.Context, compact string, keys KeySource) (Claims, error) {
	v, err := VerifyJWS(ctx, compact, keys)
	if err != nil {
		return Claims{}, err
	}
	if !IsSETType(v.Typ) {
		return Claims{}, Errorf(ErrCodeInvalidRequest, "JOSE header typ %q is not %q", truncate(v.Typ, 64), TypSecEvent)
	}
	return ParseClaims(v.Payload)
}
