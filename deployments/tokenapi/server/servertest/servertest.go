// Package servertest starts the reference token API in-process for tests:
// one call returns a running server on a loopback port, its issuer URL,
// known client credentials and admin token, and registers its cleanup.
package servertest

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/internal/config"
)

// Credentials of the clients every Env registers.
const (
	// RevokerID may revoke and introspect tokens of every client.
	RevokerID     = "revoker"
	RevokerSecret = "revoker-test-secret"
	// AppID and OtherID are ordinary clients with both grants and the
	// scopes in AppScopes.
	AppID       = "app"
	AppSecret   = "app-test-secret"
	OtherID     = "other"
	OtherSecret = "other-test-secret"
	// AdminToken protects the admin API.
	AdminToken = "test-admin-token-0123456789"
)

// AppScopes are the scopes AppID and OtherID may request.
var AppScopes = []string{"files.read", "files.write", "profile"}

// Env is a running reference token API.
type Env struct {
	// URL is the base URL of the server (scheme and host).
	URL string
	// Issuer is the configured issuer: URL unless WithConfig changed it.
	Issuer     string
	AdminToken config.Secret
	Server     *server.Server
	HTTP       *httptest.Server
}

// Option adjusts the server an Env starts.
type Option func(*options)

type options struct {
	cfg func(*server.Config)
	log zerolog.Logger
}

// WithConfig lets the test change the config before the server starts.
// The issuer is already set to the server's URL.
func WithConfig(f func(*server.Config)) Option { return func(o *options) { o.cfg = f } }

// WithLogger sets the server's logger (default: discard).
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// Clients returns the config of the clients every Env registers.
func Clients() []server.ClientConfig {
	grants := []string{server.GrantClientCredentials, server.GrantTokenExchange}
	return []server.ClientConfig{
		{ID: RevokerID, Secret: config.NewSecret(RevokerSecret), RevokeAny: true, IntrospectAny: true, Grants: []string{server.GrantClientCredentials}},
		{ID: AppID, Secret: config.NewSecret(AppSecret), Grants: grants, Scopes: AppScopes},
		{ID: OtherID, Secret: config.NewSecret(OtherSecret), Grants: grants, Scopes: AppScopes},
	}
}

// Start runs a token API on a free loopback port until the test ends.
func Start(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	o := options{log: zerolog.Nop()}
	for _, opt := range opts {
		opt(&o)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("servertest: listening: %v", err)
	}
	base := "http://" + l.Addr().String()
	cfg := server.Config{
		Issuer:     base,
		Clients:    Clients(),
		AdminToken: config.NewSecret(AdminToken),
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	srv, err := server.New(cfg, o.log)
	if err != nil {
		_ = l.Close()
		tb.Fatalf("servertest: %v", err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	_ = ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	tb.Cleanup(ts.Close)
	return &Env{URL: base, Issuer: cfg.Issuer, AdminToken: cfg.AdminToken, Server: srv, HTTP: ts}
}

// Issue issues a token through the admin API and returns the raw token and
// its id. It fails the test on any error.
func (e *Env) Issue(tb testing.TB, req server.IssueRequest) (raw, tokenID string) {
	tb.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	var out server.IssueResponse
	e.Admin(tb, http.MethodPost, "/admin/tokens", body, &out)
	return out.AccessToken, out.TokenID
}

// Admin calls the admin API (path relative to the issuer) and decodes a 200 answer into out (if not nil).
// Any other status fails the test.
func (e *Env) Admin(tb testing.TB, method, path string, body []byte, out any) {
	tb.Helper()
	req, err := http.NewRequest(method, e.Issuer+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+e.AdminToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.HTTP.Client().Do(req)
	if err != nil {
		tb.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("servertest: %s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			tb.Fatalf("servertest: %s %s: decoding: %v", method, path, err)
		}
	}
}

// Exchange exchanges subjectToken for a downscoped token (RFC 8693) as the
// client id/secret, with extra form parameters such as scope or resource,
// and returns the new raw token. It fails the test on any error.
func (e *Env) Exchange(tb testing.TB, clientID, secret, subjectToken string, extra url.Values) string {
	tb.Helper()
	form := url.Values{
		"grant_type":         {server.GrantTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {server.TokenTypeAccessToken},
	}
	for k, v := range extra {
		form[k] = v
	}
	req, err := http.NewRequest(http.MethodPost, e.Issuer+server.PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := e.HTTP.Client().Do(req)
	if err != nil {
		tb.Fatalf("servertest: token exchange: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("servertest: token exchange: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		tb.Fatalf("servertest: token exchange: decoding: %v", err)
	}
	return out.AccessToken
}
