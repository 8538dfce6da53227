package service

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/schemas"
)

// flatAPI is a token API that tracks lineage but does not cascade: revoking
// a token by id revokes that token only, and it has no subject-wide call.
type flatAPI struct {
	mu     sync.Mutex
	tokens map[string]idp.TokenInfo // live, by id
	users  map[string]string        // token id -> user
}

func (a *flatAPI) RevokeToken(context.Context, string, string) error { return idp.ErrNotConfigured }
func (a *flatAPI) Introspect(context.Context, string) (idp.Introspection, error) {
	return idp.Introspection{}, idp.ErrNotConfigured
}
func (a *flatAPI) RevokeSubject(context.Context, string) (idp.Result, error) {
	return idp.Result{}, idp.ErrNotConfigured
}
func (a *flatAPI) RevokeSession(context.Context, string) (idp.Result, error) {
	return idp.Result{}, idp.ErrNotConfigured
}
func (a *flatAPI) RevokeClient(context.Context, string) (idp.Result, error) {
	return idp.Result{}, idp.ErrNotConfigured
}

func (a *flatAPI) RevokeTokenID(_ context.Context, id string) (idp.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.tokens[id]; !ok {
		return idp.Result{Status: 404}, &idp.HTTPError{Op: "revoke_token_id", Status: 404}
	}
	delete(a.tokens, id)
	return idp.Result{Status: 200, Revoked: 1, CountKnown: true}, nil
}

func (a *flatAPI) ListSubjectTokens(_ context.Context, user string) ([]idp.TokenInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []idp.TokenInfo
	for id, ti := range a.tokens {
		if a.users[id] == user {
			out = append(out, ti)
		}
	}
	return out, nil
}

func (a *flatAPI) add(user, id, parent string) {
	a.tokens[id] = idp.TokenInfo{TokenID: id, ParentTokenID: parent}
	a.users[id] = user
}

func TestFamilyAndOneByOneOnANonCascadingAPI(t *testing.T) {
	api := &flatAPI{tokens: map[string]idp.TokenInfo{}, users: map[string]string{}}
	// u1: root -> c1 -> g1 -> gg1, root -> c2; sibling (unrelated) -> s1.
	api.add("u1", "root", "")
	api.add("u1", "c1", "root")
	api.add("u1", "g1", "c1")
	api.add("u1", "gg1", "g1")
	api.add("u1", "c2", "root")
	api.add("u1", "sibling", "")
	api.add("u1", "s1", "sibling")
	api.add("u2", "other", "")
	r := NewIdPRevoker(api, DefaultRetryConfig())
	ctx := context.Background()

	out, err := r.Revoke(ctx, &schemas.RevokeCommand{CommandID: "c", Target: schemas.Target{
		Kind: schemas.TargetToken, UserID: "u1", TokenID: "root", IncludeDownscoped: true}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if out.Revoked != 5 || out.Proof == "" {
		t.Fatalf("family: %+v", out)
	}
	for _, id := range []string{"root", "c1", "g1", "gg1", "c2"} {
		if _, ok := api.tokens[id]; ok {
			t.Errorf("%s still live", id)
		}
	}
	if len(api.tokens) != 3 {
		t.Fatalf("live after family revocation: %v", api.tokens)
	}

	out, err = r.Revoke(ctx, &schemas.RevokeCommand{CommandID: "u", Target: schemas.Target{Kind: schemas.TargetUser, UserID: "u1"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if out.Revoked != 2 || out.Proof == "" {
		t.Fatalf("user: %+v", out)
	}
	if _, ok := api.tokens["other"]; !ok || len(api.tokens) != 1 {
		t.Fatalf("live after user revocation: %v", api.tokens)
	}
}

func TestDescends(t *testing.T) {
	live := []idp.TokenInfo{{TokenID: "a", ParentTokenID: "b"}, {TokenID: "b", ParentTokenID: "a"}, {TokenID: "c", ParentTokenID: "gone"}}
	if descends(live, live[0], "root") {
		t.Error("a cycle descends from root")
	}
	if !descends(live, live[2], "gone") {
		t.Error("a child of an unlisted root does not descend from it")
	}
}

// failingAPI answers its first len(errs) token-id revocations with errs,
// then as flatAPI does.
type failingAPI struct {
	*flatAPI
	errs []error
}

func (a *failingAPI) RevokeTokenID(ctx context.Context, id string) (idp.Result, error) {
	if len(a.errs) > 0 {
		err := a.errs[0]
		a.errs = a.errs[1:]
		return idp.Result{}, err
	}
	return a.flatAPI.RevokeTokenID(ctx, id)
}

// The waits between attempts are drawn up to MinBackoff doubling to
// MaxBackoff; a Retry-After is waited as given and does not advance that
// schedule. The waits are recorded, not slept.
func TestRetryBackoffSchedule(t *testing.T) {
	flat := &flatAPI{tokens: map[string]idp.TokenInfo{}, users: map[string]string{}}
	flat.add("u1", "t1", "")
	e500 := &idp.HTTPError{Op: "revoke_token_id", Status: 500}
	e503 := &idp.HTTPError{Op: "revoke_token_id", Status: 503, RetryAfter: 2 * time.Second}
	api := &failingAPI{flatAPI: flat, errs: []error{e500, e500, e503, e500, e500, e500}}
	r := NewIdPRevoker(api, RetryConfig{MaxAttempts: 7, MinBackoff: 50 * time.Millisecond, MaxBackoff: 120 * time.Millisecond})
	var waits []time.Duration
	r.sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}
	out, err := r.Revoke(t.Context(), &schemas.RevokeCommand{CommandID: "c", Target: schemas.Target{Kind: schemas.TargetToken, UserID: "u1", TokenID: "t1"}}, "")
	if err != nil || out.Attempts != 7 {
		t.Fatalf("attempts %d, %v", out.Attempts, err)
	}
	bounds := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 2 * time.Second, 120 * time.Millisecond, 120 * time.Millisecond, 120 * time.Millisecond}
	if len(waits) != len(bounds) {
		t.Fatalf("waits %v, want %d", waits, len(bounds))
	}
	for i, w := range waits {
		if w <= 0 || w > bounds[i] || (bounds[i] == 2*time.Second && w != bounds[i]) {
			t.Errorf("wait %d: %s, want (0, %s]", i, w, bounds[i])
		}
	}
}
