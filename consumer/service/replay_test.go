package service_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/schemas"
)

// countingStore counts the replay checks that reach the store.
type countingStore struct {
	*memstore.Store
	commandRows atomic.Int64
}

func (c *countingStore) CommandRows(ctx context.Context, id string) ([]schemas.AuditRow, error) {
	c.commandRows.Add(1)
	return c.Store.CommandRows(ctx, id)
}

// TestReplayCheckFromTheIndex: in steady state the replay check reads no
// store; replays at new offsets are refused, also under a key other than
// the target's (which the store answers) and after a restart (the index
// loads the trail); every command ran once.
func TestReplayCheckFromTheIndex(t *testing.T) {
	store := &countingStore{Store: memstore.New()}
	f := newFixture(t, store)
	api := &countingAPI{TokenAPI: f.client}
	cfg := f.config("g-index")
	cfg.Reader.CommitInterval = 5 * time.Millisecond
	_, stop := f.run(t, cfg, service.Deps{TokenAPI: api})

	const n = 400
	now := time.Now()
	cmds := make([]schemas.RevokeCommand, n)
	for i := range cmds {
		cmds[i] = command(schemas.Target{Kind: schemas.TargetUser, UserID: fmt.Sprintf("u-index-%d", i)}, now)
	}
	produce := func(cs []schemas.RevokeCommand) {
		for _, c := range cs {
			f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
		}
	}
	count := func(step schemas.Step) int {
		total := 0
		for _, c := range cmds {
			total += steps(t, store, c.CommandID)[step]
		}
		return total
	}
	// The first half warms the index up (each partition appears and is
	// read once); the second half runs from the index alone.
	produce(cmds[:n/2])
	waitFor(t, "the first half", func() bool { return int(api.subject.Load()) == n/2 })
	time.Sleep(50 * time.Millisecond)
	before := store.commandRows.Load()
	produce(cmds[n/2:])
	waitFor(t, "the second half", func() bool { return int(api.subject.Load()) == n })
	if got := store.commandRows.Load() - before; got > n/20 {
		t.Errorf("%d of %d replay checks read the store in steady state", got, n/2)
	}

	// Every command again: replays.
	produce(cmds)
	waitFor(t, "every replay refused", func() bool { return count(schemas.StepRejected) == n })

	// One again under another key: the store answers, and refuses it too.
	other := f.message(t, cmds[0])
	other.Key = []byte("not-the-target")
	before = store.commandRows.Load()
	f.kafka.Produce(t, schemas.TopicRevokeCommands, other)
	waitFor(t, "the re-keyed replay refused", func() bool { return count(schemas.StepRejected) == n+1 })
	if store.commandRows.Load() == before {
		t.Error("a command under another key than its target's was not checked against the store")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A new consumer on the same trail refuses the commands once more.
	_, stop = f.run(t, cfg, service.Deps{TokenAPI: api})
	produce(cmds[:10])
	waitFor(t, "replays after a restart refused", func() bool { return count(schemas.StepRejected) == n+11 })
	_ = stop()
	if got := api.subject.Load(); got != n {
		t.Fatalf("the token API saw %d revocations, want %d", got, n)
	}
	if got := count(schemas.StepConfirmed) + count(schemas.StepUnconfirmed); got != n {
		t.Fatalf("%d outcomes in the trail, want %d", got, n)
	}
}

// slowHistoryStore takes a while to read the trail, as a store does at
// start under a day of rows.
type slowHistoryStore struct {
	*countingStore
	delay time.Duration
}

func (s *slowHistoryStore) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	time.Sleep(s.delay)
	return s.countingStore.History(ctx, q)
}

// TestReplayCheckWaitsForTheLoad: the commands that arrive while the
// index loads the trail wait for that one read instead of each reading
// the store, and run once.
func TestReplayCheckWaitsForTheLoad(t *testing.T) {
	store := &slowHistoryStore{countingStore: &countingStore{Store: memstore.New()}, delay: 300 * time.Millisecond}
	f := newFixture(t, store)
	api := &countingAPI{TokenAPI: f.client}
	const n = 100
	now := time.Now()
	for i := range n {
		c := command(schemas.Target{Kind: schemas.TargetUser, UserID: fmt.Sprintf("u-load-%d", i)}, now)
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	_, stop := f.run(t, f.config("g-load"), service.Deps{TokenAPI: api})
	waitFor(t, "every command", func() bool { return int(api.subject.Load()) == n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := store.commandRows.Load(); got > n/10 {
		t.Errorf("%d of %d replay checks read the store while the index loaded", got, n)
	}
}
