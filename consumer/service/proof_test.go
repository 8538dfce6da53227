package service

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/schemas"
)

// hydraLike is a token API that behaves as Ory Hydra does where it
// surprises: RFC 7009 from a client other than the token's own answers
// 200 and revokes nothing; the session call ends the login session and
// leaves its tokens active; the subject-wide call leaves a
// client-credentials token (subject = client id) active; the client call
// revokes every token of the client. Introspection tells the truth. It has
// no listing and no counts.
type hydraLike struct {
	mu     sync.Mutex
	tokens map[string]*fakeToken // raw → token
	self   string                // the consumer's client id
	esc    idp.Escalation
	calls  []string
}

type fakeToken struct {
	subject, client, session string
	consent                  bool // issued under a user's consent (authorization code)
	active                   bool
}

func (a *hydraLike) log(c string) { a.calls = append(a.calls, c) }

func (a *hydraLike) RevokeToken(_ context.Context, raw, _ string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log("revoke_token")
	if t, ok := a.tokens[raw]; ok && t.client == a.self {
		t.active = false
	}
	return nil
}

func (a *hydraLike) Introspect(_ context.Context, raw string) (idp.Introspection, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tokens[raw]
	if !ok || !t.active {
		return idp.Introspection{}, nil
	}
	return idp.Introspection{Active: true, Subject: t.subject, ClientID: t.client}, nil
}

func (a *hydraLike) each(f func(*fakeToken) bool) {
	for _, t := range a.tokens {
		if f(t) {
			t.active = false
		}
	}
}

func (a *hydraLike) RevokeSubject(_ context.Context, user string) (idp.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log("subject")
	a.each(func(t *fakeToken) bool { return t.consent && t.subject == user })
	return idp.Result{Status: 204}, nil
}

func (a *hydraLike) RevokeSubjectClient(_ context.Context, user, client string) (idp.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log("subject_client")
	a.each(func(t *fakeToken) bool { return t.consent && t.subject == user && t.client == client })
	return idp.Result{Status: 204}, nil
}

func (a *hydraLike) RevokeClient(_ context.Context, client string) (idp.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log("client")
	a.each(func(t *fakeToken) bool { return t.client == client })
	return idp.Result{Status: 204}, nil
}

func (a *hydraLike) RevokeSession(context.Context, string) (idp.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log("session")
	return idp.Result{Status: 204}, nil
}

func (a *hydraLike) LookupClient(_ context.Context, id string) (idp.ClientInfo, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tokens {
		if t.client == id {
			return idp.ClientInfo{GrantTypes: []string{"authorization_code", "refresh_token"}}, true, nil
		}
	}
	return idp.ClientInfo{}, false, nil
}

func (a *hydraLike) AccessOnly() bool { return true }

func (a *hydraLike) RevokeTokenID(context.Context, string) (idp.Result, error) {
	return idp.Result{}, idp.ErrNotConfigured
}

func (a *hydraLike) ListSubjectTokens(context.Context, string) ([]idp.TokenInfo, error) {
	return nil, idp.ErrNotConfigured
}

func (a *hydraLike) LoginOnly(kind string) bool { return kind == "session" }
func (a *hydraLike) Escalation(kind string) ([]string, int, time.Duration) {
	return a.esc.For(kind), 0, 0
}
func (a *hydraLike) Lists() bool        { return false }
func (a *hydraLike) Counts(string) bool { return false }

func (a *hydraLike) active(raw string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokens[raw].active
}

func newHydraLike(esc idp.Escalation) *hydraLike {
	return &hydraLike{self: "revoked-consumer", esc: esc, tokens: map[string]*fakeToken{
		"at-alice-app":  {subject: "alice", client: "app", session: "sid-1", consent: true, active: true},
		"at-alice-web":  {subject: "alice", client: "web", session: "sid-1", consent: true, active: true},
		"at-bob-app":    {subject: "bob", client: "app", consent: true, active: true},
		"at-batch-self": {subject: "batch", client: "batch", active: true},
	}}
}

