package idp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
)

// TestCheckReferenceTokenAPI checks against the reference token API:
// discovery, revocation and introspection pass with the right secret and
// fail with invalid_client and the server's description with a wrong one.
func TestCheckReferenceTokenAPI(t *testing.T) {
	env := servertest.Start(t)
	if err := newClient(t, env, nil).Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, m := range []idp.AuthMethod{idp.AuthClientSecretBasic, idp.AuthClientSecretPost} {
		c := newClient(t, env, func(c *idp.Config) {
			c.AuthMethod, c.ClientSecret = m, config.NewSecret("wrong-secret-value")
		})
		err := c.Check(t.Context())
		var ce *idp.CheckError
		if !errors.As(err, &ce) || !errors.Is(err, idp.ErrInvalidClient) || !errors.Is(err, idp.ErrUnauthorized) {
			t.Fatalf("%s: err = %v, want a CheckError with invalid_client", m, err)
		}
		// Both the revocation and the introspection refuse the client.
		if len(ce.Errs) != 2 || !strings.Contains(err.Error(), "idp: revoke: HTTP 401: invalid_client") ||
			!strings.Contains(err.Error(), "idp: introspect: HTTP 401: invalid_client") {
			t.Errorf("%s: err = %v", m, err)
		}
		if strings.Contains(err.Error(), "wrong-secret-value") {
			t.Errorf("%s: the secret is in the error: %v", m, err)
		}
		t.Logf("%s: %v", m, err)
	}
}

// checkServer is a scripted token API for Check: discovery at the root,
// revocation and introspection that want client_secret_basic with
// "c"/"s", and a client credentials token endpoint.
type checkServer struct {
	t  *testing.T
	ts *httptest.Server

	mu     sync.Mutex
	calls  []string
	tokens []string // the token parameter of each revocation and introspection

	revokeStatus atomic.Int32 // 0: authenticate
	secret       atomic.Value // the client's secret
	adminSecret  string       // the admin client's secret
}

func startCheckServer(t *testing.T) *checkServer {
	s := &checkServer{t: t, adminSecret: "admin-secret"}
	s.secret.Store("s")
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.ts.Close)
	return s
}

func (s *checkServer) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	if tok := r.PostForm.Get("token"); tok != "" {
		s.tokens = append(s.tokens, tok)
	}
	s.mu.Unlock()
	id, secret, _ := r.BasicAuth()
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		writeJSON(w, 200, map[string]any{
			"issuer":                 s.ts.URL,
			"token_endpoint":         s.ts.URL + "/token",
			"revocation_endpoint":    s.ts.URL + "/revoke",
			"introspection_endpoint": s.ts.URL + "/introspect",
		})
	case "/revoke", "/introspect":
		if st := s.revokeStatus.Load(); st != 0 && r.URL.Path == "/revoke" {
			w.WriteHeader(int(st))
			return
		}
		if id != "c" || secret != s.secret.Load().(string) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "Client authentication failed: the secret does not match"})
			return
		}
		if r.URL.Path == "/introspect" {
			writeJSON(w, 200, map[string]any{"active": false})
			return
		}
		w.WriteHeader(200)
	case "/token":
		if strings.HasPrefix(r.PostForm.Get("scope"), "revoked-readiness-check-") {
			// The check's diagnosis: the reason, after the generic
			// sentence, as Hydra says it.
			if id != "c" || secret != s.secret.Load().(string) {
				writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "Client authentication failed: the secret does not match. The client's secret was rotated on 2026-12-01."})
				return
			}
			writeJSON(w, 400, map[string]string{"error": "invalid_scope", "error_description": "The client may not request this scope."})
			return
		}
		if r.PostForm.Get("client_secret") != s.adminSecret {
			writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "The client secret supplied for a confidential client is invalid."})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": "admin-access-token", "expires_in": 300})
	default:
		s.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(404)
	}
}

