package hydratest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/testenv"
)

// RedirectURI is the redirect URI of every client NewClient creates.
// Nothing listens there: the authorization-code flow reads the code from
// the redirect instead of following it. (Hydra accepts plain http only
// for loopback addresses.)
const RedirectURI = "http://127.0.0.1/callback"

// Hydra is a running Hydra server: its public and admin URLs, without a
// trailing slash.
type Hydra struct {
	Public string
	Admin  string

	// http follows no redirects: each flow step reads Location itself.
	http *http.Client
}

// New returns the test Hydra server that REVOKED_TEST_HYDRA_PUBLIC and
// REVOKED_TEST_HYDRA_ADMIN name (.ci/hydra.sh starts one). Without them
// the test is skipped, or fails when the run requires hydra
// (testenv.HydraURLs).
func New(t testing.TB) *Hydra {
	t.Helper()
	public, admin := testenv.HydraURLs(t)
	return &Hydra{Public: public, Admin: admin, http: newHTTPClient(nil)}
}

func newHTTPClient(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// AdminDo sends an admin API request (path and query, e.g.
// "/admin/oauth2/auth/sessions/login?subject=alice") with body, when not
// nil, as JSON, and returns the status code and the response body. It
// fails the test only when the request cannot be made.
func (h *Hydra) AdminDo(t testing.TB, method, path string, body any) (status int, respBody []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("hydra: encoding %s %s: %v", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.Admin+path, r)
	if err != nil {
		t.Fatalf("hydra: %s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return h.do(t, h.http, req)
}

// adminJSON sends an admin API request, requires status want and decodes
// the response into out (when not nil).
func (h *Hydra) adminJSON(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	status, b := h.AdminDo(t, method, path, body)
	if status != want {
		t.Fatalf("hydra: %s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("hydra: %s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

func (h *Hydra) do(t testing.TB, c *http.Client, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("hydra: %s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("hydra: %s %s: reading the response: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, b
}

// Introspection is what POST /admin/oauth2/introspect reports about a
// token (RFC 7662). An expired, revoked or unknown token is just
// Active false.
type Introspection struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	TokenUse  string `json:"token_use"` // "access_token" or "refresh_token"
	ExpiresAt int64  `json:"exp"`
}

// Introspect asks the admin API whether an access or refresh token is
// active. The admin endpoint takes no client authentication in Hydra v2.
func (h *Hydra) Introspect(t testing.TB, token string) Introspection {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.Admin+"/admin/oauth2/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatalf("hydra: introspect: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, b := h.do(t, h.http, req)
	if status != http.StatusOK {
		t.Fatalf("hydra: introspect: status %d: %s", status, b)
	}
	var in Introspection
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatalf("hydra: introspect: decoding %s: %v", b, err)
	}
	return in
}

// ClientConfig describes an OAuth 2.0 client for NewClient. The zero
// value is a confidential client (client_secret_basic) allowed the
// authorization-code, refresh-token and client-credentials grants with
// the scopes "openid offline_access" (offline_access: a refresh token).
type ClientConfig struct {
	// GrantTypes; default authorization_code, refresh_token and
	// client_credentials.
	GrantTypes []string
	// Scope, space-separated; default "openid offline_access".
	Scope string
	// PrivateKeyJWT makes the client authenticate with a signed JWT
	// (token_endpoint_auth_method private_key_jwt, RFC 7523) whose
	// public key is registered in the client's JWKS, instead of
	// client_secret_basic.
	PrivateKeyJWT bool
}

// Client is an OAuth 2.0 client registered with Hydra.
type Client struct {
	ID string
	// Secret is the client secret; empty with PrivateKeyJWT.
	Secret string
	// Key signs the client's assertions with PrivateKeyJWT (ES256); nil
	// otherwise.
	Key *ecdsa.PrivateKey
	// KeyID is Key's kid in the registered JWKS.
	KeyID string
	// Scope is the client's scope, which the flows request.
	Scope string

	h *Hydra
}

// NewClient registers a client through POST /admin/clients and deletes it
// (with its tokens) when the test ends.
func (h *Hydra) NewClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.GrantTypes == nil {
		cfg.GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}
	}
	if cfg.Scope == "" {
		cfg.Scope = "openid offline_access"
	}
	body := map[string]any{
		"client_name":                t.Name(),
		"grant_types":                cfg.GrantTypes,
		"response_types":             []string{"code"},
		"scope":                      cfg.Scope,
		"redirect_uris":              []string{RedirectURI},
		"token_endpoint_auth_method": "client_secret_basic",
	}
	c := &Client{Scope: cfg.Scope, h: h}
	if cfg.PrivateKeyJWT {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatalf("hydra: generating the client's key: %v", err)
		}
		c.Key, c.KeyID = key, randomString(t)
		ecdh, err := key.PublicKey.ECDH()
		if err != nil {
			t.Fatalf("hydra: the client's public key: %v", err)
		}
		point := ecdh.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
		body["token_endpoint_auth_method"] = "private_key_jwt"
		body["token_endpoint_auth_signing_alg"] = "ES256"
		body["jwks"] = map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": c.KeyID,
			"x": b64(point[1:33]), "y": b64(point[33:]),
		}}}
	}
	var created struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	h.adminJSON(t, http.MethodPost, "/admin/clients", body, http.StatusCreated, &created)
	c.ID = created.ClientID
	if !cfg.PrivateKeyJWT {
		c.Secret = created.ClientSecret
	}
	t.Cleanup(func() {
		status, b := h.AdminDo(t, http.MethodDelete, "/admin/clients/"+url.PathEscape(c.ID), nil)
		if status != http.StatusNoContent && status != http.StatusNotFound {
			t.Errorf("hydra: deleting client %s: status %d: %s", c.ID, status, b)
		}
	})
	return c
}

