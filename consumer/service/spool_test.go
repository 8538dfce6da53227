package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/audit/spool"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server"
	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// outage is an audit store that can be taken down: every call that
// reaches the server fails while down.
type outage struct {
	audit.Store
	down atomic.Bool
}

var errOutage = errors.New("dial tcp 10.0.0.9:9000: connect: connection refused")

func (o *outage) Append(ctx context.Context, rows []schemas.AuditRow) error {
	if o.down.Load() {
		return errOutage
	}
	return o.Store.Append(ctx, rows)
}

func (o *outage) AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error {
	if o.down.Load() {
		return errOutage
	}
	return o.Store.AppendCheckpoints(ctx, cps)
}

func (o *outage) CommandRows(ctx context.Context, id string) ([]schemas.AuditRow, error) {
	if o.down.Load() {
		return nil, errOutage
	}
	return o.Store.CommandRows(ctx, id)
}

func (o *outage) ChainHead(ctx context.Context, chain string) (uint64, string, error) {
	if o.down.Load() {
		return 0, "", errOutage
	}
	return o.Store.ChainHead(ctx, chain)
}

func (o *outage) Ping(ctx context.Context) error {
	if o.down.Load() {
		return errOutage
	}
	return o.Store.Ping(ctx)
}

// TestAuditStoreOutageSpools: the audit store goes down in the middle of
// a stream; the consumer keeps revoking (tokens inactive, offsets
// committed) while the spool takes the audit rows, and once the store is
// back the trail holds every command's rows once and verifies.
func TestAuditStoreOutageSpools(t *testing.T) {
	mem := memstore.New()
	store := &outage{Store: mem}
	sp, err := spool.Open(t.TempDir(), store, spool.Options{
		AppendTimeout: 200 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close() })
	f := newFixture(t, sp)

	now := time.Now()
	const before, during = 10, 30
	var raws []string
	var cmds []schemas.RevokeCommand
	for i := range before + during {
		u := fmt.Sprintf("u-outage-%02d", i)
		raw, _ := f.api.Issue(t, server.IssueRequest{UserID: u, ClientID: servertest.AppID, Scopes: servertest.AppScopes})
		raws = append(raws, raw)
		cmds = append(cmds, command(schemas.Target{Kind: schemas.TargetUser, UserID: u}, now))
	}
	for _, c := range cmds[:before] {
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	cfg := f.config("g-outage")
	cfg.Reader.CommitInterval = 5 * time.Millisecond
	stop := startWithStore(t, f, cfg, sp, prometheus.NewRegistry())
	for _, c := range cmds[:before] {
		testenv.Eventually(t, "revocation of "+c.Target.UserID, func() bool { return steps(t, mem, c.CommandID)[schemas.StepConfirmed] == 1 })
	}

	// The store goes down; commands keep coming.
	store.down.Store(true)
	for _, c := range cmds[before:] {
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	records := f.kafka.Records(t, schemas.TopicRevokeCommands)
	testenv.Eventually(t, "every offset committed during the outage", func() bool {
		committed := f.kafka.Committed(t, "g-outage", schemas.TopicRevokeCommands)
		for _, m := range records {
			if committed[m.Partition] <= m.Offset {
				return false
			}
		}
		return true
	})
	for i, c := range cmds[before:] {
		if f.introspect(t, raws[before+i]) {
			t.Errorf("%s: token still active during the outage", c.Target.UserID)
		}
		if n := len(mustRows(t, mem, c.CommandID)); n != 0 {
			t.Fatalf("%s: %d rows reached the store while it was down", c.Target.UserID, n)
		}
	}
	if n, _ := sp.Pending(); n < 2*during {
		t.Fatalf("%d records spooled, want at least %d (received and revoked of each command)", n, 2*during)
	}

	// The store is back: the spool drains into it.
	store.down.Store(false)
	testenv.Eventually(t, "the spool drained", func() bool { n, size := sp.Pending(); return n == 0 && size == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		s := steps(t, mem, c.CommandID)
		if s[schemas.StepReceived] != 1 || s[schemas.StepConfirmed] != 1 || s[schemas.StepRejected] != 0 {
			t.Errorf("%s: steps %v, want one received and one revoked, no rejection", c.Target.UserID, s)
		}
		if f.introspect(t, raws[i]) {
			t.Errorf("%s: token still active", c.Target.UserID)
		}
	}
	rows, err := mem.ChainRows(context.Background(), "consumer-test", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range rows {
		ids[r.RowID]++
	}
	if len(ids) != len(rows) {
		t.Errorf("%d rows for %d row ids: a row is stored twice", len(rows), len(ids))
	}
	if err := audit.VerifyChain(rows); err != nil {
		t.Fatalf("chain broken after the outage: %v", err)
	}
}

func mustRows(t *testing.T, s audit.Store, commandID string) []schemas.AuditRow {
	t.Helper()
	rows, err := s.CommandRows(context.Background(), commandID)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
