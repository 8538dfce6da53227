package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

// OAuth error codes this server answers with (RFC 6749 §5.2, RFC 7009
// §2.2.1, RFC 8693 §2.2.2).
const (
	ErrCodeInvalidRequest = "invalid_request"
	ErrCodeInvalidClient  = "invalid_client"
	// ErrCodeInvalidGrant (RFC 6749 §5.2) refuses a token to a subject
	// that must verify again (see the admin call
	// /admin/subjects/{user_id}/require-reverification); this server sends
	// it for nothing else.
	ErrCodeInvalidGrant         = "invalid_grant"
	ErrCodeUnauthorizedClient   = "unauthorized_client"
	ErrCodeUnsupportedGrantType = "unsupported_grant_type"
	ErrCodeInvalidScope         = "invalid_scope"
	ErrCodeInvalidTarget        = "invalid_target"
	ErrCodeServerError          = "server_error"
	// ErrCodeUnsupportedTokenType (RFC 7009 §2.2.1) means the server cannot
	// revoke the presented type of token. This server issues only access
	// tokens and revokes all of them, so it never sends it; it is listed
	// for clients that must handle it from other servers.
	ErrCodeUnsupportedTokenType = "unsupported_token_type"
	// ErrCodeInvalidToken is the admin API's answer to a missing or wrong
	// admin bearer token (RFC 6750 §3.1).
	ErrCodeInvalidToken = "invalid_token"
)

// oauthError is an error response of RFC 6749 §5.2.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func errInvalidRequest(format string, args ...any) *oauthError {
	return &oauthError{http.StatusBadRequest, ErrCodeInvalidRequest, fmt.Sprintf(format, args...)}
}

// errReverification is the token endpoint's refusal of a token to a
// subject that must verify again.
var errReverification = &oauthError{http.StatusBadRequest, ErrCodeInvalidGrant,
	"re-verification required: the user must verify again before new tokens are issued"}

func errInvalidClient(desc string) *oauthError {
	return &oauthError{http.StatusUnauthorized, ErrCodeInvalidClient, desc}
}