// TestOutcomesTellTheTruth drives every case where a token API answers
// success without revoking: the outcome follows the proof, never the
// answer, and the configured fallbacks make the revocation take.
func TestOutcomesTellTheTruth(t *testing.T) {
	ctx := context.Background()
	token := func(raw string) *schemas.RevokeCommand {
		return &schemas.RevokeCommand{CommandID: "c-" + raw, Target: schemas.Target{Kind: schemas.TargetToken, TokenID: schemas.Fingerprint(raw)}}
	}
	t.Run("logout by another client, no fallback", func(t *testing.T) {
		api := newHydraLike(idp.Escalation{})
		out, err := NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, token("at-alice-app"), "at-alice-app")
		if err != nil {
			t.Fatal(err)
		}
		if out.Verdict != schemas.StepNotEffective || !api.active("at-alice-app") || !strings.Contains(out.Proof, "active=true") {
			t.Fatalf("outcome %+v, token active %v", out, api.active("at-alice-app"))
		}
	})
	t.Run("logout by another client, subject_client fallback", func(t *testing.T) {
		api := newHydraLike(idp.Escalation{Token: []string{idp.EscalateSubjectClient, idp.EscalateClient}})
		out, err := NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, token("at-alice-app"), "at-alice-app")
		if err != nil {
			t.Fatal(err)
		}
		if out.Verdict != schemas.StepConfirmed || api.active("at-alice-app") || out.Revoked != 1 || !out.CountKnown {
			t.Fatalf("outcome %+v", out)
		}
		if !api.active("at-alice-web") || !api.active("at-bob-app") {
			t.Error("the fallback revoked more than the user's tokens of that client")
		}
		if strings.Join(api.calls, ",") != "revoke_token,subject_client" {
			t.Errorf("calls %v", api.calls)
		}
	})
	t.Run("client-credentials token: client fallback only for its own token", func(t *testing.T) {
		api := newHydraLike(idp.Escalation{Token: []string{idp.EscalateSubjectClient, idp.EscalateClient}})
		out, err := NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, token("at-batch-self"), "at-batch-self")
		if err != nil {
			t.Fatal(err)
		}
		if out.Verdict != schemas.StepConfirmed || api.active("at-batch-self") {
			t.Fatalf("outcome %+v", out)
		}
		// A user's token never takes the client fallback.
		api = newHydraLike(idp.Escalation{Token: []string{idp.EscalateClient}})
		out, _ = NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, token("at-alice-app"), "at-alice-app")
		if out.Verdict != schemas.StepNotEffective || !api.active("at-bob-app") || !strings.Contains(out.Response, "not its client's own") {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("session call that only ends the login", func(t *testing.T) {
		api := newHydraLike(idp.Escalation{})
		cmd := &schemas.RevokeCommand{CommandID: "c-s", Target: schemas.Target{Kind: schemas.TargetSession, SessionID: "sid-1", UserID: "alice"}}
		out, err := NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, cmd, "")
		if err != nil {
			t.Fatal(err)
		}
		if out.Verdict != schemas.StepNotEffective || !strings.Contains(out.Proof, "leaves issued tokens active") {
			t.Fatalf("outcome %+v", out)
		}
		// With the subject fallback the user's tokens go; there is no
		// listing to prove it, so the outcome is unconfirmed.
		api = newHydraLike(idp.Escalation{Session: []string{idp.EscalateSubject}})
		out, err = NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, cmd, "")
		if err != nil {
			t.Fatal(err)
		}
		if out.Verdict != schemas.StepUnconfirmed || api.active("at-alice-app") || api.active("at-alice-web") || !api.active("at-bob-app") {
			t.Fatalf("outcome %+v", out)
		}
	})
	t.Run("a subject that is a client", func(t *testing.T) {
		api := newHydraLike(idp.Escalation{})
		cmd := &schemas.RevokeCommand{CommandID: "c-u", Target: schemas.Target{Kind: schemas.TargetUser, UserID: "batch"}}
		out, err := NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, cmd, "")
		if err != nil {
			t.Fatal(err)
		}
		if out.Verdict != schemas.StepUnconfirmed || api.active("at-batch-self") || !strings.Contains(out.Response, "the subject is a client") {
			t.Fatalf("outcome %+v, token active %v", out, api.active("at-batch-self"))
		}
		// A plain user is not looked up as a client twice, nor gets the
		// client call.
		api = newHydraLike(idp.Escalation{})
		cmd.Target.UserID = "alice"
		if _, err := NewIdPRevoker(api, DefaultRetryConfig()).Revoke(ctx, cmd, ""); err != nil {
			t.Fatal(err)
		}
		if strings.Join(api.calls, ",") != "subject" || !api.active("at-bob-app") {
			t.Errorf("calls %v", api.calls)
		}
	})
}

