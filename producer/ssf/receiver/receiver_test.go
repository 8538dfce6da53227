package receiver_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/builder"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/event"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/schemes/caep"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/signing"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/subject"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/token"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/producer/ssf/receiver"
	"github.com/revoked-dev/revoked/schemas"
)

const (
	audience  = "https://revoked.example.com/ssf"
	keyID     = "idp-key-2026"
	pushToken = "push-token-given-to-the-idp-0123"
)

var (
	idpKey  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	evilKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// riscEvent is a RISC 1.0 event for SGNL's library, which defines CAEP
// and SSF events only: its event.Event interface takes any type, and the
// library builds and signs the SET around it.
type riscEvent struct {
	typ     event.EventType
	payload map[string]any
}

func (e *riscEvent) Type() event.EventType           { return e.typ }
func (e *riscEvent) Validate() error                 { return nil }
func (e *riscEvent) Payload() any                    { return e.payload }
func (e *riscEvent) MarshalJSON() ([]byte, error)    { return json.Marshal(e.payload) }
func (e *riscEvent) UnmarshalJSON(data []byte) error { return json.Unmarshal(data, &e.payload) }

// idp is a transmitter as far as a receiver sees it: its SSF
// configuration and JWKS, and SETs built and signed by SGNL's library.
type idp struct {
	url    string
	signer *signing.DefaultSigner
	seq    atomic.Int64
	clock  clockwork.Clock
}

func newIdP(t *testing.T, clock clockwork.Clock) *idp {
	t.Helper()
	d := &idp{clock: clock}
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	d.url = ts.URL
	mux.HandleFunc("GET /.well-known/ssf-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(ssf.TransmitterMetadata{SpecVersion: "1_0", Issuer: d.url, JWKSURI: d.url + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &idpKey().PublicKey, KeyID: keyID, Algorithm: "RS256", Use: "sig"}}})
	})
	s, err := signing.NewSigner(idpKey(), signing.WithKeyID(keyID))
	if err != nil {
		t.Fatal(err)
	}
	d.signer = s
	return d
}