func (s *Server) writeError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized && e.code == ErrCodeInvalidClient {
		// RFC 6749 §5.2: a 401 carries WWW-Authenticate matching the scheme.
		w.Header().Set("WWW-Authenticate", `Basic realm="tokenapi", charset="UTF-8"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func (s *Server) writeInternal(w http.ResponseWriter, err error, msg string) {
	s.log.Error().Err(err).Msg(msg)
	s.writeError(w, &oauthError{http.StatusInternalServerError, ErrCodeServerError, "internal error"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// RFC 6749 §5.1: responses with tokens or credentials are not cached
	// (ops.WriteJSON sets Cache-Control: no-store).
	w.Header().Set("Pragma", "no-cache")
	ops.WriteJSON(w, status, v)
}

// multiValued are the parameters that may repeat (RFC 8693 §2.1).
var multiValued = map[string]bool{"resource": true, "audience": true}

// inBodyOnly are parameters refused in the query string: tokens and secrets
// in URLs end up in access logs and browser histories.
var inBodyOnly = []string{"token", "subject_token", "actor_token", "client_secret"}

// parseForm reads the application/x-www-form-urlencoded body of an OAuth
// request (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1).
func parseForm(r *http.Request) (url.Values, *oauthError) {
	for _, k := range inBodyOnly {
		if r.URL.Query().Has(k) {
			return nil, errInvalidRequest("%s must be sent in the request body, not the URL", k)
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("content type must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &oauthError{http.StatusRequestEntityTooLarge, ErrCodeInvalidRequest, "request body too large"}
		}
		return nil, errInvalidRequest("malformed request body")
	}
	for k, v := range r.PostForm {
		// RFC 6749 §3.2: parameters MUST NOT be included more than once.
		if len(v) > 1 && !multiValued[k] {
			return nil, errInvalidRequest("parameter %q included more than once", k)
		}
	}
	return r.PostForm, nil
}

// tokenResponse is the successful answer of the token endpoint (RFC 6749
// §5.1, RFC 8693 §2.2.1).
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

func expiresIn(exp, now time.Time) int64 {
	return int64(exp.Sub(now).Round(time.Second) / time.Second)
}

// clientRequest reads an OAuth request's form and authenticates its
// client. When either fails, it has written the error response and returns
// false.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request) (*client, url.Values, bool) {
	form, oe := parseForm(r)
	if oe != nil {
		s.writeError(w, oe)
		return nil, nil, false
	}
	c, oe := s.authenticateClient(r, form)
	if oe != nil {
		s.writeError(w, oe)
		return nil, nil, false
	}
	return c, form, true
}

// tokenRequest is clientRequest for the endpoints about one token,
// revocation (RFC 7009 §2.1) and introspection (RFC 7662 §2.1), which also
// require the token parameter. It returns the raw token.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (*client, string, bool) {
	c, form, ok := s.clientRequest(w, r)
	if !ok {
		return nil, "", false
	}
	raw := form.Get("token")
	if raw == "" {
		s.writeError(w, errInvalidRequest("token is required"))
		return nil, "", false
	}
	return c, raw, true
}

// handleToken is the token endpoint: client_credentials and token exchange.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	c, form, ok := s.clientRequest(w, r)
	if !ok {
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "":
		s.writeError(w, errInvalidRequest("grant_type is required"))
	case GrantClientCredentials:
		s.clientCredentials(w, c, form)
	case GrantTokenExchange:
		s.tokenExchange(w, c, form)
	default:
		s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeUnsupportedGrantType, "unsupported grant_type"})
	}
}

func (s *Server) clientCredentials(w http.ResponseWriter, c *client, form url.Values) {
	if !c.grants[GrantClientCredentials] {
		s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeUnauthorizedClient, "client may not use the client_credentials grant"})
		return
	}
	scopes, ok := parseScope(form.Get("scope"))
	if !ok {
		s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeInvalidScope, "malformed scope"})
		return
	}
	if len(scopes) == 0 {
		scopes = c.scopes
	} else if !isSubset(scopes, c.scopes) {
		// RFC 6749 §5.2: the requested scope exceeds what the client may have.
		s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeInvalidScope, "requested scope exceeds the client's scopes"})
		return
	}
	now := s.now()
	raw, t, err := s.issueRoot(func(id string) *token {
		return &token{
			id:        id,
			subject:   c.id,
			clientID:  c.id,
			scopes:    scopes,
			issuedAt:  now,
			expiresAt: now.Add(s.cfg.TokenTTL),
		}
	})
	if errors.Is(err, errReverify) {
		s.refuseReverify(w, c.id)
		return
	}
	if err != nil {
		s.writeInternal(w, err, "issuing token")
		return
	}
	s.log.Debug().Str("token_id", t.id).Str("client_id", c.id).Msg("token issued (client_credentials)")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: raw,
		TokenType:   "Bearer",
		ExpiresIn:   expiresIn(t.expiresAt, now),
		Scope:       strings.Join(t.scopes, " "),
	})
}

// tokenExchange implements RFC 8693 for access tokens: the child is bound to
// the parent's subject, session and client, carries a subset of its scopes,
// an audience within the parent's, and expires no later than the parent.
func (s *Server) tokenExchange(w http.ResponseWriter, c *client, form url.Values) {
	if !c.grants[GrantTokenExchange] {
		s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeUnauthorizedClient, "client may not use the token-exchange grant"})
		return
	}
	subjectToken := form.Get("subject_token")
	switch stt := form.Get("subject_token_type"); {
	case subjectToken == "":
		s.writeError(w, errInvalidRequest("subject_token is required"))
		return
	case stt == "":
		s.writeError(w, errInvalidRequest("subject_token_type is required"))
		return
	case stt != TokenTypeAccessToken:
		s.writeError(w, errInvalidRequest("unsupported subject_token_type; only %s", TokenTypeAccessToken))
		return
	}
	if rtt := form.Get("requested_token_type"); rtt != "" && rtt != TokenTypeAccessToken {
		s.writeError(w, errInvalidRequest("unsupported requested_token_type; only %s", TokenTypeAccessToken))
		return
	}
	if form.Has("actor_token") || form.Has("actor_token_type") {
		s.writeError(w, errInvalidRequest("delegation (actor_token) is not supported"))
		return
	}
	scopes, ok := parseScope(form.Get("scope"))
	if !ok {
		s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeInvalidScope, "malformed scope"})
		return
	}
	var audience []string
	for _, res := range form["resource"] {
		// RFC 8693 §2.1: resource is an absolute URI without a fragment.
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeInvalidTarget, "resource must be an absolute URI without fragment"})
			return
		}
		audience = append(audience, res)
	}
	for _, aud := range form["audience"] {
		if aud == "" {
			s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeInvalidTarget, "empty audience"})
			return
		}
		audience = append(audience, aud)
	}
	audience = normalizeScopes(audience)

	now := s.now()
	parentID := schemas.Fingerprint(subjectToken)
	derive := func(id string) func(p tokenView) (*token, error) {
		return func(p tokenView) (*token, error) {
			if p.ClientID != c.id {
				return nil, errInvalidRequest("subject_token was not issued to this client")
			}
			childScopes := p.Scopes
			if len(scopes) > 0 {
				if !isSubset(scopes, p.Scopes) {
					// RFC 8693 §2.2.2 / RFC 6749 §5.2.
					return nil, &oauthError{http.StatusBadRequest, ErrCodeInvalidScope, "requested scope exceeds the subject token's scope"}
				}
				childScopes = scopes
			}
			childAud := p.Audience
			if len(audience) > 0 {
				if len(p.Audience) > 0 && !isSubset(audience, p.Audience) {
					return nil, &oauthError{http.StatusBadRequest, ErrCodeInvalidTarget, "requested resource or audience is outside the subject token's audience"}
				}
				childAud = audience
			}
			return &token{
				id:        id,
				subject:   p.Subject,
				clientID:  p.ClientID,
				sessionID: p.SessionID,
				scopes:    childScopes,
				audience:  childAud,
				issuedAt:  now,
				expiresAt: minTime(now.Add(s.cfg.TokenTTL), p.ExpiresAt),
			}, nil
		}
	}

	for range 3 {
		raw, id, err := newRawToken()
		if err != nil {
			s.writeInternal(w, err, "exchanging token")
			return
		}
		child, err := s.store.exchange(parentID, now, derive(id))
		var oe *oauthError
		switch {
		case errors.Is(err, errCollision):
			continue
		case errors.Is(err, errInactive):
			// RFC 8693 §2.2.2: an invalid subject_token is invalid_request.
			s.writeError(w, errInvalidRequest("subject_token is invalid, expired or revoked"))
			return
		case errors.Is(err, errReverify):
			s.refuseReverify(w, "")
			return
		case errors.As(err, &oe):
			s.writeError(w, oe)
			return
		case err != nil:
			s.writeInternal(w, err, "exchanging token")
			return
		}
		s.issued.Add(1)
		s.exchanged.Add(1)
		s.log.Debug().Str("token_id", child.id).Str("parent_token_id", parentID).
			Str("client_id", c.id).Msg("token exchanged")
		writeJSON(w, http.StatusOK, tokenResponse{
			AccessToken:     raw,
			IssuedTokenType: TokenTypeAccessToken,
			TokenType:       "Bearer",
			ExpiresIn:       expiresIn(child.expiresAt, now),
			Scope:           strings.Join(child.scopes, " "),
		})
		return
	}
	s.writeInternal(w, errCollision, "exchanging token")
}

// refuseReverify answers a token request for a subject that must verify
// again: invalid_grant (RFC 6749 §5.2), which covers "the resource owner
// credentials are invalid, expired, revoked" and suits a grant the
// authorization server will not honour until the user proves themselves.
func (s *Server) refuseReverify(w http.ResponseWriter, subject string) {
	s.reverifyRefused.Add(1)
	s.log.Info().Str("user_id", subject).Msg("token refused: re-verification required")
	s.writeError(w, errReverification)
}

// handleRevoke is the RFC 7009 revocation endpoint.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	c, raw, ok := s.tokenRequest(w, r)
	if !ok {
		return
	}
	// token_type_hint is only a hint (RFC 7009 §2.1): every token this
	// server knows is an access token found by fingerprint, so the hint,
	// whatever its value, is ignored.
	id := schemas.Fingerprint(raw)
	t, ok := s.store.lookup(id)
	if !ok {
		// RFC 7009 §2.2: an invalid or unknown token is not an error.
		w.WriteHeader(http.StatusOK)
		return
	}
	if t.ClientID != c.id && !c.revokeAny {
		// RFC 7009 §2.1: the server verifies that the token was issued to
		// the requesting client and refuses the request otherwise.
		s.log.Info().Str("token_id", id).Str("client_id", c.id).Str("token_client_id", t.ClientID).
			Msg("revocation refused: token issued to another client")
		s.writeError(w, &oauthError{http.StatusBadRequest, ErrCodeUnauthorizedClient, "the token was not issued to this client"})
		return
	}
	n := s.store.revokeFamily(id, s.now())
	s.revoked.Add(uint64(n))
	s.log.Info().Str("token_id", id).Str("client_id", c.id).Int("revoked", n).Msg("token revoked")
	w.WriteHeader(http.StatusOK)
}

// introspection is the RFC 7662 §2.2 response for an active token.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Aud       any    `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
	// Extensions: the session and the parent of a downscoped token.
	Sid       string `json:"sid,omitempty"`
	ParentJti string `json:"parent_jti,omitempty"`
}

// handleIntrospect is the RFC 7662 introspection endpoint.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	c, raw, ok := s.tokenRequest(w, r)
	if !ok {
		return
	}
	now := s.now()
	t, ok := s.store.lookup(schemas.Fingerprint(raw))
	if !ok || t.Revoked || !now.Before(t.ExpiresAt) || (t.ClientID != c.id && !c.introspectAny) {
		// RFC 7662 §2.2: nothing beyond "active" for an inactive token,
		// not even why. Tokens of other clients are not disclosed to an
		// unprivileged caller (RFC 7662 §4).
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	resp := introspection{
		Active:    true,
		Scope:     strings.Join(t.Scopes, " "),
		ClientID:  t.ClientID,
		Subject:   t.Subject,
		Exp:       t.ExpiresAt.Unix(),
		Iat:       t.IssuedAt.Unix(),
		TokenType: "Bearer",
		Iss:       s.issuer,
		Jti:       t.ID,
		Sid:       t.SessionID,
		ParentJti: t.Parent,
	}
	switch len(t.Audience) {
	case 0:
	case 1:
		resp.Aud = t.Audience[0]
	default:
		resp.Aud = t.Audience
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) buildMetadata() map[string]any {
	methods := []string{AuthClientSecretBasic, AuthClientSecretPost}
	base := strings.TrimSuffix(s.issuer, "/")
	return map[string]any{
		"issuer":                 s.issuer,
		"token_endpoint":         base + PathToken,
		"revocation_endpoint":    base + PathRevoke,
		"introspection_endpoint": base + PathIntrospect,
		"grant_types_supported":  []string{GrantClientCredentials, GrantTokenExchange},
		// RFC 8414 §2 requires response_types_supported; there is no
		// authorization endpoint, so no response type is supported.
		"response_types_supported":                      []string{},
		"token_endpoint_auth_methods_supported":         methods,
		"revocation_endpoint_auth_methods_supported":    methods,
		"introspection_endpoint_auth_methods_supported": methods,
	}
}

// handleMetadata serves the RFC 8414 authorization server metadata.
func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.metadata)
}

// parseScope splits a scope parameter (RFC 6749 §3.3) into sorted unique
// scope-tokens. ok is false if a token has characters outside NQCHAR.
func parseScope(s string) (scopes []string, ok bool) {
	for f := range strings.FieldsSeq(s) {
		if !validScopeToken(f) {
			return nil, false
		}
		scopes = append(scopes, f)
	}
	return normalizeScopes(scopes), true
}

func normalizeScopes(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// isSubset reports whether every element of sub is in set (both sorted).
func isSubset(sub, set []string) bool {
	for _, s := range sub {
		if _, found := slices.BinarySearch(set, s); !found {
			return false
		}
	}
	return true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
