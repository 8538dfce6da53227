package transmitter_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sgnl-ai/caep.dev/secevent/pkg/parser"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/schemes/caep"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/subject"

	"github.com/revoked-dev/revoked/consumer/ssf/transmitter"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/schemas"
)

// sgnl is SGNL's SET parser, an implementation outside this project,
// verifying against the transmitter's JWKS endpoint.
func (e *env) sgnl(cfg transmitter.Config, aud string) *parser.Parser {
	return parser.NewParser(parser.WithJWKSURL(e.url+transmitter.PathJWKS), parser.WithExpectedIssuer(cfg.Issuer), parser.WithExpectedAudience(aud))
}

// A revocation caused by a password change reaches a push stream as a
// session-revoked and a credential-change SET, which SGNL's library
// verifies. The receiver answers 503 at first; the transmitter is
// restarted while it waits to retry, and its successor delivers the same
// SET: nothing is committed before the receiver took it.
func TestPushRetriesThroughARestartAndSGNLVerifies(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	rx := newPushReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	first := e.start(cfg, e.store)
	sc := e.createStream(alphaToken, map[string]any{
		"delivery":         map[string]any{"method": ssf.DeliveryPush, "endpoint_url": rx.url, "authorization_header": "Bearer push-secret-for-alpha"},
		"events_requested": []string{ssf.EventSessionRevoked, ssf.EventCredentialChange, "urn:example:unknown"},
		"description":      "alpha's push stream",
	})
	if sc.Delivery.Method != ssf.DeliveryPush || !slices.Equal(sc.EventsDelivered, []string{ssf.EventSessionRevoked, ssf.EventCredentialChange}) {
		t.Fatalf("stream %+v", sc)
	}
	rev := e.revocation("alice@example.com", "token_after_password_change")
	e.publish(rev)

	p1 := rx.next(t) // 503
	first.stop()
	if got := e.kafka.Committed(t, cfg.Kafka.GroupID+"."+sc.StreamID, transmitter.DefaultTopic); len(got) > 0 {
		for _, off := range got {
			if off > 0 {
				t.Fatalf("committed %v before the receiver took the SET", got)
			}
		}
	}
	e.start(cfg, e.store)
	p2 := rx.next(t) // 503 again, then a backoff on the fake clock
	e.advancePastRetry(cfg)
	p3 := rx.next(t) // 202: session-revoked
	p4 := rx.next(t) // 202: credential-change
	if p1.body != p2.body || p2.body != p3.body {
		t.Fatal("a retried SET is not the same bytes")
	}
	for _, p := range []pushed{p1, p3, p4} {
		if p.contentType != ssf.ContentTypeSET || p.auth != "Bearer push-secret-for-alpha" {
			t.Errorf("push headers: content-type %q, authorization %q", p.contentType, p.auth)
		}
	}
	if h := joseHeader(t, p3.body); h["typ"] != ssf.TypSecEvent || h["alg"] != "RS256" || h["kid"] == "" {
		t.Errorf("JOSE header %v", h)
	}

	p := e.sgnl(cfg, alphaAud)
	sr, err := p.ParseSecEvent(p3.body)
	if err != nil {
		t.Fatalf("SGNL's parser refused the session-revoked SET: %v", err)
	}
	ev, ok := sr.Event.(*caep.SessionRevokedEvent)
	if !ok || sr.Event.Type() != caep.EventTypeSessionRevoked {
		t.Fatalf("event %T %s", sr.Event, sr.Event.Type())
	}
	if reason, _ := ev.GetReasonAdmin("en"); !strings.Contains(reason, "token_after_password_change") || !strings.Contains(reason, rev.CommandID) {
		t.Errorf("reason_admin %q", reason)
	}
	if ts, _ := ev.GetEventTimestamp(); ts != rev.Time.Unix() {
		t.Errorf("event_timestamp %d, want %d", ts, rev.Time.Unix())
	}
	if ie, _ := ev.GetInitiatingEntity(); ie != caep.InitiatingEntityPolicy {
		t.Errorf("initiating_entity %v", ie)
	}
	if es, ok := sr.Subject.(*subject.EmailSubject); !ok || es.Email() != "alice@example.com" {
		t.Errorf("sub_id %#v", sr.Subject)
	}
	if sr.TransactionID == nil || *sr.TransactionID != rev.CommandID {
		t.Errorf("txn %v", sr.TransactionID)
	}

	cc, err := p.ParseSecEvent(p4.body)
	if err != nil {
		t.Fatalf("SGNL's parser refused the credential-change SET: %v", err)
	}
	cev, ok := cc.Event.(*caep.CredentialChangeEvent)
	if !ok || cev.GetCredentialType() != caep.CredentialTypePassword || cev.GetChangeType() != caep.ChangeTypeUpdate {
		t.Fatalf("credential-change %#v", cc.Event)
	}
	if reason, _ := cev.GetReasonAdmin("en"); reason == "" {
		t.Error("credential-change without reason_admin")
	}
	if cc.TransactionID == nil || *cc.TransactionID != *sr.TransactionID || cc.ID == sr.ID {
		t.Errorf("the two SETs of one cause: txn %v and %v, jti %s and %s", cc.TransactionID, sr.TransactionID, cc.ID, sr.ID)
	}

	rows := e.waitOutcomes(rev.CommandID, 2)
	for _, r := range rows {
		if r.Step != schemas.StepSignalled || r.Chain != cfg.Actor || r.Actor != cfg.Actor || r.UserID != rev.UserID || r.RuleID != rev.RuleID {
			t.Errorf("outcome row %+v", r)
		}
		if strings.Contains(r.Detail, "session-revoked") && r.Attempts != 2 {
			t.Errorf("session-revoked took %d attempts of the second transmitter, want 2: %s", r.Attempts, r.Detail)
		}
	}
	e.committed(cfg, sc.StreamID)
	if got := ops.CounterSum(first.reg, "revoked_ssf_transmitter_pushes_total"); got != 1 {
		t.Errorf("first transmitter made %v pushes, want 1", got)
	}
}

