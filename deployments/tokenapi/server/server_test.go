package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/schemas"
)

// auth is how a test authenticates its client.
type auth struct {
	id, secret string
	post       bool // client_secret_post instead of client_secret_basic
}

var (
	asApp     = auth{id: servertest.AppID, secret: servertest.AppSecret}
	asOther   = auth{id: servertest.OtherID, secret: servertest.OtherSecret}
	asRevoker = auth{id: servertest.RevokerID, secret: servertest.RevokerSecret}
)

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
	return m
}

func postForm(t *testing.T, env *servertest.Env, path string, a *auth, form url.Values) response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if a != nil && a.post {
		form.Set("client_id", a.id)
		form.Set("client_secret", a.secret)
	}
	req, err := http.NewRequest(http.MethodPost, env.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if a != nil && !a.post {
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	}
	return do(t, env, req)
}

func do(t *testing.T, env *servertest.Env, req *http.Request) response {
	t.Helper()
	resp, err := env.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func adminReq(t *testing.T, env *servertest.Env, method, path, bearer string, body any) response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, env.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, env, req)
}

func issue(t *testing.T, env *servertest.Env, user, client, session string, scopes ...string) (raw, id string) {
	t.Helper()
	return env.Issue(t, server.IssueRequest{UserID: user, ClientID: client, SessionID: session, Scopes: scopes})
}

func introspect(t *testing.T, env *servertest.Env, a auth, raw string) map[string]any {
	t.Helper()
	r := postForm(t, env, server.PathIntrospect, &a, url.Values{"token": {raw}})
	if r.status != http.StatusOK {
		t.Fatalf("introspect: status %d: %s", r.status, r.body)
	}
	return r.json(t)
}

func active(t *testing.T, env *servertest.Env, raw string) bool {
	t.Helper()
	return introspect(t, env, asRevoker, raw)["active"] == true
}

func exchange(t *testing.T, env *servertest.Env, a auth, subject string, extra url.Values) response {
	t.Helper()
	form := url.Values{
		"grant_type":         {server.GrantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {server.TokenTypeAccessToken},
	}
	for k, v := range extra {
		form[k] = v
	}
	return postForm(t, env, server.PathToken, &a, form)
}

func mustExchange(t *testing.T, env *servertest.Env, a auth, subject string, extra url.Values) string {
	t.Helper()
	r := exchange(t, env, a, subject, extra)
	if r.status != http.StatusOK {
		t.Fatalf("exchange: status %d: %s", r.status, r.body)
	}
	return r.json(t)["access_token"].(string)
}

func wantOAuthError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	m := r.json(t)
	if m["error"] != code {
		t.Fatalf("error = %v, want %q (body %s)", m["error"], code, r.body)
	}
	// RFC 6749 §5.2: error responses are JSON and not cached.
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
}

// RFC 7009 §2.1: the client revokes a token issued to it; afterwards the
// token is no longer usable (RFC 7009 §2.2: "the token has been revoked
// successfully" is answered with 200), with both client authentication
// methods.
func TestRFC7009RevokeOwnToken(t *testing.T) {
	env := servertest.Start(t)
	for _, post := range []bool{false, true} {
		t.Run(fmt.Sprintf("post=%v", post), func(t *testing.T) {
			raw, _ := issue(t, env, "u1", servertest.AppID, "s1", "files.read")
			if !active(t, env, raw) {
				t.Fatal("fresh token inactive")
			}
			a := asApp
			a.post = post
			r := postForm(t, env, server.PathRevoke, &a, url.Values{"token": {raw}})
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if active(t, env, raw) {
				t.Fatal("revoked token still active")
			}
			// Revoking again is harmless (idempotent).
			if r := postForm(t, env, server.PathRevoke, &a, url.Values{"token": {raw}}); r.status != http.StatusOK {
				t.Fatalf("second revoke: status %d", r.status)
			}
		})
	}
}

