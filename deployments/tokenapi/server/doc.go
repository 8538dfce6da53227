// Package server is the reference token API of the revocation pipeline: a
// small OAuth 2.0 authorization server that issues opaque access tokens,
// exchanges them for downscoped children (RFC 8693), revokes them (RFC 7009)
// with their downscoped descendants, introspects them (RFC 7662), publishes
// its metadata (RFC 8414) and offers the subject-, session-, client- and
// token-id-wide admin calls that real identity providers expose in their own
// dialects.
//
// It is written directly on net/http. ory/fosite, the obvious library, has no
// RFC 8693 token-exchange handler and no notion of a downscoped token's
// lineage, so revoking a family of tokens would have to be built beside it
// anyway; the protocol surface needed here is small enough to keep in one
// readable package.
//
// # Tokens
//
// Access tokens are 32 random bytes (crypto/rand), base64url-encoded. The
// server keeps only their fingerprint (schemas.Fingerprint), which is also
// the token id everywhere in the project (the "jti" of introspection). A raw
// token is hashed on arrival and never stored or logged.
//
// Each token records its subject, client, session, scopes, audience
// (resource and audience parameters of the exchange that created it), parent
// token id, issue and expiry time and a revoked flag. A child created by
// token exchange inherits subject, session and client of its parent,
// carries a subset of its scopes and expires no later than it. Children of
// children are allowed.
//
// # Revocation
//
// Revoking a token revokes all its descendants, every generation. Revoking
// a subject, session or client revokes every live token indexed under it and
// their descendants. A revoked token stays known (and inactive) until it
// expires, then it is forgotten.
//
// # Re-verification
//
// POST /admin/subjects/{user_id}/require-reverification (the step-up call
// of a revoke_and_reverify command) makes a subject verify again: its live
// tokens are revoked in the same step, and until POST
// /admin/subjects/{user_id}/reverified (the login application, after the
// user passed the second factor) every token for the subject is refused,
// at the token endpoint and at POST /admin/tokens, with invalid_grant
// (RFC 6749 §5.2) and the description "re-verification required". The
// server issues no refresh tokens, so there is no refresh grant to refuse;
// a token exchange for the subject is refused the same way. GET
// /admin/subjects/{user_id}/reverification says whether it is required.
// The flag lives in the store beside the tokens and, like them, in memory.
//
// # State and locking
//
// All state lives in memory behind one sync.RWMutex. Every operation is a
// map lookup or a walk over one token family or one index entry (subject,
// session, client), so the lock is held for microseconds even with hundreds
// of thousands of tokens; introspection and listing take the read lock only.
// Expired tokens are pruned incrementally, a bounded number per write, so
// memory follows the number of live tokens without a background goroutine.
// Mass revocation of one client holds the write lock for the walk over that
// client's tokens (tens of milliseconds for 100k tokens).
//
// # Admin API
//
// Routes under /admin require "Authorization: Bearer <admin token>" and speak
// JSON. Without a configured admin token they are not served at all.
package server
