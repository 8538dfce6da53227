package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
)

// After require-reverification the subject's tokens are revoked and every
// way to a new one is refused with invalid_grant (RFC 6749 §5.2) until the
// subject re-verified; other subjects are untouched; repeating the call is
// harmless and keeps the first moment.
func TestReverification(t *testing.T) {
	env := servertest.Start(t)
	a, _ := issue(t, env, "alice", servertest.AppID, "s1", "files.read")
	ac := mustExchange(t, env, asApp, a, nil)
	bob, _ := issue(t, env, "bob", servertest.AppID, "s2")

	var st server.ReverificationResponse
	env.Admin(t, http.MethodGet, "/admin/subjects/alice/reverification", nil, &st)
	if st.Required || st.Since != nil {
		t.Fatalf("before: %+v", st)
	}
	var req server.ReverificationResponse
	env.Admin(t, http.MethodPost, "/admin/subjects/alice/require-reverification", []byte(`{"command_id":"cmd-1"}`), &req)
	if !req.Required || req.Since == nil || req.Revoked != 2 {
		t.Fatalf("require: %+v", req)
	}
	for _, tok := range []string{a, ac} {
		if active(t, env, tok) {
			t.Error("alice's token outlived require-reverification")
		}
	}
	if !active(t, env, bob) {
		t.Error("bob's token revoked")
	}

	refused := func(r response) {
		t.Helper()
		wantOAuthError(t, r, http.StatusBadRequest, server.ErrCodeInvalidGrant)
		if d, _ := r.json(t)["error_description"].(string); !strings.Contains(d, "re-verification required") {
			t.Errorf("error_description %q", d)
		}
	}
	// The login stand-in (admin issue) is refused like a grant.
	refused(adminReq(t, env, http.MethodPost, "/admin/tokens", servertest.AdminToken,
		server.IssueRequest{UserID: "alice", ClientID: servertest.AppID}))
	// So is every other way to a token of alice: exchanging one she still
	// held would be (all are revoked, so the exchange is invalid), and a
	// client whose own subject must verify again gets no client
	// credentials token.
	wantOAuthError(t, exchange(t, env, asApp, a, nil), http.StatusBadRequest, server.ErrCodeInvalidRequest)
	env.Admin(t, http.MethodPost, "/admin/subjects/"+servertest.OtherID+"/require-reverification", nil, nil)
	refused(postForm(t, env, server.PathToken, &asOther, url.Values{"grant_type": {"client_credentials"}}))
	// Bob still gets tokens.
	issue(t, env, "bob", servertest.AppID, "s3")

	// Again: harmless, the first moment stays.
	var again server.ReverificationResponse
	env.Admin(t, http.MethodPost, "/admin/subjects/alice/require-reverification", nil, &again)
	if !again.Required || !again.Since.Equal(*req.Since) || again.Revoked != 0 {
		t.Errorf("again: %+v, first %+v", again, req)
	}
	env.Admin(t, http.MethodGet, "/admin/subjects/alice/reverification", nil, &st)
	if !st.Required || !st.Since.Equal(*req.Since) {
		t.Errorf("state: %+v", st)
	}
	stats := env.Server.Stats()
	if stats.ReverificationRequired != 2 || stats.ReverificationRefused != 2 || stats.AwaitingReverification != 2 {
		t.Errorf("stats %+v", stats)
	}

	// After re-verifying, alice gets tokens again, and they can be
	// exchanged.
	env.Admin(t, http.MethodPost, "/admin/subjects/alice/reverified", nil, nil)
	env.Admin(t, http.MethodGet, "/admin/subjects/alice/reverification", nil, &st)
	if st.Required {
		t.Errorf("after reverified: %+v", st)
	}
	a2, _ := issue(t, env, "alice", servertest.AppID, "s4", "files.read")
	mustExchange(t, env, asApp, a2, nil)
	// Clearing twice is fine.
	env.Admin(t, http.MethodPost, "/admin/subjects/alice/reverified", nil, nil)

	// A malformed body is refused; the admin token is required.
	if r := adminReq(t, env, http.MethodPost, "/admin/subjects/alice/require-reverification", servertest.AdminToken, map[string]any{"colour": "red"}); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
	for _, p := range []string{"require-reverification", "reverified"} {
		if r := adminReq(t, env, http.MethodPost, "/admin/subjects/alice/"+p, "", nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s without the admin token: %d", p, r.status)
		}
	}
}

// No token issued for the subject survives require-reverification, however
// the two interleave: a token is either revoked by it or refused after it.
func TestReverificationRace(t *testing.T) {
	env := servertest.Start(t)
	var (
		mu     sync.Mutex
		issued []string
		wg     sync.WaitGroup
	)
	start := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 50 {
				r := adminReq(t, env, http.MethodPost, "/admin/tokens", servertest.AdminToken,
					server.IssueRequest{UserID: "carol", ClientID: servertest.AppID})
				if r.status == http.StatusOK {
					mu.Lock()
					issued = append(issued, r.json(t)["access_token"].(string))
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	env.Admin(t, http.MethodPost, "/admin/subjects/carol/require-reverification", nil, nil)
	wg.Wait()
	for _, tok := range issued {
		if active(t, env, tok) {
			t.Fatal("a token of carol is active after require-reverification")
		}
	}
}
