package idp_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/internal/config"
)

// loadExample loads examples/<name>.yaml the way the consumer loads its
// configuration file (under "idp", secrets from the environment), with
// the strings of replace substituted first.
func loadExample(t *testing.T, name string, replace map[string]string, env map[string]string) idp.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("examples", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for from, to := range replace {
		s = strings.ReplaceAll(s, from, to)
	}
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	var wrapped struct {
		IdP idp.Config `flag:"idp" env:"REVOKED_IDP" yaml:"idp"`
	}
	err = config.Load(flag.NewFlagSet(name, flag.ContinueOnError), nil, &wrapped, config.WithFile(path),
		config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	return wrapped.IdP
}

// fake is a scripted identity provider: route answers a request it
// recognises; anything else is a test failure and a 404.
type fake struct {
	t     *testing.T
	mu    sync.Mutex
	calls []string
	route func(w http.ResponseWriter, r *http.Request, form url.Values) bool
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var form url.Values
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		form, _ = url.ParseQuery(string(body))
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	if !f.route(w, r, form) {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.RequestURI())
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fake) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func startFake(t *testing.T, route func(w http.ResponseWriter, r *http.Request, form url.Values) bool) (*fake, *httptest.Server) {
	f := &fake{t: t, route: route}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// wantForm fails unless form holds exactly want (keys absent from want
// must be absent from form; "*" accepts any non-empty value, "?" any value
// or none).
func wantForm(t *testing.T, what string, form url.Values, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := form.Get(k); v != "?" && ((v == "*" && got == "") || (v != "*" && got != v)) {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	for k := range form {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected form parameter %s", what, k)
		}
	}
}

func TestKeycloakExample(t *testing.T) {
	const secret = "kc-secret"
	var (
		mu      sync.Mutex
		issued  int
		valid   string
		revoked []string
	)
	var base string
	_, ts := startFake(t, func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
		issuer := base + "/realms/revoked"
		p := r.URL.Path
		basicOK := func() bool {
			u, pw, ok := r.BasicAuth()
			return ok && u == "revoked-consumer" && pw == secret
		}
		switch {
		case r.Method == http.MethodGet && p == "/.well-known/oauth-authorization-server/realms/revoked":
			writeJSON(w, 404, map[string]string{"error": "RESTEASY003210: Could not find resource for full path"})
		case r.Method == http.MethodGet && p == "/realms/revoked/.well-known/openid-configuration":
			writeJSON(w, 200, map[string]any{
				"issuer":                 issuer,
				"token_endpoint":         issuer + "/protocol/openid-connect/token",
				"revocation_endpoint":    issuer + "/protocol/openid-connect/revoke",
				"introspection_endpoint": issuer + "/protocol/openid-connect/token/introspect",
				"revocation_endpoint_auth_methods_supported": []string{"private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"},
			})
		case r.Method == http.MethodPost && p == "/realms/revoked/protocol/openid-connect/token":
			wantForm(t, "token request", form, map[string]string{"grant_type": "client_credentials", "client_id": "revoked-consumer", "client_secret": secret})
			mu.Lock()
			issued++
			valid = fmt.Sprintf("kc-admin-token-%d", issued)
			tok := valid
			mu.Unlock()
			writeJSON(w, 200, map[string]any{"access_token": tok, "expires_in": 300, "refresh_expires_in": 0, "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"})
		case r.Method == http.MethodPost && p == "/realms/revoked/protocol/openid-connect/revoke":
			if !basicOK() {
				writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"})
				break
			}
			wantForm(t, "revoke", form, map[string]string{"token": "*", "token_type_hint": "?"})
			mu.Lock()
			revoked = append(revoked, form.Get("token"))
			mu.Unlock()
			w.WriteHeader(200)
		case r.Method == http.MethodPost && p == "/realms/revoked/protocol/openid-connect/token/introspect":
			if !basicOK() {
				writeJSON(w, 401, map[string]string{"error": "invalid_client"})
				break
			}
			writeJSON(w, 200, map[string]any{"active": false})
		case strings.HasPrefix(p, "/admin/realms/revoked/"):
			mu.Lock()
			ok := valid != "" && r.Header.Get("Authorization") == "Bearer "+valid
			mu.Unlock()
			if !ok {
				writeJSON(w, 401, map[string]string{"error": "HTTP 401 Unauthorized"})
				break
			}
			rest := strings.TrimPrefix(p, "/admin/realms/revoked/")
			switch {
			case r.Method == http.MethodPost && strings.HasPrefix(rest, "users/") && strings.HasSuffix(rest, "/logout"):
				if r.ContentLength > 0 {
					t.Errorf("logout with a body")
				}
				if strings.TrimSuffix(strings.TrimPrefix(rest, "users/"), "/logout") != "0b4c6f2e-8a7d-4f3e-9c1b-2d5e6f7a8b9c" {
					writeJSON(w, 404, map[string]string{"error": "User not found"})
					break
				}
				w.WriteHeader(204)
			case r.Method == http.MethodDelete && rest == "sessions/7f3e2d1c-session":
				w.WriteHeader(204)
			default:
				return false
			}
		default:
			return false
		}
		return true
	})
	base = ts.URL
	env := map[string]string{"REVOKED_IDP_CLIENT_SECRET": secret}

	// The example is the preset.
	want := idp.KeycloakPreset("https://keycloak.example.com", "revoked")
	want.ClientID, want.ClientSecret = "revoked-consumer", config.NewSecret(secret)
	if got := loadExample(t, "keycloak", nil, env); !reflect.DeepEqual(got, want) {
		t.Errorf("example differs from KeycloakPreset:\n got %+v\nwant %+v", got, want)
	}

	cfg := loadExample(t, "keycloak", map[string]string{"https://keycloak.example.com": ts.URL}, env)
	c, err := idp.New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(t.Context(), "kc-refresh-token", "refresh_token"); err != nil {
		t.Fatal(err)
	}
	if in, err := c.Introspect(t.Context(), "kc-refresh-token"); err != nil || in.Active {
		t.Fatalf("introspect: %+v %v", in, err)
	}
	res, err := c.RevokeSubject(t.Context(), "0b4c6f2e-8a7d-4f3e-9c1b-2d5e6f7a8b9c")
	if err != nil || res.Status != 204 || res.CountKnown {
		t.Fatalf("subject: %+v %v", res, err)
	}
	if _, err := c.RevokeSession(t.Context(), "7f3e2d1c-session"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if issued != 1 {
		t.Errorf("%d admin tokens fetched, want 1 (cached)", issued)
	}
	// The server drops the admin token: the client gets a new one and
	// repeats the call once.
	valid = "rotated"
	mu.Unlock()
	if _, err := c.RevokeSession(t.Context(), "7f3e2d1c-session"); err != nil {
		t.Fatalf("after token rotation: %v", err)
	}
	mu.Lock()
	if issued != 2 || len(revoked) != 1 || revoked[0] != "kc-refresh-token" {
		t.Errorf("issued %d, revoked %v", issued, revoked)
	}
	mu.Unlock()
	checkContract(t, c, contractIDs{user: "0b4c6f2e-8a7d-4f3e-9c1b-2d5e6f7a8b9c", session: "7f3e2d1c-session"})
	// An unknown user is a terminal 404.
	_, err = c.RevokeSubject(t.Context(), "no-such-user")
	if !errors.Is(err, idp.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if retry, _ := idp.Retryable(err); retry {
		t.Error("404 retryable")
	}
	if _, err := c.RevokeClient(t.Context(), "x"); !errors.Is(err, idp.ErrNotConfigured) {
		t.Errorf("client revocation: %v, want ErrNotConfigured", err)
	}
}

func TestOktaExample(t *testing.T) {
	key := testKeys()["rsa"]
	keyFile := writeKey(t, key, true)
	const apiToken = "00okta-api-token"
	var base string
	var rateLimited atomic.Bool
	_, ts := startFake(t, func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
		issuer := base + "/oauth2/default"
		p := r.URL.Path
		switch {
		case r.Method == http.MethodGet && p == "/.well-known/oauth-authorization-server/oauth2/default":
			writeJSON(w, 404, map[string]any{"errorCode": "E0000022", "errorSummary": "The endpoint does not support the provided HTTP method"})
		case r.Method == http.MethodGet && p == "/oauth2/default/.well-known/openid-configuration":
			writeJSON(w, 200, map[string]any{
				"issuer":                 issuer,
				"token_endpoint":         issuer + "/v1/token",
				"revocation_endpoint":    issuer + "/v1/revoke",
				"introspection_endpoint": issuer + "/v1/introspect",
				"revocation_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"},
			})
		case r.Method == http.MethodPost && (p == "/oauth2/default/v1/revoke" || p == "/oauth2/default/v1/introspect"):
			wantForm(t, p, form, map[string]string{"token": "*", "client_id": "0oa1revokedconsumer",
				"client_assertion_type": idp.ClientAssertionType, "client_assertion": "*"})
			a := verifyAssertion(t, form.Get("client_assertion"), key.Public())
			if a.Claims.Aud != base+p || a.Claims.Iss != "0oa1revokedconsumer" || a.Claims.Sub != "0oa1revokedconsumer" || a.Header["kid"] != "revoked-2026" {
				writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "The audience claim for client_assertion must be the endpoint invoked for the request."})
				break
			}
			if strings.HasSuffix(p, "/introspect") {
				writeJSON(w, 200, map[string]any{"active": false})
			} else {
				w.WriteHeader(200)
			}
		case strings.HasPrefix(p, "/api/v1/"):
			if r.Header.Get("Authorization") != "SSWS "+apiToken || r.Header.Get("Accept") != "application/json" {
				writeJSON(w, 401, map[string]any{"errorCode": "E0000011", "errorSummary": "Invalid token provided"})
				break
			}
			if rateLimited.Load() {
				w.Header().Set("X-Rate-Limit-Limit", "600")
				w.Header().Set("X-Rate-Limit-Remaining", "0")
				w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Add(20*time.Second).Unix(), 10))
				writeJSON(w, 429, map[string]any{"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."})
				break
			}
			switch {
			case r.Method == http.MethodDelete && p == "/api/v1/users/00u1abcd2EFGH3ijk4l5/sessions":
				if q := r.URL.Query(); q.Get("oauthTokens") != "true" || len(q) != 1 {
					t.Errorf("sessions query %v", q)
				}
				w.WriteHeader(204)
			case r.Method == http.MethodDelete && p == "/api/v1/sessions/102GALFEqI5TpCOOnBRTe2AaQ":
				w.WriteHeader(204)
			case r.Method == http.MethodDelete && strings.HasPrefix(p, "/api/v1/sessions/"):
				writeJSON(w, 404, map[string]any{"errorCode": "E0000007", "errorSummary": "Not found: Resource not found: gone (Session)"})
			default:
				return false
			}
		default:
			return false
		}
		return true
	})
	base = ts.URL
	env := map[string]string{"REVOKED_IDP_ADMIN_AUTH_TOKEN": apiToken}

	want := idp.OktaPreset("https://example.okta.com", "default")
	want.ClientID, want.PrivateKeyFile, want.KeyID = "0oa1revokedconsumer", "/etc/revoked/okta-client-key.pem", "revoked-2026"
	want.RateLimit = idp.RateLimitConfig{PerSecond: 10, Burst: 20}
	want.Admin.Auth.Token = config.NewSecret(apiToken)
	if got := loadExample(t, "okta", nil, env); !reflect.DeepEqual(got, want) {
		t.Errorf("example differs from OktaPreset:\n got %+v\nwant %+v", got, want)
	}

	cfg := loadExample(t, "okta", map[string]string{"https://example.okta.com": ts.URL, "/etc/revoked/okta-client-key.pem": keyFile}, env)
	c, err := idp.New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(t.Context(), "okta-access-token", ""); err != nil {
		t.Fatal(err)
	}
	if in, err := c.Introspect(t.Context(), "okta-access-token"); err != nil || in.Active {
		t.Fatalf("introspect: %+v %v", in, err)
	}
	if res, err := c.RevokeSubject(t.Context(), "00u1abcd2EFGH3ijk4l5"); err != nil || res.Status != 204 {
		t.Fatalf("subject: %+v %v", res, err)
	}
	if _, err := c.RevokeSession(t.Context(), "102GALFEqI5TpCOOnBRTe2AaQ"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeSession(t.Context(), "gone"); !errors.Is(err, idp.ErrNotFound) {
		t.Errorf("unknown session: %v", err)
	}
	checkContract(t, c, contractIDs{user: "00u1abcd2EFGH3ijk4l5", session: "102GALFEqI5TpCOOnBRTe2AaQ"})
	// Okta's 429 names the reset time instead of Retry-After.
	rateLimited.Store(true)
	_, err = c.RevokeSubject(t.Context(), "00u1abcd2EFGH3ijk4l5")
	if retry, after := idp.Retryable(err); !errors.Is(err, idp.ErrRateLimited) || !retry || after < 15*time.Second || after > 21*time.Second {
		t.Errorf("429: %v, retry %v after %s", err, retry, after)
	}
}