func (s *checkServer) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *checkServer) client(t *testing.T, reg prometheus.Registerer, mutate func(*idp.Config), opts ...idp.Option) *idp.Client {
	t.Helper()
	cfg := idp.Config{Issuer: s.ts.URL, ClientID: "c", ClientSecret: config.NewSecret("s"), Timeout: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	if reg != nil {
		opts = append(opts, idp.WithRegisterer(reg))
	}
	c, err := idp.New(cfg, nil, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckSteps(t *testing.T) {
	s := startCheckServer(t)
	if err := s.client(t, nil, nil).Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := []string{"GET /.well-known/oauth-authorization-server", "POST /revoke", "POST /introspect"}
	if got := s.log(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	// The token names none: random, with the check's prefix, once per check.
	if err := s.client(t, nil, nil).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	tokens := append([]string(nil), s.tokens...)
	s.mu.Unlock()
	if len(tokens) != 4 || tokens[0] != tokens[1] || tokens[2] != tokens[3] || tokens[0] == tokens[2] ||
		!strings.HasPrefix(tokens[0], "revoked-readiness-check-") || len(tokens[0]) != len("revoked-readiness-check-")+32 {
		t.Errorf("check tokens %q", tokens)
	}
}

func TestCheckWrongSecret(t *testing.T) {
	s := startCheckServer(t)
	err := s.client(t, nil, func(c *idp.Config) { c.ClientSecret = config.NewSecret("not-the-secret") }).Check(t.Context())
	// The revocation's refusal gets the token endpoint's reason; the
	// introspection's is as the server said it.
	const reason = "invalid_client: Client authentication failed: the secret does not match"
	want := "idp: revoke: HTTP 401: " + reason + " (the token endpoint says: The client's secret was rotated on 2026-12-01.); " +
		"idp: introspect: HTTP 401: " + reason
	if !errors.Is(err, idp.ErrInvalidClient) || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %q", err)
	}
	if retry, _ := idp.Retryable(err); retry {
		t.Errorf("a refused client classified retryable")
	}
}

func TestCheckDiscoveryFailure(t *testing.T) {
	t.Run("issuer mismatch", func(t *testing.T) {
		s := startCheckServer(t)
		err := s.client(t, nil, func(c *idp.Config) { c.Issuer = s.ts.URL + "/" }).Check(t.Context())
		if !errors.Is(err, idp.ErrIssuerMismatch) {
			t.Fatalf("err = %v, want ErrIssuerMismatch", err)
		}
		// Discovery failing ends the check.
		for _, c := range s.log() {
			if strings.HasPrefix(c, "POST") {
				t.Errorf("call after failed discovery: %s", c)
			}
		}
	})
	t.Run("no metadata", func(t *testing.T) {
		_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 500, map[string]string{"error": "server_error", "error_description": "metadata store unavailable"})
		})
		c := scriptedClient(t, ts, func(c *idp.Config) { c.Issuer = ts.URL })
		err := c.Check(t.Context())
		if !errors.Is(err, idp.ErrServerError) || !strings.Contains(err.Error(), "idp: discover: HTTP 500: server_error: metadata store unavailable") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no endpoint", func(t *testing.T) {
		var issuer string
		_, ts := startScripted(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]any{"issuer": issuer, "token_endpoint": issuer + "/token"})
		})
		issuer = ts.URL
		c, err := idp.New(idp.Config{Issuer: ts.URL, ClientID: "c", ClientSecret: config.NewSecret("s")}, nil, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(t.Context()); !errors.Is(err, idp.ErrNoEndpoint) {
			t.Fatalf("err = %v, want ErrNoEndpoint", err)
		}
	})
}

func TestCheckServerDown(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	for name, mutate := range map[string]func(*idp.Config){
		"discovery": func(c *idp.Config) { c.Issuer = url },
		"endpoints": func(c *idp.Config) { c.RevocationURL, c.IntrospectionURL = url+"/revoke", url+"/introspect" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := idp.Config{ClientID: "c", ClientSecret: config.NewSecret("s"), Timeout: 2 * time.Second}
			mutate(&cfg)
			c, err := idp.New(cfg, nil, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			err = c.Check(t.Context())
			if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("err = %v, want connection refused", err)
			}
			if retry, _ := idp.Retryable(err); !retry {
				t.Errorf("a server down classified not retryable: %v", err)
			}
		})
	}
}

// TestCheckPassesNoBreaker: failing checks neither open a circuit nor are
// kept from the server by one the commands opened.
func TestCheckPassesNoBreaker(t *testing.T) {
	s := startCheckServer(t)
	s.revokeStatus.Store(http.StatusServiceUnavailable)
	reg := prometheus.NewRegistry()
	c := s.client(t, reg, func(c *idp.Config) { c.Breaker = idp.BreakerConfig{Failures: 1, Cooldown: time.Hour} })
	revokes := func() int {
		n := 0
		for _, call := range s.log() {
			if call == "POST /revoke" {
				n++
			}
		}
		return n
	}
	for i := range 3 {
		if err := c.Check(t.Context()); !errors.Is(err, idp.ErrUnavailable) {
			t.Fatalf("check %d: err = %v", i, err)
		}
	}
	// The circuit opens after one failure: had the checks counted, the
	// command would fail fast. Its own failure opens it; the check still
	// asks the server.
	if err := c.RevokeToken(t.Context(), "tok", ""); !errors.Is(err, idp.ErrUnavailable) {
		t.Fatalf("command after failing checks: %v", err)
	}
	if err := c.RevokeToken(t.Context(), "tok", ""); !errors.Is(err, idp.ErrCircuitOpen) {
		t.Fatalf("err = %v, want an open circuit", err)
	}
	before := revokes()
	if err := c.Check(t.Context()); !errors.Is(err, idp.ErrUnavailable) || errors.Is(err, idp.ErrCircuitOpen) {
		t.Fatalf("check with the circuit open: %v", err)
	}
	if revokes() != before+1 {
		t.Errorf("the check did not reach the server")
	}
	// The server is fine again: the check says so; the circuit runs its
	// cool-down for the commands.
	s.revokeStatus.Store(0)
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("check: %v", err)
	}
	if got := circuitState(t, reg, "revoke"); got != 1 {
		t.Errorf("circuit state %v, want still open", got)
	}
}

