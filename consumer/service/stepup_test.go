package service_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/schemas"
)

// TestRevokeAndReverifyCallsStepUp: a revoke_and_reverify command revokes
// and then calls the step-up hook for the user; a plain revoke does not.
func TestRevokeAndReverifyCallsStepUp(t *testing.T) {
	f := newFixture(t, memstore.New())
	var mu sync.Mutex
	var calls []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	client, err := idp.New(idp.Config{
		Issuer: f.api.Issuer, ClientID: servertest.RevokerID, ClientSecret: config.NewSecret(servertest.RevokerSecret),
		AuthMethod: idp.AuthClientSecretBasic, Timeout: 5 * time.Second,
		Admin:  idp.ReferencePreset(f.api.URL, f.api.AdminToken),
		StepUp: idp.AdminCall{Method: http.MethodPost, URL: hook.URL + "/step-up/{user_id}/{command_id}"},
	}, service.NewHTTPClient(8), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	raw, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-reverify", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	f.api.Issue(t, server.IssueRequest{UserID: "u-plain", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	reverify := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-reverify"}, time.Now())
	reverify.Action = schemas.ActionRevokeAndReverify
	plain := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-plain"}, time.Now())
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, reverify), f.message(t, plain))
	stop := f.start(t, f.config("g-stepup"))
	for _, c := range []schemas.RevokeCommand{reverify, plain} {
		f.waitStep(t, c.CommandID, schemas.StepConfirmed)
	}
	_ = stop()
	if f.introspect(t, raw) {
		t.Fatal("token still active")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || calls[0] != "/step-up/u-reverify/"+reverify.CommandID {
		t.Fatalf("step-up calls: %v", calls)
	}
	rows, _ := f.store.CommandRows(t.Context(), reverify.CommandID)
	for _, r := range rows {
		if r.Step == schemas.StepConfirmed && !strings.Contains(r.IdPResponse, "step-up: 204") {
			t.Errorf("revoked row's answer %q does not record the step-up", r.IdPResponse)
		}
	}
}
