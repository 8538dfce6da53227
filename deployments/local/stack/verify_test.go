package stack_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/chdbstore"
	"github.com/revoked-dev/revoked/consumer/trail"
	"github.com/revoked-dev/revoked/deployments/local/stack"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// The local run's trail, verified as its printed `consumer verify` command
// does (the checkpoint key anchored in DATA_DIR/keys), passes as written
// and fails once its last row is gone.
func TestLocalTrailVerifiesAndCatchesADeletedLastRow(t *testing.T) {
	lib := testenv.ChDBLibPath(t)
	dir := t.TempDir()
	cfg := testConfig(t, "chdb", "")
	cfg.Audit.ChDBPath = dir
	cfg.KeyDir = filepath.Join(dir, "keys")
	audited := &testenv.Recorder[schemas.AuditRow]{}
	s, err := stack.Start(context.Background(), cfg, stack.Observer{AuditRow: audited.Add}, zerolog.Nop())
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})

	// A brute force against a user with a real token: the pipeline
	// revokes it and writes received, revoked and verified rows.
	user := "u-verify"
	raw, tokenID := issue(t, s, user)
	(&kafkatest.Cluster{Brokers: s.Brokers}).Produce(t, schemas.TopicAuditEvents, bruteForce(user, tokenID, time.Now())...)
	waitRow(t, audited, "the revocation", userStep(user, schemas.StepConfirmed))
	waitHistory(t, s, user, schemas.StepConfirmed)
	if in, err := s.IdP.Introspect(context.Background(), raw); err != nil || in.Active {
		t.Fatalf("token still active: %+v %v", in, err)
	}
	// Closing flushes the writer, which signs a last checkpoint.
	if err := s.Close(); err != nil {
		t.Fatalf("closing the stack: %v", err)
	}
	closed = true

	keyring, err := schemas.LoadPublicKeyFiles(filepath.Join(cfg.KeyDir, stack.CheckpointPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	open := func(table string) audit.Store {
		st, err := chdbstore.Open(context.Background(), chdbstore.Config{Path: dir, Table: table, LibPath: lib}, zerolog.Nop())
		if err != nil {
			t.Fatalf("opening %s: %v", table, err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	// What `consumer verify -verify-key-files keys/checkpoint.pub` runs:
	// signatures checked, no unsigned rows accepted.
	verify := func(st audit.Store) (*trail.Report, error) {
		return trail.Verify(context.Background(), st, keyring, trail.Options{PageRows: trail.DefaultPageRows})
	}
	written := open(chdbstore.DefaultTable)
	rep, err := verify(written)
	if err != nil {
		t.Fatalf("the trail as written does not verify: %v", err)
	}
	if len(rep.Chains) == 0 || rep.Chains[0].Rows == 0 {
		t.Fatalf("nothing verified: %+v", rep)
	}

	// The trail without its last row: every row but the chain's last and
	// every checkpoint, in a table of the same chDB store (the Store port
	// has no delete; this is what a DELETE of that row leaves).
	chains, err := written.Chains(context.Background())
	if err != nil || len(chains) != 1 {
		t.Fatalf("chains %v %v", chains, err)
	}
	rows, err := written.ChainRows(context.Background(), chains[0], 0, 0)
	if err != nil || len(rows) < 2 {
		t.Fatalf("rows: %d %v", len(rows), err)
	}
	cps, err := written.Checkpoints(context.Background(), chains[0], 0, 0)
	if err != nil || len(cps) == 0 {
		t.Fatalf("checkpoints: %d %v", len(cps), err)
	}
	last := rows[len(rows)-1]
	cut := open("audit_trail_cut")
	if err := cut.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := cut.Append(context.Background(), rows[:len(rows)-1]); err != nil {
		t.Fatal(err)
	}
	if err := cut.AppendCheckpoints(context.Background(), cps); err != nil {
		t.Fatal(err)
	}
	_, err = verify(cut)
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Chain != last.Chain || ce.Seq != last.Seq {
		t.Fatalf("the trail without its last row (seq %d): %v, want a broken chain at that row", last.Seq, err)
	}
	t.Logf("last row deleted: %v", err)
}
