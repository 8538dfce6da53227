// Package ssf is the Security Event Token code the Shared Signals
// transmitter (consumer/ssf/transmitter), receiver (producer/ssf/receiver)
// and the global token revocation endpoint (producer/ssf/gtr) share:
//
//   - the event type URIs and payloads of CAEP 1.0, RISC 1.0 and SSF 1.0
//     (events.go);
//   - RFC 9493 subject identifiers (subject.go);
//   - the SET claims of RFC 8417 as SSF 1.0 profiles them, and their
//     validation: explicit typing, iss, aud, iat freshness, no exp
//     (set.go);
//   - signing SETs (RS256 per the CAEP interoperability profile) and
//     serving the key as a JWKS (sign.go);
//   - verifying signed JWTs against a key set fetched from a transmitter's
//     ssf-configuration or a jwks_uri and cached (verify.go, keys.go);
//   - a replay index of jti values (replay.go);
//   - the error codes of RFC 8935 and RFC 8936 (errors.go).
//
// JOSE is github.com/go-jose/go-jose/v4. Nothing here talks to Kafka.
package ssf
