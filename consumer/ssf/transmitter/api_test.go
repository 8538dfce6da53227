package transmitter_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/revoked-dev/revoked/consumer/ssf/transmitter"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/ssf"
)

// The transmitter configuration (SSF 1.0 section 7, with what the CAEP
// interoperability profile requires of it) and the JWKS it names.
func TestMetadataAndJWKS(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	e.start(cfg, nil)
	md, err := ssf.Discover(t.Context(), http.DefaultClient, cfg.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if md.SpecVersion != "1_0" || md.Issuer != cfg.Issuer || md.JWKSURI != e.url+transmitter.PathJWKS ||
		!slices.Equal(md.DeliveryMethodsSupported, []string{ssf.DeliveryPush, ssf.DeliveryPoll}) ||
		md.ConfigurationEndpoint != e.url+transmitter.PathStream || md.StatusEndpoint != e.url+transmitter.PathStatus ||
		md.AddSubjectEndpoint != e.url+transmitter.PathAddSubject || md.RemoveSubjectEndpoint != e.url+transmitter.PathRemoveSubject ||
		md.VerificationEndpoint != e.url+transmitter.PathVerify || md.DefaultSubjects != "ALL" ||
		!slices.Contains(md.AuthorizationSchemes, ssf.AuthorizationScheme{SpecURN: "urn:ietf:rfc:6749"}) {
		t.Errorf("metadata %+v", md)
	}
	resp, err := http.Get(md.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	signer := mustSigner(t)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != signer.KeyID() || !set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "RS256" || set.Keys[0].Use != "sig" {
		t.Errorf("JWKS %s", body)
	}
}

// Stream configuration CRUD, ownership, status, subjects and
// verification, each as SSF 1.0 section 8 says.
func TestStreamManagement(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	run := e.start(cfg, e.store)

	if code := e.call(http.MethodGet, transmitter.PathStream, "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d", code)
	}
	if code := e.call(http.MethodGet, transmitter.PathStream, "not-a-receiver-token", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: HTTP %d", code)
	}
	var list []transmitter.StreamConfig
	if code := e.call(http.MethodGet, transmitter.PathStream, alphaToken, nil, &list); code != http.StatusOK || len(list) != 0 {
		t.Fatalf("no streams yet: HTTP %d, %d streams", code, len(list))
	}
	if code := e.call(http.MethodPost, transmitter.PathStream, alphaToken, map[string]any{"delivery": map[string]any{"method": "urn:example:carrier-pigeon"}}, nil); code != http.StatusBadRequest {
		t.Errorf("unknown delivery method: HTTP %d", code)
	}
	if code := e.call(http.MethodPost, transmitter.PathStream, alphaToken, map[string]any{"delivery": map[string]any{"method": ssf.DeliveryPush}}, nil); code != http.StatusBadRequest {
		t.Errorf("push without endpoint: HTTP %d", code)
	}
	sc := e.createStream(alphaToken, map[string]any{"events_requested": []string{ssf.EventSessionRevoked}})
	if !slices.Equal(sc.EventsDelivered, []string{ssf.EventSessionRevoked}) || len(sc.EventsSupported) != 3 {
		t.Errorf("events: %+v", sc)
	}
	// Another receiver sees neither the stream nor its status.
	for _, path := range []string{transmitter.PathStream, transmitter.PathStatus} {
		if code := e.call(http.MethodGet, path+"?stream_id="+sc.StreamID, betaToken, nil, nil); code != http.StatusNotFound {
			t.Errorf("beta reading alpha's %s: HTTP %d", path, code)
		}
	}
	if code := e.call(http.MethodPost, transmitter.PathPoll+sc.StreamID, betaToken, transmitter.PollRequest{ReturnImmediately: true}, nil); code != http.StatusNotFound {
		t.Errorf("beta polling alpha's stream: HTTP %d", code)
	}
	var got transmitter.StreamConfig
	if code := e.call(http.MethodGet, transmitter.PathStream+"?stream_id="+sc.StreamID, alphaToken, nil, &got); code != http.StatusOK || got.StreamID != sc.StreamID {
		t.Fatalf("read: HTTP %d %+v", code, got)
	}

	// PATCH changes what it names; a transmitter-supplied property that
	// does not match is refused; PUT replaces the receiver's properties.
	if code := e.call(http.MethodPatch, transmitter.PathStream, alphaToken, map[string]any{"stream_id": sc.StreamID, "description": "renamed", "aud": sc.Aud}, &got); code != http.StatusOK || got.Description != "renamed" || len(got.EventsRequested) != 1 {
		t.Errorf("patch: HTTP %d %+v", code, got)
	}
	if code := e.call(http.MethodPatch, transmitter.PathStream, alphaToken, map[string]any{"stream_id": sc.StreamID, "iss": "https://elsewhere.example.com"}, nil); code != http.StatusBadRequest {
		t.Errorf("patch of iss: HTTP %d", code)
	}
	var replaced transmitter.StreamConfig
	if code := e.call(http.MethodPut, transmitter.PathStream, alphaToken, map[string]any{"stream_id": sc.StreamID, "delivery": map[string]any{"method": ssf.DeliveryPoll}}, &replaced); code != http.StatusOK || replaced.Description != "" || len(replaced.EventsRequested) != 0 || len(replaced.EventsDelivered) != 3 {
		t.Errorf("put: HTTP %d %+v", code, replaced)
	}

	// Status: pause holds SETs, which a poll then does not return;
	// enabling delivers them.
	var st transmitter.StatusBody
	if code := e.call(http.MethodPost, transmitter.PathStatus, alphaToken, transmitter.StatusBody{StreamID: sc.StreamID, Status: "paused", Reason: "maintenance"}, &st); code != http.StatusOK || st.Status != "paused" || st.Reason != "maintenance" {
		t.Fatalf("pause: HTTP %d %+v", code, st)
	}
	if code := e.call(http.MethodPost, transmitter.PathStatus, alphaToken, transmitter.StatusBody{StreamID: sc.StreamID, Status: "asleep"}, nil); code != http.StatusBadRequest {
		t.Errorf("unknown status: HTTP %d", code)
	}
	held := e.revocation("dave@example.com", "impossible_travel")
	e.publish(held)
	if resp := e.poll(sc.StreamID, alphaToken, transmitter.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Fatalf("a paused stream served %d SETs", len(resp.Sets))
	}
	if code := e.call(http.MethodPost, transmitter.PathStatus, alphaToken, transmitter.StatusBody{StreamID: sc.StreamID, Status: "enabled"}, nil); code != http.StatusOK {
		t.Fatalf("enable: HTTP %d", code)
	}
	resp := e.poll(sc.StreamID, alphaToken, transmitter.PollRequest{})
	if len(resp.Sets) != 1 {
		t.Fatalf("after enabling: %d SETs, want the held one", len(resp.Sets))
	}
	var ack []string
	for jti := range resp.Sets {
		ack = append(ack, jti)
	}
	e.poll(sc.StreamID, alphaToken, transmitter.PollRequest{ReturnImmediately: true, Ack: ack})
	e.waitOutcomes(held.CommandID, 1)

	// Subjects: a removed subject's revocations are not sent; adding it
	// back sends them again.
	sub := map[string]any{"format": "email", "email": "erin@example.com"}
	if code := e.call(http.MethodPost, transmitter.PathRemoveSubject, alphaToken, map[string]any{"stream_id": sc.StreamID, "subject": sub}, nil); code != http.StatusNoContent {
		t.Fatalf("remove subject: HTTP %d", code)
	}
	if code := e.call(http.MethodPost, transmitter.PathAddSubject, alphaToken, map[string]any{"stream_id": sc.StreamID, "subject": map[string]any{"format": "email"}}, nil); code != http.StatusBadRequest {
		t.Errorf("add an invalid subject: HTTP %d", code)
	}
	skipped := e.revocation("erin@example.com", "impossible_travel")
	e.publish(skipped)
	e.committed(cfg, sc.StreamID)
	if resp := e.poll(sc.StreamID, alphaToken, transmitter.PollRequest{ReturnImmediately: true}); len(resp.Sets) != 0 {
		t.Errorf("a removed subject's SET was served")
	}
	if code := e.call(http.MethodPost, transmitter.PathAddSubject, alphaToken, map[string]any{"stream_id": sc.StreamID, "subject": sub, "verified": true}, nil); code != http.StatusOK {
		t.Fatalf("add subject: HTTP %d", code)
	}
	again := e.revocation("erin@example.com", "impossible_travel")
	e.publish(again)
	if resp := e.poll(sc.StreamID, alphaToken, transmitter.PollRequest{}); len(resp.Sets) != 1 {
		t.Errorf("after adding the subject back: %d SETs", len(resp.Sets))
	}
	// The held SET signalled, the removed subject's skipped.
	if got := ops.CounterSum(run.reg, "revoked_ssf_transmitter_sets_total"); got != 2 {
		t.Errorf("%v SET outcomes counted, want 2", got)
	}

	// Verification: a verification SET with the state on the stream; a
	// second request sooner than min_verification_interval gets 429.
	if code := e.call(http.MethodPost, transmitter.PathVerify, alphaToken, map[string]any{"stream_id": sc.StreamID, "state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="}, nil); code != http.StatusNoContent {
		t.Fatalf("verify: HTTP %d", code)
	}
	if code := e.call(http.MethodPost, transmitter.PathVerify, alphaToken, map[string]any{"stream_id": sc.StreamID}, nil); code != http.StatusTooManyRequests {
		t.Errorf("second verification at once: HTTP %d", code)
	}
	resp = e.poll(sc.StreamID, alphaToken, transmitter.PollRequest{ReturnImmediately: true})
	var verified bool
	keys := ssf.StaticKeys{Set: ssf.JWKS(mustSigner(t).PublicJWK())}
	for _, s := range resp.Sets {
		c, err := ssf.VerifySET(t.Context(), s, keys)
		if err != nil {
			t.Fatal(err)
		}
		var v ssf.Verification
		if ok, _ := c.Event(ssf.EventVerification, &v); ok {
			verified = v.State == "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo=" && c.SubID.Format == ssf.FormatOpaque && c.SubID.ID == sc.StreamID
		}
	}
	if !verified {
		t.Errorf("no verification SET with the state among %d", len(resp.Sets))
	}

	// Delete: gone for good, also across a restart.
	if code := e.call(http.MethodDelete, transmitter.PathStream+"?stream_id="+sc.StreamID, alphaToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: HTTP %d", code)
	}
	if code := e.call(http.MethodGet, transmitter.PathStream+"?stream_id="+sc.StreamID, alphaToken, nil, nil); code != http.StatusNotFound {
		t.Errorf("read after delete: HTTP %d", code)
	}
	fi, err := os.Stat(cfg.StateFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: %v %v", fi, err)
	}
}