// Tokens are what a token request returned.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"` // with the offline_access scope
	IDToken      string `json:"id_token"`      // with the openid scope
	// SessionID is the Hydra login session (the ID token's sid claim)
	// that the authorization-code flow created; empty for client
	// credentials.
	SessionID string `json:"-"`
}

// AuthorizationCode runs the authorization-code flow for subject, as a
// browser and a login and consent app would: it starts at /oauth2/auth,
// accepts the login request (remember: true, so Hydra keeps a login
// session with a sid) and the consent request (remember: true, granting
// the client's whole scope) through the admin API, and exchanges the code
// at /oauth2/token. Each call is a new browser: a new cookie jar, so a
// new login session.
func (c *Client) AuthorizationCode(t testing.TB, subject string) Tokens {
	t.Helper()
	h := c.h
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("hydra: cookie jar: %v", err)
	}
	browser := newHTTPClient(jar)

	auth := h.Public + "/oauth2/auth?" + url.Values{
		"response_type": {"code"},
		"client_id":     {c.ID},
		"redirect_uri":  {RedirectURI},
		"scope":         {c.Scope},
		"state":         {randomString(t)},
		"nonce":         {randomString(t)},
	}.Encode()

	// To the login app (URLS_LOGIN) with a login challenge.
	loginChallenge := h.browse(t, browser, auth).Query().Get("login_challenge")
	if loginChallenge == "" {
		t.Fatalf("hydra: the authorization request did not lead to a login challenge")
	}
	var login struct {
		SessionID string `json:"session_id"`
	}
	q := "?login_challenge=" + url.QueryEscape(loginChallenge)
	h.adminJSON(t, http.MethodGet, "/admin/oauth2/auth/requests/login"+q, nil, http.StatusOK, &login)
	var next struct {
		RedirectTo string `json:"redirect_to"`
	}
	h.adminJSON(t, http.MethodPut, "/admin/oauth2/auth/requests/login/accept"+q,
		map[string]any{"subject": subject, "remember": true, "remember_for": 0},
		http.StatusOK, &next)

	// Back through Hydra to the consent app (URLS_CONSENT).
	consentChallenge := h.browse(t, browser, next.RedirectTo).Query().Get("consent_challenge")
	if consentChallenge == "" {
		t.Fatalf("hydra: the accepted login did not lead to a consent challenge")
	}
	q = "?consent_challenge=" + url.QueryEscape(consentChallenge)
	h.adminJSON(t, http.MethodPut, "/admin/oauth2/auth/requests/consent/accept"+q,
		map[string]any{"grant_scope": strings.Fields(c.Scope), "remember": true, "remember_for": 0},
		http.StatusOK, &next)

	// Back through Hydra to the client's redirect URI with the code.
	callback := h.browse(t, browser, next.RedirectTo)
	code := callback.Query().Get("code")
	if code == "" {
		t.Fatalf("hydra: the accepted consent redirected to %s, without a code", callback)
	}
	tokens := c.token(t, url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {RedirectURI},
	})
	tokens.SessionID = login.SessionID
	return tokens
}

// ClientCredentials obtains an access token for the client itself (its
// subject is the client id) with the client-credentials grant.
func (c *Client) ClientCredentials(t testing.TB) Tokens {
	t.Helper()
	return c.token(t, url.Values{"grant_type": {"client_credentials"}})
}

