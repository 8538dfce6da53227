package gtr_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/producer/ssf/gtr"
	"github.com/revoked-dev/revoked/schemas"
)

const (
	oktaIssuer = "https://example.okta.com"
	oktaClient = "0oa1b2c3d4e5f6g7h8i9"
	siemIssuer = "https://siem.example.com"
	path       = "/global-token-revocation"
)

var (
	oktaKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	evilKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	siemKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// env is an endpoint on a broker, with two clients: Okta (RS256, keys at
// a jwks_uri; iss_sub of its org, email, opaque) and a SIEM (ES256, keys
// in a file; email only).
type env struct {
	t        *testing.T
	kafka    *kafkatest.Cluster
	clock    *clockwork.FakeClock
	url      string
	signer   *schemas.Signer
	jtis     atomic.Int64
	keyFetch atomic.Int32
}

func newEnv(t *testing.T, mod func(*gtr.Config)) *env {
	t.Helper()
	e := &env{t: t, kafka: kafkatest.New(t, schemas.TopicRevokeCommands), clock: clockwork.NewFakeClockAt(time.Now().Truncate(time.Second))}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.keyFetch.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &oktaKey().PublicKey, KeyID: "okta-1", Algorithm: "RS256", Use: "sig"}}})
	}))
	t.Cleanup(jwks.Close)
	dir := t.TempDir()
	siemJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &siemKey().PublicKey, KeyID: "siem-1", Algorithm: "ES256", Use: "sig"}}})
	write(t, filepath.Join(dir, "siem-jwks.json"), string(siemJWKS))
	write(t, filepath.Join(dir, "clients.yaml"), fmt.Sprintf(`clients:
  - name: okta
    issuer: %s
    subject: %s
    jwks_uri: %s
  - name: siem
    issuer: %s
    jwks_file: siem-jwks.json
    subject_formats: [email]
`, oktaIssuer, oktaClient, jwks.URL, siemIssuer))

	w, err := kafkax.NewWriter(e.kafka.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	e.signer = schemas.NewSigner(priv)
	var handler atomic.Pointer[gtr.Endpoint]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		handler.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	e.url = ts.URL + path
	cfg := gtr.DefaultConfig()
	cfg.Endpoint, cfg.AllowHTTP, cfg.ClientsFile = e.url, true, filepath.Join(dir, "clients.yaml")
	if mod != nil {
		mod(&cfg)
	}
	clients, err := gtr.LoadClients(cfg.ClientsFile, true, jwks.Client(), e.clock)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := gtr.New(cfg, gtr.Deps{Clients: clients, Signer: e.signer, Publisher: w, Clock: e.clock, Registry: prometheus.NewRegistry()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	handler.Store(ep)
	return e
}

func write(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// jwt signs a client's JWT (draft section 3.5) with the claims mod
// changes.
func (e *env) jwt(key any, alg jose.SignatureAlgorithm, kid string, mod func(map[string]any)) string {
	e.t.Helper()
	now := e.clock.Now()
	claims := map[string]any{
		"iss": oktaIssuer, "sub": oktaClient, "aud": e.url, "jti": fmt.Sprintf("jti-%d", e.jtis.Add(1)),
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	if mod != nil {
		mod(claims)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		e.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := js.Sign(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

func (e *env) okta(mod func(map[string]any)) string {
	return e.jwt(oktaKey(), jose.RS256, "okta-1", mod)
}

// post sends a request: the JWT as the Bearer token (bearer true) or in
// the body as RFC 7523's client_assertion.
func (e *env) post(jwt string, bearer bool, body map[string]any) (int, map[string]string) {
	e.t.Helper()
	if !bearer && jwt != "" {
		body["client_assertion_type"] = gtr.AssertionType
		body["client_assertion"] = jwt
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer && jwt != "" {
		req.Header.Set("Authorization", "Bearer "+jwt)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *env) commands() []schemas.RevokeCommand {
	e.t.Helper()
	var out []schemas.RevokeCommand
	kr := schemas.NewKeyring(e.signer.Public())
	for _, m := range e.kafka.Records(e.t, schemas.TopicRevokeCommands) {
		var kid, sig string
		for _, h := range m.Headers {
			switch h.Key {
			case schemas.HeaderKeyID:
				kid = string(h.Value)
			case schemas.HeaderSignature:
				sig = string(h.Value)
			}
		}
		if err := kr.Verify(kid, sig, m.Value); err != nil {
			e.t.Fatalf("command signature: %v", err)
		}
		c, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

var issSub = map[string]any{"format": "iss_sub", "iss": oktaIssuer, "sub": "00u1dnq5S0CfjlkpABCD"}

// The draft's requests, each way of authenticating, and every error case
// of section 3.4.2.
func TestGlobalTokenRevocation(t *testing.T) {
	e := newEnv(t, nil)

	// Draft -06 section 3.5: the JWT as the Bearer token, as Okta sends it.
	if code, out := e.post(e.okta(nil), true, map[string]any{"sub_id": issSub}); code != http.StatusNoContent {
		t.Fatalf("bearer JWT: HTTP %d %v", code, out)
	}
	// RFC 7523: client_assertion in the body.
	if code, out := e.post(e.okta(nil), false, map[string]any{"sub_id": map[string]any{"format": "email", "email": "user@example.com"}}); code != http.StatusNoContent {
		t.Fatalf("client_assertion: HTTP %d %v", code, out)
	}
	// Another client, another algorithm, keys from a file.
	siem := e.jwt(siemKey(), jose.ES256, "siem-1", func(c map[string]any) { c["iss"], c["sub"] = siemIssuer, "siem" })
	if code, out := e.post(siem, true, map[string]any{"sub_id": map[string]any{"format": "email", "email": "other@example.com"}}); code != http.StatusNoContent {
		t.Fatalf("ES256 client: HTTP %d %v", code, out)
	}
	cmds := e.commands()
	if len(cmds) != 3 {
		t.Fatalf("%d commands, want 3", len(cmds))
	}
	c := cmds[0]
	if c.Target.Kind != schemas.TargetUser || c.Target.UserID != "00u1dnq5S0CfjlkpABCD" || !c.Target.IncludeDownscoped ||
		c.Action != schemas.ActionRevokeAndReverify || c.Mode != schemas.ModeEnforce || c.Reason.RuleID != gtr.RuleID || c.Issuer != "gtr:okta" {
		t.Errorf("command %+v", c)
	}
	if cmds[1].Target.UserID != "user@example.com" || cmds[2].Issuer != "gtr:siem" {
		t.Errorf("commands %+v %+v", cmds[1].Target, cmds[2])
	}

	replayed := e.okta(nil)
	if code, _ := e.post(replayed, true, map[string]any{"sub_id": issSub}); code != http.StatusNoContent {
		t.Fatal("first use refused")
	}
	for name, tc := range map[string]struct {
		jwt    string
		bearer bool
		body   map[string]any
		status int
	}{
		"replayed jti":          {replayed, true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"no authentication":     {"", true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"expired":               {e.okta(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-2 * time.Minute).Unix() }), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"no exp":                {e.okta(func(c map[string]any) { delete(c, "exp") }), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"too long-lived":        {e.okta(func(c map[string]any) { c["exp"] = e.clock.Now().Add(2 * time.Hour).Unix() }), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"wrong aud":             {e.okta(func(c map[string]any) { c["aud"] = "https://other.example.com/global-token-revocation" }), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"aud with a query":      {e.okta(func(c map[string]any) { c["aud"] = e.url + "?x=1" }), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"bad signature":         {e.jwt(evilKey(), jose.RS256, "okta-1", nil), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"unknown client":        {e.okta(func(c map[string]any) { c["iss"] = "https://unknown.example.com" }), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"wrong client sub":      {e.okta(func(c map[string]any) { c["sub"] = "0oaSOMEONEELSE" }), true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized},
		"no sub_id":             {e.okta(nil), true, map[string]any{}, http.StatusBadRequest},
		"unsupported format":    {e.okta(nil), true, map[string]any{"sub_id": map[string]any{"format": "phone_number", "phone_number": "+12065550100"}}, http.StatusBadRequest},
		"malformed sub_id":      {e.okta(nil), true, map[string]any{"sub_id": map[string]any{"format": "email"}}, http.StatusBadRequest},
		"another issuer's user": {e.okta(nil), true, map[string]any{"sub_id": map[string]any{"format": "iss_sub", "iss": "https://other.okta.com", "sub": "00u9"}}, http.StatusForbidden},
		"format not granted":    {siem, true, map[string]any{"sub_id": issSub}, http.StatusUnauthorized}, // siem's JWT was used above
		"unable to log out":     {e.okta(nil), true, map[string]any{"sub_id": map[string]any{"format": "opaque", "id": "bad\u0007id"}}, http.StatusUnprocessableEntity},
	} {
		code, out := e.post(tc.jwt, tc.bearer, tc.body)
		if code != tc.status {
			t.Errorf("%s: HTTP %d %v, want %d", name, code, out, tc.status)
		}
	}
	siem2 := e.jwt(siemKey(), jose.ES256, "siem-1", func(c map[string]any) { c["iss"], c["sub"] = siemIssuer, "siem" })
	if code, out := e.post(siem2, true, map[string]any{"sub_id": issSub}); code != http.StatusForbidden {
		t.Errorf("a format the client may not use: HTTP %d %v", code, out)
	}
	wrongType := e.okta(nil)
	b, _ := json.Marshal(map[string]any{"sub_id": issSub, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", "client_assertion": wrongType})
	resp, err := http.Post(e.url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong client_assertion_type: HTTP %d", resp.StatusCode)
	}
	if resp, err := http.Get(e.url); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	}
	if n := len(e.commands()); n != 4 {
		t.Errorf("%d commands after the refusals, want 4", n)
	}
	if e.keyFetch.Load() != 1 {
		t.Errorf("the client's JWKS was fetched %d times, want once", e.keyFetch.Load())
	}
}

// With a users file, a subject it does not list is 404 (section 3.4.2),
// and the ones it lists map to their user ids.
func TestUsersFile(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.yaml")
	write(t, users, `users:
  - user_id: alice
    subjects:
      - {format: email, email: alice@example.com}
      - {format: iss_sub, iss: "`+oktaIssuer+`", sub: 00u1alice}
`)
	e := newEnv(t, func(c *gtr.Config) { c.UsersFile = users })
	if code, out := e.post(e.okta(nil), true, map[string]any{"sub_id": map[string]any{"format": "iss_sub", "iss": oktaIssuer, "sub": "00u1alice"}}); code != http.StatusNoContent {
		t.Fatalf("listed subject: HTTP %d %v", code, out)
	}
	if code, _ := e.post(e.okta(nil), true, map[string]any{"sub_id": map[string]any{"format": "email", "email": "nobody@example.com"}}); code != http.StatusNotFound {
		t.Errorf("unlisted subject: HTTP %d", code)
	}
	if cmds := e.commands(); len(cmds) != 1 || cmds[0].Target.UserID != "alice" {
		t.Errorf("commands %+v", cmds)
	}
}

// End to end: Okta's Universal Logout request for a user becomes a
// command the consumer carries out at the reference token API: the
// user's tokens, downscoped ones included, are revoked.
func TestUniversalLogoutRevokesAtTheTokenAPI(t *testing.T) {
	e := newEnv(t, nil)
	api := servertest.Start(t)
	raw, _ := api.Issue(t, server.IssueRequest{UserID: "00u1dnq5S0CfjlkpABCD", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	child := api.Exchange(t, servertest.AppID, servertest.AppSecret, raw, nil)
	other, _ := api.Issue(t, server.IssueRequest{UserID: "someone-else", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	client, err := idp.New(idp.Config{
		Issuer: api.Issuer, ClientID: servertest.RevokerID, ClientSecret: config.NewSecret(servertest.RevokerSecret),
		AuthMethod: idp.AuthClientSecretBasic, Timeout: 5 * time.Second, Admin: idp.ReferencePreset(api.URL, api.AdminToken),
	}, service.NewHTTPClient(8), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if code, out := e.post(e.okta(nil), true, map[string]any{"sub_id": issSub}); code != http.StatusNoContent {
		t.Fatalf("HTTP %d %v", code, out)
	}
	cmd := e.commands()[0]

	e.kafka.CreateTopic(t, schemas.TopicDLQ, 1)
	cfg := service.DefaultConfig()
	cfg.Reader = e.kafka.ReaderConfig(schemas.TopicRevokeCommands, "gtr-consumer")
	cfg.Reader.Component = "consumer"
	cfg.Reader.DLQTopic = schemas.TopicDLQ
	store := memstore.New()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, cfg, service.Deps{Store: store, TokenAPI: client, Keyring: schemas.NewKeyring(e.signer.Public())}, zerolog.Nop())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	testenv.Eventually(t, "command "+cmd.CommandID+" carried out", func() bool {
		rows, err := store.CommandRows(t.Context(), cmd.CommandID)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(rows, func(r schemas.AuditRow) bool { return r.Step.Revoked() })
	})
	for name, tok := range map[string]string{"the user's token": raw, "its downscoped child": child} {
		in, err := client.Introspect(t.Context(), tok)
		if err != nil || in.Active {
			t.Errorf("%s still active (%v)", name, err)
		}
	}
	if in, err := client.Introspect(t.Context(), other); err != nil || !in.Active {
		t.Errorf("another user's token was revoked (%v)", err)
	}
}