func TestHydraExample(t *testing.T) {
	key := testKeys()["p256"]
	keyFile := writeKey(t, key, false)
	var pubURL string
	_, pub := startFake(t, func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/.well-known/oauth-authorization-server":
			writeJSON(w, 404, map[string]any{"error": "Not Found", "error_description": "The requested resource could not be found"})
		case r.Method == http.MethodGet && r.URL.Path == "/.well-known/openid-configuration":
			writeJSON(w, 200, map[string]any{
				"issuer":                                pubURL + "/",
				"token_endpoint":                        pubURL + "/oauth2/token",
				"revocation_endpoint":                   pubURL + "/oauth2/revoke",
				"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic", "private_key_jwt", "none"},
			})
		case r.Method == http.MethodPost && r.URL.Path == "/oauth2/revoke":
			wantForm(t, "revoke", form, map[string]string{"token": "*", "client_id": "revoked-consumer",
				"client_assertion_type": idp.ClientAssertionType, "client_assertion": "*"})
			if a := verifyAssertion(t, form.Get("client_assertion"), key.Public()); a.Claims.Aud != pubURL+"/oauth2/token" {
				writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "Claim 'audience' from 'client_assertion' must match the authorization server's token endpoint"})
				break
			}
			w.WriteHeader(200)
		default:
			return false
		}
		return true
	})
	pubURL = pub.URL
	var consentFails atomic.Bool
	admin, adm := startFake(t, func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
		if r.Header.Get("Authorization") != "" && r.URL.Path != "/admin/oauth2/introspect" {
			t.Errorf("admin call with credentials")
		}
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/admin/oauth2/introspect":
			if form.Get("token") == "" {
				writeJSON(w, 400, map[string]string{"error": "invalid_request"})
				break
			}
			writeJSON(w, 200, map[string]any{"active": false})
		case r.Method == http.MethodDelete && r.URL.Path == "/admin/oauth2/auth/sessions/consent":
			if q.Get("subject") != "user:alice@example.com" || len(q) != 2 || (q.Get("all") != "true" && q.Get("client") != "app") {
				t.Errorf("consent query %v", q)
			}
			if consentFails.Load() {
				writeJSON(w, 500, map[string]string{"error": "error", "error_description": "The database is unavailable"})
				break
			}
			w.WriteHeader(204)
		case r.Method == http.MethodDelete && r.URL.Path == "/admin/oauth2/auth/sessions/login":
			if len(q) != 1 || (q.Get("subject") != "user:alice@example.com" && q.Get("sid") != "a5f2c1e0-login-session") {
				t.Errorf("login sessions query %v", q)
			}
			w.WriteHeader(204)
		case r.Method == http.MethodDelete && r.URL.Path == "/admin/oauth2/tokens":
			if len(q) != 1 || q.Get("client_id") != "cl" {
				t.Errorf("client tokens query %v", q)
			}
			w.WriteHeader(204)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/admin/clients/"):
			if r.URL.Path != "/admin/clients/batch" {
				writeJSON(w, 404, map[string]string{"error": "Unable to locate the resource"})
				break
			}
			writeJSON(w, 200, map[string]string{"client_id": "batch"})
		default:
			return false
		}
		return true
	})

	want := idp.HydraPreset("https://hydra.example.com/", "https://hydra-admin.example.internal")
	want.ClientID, want.PrivateKeyFile, want.KeyID = "revoked-consumer", "/etc/revoked/hydra-client-key.pem", "revoked-2026"
	if got := loadExample(t, "hydra", nil, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("example differs from HydraPreset:\n got %+v\nwant %+v", got, want)
	}

	cfg := loadExample(t, "hydra", map[string]string{
		"https://hydra.example.com":            pub.URL,
		"https://hydra-admin.example.internal": adm.URL,
		"/etc/revoked/hydra-client-key.pem":    keyFile,
	}, nil)
	c, err := idp.New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(t.Context(), "ory_at_abc", ""); err != nil {
		t.Fatal(err)
	}
	if in, err := c.Introspect(t.Context(), "ory_at_abc"); err != nil || in.Active {
		t.Fatalf("introspect: %+v %v", in, err)
	}
	if res, err := c.RevokeSubject(t.Context(), "user:alice@example.com"); err != nil || res.Status != 204 {
		t.Fatalf("subject: %+v %v", res, err)
	}
	if _, err := c.RevokeSession(t.Context(), "a5f2c1e0-login-session"); err != nil {
		t.Fatal(err)
	}
	if !c.LoginOnly("session") || c.LoginOnly("user") {
		t.Error("the session call is Hydra's only login-only call")
	}
	if res, err := c.RevokeClient(t.Context(), "cl"); err != nil || res.Status != 204 {
		t.Fatalf("client: %+v %v", res, err)
	}
	if res, err := c.RevokeSubjectClient(t.Context(), "user:alice@example.com", "app"); err != nil || res.Status != 204 {
		t.Fatalf("subject and client: %+v %v", res, err)
	}
	// In the order of the admin log below (a map would make it random).
	for _, lc := range []struct {
		id   string
		want bool
	}{{"batch", true}, {"user:alice@example.com", false}} {
		if _, got, err := c.LookupClient(t.Context(), lc.id); err != nil || got != lc.want {
			t.Errorf("LookupClient(%q) = %v, %v", lc.id, got, err)
		}
	}
	if !c.AccessOnly() {
		t.Error("Hydra's client call leaves refresh tokens: it is access-only")
	}
	wantLog := []string{
		"POST /admin/oauth2/introspect",
		"DELETE /admin/oauth2/auth/sessions/consent?subject=user%3Aalice%40example.com&all=true",
		"DELETE /admin/oauth2/auth/sessions/login?subject=user%3Aalice%40example.com",
		"DELETE /admin/oauth2/auth/sessions/login?sid=a5f2c1e0-login-session",
		"DELETE /admin/oauth2/tokens?client_id=cl",
		"DELETE /admin/oauth2/auth/sessions/consent?subject=user%3Aalice%40example.com&client=app",
		"GET /admin/clients/batch",
		"GET /admin/clients/user:alice@example.com",
	}
	if got := admin.log(); !reflect.DeepEqual(got, wantLog) {
		t.Errorf("admin calls\n got %q\nwant %q", got, wantLog)
	}
	checkContract(t, c, contractIDs{user: "user:alice@example.com", session: "a5f2c1e0-login-session", configured: []string{"client"}})
	// When revoking the consents fails, the login sessions are left for
	// the retry and the failure is transient.
	calls := len(admin.log())
	consentFails.Store(true)
	_, err = c.RevokeSubject(t.Context(), "user:alice@example.com")
	if retry, _ := idp.Retryable(err); !errors.Is(err, idp.ErrServerError) || !retry {
		t.Errorf("consent failure: %v", err)
	}
	if got := admin.log(); len(got) != calls+1 {
		t.Errorf("login sessions revoked after a failed consent revocation: %q", got)
	}
}