// set builds and signs a SET with the library.
func (d *idp) set(t *testing.T, ev event.Event, sub subject.Subject, mod ...func(*token.SecEvent)) string {
	t.Helper()
	b := builder.NewBuilder(builder.WithDefaultIssuer(d.url))
	se := b.NewSecEvent().WithAudience(audience).WithSubject(sub).WithEvent(ev).
		WithID(fmt.Sprintf("jti-%d", d.seq.Add(1))).WithTransactionID("txn-42")
	se.IssuedAt.Time = d.clock.Now()
	for _, m := range mod {
		m(se)
	}
	signed, err := d.signer.Sign(se)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// setup starts a broker and a receiver of d's SETs that makes commands
// of every event it maps.
func setup(t *testing.T, d *idp, clock clockwork.Clock, mod func(*receiver.Config)) (*receiver.Receiver, *kafkatest.Cluster, *schemas.Signer) {
	t.Helper()
	k := kafkatest.New(t, schemas.TopicAuditEvents, schemas.TopicRevokeCommands)
	w, err := kafkax.NewWriter(k.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := schemas.NewSigner(priv)
	cfg := receiver.DefaultConfig()
	cfg.Issuer, cfg.Audience, cfg.AllowHTTP = d.url, audience, true
	cfg.Commands = []string{"session-revoked=revoke", "sessions-revoked=revoke", "account-disabled=revoke",
		"credential-compromise=revoke_and_reverify", "credential-change=revoke"}
	if mod != nil {
		mod(&cfg)
	}
	r, err := receiver.New(cfg, receiver.Deps{Publisher: w, Signer: signer, Clock: clock, Registry: prometheus.NewRegistry()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return r, k, signer
}

// push POSTs a SET to the receiver's push endpoint.
func push(t *testing.T, url, set, bearer string) (int, ssf.ErrorBody) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(set))
	req.Header.Set("Content-Type", ssf.ContentTypeSET)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e ssf.ErrorBody
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &e)
	return resp.StatusCode, e
}

func email(t *testing.T, addr string) subject.Subject {
	t.Helper()
	s, err := subject.NewEmailSubject(addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every CAEP and RISC event type the receiver maps, built and signed by
// SGNL's library and pushed (RFC 8935), is accepted (202) and published
// as an AuditEvent, and as a signed command where configured; an
// iss_sub subject in the library's spelling names the user by its sub.
func TestPushAcceptsEveryEventTypeFromSGNL(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Now().Truncate(time.Second))
	d := newIdP(t, clk)
	r, k, signer := setup(t, d, clk, nil)
	ts := httptest.NewServer(r.PushHandler(config.NewSecret(pushToken)))
	t.Cleanup(ts.Close)

	issSub, err := subject.NewIssuerSubSubject(d.url, "00u1abcdEFGH")
	if err != nil {
		t.Fatal(err)
	}
	sessionRevoked := caep.NewSessionRevokedEvent().WithReasonAdmin("en", "Landspeed Policy Violation: C076E82F").
		WithInitiatingEntity(caep.InitiatingEntityPolicy).WithEventTimestamp(clk.Now().Add(-time.Minute).Unix())
	// The library's NewCredentialChangeEvent types the event as
	// assurance-level-change; SetType puts the credential-change URI back.
	credentialChange := caep.NewCredentialChangeEvent(caep.CredentialTypePassword, caep.ChangeTypeUpdate).WithReasonAdmin("en", "password reset by the help desk")
	credentialChange.SetType(caep.EventTypeCredentialChange)
	fido := caep.NewCredentialChangeEvent(caep.CredentialTypeFIDO2Roaming, caep.ChangeTypeDelete)
	fido.SetType(caep.EventTypeCredentialChange)
	claims := caep.NewTokenClaimsChangeEvent().WithClaim("role", "ro-admin").WithClaim("trusted_network", false)
	for _, tc := range []struct {
		name    string
		ev      event.Event
		sub     subject.Subject
		want    schemas.EventType
		user    string
		command bool
	}{
		{"session-revoked", sessionRevoked, email(t, "jane.smith@example.com"), schemas.EventSessionRevoked, "jane.smith@example.com", true},
		{"credential-change password", credentialChange, issSub, schemas.EventPasswordChanged, "00u1abcdEFGH", true},
		{"credential-change fido2", fido, email(t, "jane.smith@example.com"), schemas.EventCredentialChanged, "jane.smith@example.com", true},
		{"token-claims-change", claims, email(t, "jane.smith@example.com"), schemas.EventTokenClaimsChanged, "jane.smith@example.com", false},
		{"account-disabled", &riscEvent{typ: ssf.EventAccountDisabled, payload: map[string]any{"reason": "hijacking"}}, email(t, "joe@example.com"), schemas.EventAccountDisabled, "joe@example.com", true},
		{"credential-compromise", &riscEvent{typ: ssf.EventCredentialCompromise, payload: map[string]any{"credential_type": "password", "reason_admin": map[string]string{"en": "found in a breach corpus"}}}, email(t, "joe@example.com"), schemas.EventCredentialCompromised, "joe@example.com", true},
		{"sessions-revoked", &riscEvent{typ: ssf.EventSessionsRevoked, payload: map[string]any{}}, email(t, "joe@example.com"), schemas.EventSessionRevoked, "joe@example.com", true},
	} {
		set := d.set(t, tc.ev, tc.sub)
		if code, e := push(t, ts.URL, set, pushToken); code != http.StatusAccepted {
			t.Fatalf("%s: HTTP %d %+v", tc.name, code, e)
		}
		recs := k.Records(t, schemas.TopicAuditEvents)
		ev, err := schemas.DecodeEvent(recs[len(recs)-1].Value)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if ev.Type != tc.want || ev.UserID != tc.user || ev.Source != "ssf" || ev.Attrs["ssf.iss"] != d.url || ev.Attrs["ssf.txn"] != "txn-42" {
			t.Errorf("%s: event %+v", tc.name, ev)
		}
		cmds := k.Records(t, schemas.TopicRevokeCommands)
		last := cmds[len(cmds)-1]
		cmd, err := schemas.DecodeCommand(last.Value)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(cmd.Reason.Evidence, ev.ID); got != tc.command {
			t.Errorf("%s: command made %v, want %v", tc.name, got, tc.command)
		}
		if tc.command {
			// Signed as the consumer verifies commands.
			kr := schemas.NewKeyring(signer.Public())
			var kid, sig string
			for _, h := range last.Headers {
				switch h.Key {
				case schemas.HeaderKeyID:
					kid = string(h.Value)
				case schemas.HeaderSignature:
					sig = string(h.Value)
				}
			}
			if err := kr.Verify(kid, sig, last.Value); err != nil {
				t.Errorf("%s: command signature: %v", tc.name, err)
			}
			if cmd.Target.Kind != schemas.TargetUser || cmd.Target.UserID != tc.user || !cmd.Target.IncludeDownscoped || !strings.HasPrefix(cmd.Reason.RuleID, "ssf_") {
				t.Errorf("%s: command %+v", tc.name, cmd)
			}
		}
	}
	evs := k.Records(t, schemas.TopicAuditEvents)
	if len(evs) != 7 {
		t.Errorf("%d events, want 7", len(evs))
	}
	first, _ := schemas.DecodeEvent(evs[0].Value)
	if first.Attrs["ssf.reason_admin"] != "Landspeed Policy Violation: C076E82F" || first.Attrs["ssf.initiating_entity"] != "policy" || !first.Time.Equal(clk.Now().Add(-time.Minute)) {
		t.Errorf("session-revoked event %+v", first)
	}
}

// What the receiver refuses, and how it says so (RFC 8935 section 2.4).
func TestPushRefusals(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Now().Truncate(time.Second))
	d := newIdP(t, clk)
	r, k, _ := setup(t, d, clk, nil)
	ts := httptest.NewServer(r.PushHandler(config.NewSecret(pushToken)))
	t.Cleanup(ts.Close)
	ev := func() event.Event { return caep.NewSessionRevokedEvent().WithReasonAdmin("en", "test") }
	alice := email(t, "alice@example.com")

	good := d.set(t, ev(), alice)
	if code, e := push(t, ts.URL, good, ""); code != http.StatusUnauthorized || e.Err != ssf.ErrCodeAuthenticationFailed {
		t.Errorf("no bearer: %d %+v", code, e)
	}
	evil, _ := signing.NewSigner(evilKey(), signing.WithKeyID(keyID))
	se := builder.NewBuilder(builder.WithDefaultIssuer(d.url)).NewSecEvent().WithAudience(audience).WithSubject(alice).WithEvent(ev()).WithID("forged-1")
	forged, _ := evil.Sign(se)
	for name, tc := range map[string]struct {
		set  string
		code string
	}{
		"bad signature":   {forged, ssf.ErrCodeInvalidKey},
		"wrong issuer":    {d.set(t, ev(), alice, func(s *token.SecEvent) { s.Issuer = "https://evil.example.com" }), ssf.ErrCodeInvalidIssuer},
		"wrong audience":  {d.set(t, ev(), alice, func(s *token.SecEvent) { s.Audience = []string{"https://someone-else.example.com"} }), ssf.ErrCodeInvalidAudience},
		"stale":           {d.set(t, ev(), alice, func(s *token.SecEvent) { s.IssuedAt.Time = clk.Now().Add(-48 * time.Hour) }), ssf.ErrCodeInvalidRequest},
		"from the future": {d.set(t, ev(), alice, func(s *token.SecEvent) { s.IssuedAt.Time = clk.Now().Add(time.Hour) }), ssf.ErrCodeInvalidRequest},
		"foreign issuer's user": {d.set(t, ev(), func() subject.Subject {
			s, _ := subject.NewIssuerSubSubject("https://other-idp.example.com", "00u9")
			return s
		}()), ssf.ErrCodeAccessDenied},
		"not a JWT": {"hello", ssf.ErrCodeInvalidRequest},
	} {
		if code, e := push(t, ts.URL, tc.set, pushToken); code != http.StatusBadRequest || e.Err != tc.code || e.Description == "" {
			t.Errorf("%s: HTTP %d %+v, want 400 %s", name, code, e, tc.code)
		}
	}
	if n := len(k.Records(t, schemas.TopicAuditEvents)); n != 0 {
		t.Fatalf("refused SETs published %d events", n)
	}

	// Replay: the same SET again is taken (202) and published once;
	// another SET under the same jti is refused.
	for range 2 {
		if code, e := push(t, ts.URL, good, pushToken); code != http.StatusAccepted {
			t.Fatalf("HTTP %d %+v", code, e)
		}
	}
	if n := len(k.Records(t, schemas.TopicAuditEvents)); n != 1 {
		t.Errorf("a SET pushed twice published %d events, want 1", n)
	}
	jti := mustClaims(t, good).ID
	reused := d.set(t, caep.NewSessionRevokedEvent().WithReasonAdmin("en", "another"), alice, func(s *token.SecEvent) { s.ID = jti })
	if code, e := push(t, ts.URL, reused, pushToken); code != http.StatusBadRequest || e.Err != ssf.ErrCodeInvalidRequest {
		t.Errorf("jti reused: HTTP %d %+v", code, e)
	}
}

func payloadOf(t *testing.T, set string) []byte {
	t.Helper()
	obj, err := jose.ParseSignedCompact(set, ssf.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	return obj.UnsafePayloadWithoutVerification()
}

// Poll delivery (RFC 8936): the receiver polls, acknowledges the SETs it
// published in its next request, reports the one it refuses in setErrs,
// and acknowledges what it did before it stops.
func TestPollAcknowledges(t *testing.T) {
	clk := clockwork.NewFakeClockAt(time.Now().Truncate(time.Second))
	d := newIdP(t, clk)
	r, k, _ := setup(t, d, clk, nil)
	good := d.set(t, caep.NewSessionRevokedEvent().WithReasonAdmin("en", "test"), email(t, "pat@example.com"))
	evil, _ := signing.NewSigner(evilKey(), signing.WithKeyID(keyID))
	bad, _ := evil.Sign(builder.NewBuilder(builder.WithDefaultIssuer(d.url)).NewSecEvent().WithAudience(audience).
		WithSubject(email(t, "pat@example.com")).WithEvent(caep.NewSessionRevokedEvent()).WithID("forged-2"))
	goodJTI := mustClaims(t, good).ID

	type pollReq struct {
		MaxEvents         int                      `json:"maxEvents"`
		ReturnImmediately bool                     `json:"returnImmediately"`
		Ack               []string                 `json:"ack"`
		SetErrs           map[string]ssf.ErrorBody `json:"setErrs"`
		auth              string
	}
	reqs := make(chan pollReq, 16)
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var pr pollReq
		_ = json.NewDecoder(req.Body).Decode(&pr)
		pr.auth = req.Header.Get("Authorization")
		reqs <- pr
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) == 1 {
			_ = json.NewEncoder(w).Encode(map[string]any{"sets": map[string]string{goodJTI: good, "forged-2": bad}})
			return
		}
		fmt.Fprint(w, `{"sets":{}}`)
	}))
	t.Cleanup(ts.Close)
	p, err := r.NewPoller(receiver.PollConfig{URL: ts.URL, MaxEvents: 10, Interval: time.Minute, Timeout: 10 * time.Second, RetryMin: time.Second, RetryMax: time.Minute},
		config.NewSecret("poll-token-0123456789"), ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	next := func() pollReq {
		select {
		case pr := <-reqs:
			return pr
		case <-time.After(20 * time.Second):
			t.Fatal("no poll")
		}
		return pollReq{}
	}
	first := next()
	if first.auth != "Bearer poll-token-0123456789" || first.MaxEvents != 10 || !first.ReturnImmediately || len(first.Ack) != 0 {
		t.Errorf("first poll %+v", first)
	}
	second := next()
	if !slices.Equal(second.Ack, []string{goodJTI}) || second.SetErrs["forged-2"].Err != ssf.ErrCodeInvalidKey {
		t.Errorf("second poll acks %v, errs %v", second.Ack, second.SetErrs)
	}
	if n := len(k.Records(t, schemas.TopicAuditEvents)); n != 1 {
		t.Errorf("%d events published, want 1", n)
	}
	// Empty answer: the poller waits its interval on the clock.
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	third := next()
	if len(third.Ack) != 0 || len(third.SetErrs) != 0 {
		t.Errorf("acknowledged again: %+v", third)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func mustClaims(t *testing.T, set string) ssf.Claims {
	t.Helper()
	c, err := ssf.ParseClaims(payloadOf(t, set))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
