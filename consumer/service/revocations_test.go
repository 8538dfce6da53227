package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// sink is a RevocationSink that fails while failing is set and reports
// what it took.
type sink struct {
	mu      sync.Mutex
	failing bool
	calls   chan struct{}
	took    []schemas.AuditRow
}

func (s *sink) Revoked(_ context.Context, rows []schemas.AuditRow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.calls <- struct{}{}:
	default:
	}
	if s.failing {
		return errors.New("kafka is down")
	}
	s.took = append(s.took, rows...)
	return nil
}

func (s *sink) rows() []schemas.AuditRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]schemas.AuditRow(nil), s.took...)
}

// A revocation reaches the RevocationSink before its rows reach the
// trail, and its message is committed only after both: while the sink
// fails, the command's rows stay out of the trail and its offset
// uncommitted, so a consumer started later runs it again and the sink
// hears of it then.
func TestRevocationSinkIsNotSkipped(t *testing.T) {
	f := newFixture(t, memstore.New())
	f.api.Issue(t, server.IssueRequest{UserID: "u-signal", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	cmd := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-signal"}, time.Now())
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, cmd))
	cfg := f.config("g-sink")
	cfg.Reader.ShutdownTimeout = 500 * time.Millisecond

	down := &sink{failing: true, calls: make(chan struct{}, 1)}
	_, stop := f.run(t, cfg, service.Deps{Revocations: down})
	select {
	case <-down.calls:
	case <-time.After(20 * time.Second):
		t.Fatal("the sink was never called")
	}
	_ = stop()
	if got := steps(t, f.store, cmd.CommandID); got[schemas.StepConfirmed] != 0 || got[schemas.StepReceived] != 0 {
		t.Fatalf("the trail has the command's rows though the sink never took them: %v", got)
	}
	for p, off := range f.kafka.Committed(t, "g-sink", schemas.TopicRevokeCommands) {
		if off > 0 {
			t.Fatalf("partition %d committed at %d", p, off)
		}
	}

	up := &sink{calls: make(chan struct{}, 1)}
	f.run(t, cfg, service.Deps{Revocations: up})
	testenv.Eventually(t, "the revocation recorded", func() bool { return steps(t, f.store, cmd.CommandID)[schemas.StepConfirmed] == 1 })
	rows := up.rows()
	if len(rows) != 1 || rows[0].CommandID != cmd.CommandID || !rows[0].Step.Revoked() || rows[0].UserID != "u-signal" {
		t.Fatalf("the sink took %+v", rows)
	}
}
