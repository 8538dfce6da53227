package idp_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/schemas"
)

func newClient(t *testing.T, env *servertest.Env, mutate func(*idp.Config)) *idp.Client {
	t.Helper()
	cfg := idp.Config{
		Issuer:       env.Issuer,
		ClientID:     servertest.AppID,
		ClientSecret: config.NewSecret(servertest.AppSecret),
		Timeout:      5 * time.Second,
		Admin:        idp.ReferencePreset(env.URL, config.NewSecret(servertest.AdminToken)),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := idp.New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func asRevoker(c *idp.Config) {
	c.ClientID, c.ClientSecret = servertest.RevokerID, config.NewSecret(servertest.RevokerSecret)
}

func wantActive(t *testing.T, c *idp.Client, raw string, want bool) {
	t.Helper()
	in, err := c.Introspect(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if in.Active != want {
		t.Fatalf("active = %v, want %v", in.Active, want)
	}
}

func TestDiscover(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env, nil)
	if err := c.Discover(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, _ := env.Issue(t, server.IssueRequest{UserID: "u", ClientID: servertest.AppID})
	if err := c.RevokeToken(t.Context(), raw, ""); err != nil {
		t.Fatal(err)
	}
	wantActive(t, c, raw, false)

	// Discovery also happens lazily on first use.
	lazy := newClient(t, env, nil)
	raw, _ = env.Issue(t, server.IssueRequest{UserID: "u", ClientID: servertest.AppID})
	wantActive(t, lazy, raw, true)
}

// RFC 8414 §3.1: an issuer with a path has the well-known segment inserted
// before its path.
func TestDiscoverIssuerWithPath(t *testing.T) {
	env := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Issuer += "/tenant/a" }))
	c := newClient(t, env, func(c *idp.Config) {
		asRevoker(c)
		c.Admin = idp.ReferencePreset(env.Issuer, config.NewSecret(servertest.AdminToken))
	})
	if err := c.Discover(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, _ := env.Issue(t, server.IssueRequest{UserID: "u", ClientID: servertest.AppID})
	wantActive(t, c, raw, true)
	// The admin API also lives under the issuer path.
	if res, err := c.RevokeSubject(t.Context(), "u"); err != nil || res.Revoked != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	wantActive(t, c, raw, false)
}

// RFC 8414 §3.3: metadata whose issuer differs from the configured one must
// not be used.
func TestDiscoverIssuerMismatch(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"issuer":"https://evil.example","revocation_endpoint":"https://evil.example/revoke"}`)
	}))
	defer ts.Close()
	c, err := idp.New(idp.Config{Issuer: ts.URL, ClientID: "a", ClientSecret: config.NewSecret("b")}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	err = c.RevokeToken(t.Context(), "tok", "")
	if !errors.Is(err, idp.ErrIssuerMismatch) {
		t.Fatalf("err = %v, want ErrIssuerMismatch", err)
	}
	if retry, _ := idp.Retryable(err); retry {
		t.Error("issuer mismatch classified retryable")
	}
}

// RFC 7009 §2.1 with client_secret_basic and client_secret_post; RFC 7662
// proves the revocation took.
func TestRevokeAndIntrospectBothAuthMethods(t *testing.T) {
	env := servertest.Start(t)
	for _, m := range []idp.AuthMethod{idp.AuthClientSecretBasic, idp.AuthClientSecretPost} {
		t.Run(string(m), func(t *testing.T) {
			c := newClient(t, env, func(c *idp.Config) { c.AuthMethod = m })
			raw, id := env.Issue(t, server.IssueRequest{
				UserID: "alice", ClientID: servertest.AppID, SessionID: "s1",
				Scopes: []string{"files.read", "profile"}, TTLSeconds: 600,
			})
			in, err := c.Introspect(t.Context(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if !in.Active || in.Subject != "alice" || in.ClientID != servertest.AppID || in.SessionID != "s1" ||
				in.TokenID != id || id != schemas.Fingerprint(raw) || in.TokenType != "Bearer" || in.Issuer != env.Issuer ||
				len(in.Scopes) != 2 || in.ParentTokenID != "" {
				t.Errorf("introspection %+v", in)
			}
			if d := in.ExpiresAt.Sub(in.IssuedAt); d != 10*time.Minute {
				t.Errorf("lifetime %s", d)
			}
			if err := c.RevokeToken(t.Context(), raw, "access_token"); err != nil {
				t.Fatal(err)
			}
			in, err = c.Introspect(t.Context(), raw)
			if err != nil || in.Active || in.Subject != "" {
				t.Fatalf("after revoke: %+v, %v", in, err)
			}
			// RFC 7009 §2.2: unknown tokens are a success too.
			if err := c.RevokeToken(t.Context(), "never-issued", ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// RFC 7009 §2.1: another client's token is refused; the refusal is terminal
// and its text carries no raw token.
func TestRevokeOtherClientsTokenIsTerminal(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env, func(c *idp.Config) {
		c.ClientID, c.ClientSecret = servertest.OtherID, config.NewSecret(servertest.OtherSecret)
	})
	raw, _ := env.Issue(t, server.IssueRequest{UserID: "u", ClientID: servertest.AppID})
	err := c.RevokeToken(t.Context(), raw, "")
	var he *idp.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || he.OAuthError != "unauthorized_client" || he.Op != "revoke" {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, idp.ErrBadRequest) || !errors.Is(err, idp.ErrUnauthorizedClient) {
		t.Error("sentinels do not match")
	}
	if retry, _ := idp.Retryable(err); retry {
		t.Error("refusal classified retryable")
	}
	if strings.Contains(err.Error(), raw) {
		t.Error("error contains the raw token")
	}
	wantActive(t, newClient(t, env, asRevoker), raw, true)
}

func TestWrongClientSecret(t *testing.T) {
	env := servertest.Start(t)
	for _, m := range []idp.AuthMethod{idp.AuthClientSecretBasic, idp.AuthClientSecretPost} {
		c := newClient(t, env, func(c *idp.Config) { c.AuthMethod, c.ClientSecret = m, config.NewSecret("wrong") })
		err := c.RevokeToken(t.Context(), "x", "")
		if !errors.Is(err, idp.ErrUnauthorized) || !errors.Is(err, idp.ErrInvalidClient) {
			t.Fatalf("%s: err = %v", m, err)
		}
		if retry, _ := idp.Retryable(err); retry {
			t.Errorf("%s: 401 classified retryable", m)
		}
	}
}

func TestSubjectWideThroughPreset(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env, asRevoker)
	a, _ := env.Issue(t, server.IssueRequest{UserID: "alice", ClientID: servertest.AppID, SessionID: "s1", Scopes: []string{"files.read"}})
	b, _ := env.Issue(t, server.IssueRequest{UserID: "alice", ClientID: servertest.OtherID, SessionID: "s2"})
	child := env.Exchange(t, servertest.AppID, servertest.AppSecret, a, url.Values{"resource": {"https://files.example/"}})
	bob, _ := env.Issue(t, server.IssueRequest{UserID: "bob", ClientID: servertest.AppID})

	list, err := c.ListSubjectTokens(t.Context(), "alice")
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	res, err := c.RevokeSubject(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || !res.CountKnown || res.Revoked != 3 || !strings.Contains(res.Body, `"revoked":3`) {
		t.Errorf("result %+v", res)
	}
	for _, tok := range []string{a, b, child} {
		wantActive(t, c, tok, false)
	}
	wantActive(t, c, bob, true)
	if list, _ := c.ListSubjectTokens(t.Context(), "alice"); len(list) != 0 {
		t.Errorf("alice still has %d tokens", len(list))
	}
	checkContract(t, c, contractIDs{user: "alice", session: "s1", configured: []string{"token_id", "client", "list_subject_tokens"}})
}

// Revoking a middle generation by id revokes its descendants and leaves its
// parent active.
func TestCascadeThroughTokenID(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env, asRevoker)
	root, rootID := env.Issue(t, server.IssueRequest{UserID: "alice", ClientID: servertest.AppID, Scopes: []string{"files.read", "files.write"}})
	child := env.Exchange(t, servertest.AppID, servertest.AppSecret, root, url.Values{"scope": {"files.read"}})
	grandchild := env.Exchange(t, servertest.AppID, servertest.AppSecret, child, nil)

	list, err := c.ListSubjectTokens(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	parents := map[string]string{}
	for _, ti := range list {
		parents[ti.TokenID] = ti.ParentTokenID
		if ti.ExpiresAt.IsZero() || ti.ClientID != servertest.AppID {
			t.Errorf("token info %+v", ti)
		}
	}
	childID, grandID := schemas.Fingerprint(child), schemas.Fingerprint(grandchild)
	if parents[childID] != rootID || parents[grandID] != childID || parents[rootID] != "" {
		t.Fatalf("lineage %v", parents)
	}

	res, err := c.RevokeTokenID(t.Context(), childID)
	if err != nil || res.Revoked != 2 {
		t.Fatalf("revoke by id: %+v, %v", res, err)
	}
	wantActive(t, c, child, false)
	wantActive(t, c, grandchild, false)
	wantActive(t, c, root, true)

	res, err = c.RevokeTokenID(t.Context(), rootID)
	if err != nil || res.Revoked != 1 {
		t.Fatalf("revoke root by id: %+v, %v", res, err)
	}
	wantActive(t, c, root, false)
}

func TestSessionAndClientRevoke(t *testing.T) {
	env := servertest.Start(t)
	c := newClient(t, env, asRevoker)
	s1, _ := env.Issue(t, server.IssueRequest{UserID: "alice", ClientID: servertest.AppID, SessionID: "s1"})
	s2, _ := env.Issue(t, server.IssueRequest{UserID: "alice", ClientID: servertest.AppID, SessionID: "s2"})
	o, _ := env.Issue(t, server.IssueRequest{UserID: "bob", ClientID: servertest.OtherID, SessionID: "s3"})
	if res, err := c.RevokeSession(t.Context(), "s1"); err != nil || res.Revoked != 1 {
		t.Fatalf("session: %+v %v", res, err)
	}
	wantActive(t, c, s1, false)
	wantActive(t, c, s2, true)
	if res, err := c.RevokeClient(t.Context(), servertest.AppID); err != nil || res.Revoked != 1 {
		t.Fatalf("client: %+v %v", res, err)
	}
	wantActive(t, c, s2, false)
	wantActive(t, c, o, true)
}

func TestAdminErrors(t *testing.T) {
	env := servertest.Start(t)
	// A wrong admin token is a terminal 401.
	c := newClient(t, env, func(c *idp.Config) {
		c.Admin = idp.ReferencePreset(env.URL, config.NewSecret("wrong-admin-token-123"))
	})
	_, err := c.RevokeSubject(t.Context(), "alice")
	if !errors.Is(err, idp.ErrUnauthorized) || !errors.Is(err, idp.ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
	if retry, _ := idp.Retryable(err); retry {
		t.Error("401 classified retryable")
	}
	// Unconfigured calls and empty ids are refused before any request.
	bare := newClient(t, env, func(c *idp.Config) { c.Admin = idp.AdminConfig{} })
	if _, err := bare.RevokeSubject(t.Context(), "alice"); !errors.Is(err, idp.ErrNotConfigured) {
		t.Errorf("err = %v, want ErrNotConfigured", err)
	}
	if _, err := c.RevokeSession(t.Context(), ""); !errors.Is(err, idp.ErrInvalidArgument) {
		t.Errorf("err = %v, want ErrInvalidArgument", err)
	}
	if err := c.RevokeToken(t.Context(), "", ""); !errors.Is(err, idp.ErrInvalidArgument) {
		t.Errorf("err = %v, want ErrInvalidArgument", err)
	}
}

// scripted answers each request with the next scripted response.
type scripted struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	answer   func(w http.ResponseWriter, r *http.Request)
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.bodies = append(s.bodies, string(b))
	answer := s.answer
	s.mu.Unlock()
	answer(w, r)
}

func startScripted(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*scripted, *httptest.Server) {
	s := &scripted{answer: answer}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func scriptedClient(t *testing.T, ts *httptest.Server, mutate func(*idp.Config), opts ...idp.Option) *idp.Client {
	t.Helper()
	cfg := idp.Config{
		RevocationURL:    ts.URL + "/revoke",
		IntrospectionURL: ts.URL + "/introspect",
		ClientID:         "c",
		ClientSecret:     config.NewSecret("s"),
		Timeout:          2 * time.Second,
		Admin:            idp.ReferencePreset(ts.URL, config.NewSecret("admin-token-0123456789")),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := idp.New(cfg, nil, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetryableClassification(t *testing.T) {
	httpDate := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		retry      bool
		after      time.Duration // -1: between 25s and 31s
		sentinel   error
	}{
		{"429 seconds", 429, "7", "", true, 7 * time.Second, idp.ErrRateLimited},
		{"429 no header", 429, "", "", true, 0, idp.ErrRateLimited},
		{"503 http-date", 503, httpDate, "", true, -1, idp.ErrUnavailable},
		{"503 past date", 503, "Mon, 02 Jan 2006 15:04:05 GMT", "", true, 0, idp.ErrUnavailable},
		{"503 garbage", 503, "soon", "", true, 0, idp.ErrUnavailable},
		{"500", 500, "", "", true, 0, idp.ErrServerError},
		{"502", 502, "", "<html>bad gateway</html>", true, 0, idp.ErrServerError},
		{"504", 504, "", "", true, 0, idp.ErrServerError},
		{"408", 408, "", "", true, 0, idp.ErrUnexpectedStatus},
		{"400", 400, "", `{"error":"invalid_request"}`, false, 0, idp.ErrInvalidRequest},
		{"400 unsupported_token_type", 400, "", `{"error":"unsupported_token_type"}`, false, 0, idp.ErrUnsupportedTokenType},
		{"401", 401, "", `{"error":"invalid_client"}`, false, 0, idp.ErrInvalidClient},
		{"403", 403, "", "", false, 0, idp.ErrForbidden},
		{"404", 404, "", "", false, 0, idp.ErrNotFound},
		{"409", 409, "", "", false, 0, idp.ErrUnexpectedStatus},
		{"400 temporarily_unavailable", 400, "3", `{"error":"temporarily_unavailable"}`, true, 3 * time.Second, idp.ErrBadRequest},
		{"307 redirect", 307, "", "", false, 0, idp.ErrUnexpectedStatus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.status == 307 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			c := scriptedClient(t, ts, nil)
			err := c.RevokeToken(t.Context(), "tok-123", "")
			var he *idp.HTTPError
			if !errors.As(err, &he) || he.Status != tc.status {
				t.Fatalf("err = %v", err)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			retry, after := idp.Retryable(err)
			if retry != tc.retry {
				t.Errorf("retry = %v, want %v", retry, tc.retry)
			}
			if tc.after == -1 {
				if after < 25*time.Second || after > 31*time.Second {
					t.Errorf("after = %s, want about 30s", after)
				}
			} else if after != tc.after {
				t.Errorf("after = %s, want %s", after, tc.after)
			}
			// Admin calls are classified the same way.
			_, err = c.RevokeSubject(t.Context(), "alice")
			if r2, _ := idp.Retryable(err); r2 != tc.retry {
				t.Errorf("admin call: retry = %v, want %v (%v)", r2, tc.retry, err)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second, true},
		{"Sunday, 01-Mar-26 12:00:10 GMT", 10 * time.Second, true}, // RFC 850, obsolete but allowed
		{"Sun Mar  1 12:00:20 2026", 20 * time.Second, true},       // asctime
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0, true},                 // past
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 0, false},
		{"tomorrow", 0, false},
	}
	for _, tc := range cases {
		got, ok := idp.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	// Connection refused: the server is down or restarting.
	ts := httptest.NewServer(http.NotFoundHandler())
	c := scriptedClient(t, ts, nil)
	ts.Close()
	err := c.RevokeToken(t.Context(), "tok", "")
	if retry, _ := idp.Retryable(err); err == nil || !retry {
		t.Errorf("refused connection: %v retryable=%v", err, retry)
	}

	// The request's own timeout.
	release := make(chan struct{})
	_, slow := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c = scriptedClient(t, slow, func(c *idp.Config) { c.Timeout = 50 * time.Millisecond })
	err = c.RevokeToken(t.Context(), "tok", "")
	if !errors.Is(err, idp.ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
	if retry, _ := idp.Retryable(err); !retry {
		t.Error("timeout not retryable")
	}

	// The caller's context ends: not retried.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = c.RevokeToken(ctx, "tok", "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if retry, _ := idp.Retryable(err); retry {
		t.Error("cancelled call retryable")
	}
	if retry, _ := idp.Retryable(errors.New("something else")); retry {
		t.Error("unknown error retryable")
	}
	if retry, _ := idp.Retryable(nil); retry {
		t.Error("nil retryable")
	}
}

// Errors and results never carry the raw token, even when the server echoes
// it back.
func TestNoRawTokenInErrors(t *testing.T) {
	const raw = "sEcReT-RaW-ToKeN-value-0123456789abcdef"
	_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		tok := r.PostForm.Get("token")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_request","error_description":"bad token %s\n\u0007 here"}`, tok)
	})
	var logs bytes.Buffer
	c2, err := idp.New(idp.Config{
		RevocationURL: ts.URL + "/revoke", IntrospectionURL: ts.URL + "/introspect",
		ClientID: "c", ClientSecret: config.NewSecret("s"),
	}, nil, zerolog.New(&logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		c2.RevokeToken(t.Context(), raw, ""),
		func() error { _, err := c2.Introspect(t.Context(), raw); return err }(),
	} {
		if err == nil || strings.Contains(err.Error(), raw) || strings.Contains(fmt.Sprintf("%#v", err), raw) {
			t.Fatalf("error leaks the token: %v", err)
		}
		if !strings.Contains(err.Error(), "[redacted]") || strings.ContainsAny(err.Error(), "\n\a") {
			t.Errorf("error not sanitized: %q", err.Error())
		}
	}
	if strings.Contains(logs.String(), raw) {
		t.Error("log contains the raw token")
	}
	if !strings.Contains(logs.String(), schemas.Fingerprint(raw)) {
		t.Error("log does not name the token by fingerprint")
	}

	// A success answer that carries credentials is redacted in Result.Body.
	_, ts2 := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"revoked":1,"access_token":"leaked-value","note":"`+strings.Repeat("x", 600)+`"}`)
	})
	res, err := scriptedClient(t, ts2, nil).RevokeSubject(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Body, "leaked-value") || len(res.Body) > 260 || res.Revoked != 1 {
		t.Errorf("result %+v", res)
	}
}

// Placeholders are escaped for where they stand, so an id cannot change the
// request's shape; auth is sent as configured.
func TestAdminTemplates(t *testing.T) {
	s, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	const id = "dept/a&b=c d?é\""
	c := scriptedClient(t, ts, func(c *idp.Config) {
		c.Admin = idp.AdminConfig{
			BaseURL: ts.URL + "/api/",
			Auth:    idp.AdminAuth{Kind: idp.AdminAuthBearer, Token: config.NewSecret("okta-token"), Scheme: "SSWS"},
			Subject: idp.AdminCall{Method: http.MethodDelete, URL: "{base}/users/{user_id}/sessions?oauthTokens=true&u={user_id}", AcceptStatus: []string{"204"}},
			Session: idp.AdminCall{
				Method: http.MethodPost, URL: "{base}/logout", Body: `{"session":"{session_id}"}`,
				Auth: idp.AdminAuth{Kind: idp.AdminAuthBasic, Username: "admin", Password: config.NewSecret("pw")},
			},
			Client: idp.AdminCall{
				Method: http.MethodPost, URL: "{base}/clients/revoke", Body: "client={client_id}&all=true",
				ContentType: "application/x-www-form-urlencoded", Auth: idp.AdminAuth{Kind: idp.AdminAuthNone},
			},
		}
	})
	res, err := c.RevokeSubject(t.Context(), id)
	if err != nil || res.Status != 204 || res.CountKnown {
		t.Fatalf("subject: %+v %v", res, err)
	}
	if _, err := c.RevokeSession(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeClient(t.Context(), id); err != nil {
		t.Fatal(err)
	}

	r := s.requests[0]
	if r.Method != http.MethodDelete || r.URL.Path != "/api/users/"+id+"/sessions" {
		t.Errorf("subject request %s %s", r.Method, r.URL.Path)
	}
	if q := r.URL.Query(); q.Get("u") != id || q.Get("oauthTokens") != "true" || len(q) != 2 {
		t.Errorf("subject query %v", q)
	}
	if h := r.Header.Get("Authorization"); h != "SSWS okta-token" {
		t.Errorf("subject auth %q", h)
	}
	r = s.requests[1]
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "pw" {
		t.Errorf("session auth %q", r.Header.Get("Authorization"))
	}
	if want := `{"session":"dept/a&b=c d?é\""}`; s.bodies[1] != want || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("session body %s, want %s", s.bodies[1], want)
	}
	r = s.requests[2]
	if r.Header.Get("Authorization") != "" {
		t.Error("auth none sent Authorization")
	}
	if v, err := url.ParseQuery(s.bodies[2]); err != nil || v.Get("client") != id || v.Get("all") != "true" {
		t.Errorf("client body %q", s.bodies[2])
	}
	// Not in AcceptStatus: 200 where only 204 is accepted.
	s.answer = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }
	if _, err := c.RevokeSubject(t.Context(), id); !errors.Is(err, idp.ErrUnexpectedStatus) {
		t.Errorf("err = %v, want ErrUnexpectedStatus", err)
	}
}

func TestIntrospectMalformed(t *testing.T) {
	s, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) })
	c := scriptedClient(t, ts, nil)
	if _, err := c.Introspect(t.Context(), "tok"); !errors.Is(err, idp.ErrMalformedResponse) {
		t.Fatalf("err = %v", err)
	}
	s.answer = func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"active":true,"aud":["a","b"],"exp":1767225600.5,"scope":"x y"}`)
	}
	in, err := c.Introspect(t.Context(), "tok")
	if err != nil || len(in.Audience) != 2 || len(in.Scopes) != 2 || in.ExpiresAt.Unix() != 1767225600 {
		t.Fatalf("%+v %v", in, err)
	}
	if retry, _ := idp.Retryable(fmt.Errorf("wrapped: %w", idp.ErrMalformedResponse)); retry {
		t.Error("malformed retryable")
	}
}

