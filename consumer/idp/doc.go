// Package idp is the consumer's client for a token API: the reference token
// API of deployments/tokenapi or any identity provider.
//
// It speaks the standard protocols, RFC 7009 revocation and RFC 7662
// introspection, finds their URLs through RFC 8414 metadata (falling back
// to OpenID Connect discovery), and authenticates with client_secret_basic,
// client_secret_post or private_key_jwt (RFC 7523 §2.2: a short-lived JWT
// signed with RS256, PS256, ES256, ES384 or EdDSA by a PEM key;
// PrivateKeyJWT). It performs the non-standard subject-, token-id-,
// session- and client-wide admin calls of a provider as configured data:
// method, URL and body templates, accepted statuses and authentication
// (AdminConfig; bearer, basic or a client credentials token it fetches and
// renews).
//
// Presets configure known providers by configuration alone: "reference"
// (ReferencePreset), "keycloak", "okta", "hydra" and "box"
// (KeycloakPreset, OktaPreset, HydraPreset, BoxPreset). Each has a YAML
// example in examples/ that is tested to be equal to its function and to
// drive a scripted server the way the provider documents its API.
//
// Every request passes a circuit breaker per endpoint (closed, open after
// BreakerConfig.Failures consecutive transient failures, half-open after
// the cool-down; its state is the gauge revoked_idp_circuit_state when New
// gets WithRegisterer) and a token bucket rate limit shared by all calls of
// the client (RateLimitConfig; waiting honours ctx).
//
// Check proves, without a real token, that the client can work with the
// token API (discovery, the revocation and introspection of a random
// token, admin tokens) and says why not; Readiness runs it at start and
// every Config.CheckInterval for a readiness check.
//
// StepUp calls an optional hook that makes a user prove themselves again
// after a revoke_and_reverify command.
//
// Errors from the server are *HTTPError; an open circuit is
// *CircuitOpenError. Retryable decides whether a failed call is worth
// repeating and after how long: 429 and 503 (after Retry-After, or Okta's
// X-Rate-Limit-Reset), other 5xx, 408, timeouts, transport failures and
// open circuits are; 400 (unsupported_token_type included), 401, 403, 404
// and configuration mistakes are not. Raw tokens never appear in errors,
// results or logs: only their fingerprints (schemas.Fingerprint).
package idp
