// Package idp is the consumer's client for a token API: the reference token
// API of deployments/tokenapi or any identity provider.
//
// It speaks the standard protocols, RFC 7009 revocation and RFC 7662
// introspection (client_secret_basic or client_secret_post, with a seam for
// private_key_jwt), finds their URLs through RFC 8414 metadata, and performs
// the non-standard subject-, token-id-, session- and client-wide admin calls
// of a provider as configured data: method, URL and body templates,
// accepted statuses and authentication (AdminConfig). ReferencePreset
// configures them for the reference token API.
//
// Errors from the server are *HTTPError; Retryable decides whether a
// failed call is worth repeating and after how long. Raw tokens never appear
// in errors, results or logs: only their fingerprints
// (schemas.Fingerprint).
package idp
