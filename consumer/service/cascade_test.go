package service_test

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/schemas"
)

// family issues a token to user and three generations of downscoped
// tokens below it, and returns them root first.
func (f *fixture) family(t *testing.T, user string) (raws []string, rootID string) {
	t.Helper()
	raw, id := f.api.Issue(t, server.IssueRequest{UserID: user, ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	raws = append(raws, raw)
	for range 3 {
		raws = append(raws, f.api.Exchange(t, servertest.AppID, servertest.AppSecret, raws[len(raws)-1], nil))
	}
	return raws, id
}

// TestDownscopedCascade revokes a token with include_downscoped: the token
// and its three generations of downscoped descendants all end inactive,
// with one command, while the user's other token stays live.
func TestDownscopedCascade(t *testing.T) {
	f := newFixture(t, memstore.New())
	raws, rootID := f.family(t, "u-family")
	other, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-family", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	c := command(schemas.Target{Kind: schemas.TargetToken, UserID: "u-family", TokenID: rootID, IncludeDownscoped: true}, time.Now())
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	stop := f.start(t, f.config("g-cascade"))
	f.waitStep(t, c.CommandID, schemas.StepConfirmed)
	_ = stop()
	for gen, raw := range raws {
		if f.introspect(t, raw) {
			t.Errorf("generation %d still active", gen)
		}
	}
	if !f.introspect(t, other) {
		t.Error("the user's unrelated token was revoked")
	}
}

// TestUserWithoutSubjectEndpoint revokes a user through a token API client
// that has no subject-wide call: every live token of the user, downscoped
// ones included, is revoked one by one, and the listing proves it.
func TestUserWithoutSubjectEndpoint(t *testing.T) {
	f := newFixture(t, memstore.New())
	admin := idp.ReferencePreset(f.api.URL, f.api.AdminToken)
	admin.Preset, admin.Subject = "", idp.AdminCall{}
	client, err := idp.New(idp.Config{
		Issuer: f.api.Issuer, ClientID: servertest.RevokerID, ClientSecret: config.NewSecret(servertest.RevokerSecret),
		AuthMethod: idp.AuthClientSecretBasic, Timeout: 5 * time.Second, Admin: admin,
	}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	raws, _ := f.family(t, "u-nosubject")
	second, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-nosubject", ClientID: servertest.OtherID, Scopes: servertest.AppScopes})
	keep, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-bystander", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	c := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-nosubject", IncludeDownscoped: true}, time.Now())
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	stop := f.start(t, f.config("g-nosubject"))
	f.waitStep(t, c.CommandID, schemas.StepConfirmed)
	_ = stop()
	for i, raw := range append(raws, second) {
		if f.introspect(t, raw) {
			t.Errorf("token %d still active", i)
		}
	}
	if !f.introspect(t, keep) {
		t.Error("another user's token was revoked")
	}
}
