package ssf_test

import (
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/ssf"
)

// The cost of one SET at each end, RS256 with a 2048-bit key: the
// transmitter signs one per revocation, event and stream; a receiver
// verifies and decodes one per SET.
func BenchmarkSignSET(b *testing.B) {
	s, err := ssf.NewSigner(rsaKey())
	if err != nil {
		b.Fatal(err)
	}
	c := claimsB(b)
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySET(b *testing.B) {
	s, err := ssf.NewSigner(rsaKey())
	if err != nil {
		b.Fatal(err)
	}
	set, err := s.Sign(claimsB(b))
	if err != nil {
		b.Fatal(err)
	}
	keys := ssf.StaticKeys{Set: ssf.JWKS(s.PublicJWK())}
	for b.Loop() {
		if _, err := ssf.VerifySET(b.Context(), set, keys); err != nil {
			b.Fatal(err)
		}
	}
}

func claimsB(b *testing.B) ssf.Claims {
	now := time.Unix(1_800_000_000, 0)
	c, err := ssf.NewClaims("https://tr.example.com", "jti-1", now, ssf.Audience{"https://rx.example.com"}, "cmd_1",
		ssf.EmailSubject("alice@example.com"), ssf.EventSessionRevoked,
		ssf.SessionRevoked{CAEPCommon: ssf.CAEPCommon{EventTimestamp: now.Unix(), InitiatingEntity: "policy", ReasonAdmin: map[string]string{"en": "revoked the user's tokens (rule brute_force_success, command cmd_1)"}}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}