// RFC 7009 §2.2: "The authorization server responds with HTTP status code
// 200 if the token has been revoked successfully or if the client submitted
// an invalid token."
func TestRFC7009UnknownTokenIs200(t *testing.T) {
	env := servertest.Start(t)
	for _, tok := range []string{"no-such-token", "x", strings.Repeat("a", 2000)} {
		r := postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {tok}})
		if r.status != http.StatusOK {
			t.Errorf("token %.10q: status %d: %s", tok, r.status, r.body)
		}
	}
}

// RFC 7009 §2.1 with RFC 6749 §5.2: failed client authentication is 401
// invalid_client, with WWW-Authenticate when the client used the
// Authorization header.
func TestRFC7009InvalidClient(t *testing.T) {
	env := servertest.Start(t)
	raw, _ := issue(t, env, "u1", servertest.AppID, "")
	cases := map[string]*auth{
		"wrong secret basic":   {id: servertest.AppID, secret: "wrong"},
		"wrong secret post":    {id: servertest.AppID, secret: "wrong", post: true},
		"unknown client basic": {id: "nobody", secret: "x"},
		"unknown client post":  {id: "nobody", secret: "x", post: true},
		"no authentication":    nil,
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			r := postForm(t, env, server.PathRevoke, a, url.Values{"token": {raw}})
			wantOAuthError(t, r, http.StatusUnauthorized, server.ErrCodeInvalidClient)
			if a != nil && !a.post {
				if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic ") {
					t.Errorf("WWW-Authenticate = %q, want a Basic challenge", h)
				}
			}
		})
	}
	if !active(t, env, raw) {
		t.Fatal("token revoked by an unauthenticated request")
	}
}

// RFC 7009 §2.1: "The authorization server ... verifies whether the token
// was issued to the client making the revocation request. If this
// validation fails, the request is refused and the client is informed of
// the error." A privileged client may revoke any token.
func TestRFC7009OtherClientsTokenRefused(t *testing.T) {
	env := servertest.Start(t)
	raw, _ := issue(t, env, "u1", servertest.AppID, "")
	r := postForm(t, env, server.PathRevoke, &asOther, url.Values{"token": {raw}})
	wantOAuthError(t, r, http.StatusBadRequest, server.ErrCodeUnauthorizedClient)
	if !active(t, env, raw) {
		t.Fatal("token revoked by another client")
	}
	if r := postForm(t, env, server.PathRevoke, &asRevoker, url.Values{"token": {raw}}); r.status != http.StatusOK {
		t.Fatalf("privileged revoke: status %d: %s", r.status, r.body)
	}
	if active(t, env, raw) {
		t.Fatal("privileged revoke did not take")
	}
}

// RFC 7009 §2.1: token_type_hint is a hint the server may ignore; an
// unsupported value must not make revocation fail.
func TestRFC7009HintIgnored(t *testing.T) {
	env := servertest.Start(t)
	for _, hint := range []string{"access_token", "refresh_token", "urn:example:unknown"} {
		raw, _ := issue(t, env, "u1", servertest.AppID, "")
		r := postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {raw}, "token_type_hint": {hint}})
		if r.status != http.StatusOK {
			t.Fatalf("hint %q: status %d: %s", hint, r.status, r.body)
		}
		if active(t, env, raw) {
			t.Fatalf("hint %q: token still active", hint)
		}
	}
}