func TestBoxExample(t *testing.T) {
	const secret = "box-client-secret"
	var (
		mu      sync.Mutex
		revoked []string
	)
	var limited atomic.Bool
	_, ts := startFake(t, func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/oauth2/token":
			wantForm(t, "token", form, map[string]string{"grant_type": "client_credentials", "client_id": "box-revoked-consumer",
				"client_secret": secret, "box_subject_type": "enterprise", "box_subject_id": "12345678"})
			writeJSON(w, 200, map[string]any{"access_token": "box-service-account-token", "expires_in": 3600, "restricted_to": []any{}, "token_type": "bearer"})
		case r.Method == http.MethodPost && r.URL.Path == "/oauth2/revoke":
			if r.Header.Get("Authorization") != "" {
				t.Error("revoke with an Authorization header")
			}
			if form.Get("client_secret") != secret {
				writeJSON(w, 400, map[string]string{"error": "invalid_client", "error_description": "The client credentials are not valid"})
				break
			}
			wantForm(t, "revoke", form, map[string]string{"client_id": "box-revoked-consumer", "client_secret": secret, "token": "*"})
			mu.Lock()
			revoked = append(revoked, form.Get("token"))
			mu.Unlock()
			w.WriteHeader(200)
		case r.Method == http.MethodPost && r.URL.Path == "/2.0/users/terminate_sessions":
			if limited.Load() {
				w.Header().Set("Retry-After", "3")
				writeJSON(w, 429, map[string]any{"type": "error", "status": 429, "code": "rate_limit_exceeded", "message": "Request rate limit exceeded, please try again later"})
				break
			}
			if r.Header.Get("Authorization") != "Bearer box-service-account-token" {
				writeJSON(w, 401, map[string]any{"type": "error", "status": 401, "code": "unauthorized"})
				break
			}
			if r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", r.Header.Get("Content-Type"))
			}
			var body map[string][]string
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil ||
				!reflect.DeepEqual(body, map[string][]string{"user_ids": {"6178859178"}, "user_logins": {}}) {
				t.Errorf("terminate_sessions body %v %v", body, err)
			}
			writeJSON(w, 202, map[string]string{"message": "Request is successful, please check the admin events for the status of the job"})
		default:
			return false
		}
		return true
	})
	env := map[string]string{"REVOKED_IDP_CLIENT_SECRET": secret}

	want := idp.BoxPreset("", "12345678")
	want.ClientID, want.ClientSecret = "box-revoked-consumer", config.NewSecret(secret)
	if got := loadExample(t, "box", nil, env); !reflect.DeepEqual(got, want) {
		t.Errorf("example differs from BoxPreset:\n got %+v\nwant %+v", got, want)
	}

	cfg := loadExample(t, "box", map[string]string{idp.BoxAPIURL: ts.URL}, env)
	c, err := idp.New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// A token and a downscoped token of it are revoked each by value.
	for _, tok := range []string{"box-user-token", "box-downscoped-token"} {
		if err := c.RevokeToken(t.Context(), tok, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Introspect(t.Context(), "box-user-token"); !errors.Is(err, idp.ErrNoEndpoint) {
		t.Errorf("introspect: %v, want ErrNoEndpoint", err)
	}
	res, err := c.RevokeSubject(t.Context(), "6178859178")
	if err != nil || res.Status != 202 || !strings.Contains(res.Body, "admin events") {
		t.Fatalf("subject: %+v %v", res, err)
	}
	mu.Lock()
	if !reflect.DeepEqual(revoked, []string{"box-user-token", "box-downscoped-token"}) {
		t.Errorf("revoked %v", revoked)
	}
	mu.Unlock()
	checkContract(t, c, contractIDs{user: "6178859178"})
	limited.Store(true)
	_, err = c.RevokeSubject(t.Context(), "6178859178")
	if retry, after := idp.Retryable(err); !retry || after != 3*time.Second {
		t.Errorf("429: %v, %v %s", err, retry, after)
	}
	// A wrong client secret is terminal.
	bad := cfg
	bad.ClientSecret = config.NewSecret("wrong")
	bc, err := idp.New(bad, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	err = bc.RevokeToken(t.Context(), "box-user-token", "")
	if retry, _ := idp.Retryable(err); !errors.Is(err, idp.ErrInvalidClient) || retry {
		t.Errorf("bad secret: %v", err)
	}
}

func TestClientCredentialsConfig(t *testing.T) {
	cfg := idp.BoxPreset("", "1")
	cfg.Admin.Auth.Params = append(cfg.Admin.Auth.Params, "novalue")
	cfg.Admin.Auth.TokenURL = "relative"
	err := cfg.Validate()
	for _, want := range []string{"client_id", "admin.auth.token_url", "admin.auth.client_id", "admin.auth.client_secret", `admin.auth.params: "novalue"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	// The admin token defaults to the OAuth client's credentials.
	cfg = idp.BoxPreset("", "1")
	cfg.ClientID, cfg.ClientSecret = "id", config.NewSecret("secret")
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

// The admin token can be got with the OAuth client's own authentication:
// here a Keycloak client that uses private_key_jwt with the issuer as
// audience.
func TestClientCredentialsWithPrivateKeyJWT(t *testing.T) {
	key := testKeys()["ed25519"]
	var issuer string
	_, ts := startFake(t, func(w http.ResponseWriter, r *http.Request, form url.Values) bool {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/realms/revoked/protocol/openid-connect/token":
			wantForm(t, "token", form, map[string]string{"grant_type": "client_credentials", "client_id": "revoked-consumer",
				"client_assertion_type": idp.ClientAssertionType, "client_assertion": "*"})
			if a := verifyAssertion(t, form.Get("client_assertion"), key.Public()); a.Claims.Aud != issuer {
				t.Errorf("aud %q", a.Claims.Aud)
			}
			writeJSON(w, 200, map[string]any{"access_token": "kc-admin", "expires_in": 60, "token_type": "Bearer"})
		case r.Method == http.MethodPost && r.URL.Path == "/admin/realms/revoked/users/u-1/logout":
			if r.Header.Get("Authorization") != "Bearer kc-admin" {
				writeJSON(w, 401, map[string]string{"error": "HTTP 401 Unauthorized"})
				break
			}
			w.WriteHeader(204)
		default:
			return false
		}
		return true
	})
	cfg := idp.KeycloakPreset(ts.URL, "revoked")
	issuer = cfg.Issuer
	cfg.ClientID, cfg.AuthMethod, cfg.AssertionAudience = "revoked-consumer", idp.AuthPrivateKeyJWT, idp.AudienceIssuer
	cfg.PrivateKeyFile = writeKey(t, key, true)
	cfg.Admin.Auth.UseClientAuth = true
	c, err := idp.New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeSubject(t.Context(), "u-1"); err != nil {
		t.Fatal(err)
	}
}
