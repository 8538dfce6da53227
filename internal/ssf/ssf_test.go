package ssf_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"

	"github.com/revoked-dev/revoked/internal/ssf"
)

var (
	rsaKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	otherKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func signer(t *testing.T, key *rsa.PrivateKey) *ssf.Signer {
	t.Helper()
	s, err := ssf.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func header(t *testing.T, compact string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(compact, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// RFC 9493 and SSF subjects: what each format requires, what is written,
// and what the field's variants are read as.
func TestSubjects(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: `{"format":"email","email":"user@example.com"}`, want: `{"email":"user@example.com","format":"email"}`},
		{in: `{"format":"iss_sub","iss":"https://idp.example.com/","sub":"145234573"}`, want: `{"format":"iss_sub","iss":"https://idp.example.com/","sub":"145234573"}`},
		// The spelling of drafts before RFC 9493 (and of SGNL's library).
		{in: `{"format":"iss_sub","issuer":"https://idp.example.com/","sub":"145234573"}`, want: `{"format":"iss_sub","iss":"https://idp.example.com/","sub":"145234573"}`},
		// Google's RISC transmitter names the format subject_type.
		{in: `{"subject_type":"email","email":"user@example.com"}`, want: `{"email":"user@example.com","format":"email"}`},
		{in: `{"format":"opaque","id":"11112222333344445555"}`, want: `{"format":"opaque","id":"11112222333344445555"}`},
		{in: `{"format":"account","uri":"acct:example.user@service.example.com"}`, want: `{"format":"account","uri":"acct:example.user@service.example.com"}`},
		{in: `{"format":"complex","user":{"format":"iss_sub","iss":"https://idp.example.com/123456789/","sub":"99beb27c"},"session":{"format":"opaque","id":"dMTlD|1600802906337.16|16008.16"},"tenant":{"format":"opaque","id":"123456789"},"x-vendor":{"a":1}}`,
			want: `{"format":"complex","session":{"format":"opaque","id":"dMTlD|1600802906337.16|16008.16"},"tenant":{"format":"opaque","id":"123456789"},"user":{"format":"iss_sub","iss":"https://idp.example.com/123456789/","sub":"99beb27c"}}`},
		{in: `{"format":"aliases","identifiers":[{"format":"email","email":"user@example.com"},{"format":"phone_number","phone_number":"+12065550100"}]}`,
			want: `{"format":"aliases","identifiers":[{"email":"user@example.com","format":"email"},{"format":"phone_number","phone_number":"+12065550100"}]}`},
		{in: `{"format":"email","email":"not an address"}`, err: true},
		{in: `{"format":"email"}`, err: true},
		{in: `{"format":"iss_sub","sub":"x"}`, err: true},
		{in: `{"format":"opaque","id":42}`, err: true},
		{in: `{"format":"complex"}`, err: true},
		{in: `{"format":"complex","user":{"format":"complex","user":{"format":"opaque","id":"x"}}}`, err: true},
		{in: `{"format":"nonsense","id":"x"}`, err: true},
		{in: `{"id":"x"}`, err: true},
		{in: `"user@example.com"`, err: true},
	} {
		var s ssf.Subject
		err := json.Unmarshal([]byte(tc.in), &s)
		if tc.err {
			if err == nil {
				t.Errorf("%s: accepted", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		got, _ := json.Marshal(s)
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// SSF 1.0 section 8.1.3.1 subject matching, and a simple subject against
// a complex one's user.
func TestSubjectMatching(t *testing.T) {
	alice := ssf.EmailSubject("alice@example.com")
	bob := ssf.EmailSubject("bob@example.com")
	tenant := ssf.OpaqueSubject("example-a38h4792-uw2")
	sess := ssf.OpaqueSubject("s-1")
	if !alice.Matches(ssf.EmailSubject("alice@example.com")) || alice.Matches(bob) {
		t.Error("simple subjects match when identical only")
	}
	aliceSession := ssf.ComplexSubject(map[string]*ssf.Subject{"user": &alice, "session": &sess})
	if !aliceSession.Matches(alice) || !alice.Matches(aliceSession) || aliceSession.Matches(bob) {
		t.Error("a simple subject is the user of a complex one")
	}
	// The spec's examples: a less restrictive and a more restrictive
	// added subject match; a differing component does not.
	added := ssf.ComplexSubject(map[string]*ssf.Subject{"tenant": &tenant})
	event := ssf.ComplexSubject(map[string]*ssf.Subject{"tenant": &tenant, "user": &alice})
	if !event.Matches(added) {
		t.Error("less restrictive complex subject should match")
	}
	other := ssf.OpaqueSubject("other-tenant")
	if event.Matches(ssf.ComplexSubject(map[string]*ssf.Subject{"tenant": &other, "user": &alice})) {
		t.Error("differing tenant should not match")
	}
}

func claims(t *testing.T, iat time.Time) ssf.Claims {
	t.Helper()
	c, err := ssf.NewClaims("https://tr.example.com", "jti-1", iat, ssf.Audience{"https://rx.example.com"}, "cmd_1",
		ssf.EmailSubject("alice@example.com"), ssf.EventSessionRevoked,
		ssf.SessionRevoked{CAEPCommon: ssf.CAEPCommon{EventTimestamp: iat.Unix(), ReasonAdmin: map[string]string{"en": "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A SET signed here verifies with the JWKS, is explicitly typed, and
// is the same bytes when signed again (RS256 is deterministic).
func TestSignVerify(t *testing.T) {
	s := signer(t, rsaKey())
	now := time.Unix(1_800_000_000, 0)
	set, err := s.Sign(claims(t, now))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.Sign(claims(t, now))
	if set != again {
		t.Error("signing the same claims twice differs")
	}
	h := header(t, set)
	if h["typ"] != "secevent+jwt" || h["alg"] != "RS256" || h["kid"] != s.KeyID() {
		t.Errorf("header %v", h)
	}
	keys := ssf.StaticKeys{Set: ssf.JWKS(s.PublicJWK())}
	c, err := ssf.VerifySET(t.Context(), set, keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ssf.Expect{Issuer: "https://tr.example.com", Audience: "https://rx.example.com", MaxAge: time.Hour, Skew: time.Minute, Now: now}); err != nil {
		t.Fatal(err)
	}
	var sr ssf.SessionRevoked
	if ok, err := c.Event(ssf.EventSessionRevoked, &sr); !ok || err != nil || sr.ReasonAdmin["en"] != "test" {
		t.Fatalf("event: %v %v %+v", ok, err, sr)
	}
	// The payload: no exp, no sub, sub_id and txn present.
	var raw map[string]json.RawMessage
	parts := strings.Split(set, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(p, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"exp", "sub"} {
		if _, ok := raw[k]; ok {
			t.Errorf("SET carries %s", k)
		}
	}
	for _, k := range []string{"iss", "jti", "iat", "aud", "txn", "sub_id", "events"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("SET lacks %s", k)
		}
	}

	// Tampering, another key, a missing typ.
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(p), "alice", "mallory", 1))) + "." + parts[2]
	if _, err := ssf.VerifySET(t.Context(), tampered, keys); code(err) != ssf.ErrCodeInvalidKey {
		t.Errorf("tampered: %v", err)
	}
	forged, _ := signer(t, otherKey()).Sign(claims(t, now))
	if _, err := ssf.VerifySET(t.Context(), forged, keys); code(err) != ssf.ErrCodeInvalidKey {
		t.Errorf("other key: %v", err)
	}
	untyped := signJOSE(t, rsaKey(), s.KeyID(), nil, claims(t, now))
	if _, err := ssf.VerifySET(t.Context(), untyped, keys); code(err) != ssf.ErrCodeInvalidRequest {
		t.Errorf("untyped: %v", err)
	}
	if _, err := ssf.VerifySET(t.Context(), "not.a.jwt", keys); code(err) != ssf.ErrCodeInvalidRequest {
		t.Errorf("garbage: %v", err)
	}
	if _, err := ssf.NewSigner(mustRSA(1024)); err == nil {
		t.Error("a 1024-bit key was accepted")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es, err := ssf.NewSigner(ec)
	if err != nil || es.Algorithm() != "ES256" {
		t.Errorf("P-256: %v", err)
	}
}

func code(err error) string {
	var se *ssf.SETError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// signJOSE signs claims with headers of the test's choosing.
func signJOSE(t *testing.T, key *rsa.PrivateKey, kid string, extra map[jose.HeaderKey]any, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := js.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

// Claims checks: issuer, audience, freshness, expiry, jti, events.
func TestClaimsCheck(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	exp := ssf.Expect{Issuer: "https://tr.example.com", Audience: "https://rx.example.com", MaxAge: time.Hour, Skew: time.Minute, Now: now}
	for name, tc := range map[string]struct {
		mod  func(*ssf.Claims)
		code string
	}{
		"ok":             {mod: func(*ssf.Claims) {}},
		"wrong issuer":   {mod: func(c *ssf.Claims) { c.Issuer = "https://evil.example.com" }, code: ssf.ErrCodeInvalidIssuer},
		"wrong audience": {mod: func(c *ssf.Claims) { c.Audience = ssf.Audience{"https://other.example.com"} }, code: ssf.ErrCodeInvalidAudience},
		"no audience":    {mod: func(c *ssf.Claims) { c.Audience = nil }, code: ssf.ErrCodeInvalidAudience},
		"no jti":         {mod: func(c *ssf.Claims) { c.ID = "" }, code: ssf.ErrCodeInvalidRequest},
		"future":         {mod: func(c *ssf.Claims) { c.IssuedAt = ssf.NumericDate(now.Add(2 * time.Minute).Unix()) }, code: ssf.ErrCodeInvalidRequest},
		"stale":          {mod: func(c *ssf.Claims) { c.IssuedAt = ssf.NumericDate(now.Add(-2 * time.Hour).Unix()) }, code: ssf.ErrCodeInvalidRequest},
		"expired":        {mod: func(c *ssf.Claims) { c.Expires = ssf.NumericDate(now.Add(-2 * time.Minute).Unix()) }, code: ssf.ErrCodeInvalidRequest},
		"no events":      {mod: func(c *ssf.Claims) { c.Events = nil }, code: ssf.ErrCodeInvalidRequest},
		"array audience": {mod: func(c *ssf.Claims) { c.Audience = ssf.Audience{"a", "https://rx.example.com"} }},
	} {
		c := claims(t, now)
		tc.mod(&c)
		if got := code(c.Check(exp)); got != tc.code {
			t.Errorf("%s: code %q, want %q", name, got, tc.code)
		}
	}
}

func TestReplay(t *testing.T) {
	r := ssf.NewReplay(2)
	now := time.Unix(1_800_000_000, 0)
	d1, d2 := ssf.Digest("set-1"), ssf.Digest("set-2")
	if seen, _ := r.Seen("iss|a", d1, now); seen {
		t.Fatal("seen before added")
	}
	if err := r.Add("iss|a", d1, now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if seen, same := r.Seen("iss|a", d1, now); !seen || !same {
		t.Error("the same SET again is a redelivery")
	}
	if seen, same := r.Seen("iss|a", d2, now); !seen || same {
		t.Error("another SET with the jti is a conflict")
	}
	if err := r.Add("iss|b", d2, now.Add(2*time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := r.Add("iss|c", d2, now.Add(time.Minute), now); !errors.Is(err, ssf.ErrReplayFull) {
		t.Errorf("full: %v", err)
	}
	// Expired entries make room and are forgotten.
	later := now.Add(90 * time.Second)
	if seen, _ := r.Seen("iss|a", d1, later); seen {
		t.Error("expired entry still seen")
	}
	if err := r.Add("iss|c", d2, later.Add(time.Minute), later); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

// A transmitter's configuration is discovered at the well-known path
// (with the issuer's path after it), must name the same issuer, and its
// JWKS is cached, fetched again for an unknown kid at most once per
// MinRefresh.
func TestDiscoveryAndKeyCache(t *testing.T) {
	a, b := signer(t, rsaKey()), signer(t, otherKey())
	var current atomic.Pointer[jose.JSONWebKeySet]
	set := ssf.JWKS(a.PublicJWK())
	current.Store(&set)
	var fetches atomic.Int32
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ssf-configuration/tenant1", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(ssf.TransmitterMetadata{Issuer: issuer, JWKSURI: issuer + "/jwks"})
	})
	mux.HandleFunc("GET /tenant1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_ = json.NewEncoder(w).Encode(current.Load())
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	issuer = ts.URL + "/tenant1"

	u, err := ssf.WellKnownURL(issuer+"/", ssf.WellKnownSSF)
	if err != nil || u != ts.URL+"/.well-known/ssf-configuration/tenant1" {
		t.Fatalf("well-known URL %q %v", u, err)
	}
	if _, err := ssf.Discover(t.Context(), ts.Client(), ts.URL+"/elsewhere"); err == nil {
		t.Error("discovery of an issuer without configuration succeeded")
	}

	clk := clockwork.NewFakeClock()
	keys := ssf.NewDiscoveredKeys(issuer, ts.Client(), clk)
	ctx := context.Background()
	if k, err := keys.Keys(ctx, a.KeyID()); err != nil || len(k) != 1 {
		t.Fatalf("keys: %v %v", k, err)
	}
	if k, _ := keys.Keys(ctx, a.KeyID()); len(k) != 1 || fetches.Load() != 1 {
		t.Fatalf("cached: %d fetches", fetches.Load())
	}
	// Rotation: b's kid is unknown; one fetch finds it.
	rotated := ssf.JWKS(b.PublicJWK())
	current.Store(&rotated)
	clk.Advance(ssf.DefaultKeysMinRefresh)
	if k, _ := keys.Keys(ctx, b.KeyID()); len(k) != 1 || fetches.Load() != 2 {
		t.Fatalf("rotation: %v, %d fetches", k, fetches.Load())
	}
	// An unknown kid again within MinRefresh does not fetch.
	if k, _ := keys.Keys(ctx, "unknown"); len(k) != 0 || fetches.Load() != 2 {
		t.Fatalf("unknown kid: %v, %d fetches", k, fetches.Load())
	}
	// A JWKS with private material is refused.
	if _, err := ssf.ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)); err == nil {
		t.Error("symmetric key accepted in a JWKS")
	}
}

// Subjects to user ids: the identity mapping, an issuer not accepted, a
// users file.
func TestUsers(t *testing.T) {
	id, err := ssf.LoadUsers("")
	if err != nil {
		t.Fatal(err)
	}
	issuers := []string{"https://idp.example.com/"}
	alice := ssf.EmailSubject("alice@example.com")
	sess := ssf.OpaqueSubject("s-9")
	for _, tc := range []struct {
		sub           ssf.Subject
		user, session string
		err           error
	}{
		{sub: alice, user: "alice@example.com"},
		{sub: ssf.IssSubSubject("https://idp.example.com/", "00u1"), user: "00u1"},
		{sub: ssf.IssSubSubject("https://other.example.com/", "00u1"), err: ssf.ErrForeignIssuer},
		{sub: ssf.OpaqueSubject("u-7"), user: "u-7"},
		{sub: ssf.Subject{Format: ssf.FormatAccount, URI: "acct:bob@service.example.com"}, user: "bob@service.example.com"},
		{sub: ssf.ComplexSubject(map[string]*ssf.Subject{"user": &alice, "session": &sess}), user: "alice@example.com", session: "s-9"},
		{sub: ssf.Subject{Format: ssf.FormatAliases, Identifiers: []ssf.Subject{{Format: ssf.FormatPhone, Phone: "+12065550100"}, alice}}, user: "alice@example.com"},
	} {
		user, session, err := id.UserID(tc.sub, issuers)
		if !errors.Is(err, tc.err) || user != tc.user || session != tc.session {
			t.Errorf("%s: %q %q %v", tc.sub.Key(), user, session, err)
		}
	}
	if _, _, err := id.UserID(ssf.Subject{Format: ssf.FormatPhone, Phone: "+12065550100"}, issuers); err == nil {
		t.Error("a phone number named a user")
	}

	path := t.TempDir() + "/users.yaml"
	if err := os.WriteFile(path, []byte(`users:
  - user_id: alice
    subjects:
      - {format: email, email: alice@example.com}
      - {format: iss_sub, iss: "https://idp.example.com/", sub: 00u1}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := ssf.LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if user, _, err := file.UserID(ssf.IssSubSubject("https://idp.example.com/", "00u1"), issuers); err != nil || user != "alice" {
		t.Errorf("listed: %q %v", user, err)
	}
	if _, _, err := file.UserID(ssf.EmailSubject("bob@example.com"), issuers); !errors.Is(err, ssf.ErrUnknownUser) {
		t.Errorf("unlisted: %v", err)
	}
}