// Refresh exchanges a refresh token for new tokens (refresh_token grant).
// ok is false, and the refusal logged, when Hydra refuses it (a revoked,
// used or unknown refresh token).
func (c *Client) Refresh(t testing.TB, refreshToken string) (tokens Tokens, ok bool) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	status, b := c.post(t, "/oauth2/token", form)
	if status != http.StatusOK {
		t.Logf("hydra: refresh refused: status %d: %s", status, b)
		return Tokens{}, false
	}
	return decodeTokens(t, b), true
}

// token posts a token request authenticated as the client.
func (c *Client) token(t testing.TB, form url.Values) Tokens {
	t.Helper()
	status, b := c.post(t, "/oauth2/token", form)
	if status != http.StatusOK {
		t.Fatalf("hydra: token request (%s): status %d: %s", form.Get("grant_type"), status, b)
	}
	return decodeTokens(t, b)
}

func decodeTokens(t testing.TB, body []byte) Tokens {
	t.Helper()
	var tokens Tokens
	if err := json.Unmarshal(body, &tokens); err != nil || tokens.AccessToken == "" {
		t.Fatalf("hydra: token response %s: %v", body, err)
	}
	return tokens
}

// Revoke revokes token at /oauth2/revoke (RFC 7009) authenticated as the
// client and returns the status code and body.
func (c *Client) Revoke(t testing.TB, token string) (status int, body []byte) {
	t.Helper()
	return c.post(t, "/oauth2/revoke", url.Values{"token": {token}})
}

// post sends form to a public endpoint, authenticated as the client:
// HTTP Basic with the form-encoded id and secret (RFC 6749 section
// 2.3.1), or a signed assertion (RFC 7523 section 2.2) whose audience is
// the token endpoint, which Hydra also requires at /oauth2/revoke.
func (c *Client) post(t testing.TB, path string, form url.Values) (int, []byte) {
	t.Helper()
	if c.Key != nil {
		form.Set("client_id", c.ID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", c.assertion(t))
	}
	req, err := http.NewRequest(http.MethodPost, c.h.Public+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("hydra: POST %s: %v", path, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Key == nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return c.h.do(t, c.h.http, req)
}

// assertion returns a new client assertion JWT signed with ES256.
func (c *Client) assertion(t testing.TB) string {
	t.Helper()
	now := time.Now()
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": c.KeyID})
	claims, _ := json.Marshal(map[string]any{
		"iss": c.ID, "sub": c.ID, "aud": c.h.Public + "/oauth2/token",
		"jti": randomString(t), // Hydra refuses a jti it has seen
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	signed := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, c.Key, digest[:])
	if err != nil {
		t.Fatalf("hydra: signing the client assertion: %v", err)
	}
	// JWS ES256: r and s as 32-byte big-endian integers (RFC 7518 3.4).
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + b64(sig)
}

// browse follows redirects from start while they stay on Hydra's public
// URL, with browser's cookies, and returns the first URL elsewhere (the
// login or consent app, or the client's redirect URI).
func (h *Hydra) browse(t testing.TB, browser *http.Client, start string) *url.URL {
	t.Helper()
	next, err := url.Parse(start)
	if err != nil {
		t.Fatalf("hydra: %q: %v", start, err)
	}
	public, err := url.Parse(h.Public)
	if err != nil {
		t.Fatalf("hydra: public URL %q: %v", h.Public, err)
	}
	for range 10 {
		if next.Host != public.Host {
			return next
		}
		req, err := http.NewRequest(http.MethodGet, next.String(), nil)
		if err != nil {
			t.Fatalf("hydra: GET %s: %v", next, err)
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatalf("hydra: GET %s: %v", next, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("hydra: GET %s: status %d without a redirect: %s", next, resp.StatusCode, b)
		}
		if e := loc.Query().Get("error"); e != "" {
			t.Fatalf("hydra: GET %s: redirected with error %s: %s", next, e, loc.Query().Get("error_description"))
		}
		next = loc
	}
	t.Fatalf("hydra: more than 10 redirects from %s", start)
	return nil
}

// IDTokenClaims returns the claims of an ID token, without checking its
// signature (the test received it from Hydra itself).
func IDTokenClaims(t testing.TB, idToken string) map[string]any {
	t.Helper()
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("hydra: the ID token has %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("hydra: the ID token's payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("hydra: the ID token's claims: %v", err)
	}
	return claims
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// randomString returns 32 random hex digits: states, nonces, key ids,
// assertion ids, subjects that must not collide across tests.
func randomString(t testing.TB) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("hydra: random: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// UniqueSubject returns a subject no other test uses: prefix and random
// digits, so sessions of a shared server never mix.
func UniqueSubject(t testing.TB, prefix string) string {
	t.Helper()
	return fmt.Sprintf("%s-%s", prefix, randomString(t)[:12])
}
