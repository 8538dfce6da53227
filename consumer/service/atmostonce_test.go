package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/audit/spool"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/consumer/trail"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// countingAPI counts the subject-wide revocations that reach the token
// API.
type countingAPI struct {
	service.TokenAPI
	subject atomic.Int32
}

func (c *countingAPI) RevokeSubject(ctx context.Context, userID string) (idp.Result, error) {
	c.subject.Add(1)
	return c.TokenAPI.RevokeSubject(ctx, userID)
}

// spoolOptions empties the spool file whenever the store acknowledged it
// (RollBytes 1), so what the spool knows of drained rows comes from its
// ledger alone.
func spoolOptions() spool.Options {
	return spool.Options{
		AppendTimeout: 200 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		RollBytes: 1,
	}
}

// TestReplayRefusedWhileStoreDown: a command runs while the store is up;
// the store goes down, the consumer restarts (on the spool's ledger
// alone, its file emptied) and the same command arrives again: it is
// refused as a replay, with the rejection the store's trail would give,
// and the token API sees one revocation. Once the store is back the
// trail holds one revocation and one rejection and verifies.
func TestReplayRefusedWhileStoreDown(t *testing.T) {
	mem := memstore.New()
	store := &outage{Store: mem}
	dir := t.TempDir()
	sp1, err := spool.Open(dir, nopClose{store}, spoolOptions(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, sp1)
	api := &countingAPI{TokenAPI: f.client}
	now := time.Now()
	raw, _ := f.api.Issue(t, server.IssueRequest{UserID: "u-replay", ClientID: servertest.AppID, Scopes: servertest.AppScopes})
	cmd := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-replay"}, now)
	other := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-after"}, now)

	cfg := f.config("g-replay")
	cfg.Reader.CommitInterval = 5 * time.Millisecond
	_, stop := f.run(t, cfg, service.Deps{Store: sp1, TokenAPI: api})
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, cmd))
	testenv.Eventually(t, "the revocation in the store", func() bool { return steps(t, mem, cmd.CommandID)[schemas.StepConfirmed] == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := sp1.Close(); err != nil {
		t.Fatal(err)
	}
	if f.introspect(t, raw) {
		t.Fatal("token still active after the revocation")
	}

	// The store goes down; the consumer restarts while it is down.
	store.down.Store(true)
	sp2, err := spool.Open(dir, nopClose{store}, spoolOptions(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp2.Close() })
	if n, _ := sp2.Pending(); n != 0 {
		t.Fatalf("the spool holds %d records after a clean stop, want its file empty", n)
	}
	_, stop = f.run(t, cfg, service.Deps{Store: sp2, TokenAPI: api})
	// The command again (a re-publication: same id, new offset), then
	// another one, which must still run.
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, cmd), f.message(t, other))
	testenv.Eventually(t, "the next command's revocation", func() bool {
		rows, err := sp2.Executed(context.Background(), other.CommandID)
		return err == nil && len(rows) > 0
	})
	var rejected []schemas.AuditRow
	testenv.Eventually(t, "the replay's rejection", func() bool {
		rows, err := sp2.CommandRows(context.Background(), cmd.CommandID)
		if err != nil {
			t.Fatal(err)
		}
		rejected = rejected[:0]
		for _, r := range rows {
			if r.Step == schemas.StepRejected {
				rejected = append(rejected, r)
			}
		}
		return len(rejected) == 1
	})
	if got := api.subject.Load(); got != 2 {
		t.Fatalf("the token API saw %d subject revocations, want 2 (the command once, the next command once)", got)
	}
	if d := rejected[0].Detail; !strings.HasPrefix(d, "replayed: already confirmed from "+schemas.TopicRevokeCommands) {
		t.Errorf("rejection detail %q, want the store-backed dedupe's \"replayed: already confirmed from ...\"", d)
	}

	// The store is back: everything arrives once and the chain verifies.
	store.down.Store(false)
	testenv.Eventually(t, "the spool drained", func() bool { n, _ := sp2.Pending(); return n == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s := steps(t, mem, cmd.CommandID)
	if s[schemas.StepConfirmed] != 1 || s[schemas.StepRejected] != 1 {
		t.Errorf("steps %v, want one revocation and one rejection", s)
	}
	verifyChain(t, mem, nil)
}

// nopClose leaves the store behind a spool open when the spool closes,
// so a test can reopen a spool over it.
type nopClose struct{ audit.Store }

func (nopClose) Close() error { return nil }

// unreachable opens a store only once up is set, as a ClickHouse server
// that does not answer yet; it counts the opens (each migrates).
type unreachable struct {
	mem   *memstore.Store
	up    atomic.Bool
	opens atomic.Int32
}

func (u *unreachable) open(ctx context.Context) (audit.Store, error) {
	if !u.up.Load() {
		return nil, errors.New("dial tcp 10.0.0.9:9000: connect: connection refused")
	}
	u.opens.Add(1)
	if err := u.mem.Migrate(ctx); err != nil {
		return nil, err
	}
	return nopClose{u.mem}, nil
}

// TestStartsWithStoreDown: a consumer whose spool has written its chain
// before starts while the store cannot even be opened, revokes and
// spools; when the store answers it is opened and migrated, the rows
// arrive once, and the chain, signed checkpoints included, verifies.
// Without a chain head in the spool, the start fails and says why.
func TestStartsWithStoreDown(t *testing.T) {
	mem := memstore.New()
	dir := t.TempDir()
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	checkpoints := schemas.NewSigner(priv)

	// A first run with the store up.
	sp1, err := spool.Open(dir, nopClose{mem}, spoolOptions(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, sp1)
	now := time.Now()
	first := command(schemas.Target{Kind: schemas.TargetUser, UserID: "u-first"}, now)
	cfg := f.config("g-start-down")
	cfg.Reader.CommitInterval = 5 * time.Millisecond
	_, stop := f.run(t, cfg, service.Deps{Store: sp1, CheckpointSigner: checkpoints})
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, first))
	testenv.Eventually(t, "the first revocation", func() bool { return steps(t, mem, first.CommandID)[schemas.StepConfirmed] == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := sp1.Close(); err != nil {
		t.Fatal(err)
	}
	rowsBefore, _ := mem.ChainRows(context.Background(), "consumer-test", 0, 0)

	// Restart: the store cannot be opened.
	u := &unreachable{mem: mem}
	sp2, err := spool.Open(dir, backends.Deferred(u.open, zerolog.Nop()), spoolOptions(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp2.Close() })
	reg := prometheus.NewRegistry()
	_, stop = f.run(t, cfg, service.Deps{Store: sp2, CheckpointSigner: checkpoints, Registry: reg})
	var raws []string
	var cmds []schemas.RevokeCommand
	for i := range 5 {
		user := fmt.Sprintf("u-down-%d", i)
		raw, _ := f.api.Issue(t, server.IssueRequest{UserID: user, ClientID: servertest.AppID, Scopes: servertest.AppScopes})
		raws = append(raws, raw)
		c := command(schemas.Target{Kind: schemas.TargetUser, UserID: user}, now)
		cmds = append(cmds, c)
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	// The rows of a revocation are written after it: once the consumer's
	// observer has seen them durable (in the spool, the store being
	// unreachable), the token is revoked and the spool holds them.
	for i, c := range cmds {
		f.rows.Wait(t, "revocation of "+c.Target.UserID, func(rows []schemas.AuditRow) bool {
			return countStep(rows, c.CommandID, schemas.StepConfirmed) > 0
		})
		if f.introspect(t, raws[i]) {
			t.Fatalf("%s: token still active after its revocation's rows were written", c.Target.UserID)
		}
	}
	if n, _ := sp2.Pending(); n < 2*len(cmds) {
		t.Fatalf("%d records spooled, want at least %d (received and revoked of each command)", n, 2*len(cmds))
	}
	if rows, _ := mem.ChainRows(context.Background(), "consumer-test", 0, 0); len(rows) != len(rowsBefore) {
		t.Fatalf("the unreachable store got rows: %d, had %d", len(rows), len(rowsBefore))
	}
	if err := sp2.Check(context.Background()); err == nil {
		t.Error("readiness check with the store down = nil, want degraded")
	}

	// The store answers: it is opened (and migrated) and the spool drains.
	u.up.Store(true)
	testenv.Eventually(t, "the spool drained", func() bool { n, _ := sp2.Pending(); return n == 0 })
	if err := stop(); err != nil { // the writer's last checkpoint goes through too
		t.Fatal(err)
	}
	if u.opens.Load() != 1 {
		t.Errorf("the store was opened %d times, want once", u.opens.Load())
	}
	for _, c := range cmds {
		if s := steps(t, mem, c.CommandID); s[schemas.StepReceived] != 1 || s[schemas.StepConfirmed] != 1 {
			t.Errorf("%s: steps %v, want one received and one revoked", c.Target.UserID, s)
		}
	}
	verifyChain(t, mem, schemas.NewKeyring(checkpoints.Public()))

	// A spool that never wrote the chain cannot continue it while the
	// store is down: the start fails, naming the reason.
	fresh, err := spool.Open(t.TempDir(), backends.Deferred((&unreachable{mem: mem}).open, zerolog.Nop()), spoolOptions(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fresh.Close() })
	deps := service.Deps{Store: fresh, TokenAPI: f.client, Keyring: schemas.NewKeyring(f.signer.Public())}
	_, err = service.New(context.Background(), cfg, deps, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "never written chain") {
		t.Fatalf("New with the store down and a fresh spool = %v, want an error saying the spool never wrote the chain", err)
	}
}

// verifyChain verifies the consumer's chain in store: its links and, with
// a keyring, its signed checkpoints up to the head.
func verifyChain(t *testing.T, store audit.Store, keyring *schemas.Keyring) {
	t.Helper()
	rows, err := store.ChainRows(context.Background(), "consumer-test", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range rows {
		if ids[r.RowID] {
			t.Errorf("row %s stored twice", r.RowID)
		}
		ids[r.RowID] = true
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Fatalf("chain does not verify: %v", err)
	}
	if keyring == nil {
		return
	}
	rep, err := trail.Verify(context.Background(), store, keyring, trail.Options{Chain: "consumer-test"})
	if err != nil {
		t.Fatalf("trail with checkpoints does not verify: %v", err)
	}
	if rep.Rows != int64(len(rows)) {
		t.Errorf("trail verified %d rows, want %d", rep.Rows, len(rows))
	}
}
