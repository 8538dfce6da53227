// Package hydratest drives a real Ory Hydra v2.3.0 server for integration
// tests, with plain net/http: it registers OAuth 2.0 clients, obtains
// tokens with the authorization-code flow (accepting login and consent
// through the admin API, as a login and consent app would) or with client
// credentials, refreshes and revokes them, and introspects them. Access
// tokens are opaque, so introspection is how a test sees that one is
// revoked.
//
// .ci/hydra.sh builds and starts the server; New finds it through
// REVOKED_TEST_HYDRA_PUBLIC and REVOKED_TEST_HYDRA_ADMIN and skips the
// test without them, or fails it when REVOKED_TEST_REQUIRE lists hydra.
//
//	h := hydratest.New(t)
//	c := h.NewClient(t, hydratest.ClientConfig{})
//	tok := c.AuthorizationCode(t, "alice")  // access, refresh, ID token, sid
//	... revoke through the code under test ...
//	if h.Introspect(t, tok.AccessToken).Active { t.Error("still active") }
//
// # How Hydra v2.3.0 revokes tokens
//
// Measured by this package's tests against the server (each asserts the
// status and, by introspection, which tokens are active afterwards), and
// read in Hydra's source (oauth2/handler.go, consent/handler.go,
// consent/strategy_default.go, persistence/sql/persister_consent.go and
// persister_oauth2.go) and fosite v0.49.0's (handler/oauth2/revocation.go,
// revoke_handler.go):
//
//   - (a) POST /oauth2/revoke (RFC 7009) by a client that does not own the
//     token: 200, and the token stays active. fosite's RevokeToken returns
//     unauthorized_client, which WriteRevocationResponse turns into 200
//     like every error but invalid_request and invalid_client: the caller
//     cannot tell a refused revocation from a done one. Wrong client
//     credentials are 401 invalid_client; an unknown or already revoked
//     token is 200.
//   - (b) The same by the token's own client: 200, and the token is
//     inactive, with its grant's other token (access and refresh tokens of
//     one request id go together); the refresh token no longer refreshes.
//   - (c) DELETE /admin/oauth2/auth/sessions/consent?subject=S&all=true:
//     204, and every authorization-code access and refresh token of S,
//     of every client and login session, is inactive (revokeConsentSession
//     deletes the tokens whose request id is one of S's consent
//     challenges); other subjects' tokens stay active. 204 for a subject
//     that never existed too; 400 without all=true or client=.
//   - (d) DELETE /admin/oauth2/auth/sessions/login?sid=SID: 204; the login
//     session is gone (HandleHeadlessLogout, with back-channel logout) but
//     every token stays active. 204 for an unknown or already deleted sid.
//   - (e) DELETE /admin/oauth2/auth/sessions/login?subject=S: 204; S's
//     login sessions are gone, every token stays active. 204 for an
//     unknown subject (ory/hydra#1168); 400 with neither sid nor subject.
//   - (f) A client-credentials token of client C has subject C but no
//     consent flow: (c) with subject=C leaves it active (204).
//     DELETE /admin/oauth2/tokens?client_id=C (DeleteAccessTokens): 204,
//     and every access token of C is inactive, users' authorization-code
//     access tokens included, but no refresh token is touched: users'
//     refresh tokens stay active and still mint new access tokens. 204 for
//     an unknown client id; 400 without client_id.
//   - (g) GET /admin/oauth2/auth/sessions/consent?subject=S: 200 and a JSON
//     array of S's consent sessions (one per authorization-code grant,
//     with consent_request.client, grant_scope, remember) before (c), and
//     200 with [] after it, as for a subject that never existed.
//     GET /admin/clients/{id}: 200 with the client, 404 for an unknown id.
//   - (h) POST /admin/oauth2/introspect takes no authentication in v2 (the
//     admin port is meant to be reachable only by trusted callers).
//     Refresh tokens introspect too (token_use "refresh_token"); an
//     unknown token is {"active": false} with 200.
//
// The ID token's sid claim is the login request's session_id, which
// Tokens.SessionID carries.
package hydratest
