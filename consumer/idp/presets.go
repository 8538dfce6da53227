package idp

import (
	"net/http"
	"net/url"
	"strings"
)

// BoxAPIURL is the base of Box's API and OAuth endpoints.
const BoxAPIURL = "https://api.box.com"

// KeycloakPreset configures a Keycloak realm: serverURL is the server's
// base URL (https://keycloak.example.com, with the /auth prefix of old
// WildFly-based servers if it has one), realm the realm's name. The result
// lacks only the credentials: set ClientID and ClientSecret (a confidential
// client whose service account holds the realm-management role
// manage-users), or switch to private_key_jwt with AssertionAudience
// "issuer". examples/keycloak.yaml is the same as YAML.
//
//   - RFC 7009 revocation and RFC 7662 introspection at the URLs of the
//     realm's OpenID Connect metadata ({issuer}/.well-known/openid-configuration;
//     Keycloak serves no RFC 8414 document at the root, so discovery falls
//     back to it).
//   - Subject: POST /admin/realms/{realm}/users/{id}/logout, 204: ends the
//     user's sessions, which makes their access and refresh tokens inactive
//     at introspection. {user_id} is Keycloak's user id (a UUID), not the
//     username.
//   - Session: DELETE /admin/realms/{realm}/sessions/{session}, 204; the
//     session id is the "sid" claim of the realm's tokens.
//   - Admin calls carry a bearer token got with the client credentials
//     grant at the realm's token endpoint, renewed before it expires.
func KeycloakPreset(serverURL, realm string) Config {
	server := strings.TrimSuffix(serverURL, "/")
	issuer := server + "/realms/" + url.PathEscape(realm)
	return Config{
		Issuer:     issuer,
		AuthMethod: AuthClientSecretBasic,
		Admin: AdminConfig{
			Preset:  PresetKeycloak,
			BaseURL: server + "/admin/realms/" + url.PathEscape(realm),
			Auth:    AdminAuth{Kind: AdminAuthClientCredentials, TokenURL: issuer + "/protocol/openid-connect/token"},
		},
	}
}

// OktaPreset configures an Okta org: orgURL is https://{yourOktaDomain},
// authServerID the custom authorization server ("default" for the default
// one) or empty for the org authorization server. The result lacks the
// credentials: PrivateKeyFile and KeyID of the API service app (Okta wants
// private_key_jwt for them, with the URL called as audience) and
// Admin.Auth.Token, an API token (sent as "SSWS <token>"). ClientID names
// the app. examples/okta.yaml is the same as YAML.
//
//   - RFC 7009 and RFC 7662 at the URLs of the server's metadata.
//   - Subject: DELETE /api/v1/users/{id}/sessions?oauthTokens=true, 204:
//     ends the user's Okta sessions and revokes the OIDC and OAuth access
//     and refresh tokens issued to them.
//   - Session: DELETE /api/v1/sessions/{sessionId}, 204.
func OktaPreset(orgURL, authServerID string) Config {
	org := strings.TrimSuffix(orgURL, "/")
	issuer := org
	if authServerID != "" {
		issuer = org + "/oauth2/" + url.PathEscape(authServerID)
	}
	return Config{
		Issuer:            issuer,
		AuthMethod:        AuthPrivateKeyJWT,
		AssertionAudience: AudienceEndpoint,
		Admin: AdminConfig{
			Preset:  PresetOkta,
			BaseURL: org + "/api/v1",
			Auth:    AdminAuth{Kind: AdminAuthBearer, Scheme: "SSWS"},
		},
	}
}

// HydraPreset configures Ory Hydra (v2): publicURL is its issuer (exactly
// as Hydra's urls.self.issuer, trailing slash included), adminURL the
// admin API. The result lacks the client's PrivateKeyFile and KeyID
// (private_key_jwt with the token endpoint as audience, which Hydra checks
// for every endpoint) and ClientID. The admin API is unauthenticated
// (keep it on a private network); for Ory Network set Admin.Auth to a
// bearer API key. examples/hydra.yaml is the same as YAML.
//
//   - RFC 7009 revocation at the discovered URL; RFC 7662 introspection at
//     {admin}/admin/oauth2/introspect, which Hydra serves on the admin API.
//   - Subject: DELETE /admin/oauth2/auth/sessions/consent?subject={id}&all=true
//     (revokes every consent of the user and the tokens issued under it),
//     then DELETE /admin/oauth2/auth/sessions/login?subject={id} (ends the
//     login sessions, so no new consent is given silently); both 204.
//     Hydra answers 204 for a subject it never saw, and a client's
//     client-credentials tokens (whose subject is the client id) have no
//     consent, so the call leaves them active: a user id that
//     GET /admin/clients/{id} finds (the client lookup) also gets the
//     client call.
//   - Client: DELETE /admin/oauth2/tokens?client_id={id}, 204: every
//     access token of the client, whoever it was issued to, and no refresh
//     token. So a client revocation is not effective when the client may
//     hold refresh tokens (its grant_types name refresh_token), and
//     unconfirmed otherwise.
//   - Subject and client: DELETE /admin/oauth2/auth/sessions/consent?subject={id}&client={client},
//     204: the user's tokens of one client, the fallback of a token
//     revocation that did not take.
//   - Session: DELETE /admin/oauth2/auth/sessions/login?sid={sid}, 204
//     (Hydra 2.1 and later). It ends the login session; tokens already
//     issued stay active, so the call is marked login-only and a session
//     command falls back to the subject-wide call (it needs the target's
//     user id), whose effect Hydra cannot prove: unconfirmed.
//   - RFC 7009 answers 200 and revokes nothing when the caller is not the
//     token's client (it is the consumer's client, not the app's). The
//     introspection that follows shows the token active, and the
//     revocation falls back to the subject-and-client call with the
//     subject and client introspection named, then, for a
//     client-credentials token only, to the client call.
//   - The fallbacks (Escalate) are set here and in examples/hydra.yaml;
//     `preset: hydra` alone sets none, so such a revocation is not
//     effective and dead-lettered.
//   - Proof: introspection, for a raw token. Hydra cannot list a
//     subject's tokens, so user, session and client revocations are
//     unconfirmed.
func HydraPreset(publicURL, adminURL string) Config {
	admin := strings.TrimSuffix(adminURL, "/")
	return Config{
		Issuer:            publicURL,
		IntrospectionURL:  admin + "/admin/oauth2/introspect",
		AuthMethod:        AuthPrivateKeyJWT,
		AssertionAudience: AudienceTokenEndpoint,
		Admin: AdminConfig{
			Preset:  PresetHydra,
			BaseURL: admin,
			Auth:    AdminAuth{Kind: AdminAuthNone},
			Escalate: Escalation{
				Token:   []string{EscalateSubjectClient, EscalateClient},
				Session: []string{EscalateSubject},
			},
		},
	}
}