// A receiver's 400 refuses a SET for good: it is recorded as failed, with
// the receiver's error, and not retried.
func TestPushRefusalIsRecorded(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	rx := newPushReceiver(t, func(int) int { return http.StatusBadRequest })
	e.start(cfg, e.store)
	sc := e.createStream(alphaToken, map[string]any{"delivery": map[string]any{"method": ssf.DeliveryPush, "endpoint_url": rx.url}})
	rev := e.revocation("carol@example.com", "impossible_travel")
	e.publish(rev)
	rx.next(t)
	rows := e.waitOutcomes(rev.CommandID, 1)
	if rows[0].Step != schemas.StepSignalFailed || !strings.Contains(rows[0].Detail, "invalid_audience") || rows[0].Attempts != 1 {
		t.Errorf("outcome %+v", rows[0])
	}
	e.committed(cfg, sc.StreamID)
	if n := rx.n.Load(); n != 1 {
		t.Errorf("%d pushes, want 1", n)
	}
}

// Poll delivery (RFC 8936): a long poll returns the SETs as they come;
// a SET served and not acknowledged is not served again until
// redeliver-after, then served again identically; acknowledged and
// reported SETs leave the queue and are recorded, and only then is the
// revocation committed. SGNL's library verifies the polled SETs.
func TestPollAckSemanticsAndSGNLVerifies(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	e.start(cfg, e.store)
	sc := e.createStream(betaToken, map[string]any{"description": "beta polls"})
	if sc.Delivery.Method != ssf.DeliveryPoll || sc.Delivery.EndpointURL != e.url+transmitter.PathPoll+sc.StreamID {
		t.Fatalf("a stream created without delivery is a poll stream at the transmitter: %+v", sc.Delivery)
	}
	if !slices.Equal(sc.Aud, ssf.Audience{betaAud}) || sc.Iss != cfg.Issuer {
		t.Errorf("stream iss %q aud %v", sc.Iss, sc.Aud)
	}
	byEmail := e.revocation("bob@example.com", "impossible_travel")
	byID := e.revocation("00u1abcdEFGH5678", "brute_force_success")
	e.publish(byEmail, byID)

	sets := map[string]string{}
	for range 3 {
		resp := e.poll(sc.StreamID, betaToken, transmitter.PollRequest{})
		for jti, s := range resp.Sets {
			sets[jti] = s
		}
		if len(sets) == 3 {
			break
		}
	}
	if len(sets) != 3 {
		t.Fatalf("polled %d SETs, want 3 (session-revoked twice, credential-change once)", len(sets))
	}
	p := e.sgnl(cfg, betaAud)
	keys := ssf.StaticKeys{Set: ssf.JWKS(mustSigner(t).PublicJWK())}
	var emailJTI, credJTI, issSubJTI string
	for jti, s := range sets {
		c, err := ssf.VerifySET(t.Context(), s, keys)
		if err != nil || c.ID != jti {
			t.Fatalf("SET %s: %v", jti, err)
		}
		switch {
		case c.SubID.Format == ssf.FormatEmail:
			emailJTI = jti
			se, err := p.ParseSecEvent(s)
			if err != nil {
				t.Fatalf("SGNL's parser refused the polled SET: %v", err)
			}
			if se.ID != jti || se.Event.Type() != caep.EventTypeSessionRevoked {
				t.Errorf("polled SET %s: %s", se.ID, se.Event.Type())
			}
		case c.Events[ssf.EventCredentialChange] != nil:
			credJTI = jti
		default:
			issSubJTI = jti
			// RFC 9493 iss_sub: "iss" and "sub", nothing else.
			sub := payload(t, s)["sub_id"].(map[string]any)
			if len(sub) != 3 || sub["iss"] != idpIssuer || sub["sub"] != byID.UserID || sub["format"] != "iss_sub" {
				t.Errorf("iss_sub subject %v", sub)
			}
		}
	}
	if emailJTI == "" || credJTI == "" || issSubJTI == "" {
		t.Fatalf("SETs: email %q, credential-change %q, iss_sub %q", emailJTI, credJTI, issSubJTI)
	}

	// Not acknowledged: not served again before redeliver-after.
	if resp := e.poll(sc.StreamID, betaToken, transmitter.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Fatalf("served again before redeliver-after: %d", len(resp.Sets))
	}
	e.clock.Advance(cfg.Poll.RedeliverAfter)
	one := 1
	resp := e.poll(sc.StreamID, betaToken, transmitter.PollRequest{ReturnImmediately: true, MaxEvents: &one})
	if len(resp.Sets) != 1 || !resp.MoreAvailable {
		t.Fatalf("maxEvents 1: %d SETs, moreAvailable %v", len(resp.Sets), resp.MoreAvailable)
	}
	resp = e.poll(sc.StreamID, betaToken, transmitter.PollRequest{ReturnImmediately: true})
	if len(resp.Sets) != 2 || resp.MoreAvailable {
		t.Fatalf("the rest: %d SETs, moreAvailable %v", len(resp.Sets), resp.MoreAvailable)
	}
	for jti, s := range resp.Sets {
		if sets[jti] != s {
			t.Errorf("SET %s served again differs", jti)
		}
	}
	if got := e.kafka.Committed(t, cfg.Kafka.GroupID+"."+sc.StreamID, transmitter.DefaultTopic); len(got) > 0 {
		for _, off := range got {
			if off > 0 {
				t.Fatalf("committed %v before acknowledgements", got)
			}
		}
	}

	// Acknowledge two and report one; maxEvents 0 is acknowledge-only.
	zero := 0
	resp = e.poll(sc.StreamID, betaToken, transmitter.PollRequest{
		MaxEvents: &zero, ReturnImmediately: true, Ack: []string{emailJTI, issSubJTI},
		SetErrs: map[string]ssf.ErrorBody{credJTI: {Err: ssf.ErrCodeInvalidKey, Description: "key not trusted here"}},
	})
	if len(resp.Sets) != 0 {
		t.Fatalf("acknowledge-only poll returned %d SETs", len(resp.Sets))
	}
	if rows := e.waitOutcomes(byEmail.CommandID, 1); rows[0].Step != schemas.StepSignalled {
		t.Errorf("acknowledged SET recorded as %s", rows[0].Step)
	}
	rows := e.waitOutcomes(byID.CommandID, 2)
	var got []string
	for _, r := range rows {
		got = append(got, string(r.Step)+":"+r.Detail)
	}
	slices.Sort(got)
	if len(got) != 2 || !strings.HasPrefix(got[0], "signal_failed:credential-change") || !strings.Contains(got[0], "invalid_key") || !strings.HasPrefix(got[1], "signalled:session-revoked") {
		t.Errorf("outcomes %q", got)
	}
	e.committed(cfg, sc.StreamID)
	e.clock.Advance(cfg.Poll.RedeliverAfter)
	if resp := e.poll(sc.StreamID, betaToken, transmitter.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Errorf("settled SETs served again: %d", len(resp.Sets))
	}
}

func mustSigner(t *testing.T) *ssf.Signer {
	t.Helper()
	s, err := ssf.NewSigner(signingKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
