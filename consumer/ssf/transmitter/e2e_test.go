package transmitter_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/schemes/caep"
	"github.com/sgnl-ai/caep.dev/secevent/pkg/subject"

	"github.com/revoked-dev/revoked/consumer/app"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ssf"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// End to end: a signed command revokes a user's tokens at the reference
// token API through the consumer as "consumer run" assembles it
// (consumer/app, chDB trail), which records the revocation for the
// transmitter; the transmitter, sharing the consumer's audit store,
// pushes session-revoked and credential-change SETs that SGNL's library
// verifies, and records their delivery in the same trail.
func TestConsumerRevocationBecomesVerifiedSET(t *testing.T) {
	lib := testenv.ChDBLibPath(t)
	e := newEnv(t)
	e.kafka.CreateTopic(t, schemas.TopicRevokeCommands, 2)
	api := servertest.Start(t)
	raw, _ := api.Issue(t, server.IssueRequest{UserID: "alice@example.com", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	client, err := idp.New(idp.Config{
		Issuer: api.Issuer, ClientID: servertest.RevokerID, ClientSecret: config.NewSecret(servertest.RevokerSecret),
		AuthMethod: idp.AuthClientSecretBasic, Timeout: 5 * time.Second, Admin: idp.ReferencePreset(api.URL, api.AdminToken),
	}, service.NewHTTPClient(8), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	cmdSigner := schemas.NewSigner(priv)

	ccfg := service.DefaultConfig()
	ccfg.Reader = e.kafka.ReaderConfig(schemas.TopicRevokeCommands, "e2e-consumer")
	ccfg.Reader.Component = "consumer"
	ccfg.Reader.DLQTopic = schemas.TopicDLQ
	ccfg.Actor = "consumer-e2e"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, app.Config{
		Consumer: ccfg,
		Audit:    backends.Config{Backend: backends.ChDB, ChDBPath: t.TempDir(), ChDBLibPath: lib},
	}, app.Deps{TokenAPI: client, Keyring: schemas.NewKeyring(cmdSigner.Public()), Revocations: e.pub}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-consumerDone; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})

	cfg := e.config()
	e.start(cfg, a.Store)
	rx := newPushReceiver(t, func(int) int { return http.StatusAccepted })
	sc := e.createStream(alphaToken, map[string]any{"delivery": map[string]any{"method": ssf.DeliveryPush, "endpoint_url": rx.url}})

	now := time.Now().UTC()
	cmd := schemas.RevokeCommand{
		CommandID: "cmd_e2e_password_change", IssuedAt: now, ExpiresAt: now.Add(time.Hour), Issuer: "detector",
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: "alice@example.com", IncludeDownscoped: true},
		Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
		Reason: schemas.Reason{RuleID: "token_after_password_change", RuleVersion: 1, Severity: schemas.SeverityHigh,
			Summary: "a token issued before the password change used from a new device", Evidence: []string{"ev-1"}, LastEventTime: now, DetectedAt: now},
	}
	value, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	e.kafka.Produce(t, schemas.TopicRevokeCommands, kafkax.Message{Key: cmd.Key(), Value: value, Headers: []kafkax.Header{
		{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaRevokeCommandV1)},
		{Key: schemas.HeaderKeyID, Value: []byte(cmdSigner.KeyID())},
		{Key: schemas.HeaderSignature, Value: []byte(cmdSigner.Sign(value))},
	}})

	p := e.sgnl(cfg, alphaAud)
	var types []string
	for range 2 {
		set := rx.next(t).body
		se, err := p.ParseSecEvent(set)
		if err != nil {
			t.Fatalf("SGNL's parser refused the SET: %v", err)
		}
		if es, ok := se.Subject.(*subject.EmailSubject); !ok || es.Email() != "alice@example.com" {
			t.Errorf("sub_id %#v", se.Subject)
		}
		if se.TransactionID == nil || *se.TransactionID != cmd.CommandID {
			t.Errorf("txn %v", se.TransactionID)
		}
		types = append(types, string(se.Event.Type()))
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{string(caep.EventTypeCredentialChange), string(caep.EventTypeSessionRevoked)}) {
		t.Errorf("event types %v", types)
	}
	in, err := client.Introspect(t.Context(), raw)
	if err != nil || in.Active {
		t.Errorf("the user's token is still active (%v)", err)
	}
	// One trail: the consumer's revocation, and the transmitter's two
	// deliveries on its own chain.
	want := []string{"consumer-e2e/confirmed", "consumer-e2e/received", cfg.Actor + "/signalled", cfg.Actor + "/signalled"}
	testenv.Eventually(t, "the trail "+strings.Join(want, " "), func() bool {
		rows, err := a.Store.History(t.Context(), audit.Query{UserID: "alice@example.com", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, r := range rows {
			steps = append(steps, r.Chain+"/"+string(r.Step))
		}
		slices.Sort(steps)
		return slices.Equal(steps, want)
	})
	e.committed(cfg, sc.StreamID)
}