// BoxPreset configures Box: apiURL is BoxAPIURL (empty means it),
// enterpriseID the enterprise whose service account runs the admin calls.
// The result lacks ClientID and ClientSecret of a Client Credentials Grant
// app with the "Manage users" scope and admin access. Box publishes no
// metadata and no introspection endpoint, so Introspect answers
// ErrNoEndpoint. examples/box.yaml is the same as YAML.
//
//   - RFC 7009-style revocation: POST /oauth2/revoke with client_id,
//     client_secret and token in the form (client_secret_post); 200 with
//     an empty body. A downscoped token is revoked the same way, with its
//     own value.
//   - Subject: POST /2.0/users/terminate_sessions with
//     {"user_ids":["{id}"],"user_logins":[]}; Box answers 202 and ends the
//     sessions asynchronously (the admin events report the job).
//   - Admin calls carry a bearer token got with Box's Client Credentials
//     Grant at /oauth2/token (box_subject_type=enterprise).
func BoxPreset(apiURL, enterpriseID string) Config {
	api := strings.TrimSuffix(apiURL, "/")
	if api == "" {
		api = BoxAPIURL
	}
	return Config{
		TokenURL:      api + "/oauth2/token",
		RevocationURL: api + "/oauth2/revoke",
		AuthMethod:    AuthClientSecretPost,
		Admin: AdminConfig{
			Preset:  PresetBox,
			BaseURL: api + "/2.0",
			Auth: AdminAuth{
				Kind:     AdminAuthClientCredentials,
				TokenURL: api + "/oauth2/token",
				Params:   []string{"box_subject_type=enterprise", "box_subject_id=" + enterpriseID},
			},
		},
	}
}

// withProviderPreset fills the calls of the keycloak, okta, hydra and box
// presets whose URL is empty.
func (a AdminConfig) withProviderPreset() AdminConfig {
	fill := func(c *AdminCall, def AdminCall) {
		if c.URL == "" {
			auth := c.Auth
			*c = def
			c.Auth = auth
		}
	}
	call := func(method, tmpl string, accept ...string) AdminCall {
		return AdminCall{Method: method, URL: tmpl, AcceptStatus: accept}
	}
	switch a.Preset {
	case PresetKeycloak:
		fill(&a.Subject, call(http.MethodPost, "{base}/users/{user_id}/logout", "204"))
		fill(&a.Session, call(http.MethodDelete, "{base}/sessions/{session_id}", "204"))
	case PresetOkta:
		fill(&a.Subject, call(http.MethodDelete, "{base}/users/{user_id}/sessions?oauthTokens=true", "204"))
		fill(&a.Session, call(http.MethodDelete, "{base}/sessions/{session_id}", "204"))
		if a.Auth.Kind == AdminAuthBearer && a.Auth.Scheme == "" {
			a.Auth.Scheme = "SSWS"
		}
	case PresetHydra:
		fill(&a.Subject, call(http.MethodDelete, "{base}/admin/oauth2/auth/sessions/consent?subject={user_id}&all=true", "204"))
		fill(&a.SubjectSessions, call(http.MethodDelete, "{base}/admin/oauth2/auth/sessions/login?subject={user_id}", "204"))
		session := call(http.MethodDelete, "{base}/admin/oauth2/auth/sessions/login?sid={session_id}", "204")
		session.LoginOnly = true
		fill(&a.Session, session)
		client := call(http.MethodDelete, "{base}/admin/oauth2/tokens?client_id={client_id}", "204")
		client.AccessOnly = true
		fill(&a.Client, client)
		fill(&a.SubjectClient, call(http.MethodDelete, "{base}/admin/oauth2/auth/sessions/consent?subject={user_id}&client={client_id}", "204"))
		fill(&a.ClientLookup, call(http.MethodGet, "{base}/admin/clients/{client_id}", "200"))
	case PresetBox:
		c := call(http.MethodPost, "{base}/users/terminate_sessions", "2xx")
		c.Body = `{"user_ids":["{user_id}"],"user_logins":[]}`
		fill(&a.Subject, c)
	}
	return a
}
