package service

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/lineage"
	"github.com/revoked-dev/revoked/schemas"
)

// TestDownscopedFromLineageIndex: the token API neither cascades nor names
// parents in its listing, so only the lineage index (learned from
// token.exchanged events) knows the family. A token command with
// include_downscoped revokes the token and all three generations below it.
func TestDownscopedFromLineageIndex(t *testing.T) {
	api := &flatAPI{tokens: map[string]idp.TokenInfo{}, users: map[string]string{}}
	for _, id := range []string{"root", "c1", "g1", "gg1", "c2", "other"} {
		api.add("u1", id, "") // no parent ids from the token API
	}
	api.add("u2", "x1", "")
	idx := lineage.NewIndex(time.Hour, 100, nil)
	now := time.Now()
	idx.Add("c1", "root", "u1", now)
	idx.Add("g1", "c1", "u1", now)
	idx.Add("gg1", "g1", "u1", now)
	idx.Add("c2", "root", "u1", now)
	idx.Add("gone", "root", "u1", now) // already expired at the token API: 404
	r := NewIdPRevoker(api, DefaultRetryConfig()).WithLineage(idx)

	out, err := r.Revoke(context.Background(), &schemas.RevokeCommand{CommandID: "c", Target: schemas.Target{
		Kind: schemas.TargetToken, UserID: "u1", TokenID: "root", IncludeDownscoped: true}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"root", "c1", "g1", "gg1", "c2"} {
		if _, ok := api.tokens[id]; ok {
			t.Errorf("%s still live", id)
		}
	}
	if _, ok := api.tokens["other"]; !ok {
		t.Error("unrelated token revoked")
	}
	if out.Revoked != 5 || out.FromLineage != 4 || out.Proof == "" {
		t.Fatalf("outcome: %+v", out)
	}

	// Without a user id (no listing) the index alone finds the family.
	api.add("u2", "x2", "")
	api.add("u2", "x3", "")
	idx.Add("x2", "x1", "u2", now)
	idx.Add("x3", "x2", "u2", now)
	out, err = r.Revoke(context.Background(), &schemas.RevokeCommand{CommandID: "c2", Target: schemas.Target{
		Kind: schemas.TargetToken, TokenID: "x1", IncludeDownscoped: true}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(api.tokens) != 1 || out.FromLineage != 2 {
		t.Fatalf("outcome %+v, live %v", out, api.tokens)
	}
}

// TestUserDownscopedFromLineageIndex: on a provider without a subject-wide
// call whose listing omits downscoped tokens, a user command with
// include_downscoped also revokes the user's tokens the index knows.
func TestUserDownscopedFromLineageIndex(t *testing.T) {
	api := &flatAPI{tokens: map[string]idp.TokenInfo{}, users: map[string]string{}}
	api.add("u1", "root", "")
	api.tokens["d1"] = idp.TokenInfo{TokenID: "d1"} // live, but not listed for u1
	api.tokens["d2"] = idp.TokenInfo{TokenID: "d2"}
	api.tokens["keep"] = idp.TokenInfo{TokenID: "keep"}
	idx := lineage.NewIndex(time.Hour, 100, nil)
	idx.Add("d1", "root", "u1", time.Now())
	idx.Add("d2", "d1", "u1", time.Now())
	idx.Add("keep", "p", "u9", time.Now())
	r := NewIdPRevoker(api, DefaultRetryConfig()).WithLineage(idx)

	cmd := &schemas.RevokeCommand{CommandID: "u", Target: schemas.Target{Kind: schemas.TargetUser, UserID: "u1"}}
	if _, err := r.Revoke(context.Background(), cmd, ""); err != nil {
		t.Fatal(err)
	}
	if got := liveIDs(api); !slices.Equal(got, []string{"d1", "d2", "keep"}) {
		t.Fatalf("without include_downscoped, live: %v", got)
	}
	cmd.Target.IncludeDownscoped = true
	out, err := r.Revoke(context.Background(), cmd, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := liveIDs(api); !slices.Equal(got, []string{"keep"}) || out.FromLineage != 2 {
		t.Fatalf("outcome %+v, live %v", out, got)
	}
}

func liveIDs(a *flatAPI) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id := range a.tokens {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