// TestListProofIgnoresTokensIssuedAfter revokes a user through a token API
// that issues the user a new token right after the revocation: the list
// still proves the revocation, and a token left active is not effective.
func TestListProofIgnoresTokensIssuedAfter(t *testing.T) {
	api := &flatAPI{tokens: map[string]idp.TokenInfo{}, users: map[string]string{}}
	api.add("u1", "old", "")
	cmd := &schemas.RevokeCommand{CommandID: "c", Target: schemas.Target{Kind: schemas.TargetUser, UserID: "u1"}}
	out, err := NewIdPRevoker(&reissuingAPI{flatAPI: api}, DefaultRetryConfig()).Revoke(context.Background(), cmd, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := api.tokens["new"]; !ok {
		t.Fatal("no token issued after the revocation")
	}
	if out.Verdict != schemas.StepConfirmed || !strings.Contains(out.Proof, "1 issued since the revocation") {
		t.Fatalf("outcome %+v", out)
	}
	delete(api.tokens, "new")
	// A token the list still shows live, issued before the revocation,
	// makes it not effective.
	stuck := &stuckAPI{flatAPI: api}
	api.add("u1", "stuck", "")
	out, err = NewIdPRevoker(stuck, DefaultRetryConfig()).Revoke(context.Background(), cmd, "")
	if err != nil {
		t.Fatal(err)
	}
	if out.Verdict != schemas.StepNotEffective || !strings.Contains(out.Proof, "1 of tokens of the subject still live") {
		t.Fatalf("outcome %+v", out)
	}
}

// stuckAPI answers success to every revocation and revokes nothing.
type stuckAPI struct{ *flatAPI }

func (a *stuckAPI) RevokeTokenID(context.Context, string) (idp.Result, error) {
	return idp.Result{Status: 200, Revoked: 1, CountKnown: true}, nil
}

// reissuingAPI issues the user a new token the moment one is revoked, as a
// user (or an attacker) signing in again would.
type reissuingAPI struct{ *flatAPI }

func (a *reissuingAPI) RevokeTokenID(ctx context.Context, id string) (idp.Result, error) {
	res, err := a.flatAPI.RevokeTokenID(ctx, id)
	a.mu.Lock()
	a.tokens["new"] = idp.TokenInfo{TokenID: "new", IssuedAt: time.Now()}
	a.users["new"] = a.users[id]
	a.mu.Unlock()
	return res, err
}

// flakyProof fails the first fails calls of each proof call (introspection
// and the client lookup) with err, then answers as hydraLike does.
type flakyProof struct {
	*hydraLike
	err           error
	fails         int
	intro, lookup int
}

func (a *flakyProof) Introspect(ctx context.Context, raw string) (idp.Introspection, error) {
	if a.intro++; a.intro <= a.fails {
		return idp.Introspection{}, a.err
	}
	return a.hydraLike.Introspect(ctx, raw)
}

func (a *flakyProof) LookupClient(ctx context.Context, id string) (idp.ClientInfo, bool, error) {
	if a.lookup++; a.lookup <= a.fails {
		return idp.ClientInfo{}, false, a.err
	}
	return a.hydraLike.LookupClient(ctx, id)
}

// TestProofCallsAreRetried: a proof call that fails transiently is made
// again on the revocation's schedule, so one slow answer does not turn a
// revocation that did not take into an unconfirmed one; a proof call that
// keeps failing, or fails for good, leaves the outcome unconfirmed with
// the failure in the proof.
func TestProofCallsAreRetried(t *testing.T) {
	timeout := &idp.HTTPError{Op: "introspect", Status: 503}
	refused := &idp.HTTPError{Op: "introspect", Status: 401}
	byClient := &schemas.RevokeCommand{CommandID: "c1", Target: schemas.Target{Kind: schemas.TargetClient, ClientID: "app"}}
	byToken := &schemas.RevokeCommand{CommandID: "c2", Target: schemas.Target{Kind: schemas.TargetToken, TokenID: "fp"}}
	for _, c := range []struct {
		name    string
		err     error
		fails   int
		cmd     *schemas.RevokeCommand
		want    schemas.Step
		calls   int // proof calls made
		inProof string
	}{
		{"client lookup slow twice", timeout, 2, byClient, schemas.StepNotEffective, 3, "refresh tokens active"},
		{"introspection slow twice", timeout, 2, byToken, schemas.StepConfirmed, 3, "active=false"},
		{"client lookup slow every time", timeout, 100, byClient, schemas.StepUnconfirmed, 5, "looking the client up failed: after 5 attempts: idp: introspect: HTTP 503"},
		{"introspection refused", refused, 100, byToken, schemas.StepUnconfirmed, 1, "introspection failed: idp: introspect: HTTP 401"},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := &flakyProof{hydraLike: newHydraLike(idp.Escalation{}), err: c.err, fails: c.fails}
			api.tokens["at-self"] = &fakeToken{subject: "svc", client: api.self, active: true}
			r := NewIdPRevoker(api, RetryConfig{MaxAttempts: 5, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
			waits := 0
			r.sleep = func(context.Context, time.Duration) error { waits++; return nil }
			raw := ""
			if c.cmd.Target.Kind == schemas.TargetToken {
				raw = "at-self"
			}
			out, err := r.Revoke(t.Context(), c.cmd, raw)
			if err != nil {
				t.Fatal(err)
			}
			calls := api.intro + api.lookup
			if out.Verdict != c.want || calls != c.calls || waits != c.calls-1 || !strings.Contains(out.Proof, c.inProof) {
				t.Fatalf("verdict %s after %d proof calls and %d waits, proof %q; want %s after %d, proof with %q",
					out.Verdict, calls, waits, out.Proof, c.want, c.calls, c.inProof)
			}
		})
	}
}
