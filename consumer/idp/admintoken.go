package idp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// tokenCache keeps the bearer tokens of client_credentials admin auth.
type tokenCache struct {
	mu sync.Mutex // held while a token is fetched: one fetch at a time
	m  map[string]cachedToken
}

type cachedToken struct {
	value   string
	expires time.Time
}

// tokenKey tells apart tokens of different clients, scopes and subjects
// (Box's box_subject_id).
func tokenKey(a AdminAuth) string {
	return strings.Join(append([]string{a.TokenURL, a.ClientID, a.Scope, fmt.Sprint(a.UseClientAuth)}, a.Params...), "\x00")
}

func (tc *tokenCache) forget(a AdminAuth) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	delete(tc.m, tokenKey(a))
}

// adminToken returns a bearer token for client_credentials admin auth: the
// cached one while it has life left, else a new one from a.TokenURL
// (RFC 6749 §4.4, the client's credentials as form parameters, or the
// OAuth client's own authentication with UseClientAuth). It blocks
// for that one request, bounded by Config.Timeout; ctx cancels it.
func (c *Client) adminToken(ctx context.Context, a AdminAuth) (string, error) {
	const op = "admin_token"
	tc := c.tokens
	tc.mu.Lock()
	defer tc.mu.Unlock()
	key := tokenKey(a)
	if t, ok := tc.m[key]; ok && c.now().Before(t.expires) {
		return t.value, nil
	}
	secret := a.ClientSecret.Reveal()
	form := url.Values{"grant_type": {"client_credentials"}}
	header := http.Header{}
	if a.UseClientAuth {
		if err := c.auth.Authenticate(a.TokenURL, form, header); err != nil {
			return "", fmt.Errorf("idp: %s: authenticating client: %w", op, err)
		}
	} else {
		form.Set("client_id", a.ClientID)
		form.Set("client_secret", secret)
	}
	if a.Scope != "" {
		form.Set("scope", a.Scope)
	}
	for _, kv := range a.Params {
		k, v, _ := strings.Cut(kv, "=")
		form.Set(k, v)
	}
	req, err := http.NewRequest(http.MethodPost, a.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("idp: %s: %w", op, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := c.do(ctx, op, req, maxBodyBytes)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", newHTTPError(op, resp, body, c.now(), secret)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("idp: %s: %w: no access_token", op, ErrMalformedResponse)
	}
	// Renew a little early so a token does not expire in flight; a token
	// without expires_in is used for this call only.
	life := time.Duration(tr.ExpiresIn) * time.Second
	life -= min(30*time.Second, life/2)
	if life > 0 {
		tc.m[key] = cachedToken{value: tr.AccessToken, expires: c.now().Add(life)}
	}
	return tr.AccessToken, nil
}
