package campaign_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/service"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/producer/campaign"
	"github.com/revoked-dev/revoked/schemas"
)

// tokenAPI stands in for the IdP: it counts revocations per user and
// refuses one user for good.
type tokenAPI struct {
	mu      sync.Mutex
	revoked map[string]int
	refuse  string
}

func (a *tokenAPI) Revoke(_ context.Context, cmd *schemas.RevokeCommand, _ string) (service.Outcome, error) {
	if cmd.Target.UserID == a.refuse {
		return service.Outcome{Status: 404, Attempts: 1}, service.ErrTerminal
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[cmd.Target.UserID]++
	return service.Outcome{Status: 200, Revoked: 1, Attempts: 1}, nil
}

// TestConsumerExecutesOnce runs a campaign whose crash repeated a batch on
// the topic (no read-back), feeds the topic through the consumer's command
// handler, and checks that every user was revoked exactly once and that the
// campaign's report counts what the audit trail says.
func TestConsumerExecutesOnce(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, 2)
	ids := userIDs(2000)
	cfg := f.config("e2e")
	cfg.BatchSize = 250

	rctx, cancel := context.WithCancel(ctx)
	var saved []byte
	kill := &killAfter{pub: f.w, n: 1000, cancel: func() {
		if saved == nil {
			saved, _ = os.ReadFile(filepath.Join(f.dir, "e2e.json"))
		}
		cancel()
	}}
	if _, err := f.runner(t, cfg, kill).Run(rctx, &campaign.Targets{Kind: schemas.TargetUser, IDs: ids}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "e2e.json"), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner(t, cfg, f.w).Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	msgs := records(t, f.c, schemas.TopicRevokeCommands)
	if len(msgs) != len(ids)+250+1 {
		t.Fatalf("%d messages, want every user, the repeated batch and the report", len(msgs))
	}

	store := memstore.New()
	w, err := audit.NewWriterWithConfig(ctx, store, audit.WriterConfig{Chain: "consumer-test", MaxDelay: -1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	api := &tokenAPI{revoked: map[string]int{}, refuse: ids[7]}
	h, err := service.NewHandler(service.HandlerConfig{
		Keyring: schemas.NewKeyring(f.signer.Public()), Revoker: api, Audit: service.NewAuditLog(w, store), Actor: "consumer-test",
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		err := h.Handle(ctx, m)
		// A carried-out revocation's rows are durable once its wait
		// returns, as the reader waits before committing.
		if le := (*kafkax.LaterError)(nil); errors.As(err, &le) {
			err = le.Wait(ctx)
		}
		if err != nil && string(m.Key) != ids[7] {
			t.Fatalf("handling %s@%d: %v", m.Key, m.Offset, err)
		}
	}
	for i, u := range ids {
		want := 1
		if i == 7 {
			want = 0
		}
		if api.revoked[u] != want {
			t.Fatalf("user %s revoked %d times, want %d", u, api.revoked[u], want)
		}
	}

	rep, err := campaign.Status(ctx, f.dir, cfg.ID, store)
	if err != nil {
		t.Fatal(err)
	}
	want := campaign.AuditCounts{Seen: len(ids), Revoked: len(ids) - 1, Unconfirmed: len(ids) - 1, Failed: 1}
	if rep.Audit == nil || *rep.Audit != want {
		t.Fatalf("audit counts %+v (%v), want %+v", rep.Audit, rep.AuditErr, want)
	}
	notified, err := store.History(ctx, audit.Query{RuleID: campaign.RuleID, Steps: []schemas.Step{schemas.StepNotified}})
	if err != nil || len(notified) != 1 || notified[0].CommandID != rep.ReportCommandID {
		t.Fatalf("report in the audit trail: %+v, %v", notified, err)
	}
	t.Logf("report: %s", notified[0].Summary)
}