func TestConfigValidate(t *testing.T) {
	err := idp.Config{
		Issuer:        "ftp://x?y",
		RevocationURL: "/relative",
		AuthMethod:    "tls_client_auth",
		Timeout:       -1,
		Admin: idp.AdminConfig{
			Preset:  "pingfederate",
			Subject: idp.AdminCall{Method: "FETCH", URL: "{base}/users/{userid}", AcceptStatus: []string{"2xy"}},
			Session: idp.AdminCall{Method: http.MethodPost, URL: "https://idp.example/s/{session_id}", Auth: idp.AdminAuth{Kind: idp.AdminAuthBearer}},
		},
	}.Validate()
	if err == nil || !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"issuer", "revocation_url", "client_id", "auth_method", "timeout", "admin.preset",
		"admin.subject.method", "{user_id}", "{userid}", "admin.base_url", "admin.subject.accept_status",
		"admin.subject.auth.kind", "admin.session.auth.token",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%v", want, err)
		}
	}
	if err := (idp.Config{}).Validate(); err == nil {
		t.Error("empty config valid")
	}
	if err := (idp.Config{Issuer: "https://idp.example", ClientID: "c", AuthMethod: idp.AuthPrivateKeyJWT}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "Authenticator") {
		t.Errorf("private_key_jwt without authenticator: %v", err)
	}
	ok := idp.Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: config.NewSecret("s"),
		Admin: idp.AdminConfig{Preset: idp.PresetReference, BaseURL: "https://idp.example", Auth: idp.AdminAuth{Kind: idp.AdminAuthBearer, Token: config.NewSecret("t")}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	// Secrets do not print.
	if s := fmt.Sprintf("%+v %#v", ok, ok); strings.Contains(s, `"s"`) || strings.Contains(s, ":s ") || strings.Contains(s, "Token:t") {
		t.Errorf("secret printed: %s", s)
	}
}

// The config loads through internal/config: flags, environment and YAML.
func TestConfigLoads(t *testing.T) {
	var cfg idp.Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	env := map[string]string{
		"TOKENAPI_CLIENT_SECRET":    "from-env",
		"TOKENAPI_ADMIN_AUTH_TOKEN": "admin-from-env",
	}
	var wrapped struct {
		TokenAPI idp.Config `flag:"tokenapi" env:"TOKENAPI" yaml:"tokenapi"`
	}
	err := config.Load(fs, []string{"-tokenapi.issuer", "https://idp.example", "-tokenapi.client-id", "c", "-tokenapi.admin.preset", "reference",
		"-tokenapi.admin.base-url", "https://idp.example", "-tokenapi.admin.auth.kind", "bearer"},
		&wrapped, config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	cfg = wrapped.TokenAPI
	if cfg.ClientSecret.Reveal() != "from-env" || cfg.Admin.Auth.Token.Reveal() != "admin-from-env" {
		t.Errorf("secrets not loaded: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}