// RFC 7009 §2.1 / RFC 6749 §3.2: malformed requests are invalid_request.
func TestRFC7009MalformedRequests(t *testing.T) {
	env := servertest.Start(t)
	wantOAuthError(t, postForm(t, env, server.PathRevoke, &asApp, nil), http.StatusBadRequest, server.ErrCodeInvalidRequest)
	wantOAuthError(t, postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {"a", "b"}}), http.StatusBadRequest, server.ErrCodeInvalidRequest)

	// RFC 6749 §2.3: one authentication method per request.
	both := asApp
	req, _ := http.NewRequest(http.MethodPost, env.URL+server.PathRevoke, strings.NewReader(url.Values{
		"token": {"x"}, "client_id": {servertest.AppID}, "client_secret": {servertest.AppSecret},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(both.id, both.secret)
	wantOAuthError(t, do(t, env, req), http.StatusBadRequest, server.ErrCodeInvalidRequest)

	// The token travels in the body, never in the URL.
	req, _ = http.NewRequest(http.MethodPost, env.URL+server.PathRevoke+"?token=x", strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(asApp.id, asApp.secret)
	wantOAuthError(t, do(t, env, req), http.StatusBadRequest, server.ErrCodeInvalidRequest)

	// JSON instead of a form.
	req, _ = http.NewRequest(http.MethodPost, env.URL+server.PathRevoke, strings.NewReader(`{"token":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(asApp.id, asApp.secret)
	wantOAuthError(t, do(t, env, req), http.StatusBadRequest, server.ErrCodeInvalidRequest)

	// RFC 7009 §2.1: the endpoint is POST only.
	req, _ = http.NewRequest(http.MethodGet, env.URL+server.PathRevoke, nil)
	if r := do(t, env, req); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET: status %d", r.status)
	}
}

// RFC 7662 §2.2: an active token is described; "active" is REQUIRED and the
// other members describe the token.
func TestRFC7662Active(t *testing.T) {
	env := servertest.Start(t)
	raw, id := issue(t, env, "u1", servertest.AppID, "sess-1", "files.read", "files.write")
	for _, a := range []auth{asApp, asRevoker, {id: servertest.AppID, secret: servertest.AppSecret, post: true}} {
		m := introspect(t, env, a, raw)
		want := map[string]any{
			"active": true, "scope": "files.read files.write", "client_id": servertest.AppID,
			"sub": "u1", "token_type": "Bearer", "jti": id, "sid": "sess-1", "iss": env.URL,
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", a.id, k, m[k], v)
			}
		}
		exp, _ := m["exp"].(float64)
		iat, _ := m["iat"].(float64)
		if iat == 0 || exp-iat != server.DefaultTokenTTL.Seconds() {
			t.Errorf("iat %v exp %v", iat, exp)
		}
		if _, ok := m["parent_jti"]; ok {
			t.Errorf("root token has parent_jti")
		}
	}
	if id != schemas.Fingerprint(raw) {
		t.Errorf("token id %s is not the fingerprint", id)
	}
}

// RFC 7662 §2.2: for an inactive token the server "SHOULD NOT include any
// additional information about an inactive token, including why the token
// is inactive": the answer is exactly {"active":false}.
func TestRFC7662InactiveOnlyActiveFalse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &now
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Now = func() time.Time { return *clock }
	}))
	revoked, _ := issue(t, env, "u1", servertest.AppID, "")
	postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {revoked}})
	expiring, _ := env.Issue(t, server.IssueRequest{UserID: "u1", ClientID: servertest.AppID, TTLSeconds: 60})
	other, _ := issue(t, env, "u1", servertest.OtherID, "")
	*clock = now.Add(61 * time.Second)

	cases := map[string]struct {
		a   auth
		tok string
	}{
		"unknown":  {asApp, "never-issued"},
		"revoked":  {asApp, revoked},
		"expired":  {asApp, expiring},
		"expired2": {asRevoker, expiring},
		// RFC 7662 §4: a caller not entitled to see another client's token
		// learns nothing about it.
		"other client's": {asApp, other},
	}
	for name, c := range cases {
		r := postForm(t, env, server.PathIntrospect, &c.a, url.Values{"token": {c.tok}})
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d", name, r.status)
		}
		if got := strings.TrimSpace(string(r.body)); got != `{"active":false}` {
			t.Errorf("%s: body %s, want {\"active\":false}", name, got)
		}
	}
	if !active(t, env, other) {
		t.Error("privileged client cannot see another client's active token")
	}
}

// RFC 7662 §2.1: the endpoint requires authorization of the caller.
func TestRFC7662RequiresClientAuth(t *testing.T) {
	env := servertest.Start(t)
	raw, _ := issue(t, env, "u1", servertest.AppID, "")
	wantOAuthError(t, postForm(t, env, server.PathIntrospect, nil, url.Values{"token": {raw}}), http.StatusUnauthorized, server.ErrCodeInvalidClient)
	wantOAuthError(t, postForm(t, env, server.PathIntrospect, &auth{id: "app", secret: "nope"}, url.Values{"token": {raw}}), http.StatusUnauthorized, server.ErrCodeInvalidClient)
}

// RFC 8693 §2.1 and §2.2.1: a downscoped exchange returns access_token,
// issued_token_type, token_type and the narrower scope; the child inherits
// subject, session and client and expires no later than the parent.
func TestRFC8693Exchange(t *testing.T) {
	env := servertest.Start(t)
	parent, parentID := env.Issue(t, server.IssueRequest{
		UserID: "u1", ClientID: servertest.AppID, SessionID: "s1",
		Scopes: []string{"files.read", "files.write"}, TTLSeconds: 120,
	})
	r := exchange(t, env, asApp, parent, url.Values{"scope": {"files.read"}, "resource": {"https://files.example/api"}})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if m["issued_token_type"] != server.TokenTypeAccessToken {
		t.Errorf("issued_token_type = %v", m["issued_token_type"])
	}
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type = %v", m["token_type"])
	}
	if m["scope"] != "files.read" {
		t.Errorf("scope = %v", m["scope"])
	}
	if ei, _ := m["expires_in"].(float64); ei <= 0 || ei > 120 {
		t.Errorf("expires_in = %v, want within the parent's 120s", m["expires_in"])
	}
	child := m["access_token"].(string)
	if child == parent || len(child) != 43 {
		t.Fatalf("child token %d chars", len(child))
	}
	ci := introspect(t, env, asApp, child)
	pi := introspect(t, env, asApp, parent)
	for k, v := range map[string]any{
		"active": true, "sub": "u1", "sid": "s1", "client_id": servertest.AppID,
		"parent_jti": parentID, "aud": "https://files.example/api", "scope": "files.read",
	} {
		if ci[k] != v {
			t.Errorf("child %s = %v, want %v", k, ci[k], v)
		}
	}
	if ci["exp"].(float64) > pi["exp"].(float64) {
		t.Errorf("child exp %v after parent exp %v", ci["exp"], pi["exp"])
	}

	// Without scope the child carries the parent's scope.
	r = exchange(t, env, asApp, parent, nil)
	if m := r.json(t); m["scope"] != "files.read files.write" {
		t.Errorf("no scope requested: scope = %v", m["scope"])
	}

	// The child is bound to its resource: a grandchild may narrow but not
	// widen it (RFC 8693 §2.2.2 invalid_target).
	r = exchange(t, env, asApp, child, url.Values{"resource": {"https://other.example/"}})
	wantOAuthError(t, r, http.StatusBadRequest, server.ErrCodeInvalidTarget)
	grandchild := mustExchange(t, env, asApp, child, nil)
	if gi := introspect(t, env, asApp, grandchild); gi["aud"] != "https://files.example/api" || gi["parent_jti"] != schemas.Fingerprint(child) {
		t.Errorf("grandchild: %v", gi)
	}
}

// RFC 8693 §2.2.2 with RFC 6749 §5.2: a scope beyond the subject token's is
// invalid_scope; an invalid subject token or type is invalid_request.
func TestRFC8693Errors(t *testing.T) {
	env := servertest.Start(t)
	parent, _ := issue(t, env, "u1", servertest.AppID, "s1", "files.read")
	wantOAuthError(t, exchange(t, env, asApp, parent, url.Values{"scope": {"files.read files.write"}}),
		http.StatusBadRequest, server.ErrCodeInvalidScope)
	wantOAuthError(t, exchange(t, env, asApp, parent, url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}),
		http.StatusBadRequest, server.ErrCodeInvalidRequest)
	wantOAuthError(t, exchange(t, env, asApp, parent, url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}),
		http.StatusBadRequest, server.ErrCodeInvalidRequest)
	wantOAuthError(t, exchange(t, env, asApp, parent, url.Values{"actor_token": {"x"}, "actor_token_type": {server.TokenTypeAccessToken}}),
		http.StatusBadRequest, server.ErrCodeInvalidRequest)
	wantOAuthError(t, exchange(t, env, asApp, parent, url.Values{"resource": {"not-absolute"}}),
		http.StatusBadRequest, server.ErrCodeInvalidTarget)
	wantOAuthError(t, exchange(t, env, asApp, "unknown-token", nil), http.StatusBadRequest, server.ErrCodeInvalidRequest)
	// A token of another client cannot be exchanged by this one.
	wantOAuthError(t, exchange(t, env, asOther, parent, nil), http.StatusBadRequest, server.ErrCodeInvalidRequest)
	// The revoker client has no token-exchange grant.
	wantOAuthError(t, exchange(t, env, asRevoker, parent, nil), http.StatusBadRequest, server.ErrCodeUnauthorizedClient)
	// A revoked token cannot be exchanged.
	postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {parent}})
	wantOAuthError(t, exchange(t, env, asApp, parent, nil), http.StatusBadRequest, server.ErrCodeInvalidRequest)
}

// RFC 6749 §4.4: client credentials, scope limited to the client's.
func TestClientCredentials(t *testing.T) {
	env := servertest.Start(t)
	r := postForm(t, env, server.PathToken, &asApp, url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if m["token_type"] != "Bearer" || m["scope"] != "files.read" || m["expires_in"].(float64) != server.DefaultTokenTTL.Seconds() {
		t.Errorf("response %v", m)
	}
	if _, ok := m["issued_token_type"]; ok {
		t.Error("issued_token_type outside token exchange")
	}
	if i := introspect(t, env, asApp, m["access_token"].(string)); i["sub"] != servertest.AppID || i["active"] != true {
		t.Errorf("introspection %v", i)
	}
	wantOAuthError(t, postForm(t, env, server.PathToken, &asApp, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}),
		http.StatusBadRequest, server.ErrCodeInvalidScope)
	wantOAuthError(t, postForm(t, env, server.PathToken, &asApp, url.Values{"grant_type": {"password"}}),
		http.StatusBadRequest, server.ErrCodeUnsupportedGrantType)
	wantOAuthError(t, postForm(t, env, server.PathToken, &asApp, url.Values{}),
		http.StatusBadRequest, server.ErrCodeInvalidRequest)
}

// RFC 8414 §3: the metadata is served at the well-known URI, its issuer is
// identical to the issuer the client used (§3.3), and it names the
// endpoints and methods.
func TestRFC8414Metadata(t *testing.T) {
	env := servertest.Start(t)
	req, _ := http.NewRequest(http.MethodGet, env.URL+server.PathMetadata, nil)
	r := do(t, env, req)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	var md struct {
		Issuer                   string   `json:"issuer"`
		TokenEndpoint            string   `json:"token_endpoint"`
		RevocationEndpoint       string   `json:"revocation_endpoint"`
		IntrospectionEndpoint    string   `json:"introspection_endpoint"`
		GrantTypes               []string `json:"grant_types_supported"`
		ResponseTypes            []string `json:"response_types_supported"`
		TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
		RevocationAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
		IntrospectionAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	}
	if err := json.Unmarshal(r.body, &md); err != nil {
		t.Fatal(err)
	}
	if md.Issuer != env.URL {
		t.Errorf("issuer %q, want %q", md.Issuer, env.URL)
	}
	if md.TokenEndpoint != env.URL+server.PathToken || md.RevocationEndpoint != env.URL+server.PathRevoke ||
		md.IntrospectionEndpoint != env.URL+server.PathIntrospect {
		t.Errorf("endpoints %+v", md)
	}
	if !slices.Contains(md.GrantTypes, server.GrantTokenExchange) || !slices.Contains(md.GrantTypes, server.GrantClientCredentials) {
		t.Errorf("grant_types_supported %v", md.GrantTypes)
	}
	if md.ResponseTypes == nil {
		t.Error("response_types_supported missing (RFC 8414 §2 REQUIRED)")
	}
	for _, ms := range [][]string{md.TokenAuthMethods, md.RevocationAuthMethods, md.IntrospectionAuthMethods} {
		if !slices.Contains(ms, "client_secret_basic") || !slices.Contains(ms, "client_secret_post") {
			t.Errorf("auth methods %v", ms)
		}
	}
	// The advertised endpoints answer.
	if r := postForm(t, env, strings.TrimPrefix(md.RevocationEndpoint, env.URL), &asApp, url.Values{"token": {"x"}}); r.status != http.StatusOK {
		t.Errorf("revocation_endpoint: status %d", r.status)
	}
}

// RFC 8414 §3.1: with a path in the issuer, the well-known segment is
// inserted between host and path, and the endpoints live under the path.
func TestRFC8414IssuerWithPath(t *testing.T) {
	var issuer string
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Issuer += "/tenant/a"
		issuer = c.Issuer
	}))
	req, _ := http.NewRequest(http.MethodGet, env.URL+server.PathMetadata+"/tenant/a", nil)
	r := do(t, env, req)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	m := r.json(t)
	if m["issuer"] != issuer || m["revocation_endpoint"] != issuer+server.PathRevoke {
		t.Errorf("metadata %v", m)
	}
	if r := postForm(t, env, "/tenant/a"+server.PathRevoke, &asApp, url.Values{"token": {"x"}}); r.status != http.StatusOK {
		t.Errorf("revoke under issuer path: status %d", r.status)
	}
}

// Revocation cascades over generations: revoking the root revokes every
// descendant; revoking a middle token revokes its descendants and leaves
// its parent and siblings active.
func TestCascadeThreeGenerations(t *testing.T) {
	env := servertest.Start(t)
	build := func() (root, child, sibling, grandchild, great string) {
		root, _ = issue(t, env, "u1", servertest.AppID, "s1", "files.read", "files.write", "profile")
		child = mustExchange(t, env, asApp, root, url.Values{"scope": {"files.read files.write"}})
		sibling = mustExchange(t, env, asApp, root, url.Values{"scope": {"profile"}})
		grandchild = mustExchange(t, env, asApp, child, url.Values{"scope": {"files.read"}})
		great = mustExchange(t, env, asApp, grandchild, nil)
		return
	}

	t.Run("revoke root", func(t *testing.T) {
		root, child, sibling, grandchild, great := build()
		if r := postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {root}}); r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		for name, tok := range map[string]string{"root": root, "child": child, "sibling": sibling, "grandchild": grandchild, "great": great} {
			if active(t, env, tok) {
				t.Errorf("%s still active", name)
			}
		}
	})
	t.Run("revoke middle", func(t *testing.T) {
		root, child, sibling, grandchild, great := build()
		if r := postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {child}}); r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		for name, tok := range map[string]string{"child": child, "grandchild": grandchild, "great": great} {
			if active(t, env, tok) {
				t.Errorf("%s still active", name)
			}
		}
		for name, tok := range map[string]string{"root": root, "sibling": sibling} {
			if !active(t, env, tok) {
				t.Errorf("%s revoked with its child", name)
			}
		}
	})
	t.Run("admin revoke by id", func(t *testing.T) {
		root, child, _, grandchild, great := build()
		var out server.RevokeResponse
		env.Admin(t, http.MethodPost, "/admin/tokens/"+schemas.Fingerprint(child)+"/revoke", nil, &out)
		if out.Revoked != 3 {
			t.Errorf("revoked %d, want 3", out.Revoked)
		}
		if active(t, env, grandchild) || active(t, env, great) || !active(t, env, root) {
			t.Error("wrong tokens revoked")
		}
		env.Admin(t, http.MethodPost, "/admin/tokens/"+schemas.Fingerprint(child)+"/revoke", nil, &out)
		if out.Revoked != 0 {
			t.Errorf("second revoke counted %d", out.Revoked)
		}
	})
}

// Subject-wide revocation revokes every token of the user, downscoped ones
// included, and nothing of other users.
func TestAdminSubjectRevoke(t *testing.T) {
	env := servertest.Start(t)
	a, _ := issue(t, env, "alice", servertest.AppID, "s1", "files.read")
	b, _ := issue(t, env, "alice", servertest.OtherID, "s2", "profile")
	ac := mustExchange(t, env, asApp, a, nil)
	acc := mustExchange(t, env, asApp, ac, nil)
	bob, _ := issue(t, env, "bob", servertest.AppID, "s3")

	var list []server.TokenInfo
	env.Admin(t, http.MethodGet, "/admin/subjects/alice/tokens", nil, &list)
	if len(list) != 4 {
		t.Fatalf("alice has %d tokens, want 4: %+v", len(list), list)
	}
	raw := adminReq(t, env, http.MethodGet, "/admin/subjects/alice/tokens", servertest.AdminToken, nil)
	for _, tok := range []string{a, b, ac, acc} {
		if bytes.Contains(raw.body, []byte(tok)) {
			t.Fatal("token list contains a raw token")
		}
	}
	parents := 0
	for _, ti := range list {
		if ti.ParentTokenID != "" {
			parents++
		}
		if !strings.HasPrefix(ti.TokenID, schemas.FingerprintPrefix) || ti.ExpiresAt.IsZero() {
			t.Errorf("token info %+v", ti)
		}
	}
	if parents != 2 {
		t.Errorf("%d downscoped tokens listed, want 2", parents)
	}

	var out server.RevokeResponse
	env.Admin(t, http.MethodPost, "/admin/subjects/alice/revoke", nil, &out)
	if out.Revoked != 4 {
		t.Errorf("revoked %d, want 4", out.Revoked)
	}
	for _, tok := range []string{a, b, ac, acc} {
		if active(t, env, tok) {
			t.Error("alice's token still active")
		}
	}
	if !active(t, env, bob) {
		t.Error("bob's token revoked")
	}
	env.Admin(t, http.MethodGet, "/admin/subjects/alice/tokens", nil, &list)
	if len(list) != 0 {
		t.Errorf("alice still lists %d tokens", len(list))
	}
	env.Admin(t, http.MethodPost, "/admin/subjects/alice/revoke", nil, &out)
	if out.Revoked != 0 {
		t.Errorf("second subject revoke counted %d", out.Revoked)
	}
}

func TestAdminSessionAndClientRevoke(t *testing.T) {
	env := servertest.Start(t)
	s1, _ := issue(t, env, "alice", servertest.AppID, "s1")
	s1c := mustExchange(t, env, asApp, s1, nil)
	s2, _ := issue(t, env, "alice", servertest.AppID, "s2")
	o, _ := issue(t, env, "bob", servertest.OtherID, "s9")

	var out server.RevokeResponse
	env.Admin(t, http.MethodPost, "/admin/sessions/s1/revoke", nil, &out)
	if out.Revoked != 2 || active(t, env, s1) || active(t, env, s1c) || !active(t, env, s2) {
		t.Errorf("session revoke: %d", out.Revoked)
	}
	env.Admin(t, http.MethodPost, "/admin/clients/"+servertest.AppID+"/revoke", nil, &out)
	if out.Revoked != 1 || active(t, env, s2) || !active(t, env, o) {
		t.Errorf("client revoke: %d", out.Revoked)
	}
	// Escaped path values reach the handler whole.
	odd, _ := issue(t, env, "dept/alice@example.com", servertest.AppID, "")
	env.Admin(t, http.MethodPost, "/admin/subjects/"+url.PathEscape("dept/alice@example.com")+"/revoke", nil, &out)
	if out.Revoked != 1 || active(t, env, odd) {
		t.Errorf("escaped subject revoke: %d", out.Revoked)
	}
}

// The admin API requires the admin bearer token (RFC 6750 §3 challenge).
func TestAdminAuthRequired(t *testing.T) {
	env := servertest.Start(t)
	raw, id := issue(t, env, "alice", servertest.AppID, "")
	routes := []struct{ method, path string }{
		{http.MethodPost, "/admin/tokens"},
		{http.MethodPost, "/admin/subjects/alice/revoke"},
		{http.MethodGet, "/admin/subjects/alice/tokens"},
		{http.MethodPost, "/admin/tokens/" + id + "/revoke"},
		{http.MethodPost, "/admin/sessions/s/revoke"},
		{http.MethodPost, "/admin/clients/app/revoke"},
	}
	for _, rt := range routes {
		for _, bearer := range []string{"", "wrong-token-wrong-token", servertest.AppSecret} {
			r := adminReq(t, env, rt.method, rt.path, bearer, nil)
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: status %d", rt.method, rt.path, bearer, r.status)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("%s %s: WWW-Authenticate %q", rt.method, rt.path, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	// Client credentials are no admin credentials.
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/admin/subjects/alice/revoke", nil)
	req.SetBasicAuth(servertest.RevokerID, servertest.RevokerSecret)
	if r := do(t, env, req); r.status != http.StatusUnauthorized {
		t.Errorf("basic auth on admin: status %d", r.status)
	}
	if !active(t, env, raw) {
		t.Fatal("unauthenticated admin call revoked a token")
	}

	// Without an admin token the admin API does not exist.
	off := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.AdminToken = config.Secret{} }))
	if r := adminReq(t, off, http.MethodPost, "/admin/subjects/alice/revoke", "", nil); r.status != http.StatusNotFound {
		t.Errorf("disabled admin API: status %d", r.status)
	}
}

func TestAdminIssueValidation(t *testing.T) {
	env := servertest.Start(t)
	bad := []any{
		map[string]any{"client_id": "app"},
		map[string]any{"user_id": "u"},
		map[string]any{"user_id": "u", "client_id": "app", "ttl_seconds": -1},
		map[string]any{"user_id": "u", "client_id": "app", "ttl_seconds": 10 * 24 * 3600},
		map[string]any{"user_id": "u", "client_id": "app", "scopes": []string{"bad scope"}},
		map[string]any{"user_id": "u", "client_id": "app", "unknown": 1},
	}
	for _, b := range bad {
		if r := adminReq(t, env, http.MethodPost, "/admin/tokens", servertest.AdminToken, b); r.status != http.StatusBadRequest {
			t.Errorf("%v: status %d", b, r.status)
		}
	}
	// A raw token passed where an id belongs is refused and not echoed.
	raw, _ := issue(t, env, "u", servertest.AppID, "")
	r := adminReq(t, env, http.MethodPost, "/admin/tokens/"+raw+"/revoke", servertest.AdminToken, nil)
	if r.status != http.StatusBadRequest || bytes.Contains(r.body, []byte(raw)) {
		t.Errorf("raw token as id: status %d body %s", r.status, r.body)
	}
	if !active(t, env, raw) {
		t.Error("token revoked")
	}
}

func TestHealth(t *testing.T) {
	env := servertest.Start(t)
	for _, p := range []string{server.PathLivez, server.PathReadyz} {
		req, _ := http.NewRequest(http.MethodGet, env.URL+p, nil)
		if r := do(t, env, req); r.status != http.StatusOK {
			t.Errorf("%s: %d", p, r.status)
		}
	}
}

func TestStats(t *testing.T) {
	env := servertest.Start(t)
	root, _ := issue(t, env, "u", servertest.AppID, "")
	mustExchange(t, env, asApp, root, nil)
	postForm(t, env, server.PathRevoke, &asApp, url.Values{"token": {root}})
	st := env.Server.Stats()
	if st.Issued != 2 || st.Exchanged != 1 || st.Revoked != 2 || st.Stored != 2 {
		t.Errorf("stats %+v", st)
	}
}
