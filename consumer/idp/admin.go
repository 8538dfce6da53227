package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// excerptBytes bounds Result.Body.
const excerptBytes = 256

// Result is the token API's answer to an admin call, for the audit trail.
type Result struct {
	// Status is the HTTP status.
	Status int
	// Revoked is the number of tokens revoked when CountKnown; providers
	// that do not say leave CountKnown false.
	Revoked    int
	CountKnown bool
	// Body is a short excerpt of the answer with control characters and
	// credential members removed.
	Body string
}

// TokenInfo describes a live token in ListSubjectTokens. It carries the
// token's id, never the raw token.
type TokenInfo struct {
	TokenID       string    `json:"token_id"`
	ParentTokenID string    `json:"parent_token_id,omitempty"`
	ClientID      string    `json:"client_id"`
	SessionID     string    `json:"session_id,omitempty"`
	Scopes        []string  `json:"scopes"`
	Resource      []string  `json:"resource,omitempty"`
	IssuedAt      time.Time `json:"issued_at,omitzero"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// RevokeSubject revokes every token of the user (downscoped ones included
// where the provider tracks them) with the configured subject call. It
// blocks for one request bounded by Config.Timeout; ctx cancels it. An
// answer outside AcceptStatus is *HTTPError; an unconfigured call is
// ErrNotConfigured.
//
// When AdminConfig.SubjectSessions is configured it is called after
// Subject succeeds; the result then has the status of the last call, the
// bodies of both and the sum of the counts when both give one. If it
// fails, the error is returned: calling RevokeSubject again is harmless.
func (c *Client) RevokeSubject(ctx context.Context, userID string) (Result, error) {
	res, err := c.adminRevoke(ctx, "revoke_subject", c.admin.Subject, map[string]string{"user_id": userID})
	if err != nil || c.admin.SubjectSessions.URL == "" {
		return res, err
	}
	res2, err := c.adminRevoke(ctx, "revoke_subject_sessions", c.admin.SubjectSessions, map[string]string{"user_id": userID})
	if err != nil {
		return Result{}, err
	}
	res2.Revoked += res.Revoked
	res2.CountKnown = res2.CountKnown && res.CountKnown
	if !res2.CountKnown {
		res2.Revoked = 0
	}
	if res.Body != "" || res2.Body != "" {
		res2.Body = sanitize(res.Body+" | "+res2.Body, excerptBytes, nil)
	}
	return res2, nil
}

// RevokeTokenID revokes one token, and its descendants where the provider
// tracks them, by id (for the reference token API: its fingerprint). It
// blocks like RevokeSubject.
func (c *Client) RevokeTokenID(ctx context.Context, tokenID string) (Result, error) {
	return c.adminRevoke(ctx, "revoke_token_id", c.admin.TokenID, map[string]string{"token_id": tokenID})
}

// RevokeSession revokes every token of a session. It blocks like
// RevokeSubject.
func (c *Client) RevokeSession(ctx context.Context, sessionID string) (Result, error) {
	return c.adminRevoke(ctx, "revoke_session", c.admin.Session, map[string]string{"session_id": sessionID})
}

// RevokeClient revokes every token issued to a client. It blocks like
// RevokeSubject.
func (c *Client) RevokeClient(ctx context.Context, clientID string) (Result, error) {
	return c.adminRevoke(ctx, "revoke_client", c.admin.Client, map[string]string{"client_id": clientID})
}

// RevokeSubjectClient revokes the user's tokens of one client with the
// configured subject_client call. It blocks like RevokeSubject.
func (c *Client) RevokeSubjectClient(ctx context.Context, userID, clientID string) (Result, error) {
	return c.adminRevoke(ctx, "revoke_subject_client", c.admin.SubjectClient, map[string]string{"user_id": userID, "client_id": clientID})
}

// ClientInfo is what the client lookup says of a client.
type ClientInfo struct {
	// GrantTypes are the client's RFC 7591 grant_types, when the answer
	// names them.
	GrantTypes []string `json:"grant_types"`
}

// HoldsRefreshTokens reports whether the client may hold refresh tokens.
func (ci ClientInfo) HoldsRefreshTokens() bool {
	return slices.Contains(ci.GrantTypes, "refresh_token")
}

// LookupClient reports whether id names a registered client, with the
// configured client_lookup call (found on its success statuses, not found
// on 404), and what the answer says of it. Unconfigured, it answers
// ErrNotConfigured.
func (c *Client) LookupClient(ctx context.Context, id string) (ClientInfo, bool, error) {
	_, body, err := c.adminCall(ctx, "client_lookup", c.admin.ClientLookup, map[string]string{"client_id": id}, maxBodyBytes)
	switch {
	case errors.Is(err, ErrNotFound):
		return ClientInfo{}, false, nil
	case err != nil:
		return ClientInfo{}, false, err
	}
	var ci ClientInfo
	_ = json.Unmarshal(body, &ci) // metadata is optional; found is what counts
	return ci, true, nil
}

// AccessOnly reports whether the client call leaves refresh tokens active.
func (c *Client) AccessOnly() bool { return c.admin.Client.AccessOnly }

// LoginOnly reports whether the call that revokes a target of kind
// ("user", "token", "session" or "client") ends login sessions and leaves
// issued tokens active.
func (c *Client) LoginOnly(kind string) bool { return c.admin.revokeCall(kind).LoginOnly }

// Escalation returns the fallbacks configured for a revocation of a target
// of kind that did not take, and how often and after how long the
// revocation is repeated first.
func (c *Client) Escalation(kind string) (fallbacks []string, retries int, delay time.Duration) {
	return c.admin.Escalate.For(kind), c.admin.NotEffectiveRetries, c.admin.NotEffectiveDelay
}

// Counts reports whether the call that revokes a target of kind says how
// many tokens it revoked (its CountField is set).
func (c *Client) Counts(kind string) bool { return c.admin.revokeCall(kind).CountField != "" }

// revokeCall is the admin call that revokes a target of kind by its id;
// the zero AdminCall for an unknown kind.
func (a *AdminConfig) revokeCall(kind string) AdminCall {
	switch kind {
	case "user":
		return a.Subject
	case "session":
		return a.Session
	case "client":
		return a.Client
	case "token":
		return a.TokenID
	}
	return AdminCall{}
}

// Lists reports whether the client can list a subject's live tokens.
func (c *Client) Lists() bool { return c.admin.ListSubjectTokens.URL != "" }

// ListSubjectTokens lists the user's live tokens with the configured list
// call, whose answer must be a JSON array of TokenInfo. It blocks for one
// request bounded by Config.Timeout; ctx cancels it.
func (c *Client) ListSubjectTokens(ctx context.Context, userID string) ([]TokenInfo, error) {
	const op = "list_subject_tokens"
	_, body, err := c.adminCall(ctx, op, c.admin.ListSubjectTokens, map[string]string{"user_id": userID}, maxListBytes)
	if err != nil {
		return nil, err
	}
	out := []TokenInfo{}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("idp: %s: %w: %w", op, ErrMalformedResponse, err)
	}
	return out, nil
}

// adminRevoke makes one revoking admin call with the values of its
// placeholders and reads its answer: its status, an excerpt, and the count
// of revoked tokens where the answer gives one.
func (c *Client) adminRevoke(ctx context.Context, op string, call AdminCall, vals map[string]string) (Result, error) {
	resp, body, err := c.adminCall(ctx, op, call, vals, maxBodyBytes)
	if err != nil {
		return Result{}, err
	}
	res := Result{Status: resp.StatusCode, Body: sanitize(string(body), excerptBytes, nil)}
	field := call.CountField
	if field == "" {
		field = "revoked"
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		var n int
		if raw, ok := obj[field]; ok && json.Unmarshal(raw, &n) == nil {
			res.Revoked, res.CountKnown = n, true
		}
	}
	ev := c.log.Debug()
	if ev.Enabled() {
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			ev = ev.Str(k, vals[k])
		}
		ev.Str("op", op).Int("status", res.Status).Int("revoked", res.Revoked).
			Bool("count_known", res.CountKnown).Msg("token API admin call")
	}
	return res, nil
}

// adminCall expands and sends one admin call and checks its status. vals
// fills the placeholders; every one must be non-empty.
func (c *Client) adminCall(ctx context.Context, op string, call AdminCall, vals map[string]string, limit int64) (*http.Response, []byte, error) {
	if call.URL == "" {
		return nil, nil, fmt.Errorf("idp: %s: %w", op, ErrNotConfigured)
	}
	for _, p := range slices.Sorted(maps.Keys(vals)) {
		if ph := "{" + p + "}"; vals[p] == "" && (strings.Contains(call.URL, ph) || strings.Contains(call.Body, ph)) {
			return nil, nil, fmt.Errorf("idp: %s: empty %s: %w", op, p, ErrInvalidArgument)
		}
	}
	auth := call.Auth
	if auth.Kind == "" {
		auth = c.admin.Auth
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		req, err := c.adminRequest(ctx, op, call, auth, vals)
		if err != nil {
			return nil, nil, err
		}
		resp, respBody, err := c.do(ctx, op, req, limit)
		if err != nil {
			return nil, nil, err
		}
		if call.accepts(resp.StatusCode) {
			return resp, respBody, nil
		}
		if resp.StatusCode == http.StatusUnauthorized && auth.Kind == AdminAuthClientCredentials && attempt == 0 {
			// The cached token may have been revoked or expired early:
			// get a fresh one and try once more.
			c.tokens.forget(auth)
			continue
		}
		c.log.Debug().Str("op", op).Int("status", resp.StatusCode).
			Dur("took", time.Since(start)).Msg("token API admin call refused")
		return nil, nil, newHTTPError(op, resp, respBody, c.now())
	}
}

// adminRequest builds the request of an admin call.
func (c *Client) adminRequest(ctx context.Context, op string, call AdminCall, auth AdminAuth, vals map[string]string) (*http.Request, error) {
	u := expandURL(call.URL, c.admin.BaseURL, vals)
	var body io.Reader
	contentType := call.ContentType
	if call.Body != "" {
		if contentType == "" {
			contentType = "application/json"
		}
		body = strings.NewReader(expandBody(call.Body, contentType, c.admin.BaseURL, vals))
	}
	req, err := http.NewRequest(call.Method, u, body)
	if err != nil {
		return nil, fmt.Errorf("idp: %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	switch auth.Kind {
	case AdminAuthBearer:
		scheme := auth.Scheme
		if scheme == "" {
			scheme = "Bearer"
		}
		req.Header.Set("Authorization", scheme+" "+auth.Token.Reveal())
	case AdminAuthBasic:
		req.SetBasicAuth(auth.Username, auth.Password.Reveal())
	case AdminAuthClientCredentials:
		tok, err := c.adminToken(ctx, auth)
		if err != nil {
			return nil, fmt.Errorf("idp: %s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// expand replaces the placeholders of tmpl in one pass, so a value that
// looks like a placeholder is never expanded itself: {base} by base as is,
// the others by esc of their value. Unknown placeholders stay. It finds
// what placeholderRE matches (FuzzExpandMatchesPlaceholderRE), scanning
// instead of running the regular expression: every revocation and every
// proof expands a URL, and a campaign's CPU profile showed the regular
// expression (BenchmarkExpandURL: 0.74 µs with the scan, 2.5 µs with the
// regular expression).
func expand(tmpl, base string, vals map[string]string, esc func(string) string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			break
		}
		j := i + 1
		for j < len(tmpl) && isPlaceholderByte(tmpl[j]) {
			j++
		}
		if j == len(tmpl) || tmpl[j] != '}' {
			// No placeholder starts here; none starts inside it either, as
			// its name bytes hold no brace.
			b.WriteString(tmpl[:j])
			tmpl = tmpl[j:]
			continue
		}
		b.WriteString(tmpl[:i])
		ph := tmpl[i : j+1]
		if name := ph[1 : len(ph)-1]; name == "base" {
			b.WriteString(strings.TrimSuffix(base, "/"))
		} else if v, ok := vals[name]; ok {
			b.WriteString(esc(v))
		} else {
			b.WriteString(ph)
		}
		tmpl = tmpl[j+1:]
	}
	b.WriteString(tmpl)
	return b.String()
}

// isPlaceholderByte reports whether c may appear in a placeholder's name
// ([A-Za-z0-9_.-], as placeholderRE says).
func isPlaceholderByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// expandURL fills a URL template: {base} as is, each parameter escaped as a
// path segment before '?' and as a query value after it.
func expandURL(tmpl, base string, vals map[string]string) string {
	path, query, hasQuery := strings.Cut(tmpl, "?")
	path = expand(path, base, vals, url.PathEscape)
	if !hasQuery {
		return path
	}
	return path + "?" + expand(query, base, vals, url.QueryEscape)
}

// expandBody fills a body template with the parameters escaped for the
// content type.
func expandBody(tmpl, contentType, base string, vals map[string]string) string {
	esc := url.QueryEscape
	if contentType != "application/x-www-form-urlencoded" {
		esc = func(v string) string {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(v) // a string always encodes
			return strings.TrimSuffix(strings.TrimSpace(b.String()), `"`)[1:]
		}
	}
	return expand(tmpl, base, vals, esc)
}