func TestCheckAdminToken(t *testing.T) {
	s := startCheckServer(t)
	mutate := func(secret string) func(*idp.Config) {
		return func(c *idp.Config) {
			c.Admin = idp.AdminConfig{
				BaseURL: s.ts.URL,
				Auth:    idp.AdminAuth{Kind: idp.AdminAuthClientCredentials, TokenURL: s.ts.URL + "/token", ClientID: "admin", ClientSecret: config.NewSecret(secret)},
				Subject: idp.AdminCall{Method: http.MethodPost, URL: "{base}/admin/{user_id}"},
				// Same auth: one token.
				Session: idp.AdminCall{Method: http.MethodPost, URL: "{base}/sessions/{session_id}"},
			}
		}
	}
	if err := s.client(t, nil, mutate("admin-secret")).Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if n := strings.Count(fmt.Sprint(s.log()), "POST /token"); n != 1 {
		t.Errorf("%d admin token requests, want 1: %v", n, s.log())
	}
	err := s.client(t, nil, mutate("stale-admin-secret")).Check(t.Context())
	if !errors.Is(err, idp.ErrInvalidClient) ||
		!strings.Contains(err.Error(), "idp: admin_token: HTTP 401: invalid_client: The client secret supplied for a confidential client is invalid.") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "stale-admin-secret") {
		t.Errorf("the secret is in the error: %v", err)
	}
}

// syncBuffer is a log sink safe for the Readiness goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestReadiness(t *testing.T) {
	s := startCheckServer(t)
	checks := func() int { return strings.Count(fmt.Sprint(s.log()), "POST /revoke") }
	var logs syncBuffer
	clk := clockwork.NewFakeClock()
	c := s.client(t, nil, nil, idp.WithClock(clk))
	const interval = 20 * time.Millisecond
	r := idp.NewReadiness(c, interval, zerolog.New(&logs))
	if err := r.Check(t.Context()); !errors.Is(err, idp.ErrNotChecked) {
		t.Fatalf("before Run: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// settled returns once Run has ended a check and waits on the clock
	// for the next; tick moves the clock to the next check.
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second) // a hang fails instead of stalling the run
	defer wcancel()
	settled := func() {
		t.Helper()
		if err := clk.BlockUntilContext(wctx, 1); err != nil {
			t.Fatalf("Run does not wait for its next check: %v", err)
		}
	}
	tick := func() {
		t.Helper()
		clk.Advance(interval)
		settled()
	}
	waitFor := func(what string, ok func(error) bool) error {
		t.Helper()
		for range 100 {
			if err := r.Check(t.Context()); ok(err) {
				return err
			}
			tick()
		}
		t.Fatalf("%s: still %v", what, r.Check(t.Context()))
		return nil
	}
	settled()
	_ = waitFor("first check", func(err error) bool { return err == nil })

	// The secret is rotated at the server.
	s.secret.Store("rotated")
	err := waitFor("failing", func(err error) bool { return err != nil })
	if !errors.Is(err, idp.ErrInvalidClient) || !strings.Contains(err.Error(), "Client authentication failed: the secret does not match") ||
		!strings.Contains(err.Error(), "(failing since ") {
		t.Fatalf("err = %v", err)
	}
	// Several failing checks, one log line.
	n := checks()
	for checks() < n+3 {
		tick()
	}
	s.secret.Store("s")
	_ = waitFor("passing again", func(err error) bool { return err == nil })
	n = checks()
	for checks() < n+3 {
		tick()
	}

	out := logs.String()
	for msg, want := range map[string]int{
		"token API check passed":       1,
		"token API check failed":       1,
		"token API check passes again": 1,
	} {
		if got := strings.Count(out, `"message":"`+msg); got != want {
			t.Errorf("%d lines %q, want %d:\n%s", got, msg, want, out)
		}
	}
	if !strings.Contains(out, `"steps":["discover","revoke","introspect"]`) {
		t.Errorf("the log does not name the steps:\n%s", out)
	}
}

func TestCheckIntervalValidate(t *testing.T) {
	cfg := idp.Config{RevocationURL: "https://idp.example.com/revoke", ClientID: "c", ClientSecret: config.NewSecret("s"), CheckInterval: -time.Second}
	var fe *config.FieldError
	if err := cfg.Validate(); !errors.As(err, &fe) || !strings.Contains(err.Error(), "check_interval") {
		t.Fatalf("err = %v", err)
	}
}
