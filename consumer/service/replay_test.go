package service_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/testenv"
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
	// count counts the rows of step of the commands in the store; it reads
	// the store under the counting wrapper, so as not to count itself.
	count := func(step schemas.Step) int {
		total := 0
		for _, c := range cmds {
			total += steps(t, store.Store, c.CommandID)[step]
		}
		return total
	}
	// waitOutcomes waits until the consumers have written a revocation's
	// outcome for every command of cs.
	waitOutcomes := func(what string, cs []schemas.RevokeCommand) {
		t.Helper()
		f.rows.Wait(t, what, func(rows []schemas.AuditRow) bool {
			done := map[string]bool{}
			for _, r := range rows {
				if r.Step.Revoked() {
					done[r.CommandID] = true
				}
			}
			for _, c := range cs {
				if !done[c.CommandID] {
					return false
				}
			}
			return true
		})
	}
	// waitRejections waits until the consumers have written n rejections.
	waitRejections := func(what string, n int) {
		t.Helper()
		f.rows.Wait(t, what, func(rows []schemas.AuditRow) bool {
			got := 0
			for _, r := range rows {
				if r.Step == schemas.StepRejected {
					got++
				}
			}
			return got >= n
		})
		if got := count(schemas.StepRejected); got != n {
			t.Fatalf("%d rejections in the store, want %d", got, n)
		}
	}
	// The first half warms the index up (each partition appears and is
	// read once); the second half runs from the index alone. The first
	// half is done once each of its commands has its outcome in the trail:
	// the replay check comes before the revocation, and the outcome after.
	produce(cmds[:n/2])
	waitOutcomes("the first half", cmds[:n/2])
	before := store.commandRows.Load()
	produce(cmds[n/2:])
	waitOutcomes("the second half", cmds[n/2:])
	if got := store.commandRows.Load() - before; got > n/20 {
		t.Errorf("%d of %d replay checks read the store in steady state", got, n/2)
	}
	if got := int(api.subject.Load()); got != n {
		t.Fatalf("the token API saw %d revocations, want %d", got, n)
	}

	// Every command again: replays.
	produce(cmds)
	waitRejections("every replay refused", n)

	// One again under another key: the store answers, and refuses it too.
	other := f.message(t, cmds[0])
	other.Key = []byte("not-the-target")
	before = store.commandRows.Load()
	f.kafka.Produce(t, schemas.TopicRevokeCommands, other)
	waitRejections("the re-keyed replay refused", n+1)
	if store.commandRows.Load() == before {
		t.Error("a command under another key than its target's was not checked against the store")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A new consumer on the same trail refuses the commands once more.
	_, stop = f.run(t, cfg, service.Deps{TokenAPI: api})
	produce(cmds[:10])
	waitRejections("replays after a restart refused", n+11)
	_ = stop()
	if got := api.subject.Load(); got != n {
		t.Fatalf("the token API saw %d revocations, want %d", got, n)
	}
	if got := count(schemas.StepConfirmed) + count(schemas.StepUnconfirmed); got != n {
		t.Fatalf("%d outcomes in the trail, want %d", got, n)
	}
}

// gatedHistoryStore reads the trail only once the test lets it, as a store
// does at start under a day of rows; it tells the test when a read began.
type gatedHistoryStore struct {
	*countingStore
	reading chan struct{} // closed when the first read begins
	once    sync.Once
	open    chan struct{} // closed by the test to let reads go on
}

func (s *gatedHistoryStore) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	s.once.Do(func() { close(s.reading) })
	select {
	case <-s.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.countingStore.History(ctx, q)
}

// TestReplayCheckWaitsForTheLoad: the commands that arrive while the
// index loads the trail wait for that one read instead of each reading
// the store, and run once. The load is held until a command has been
// checked against the index, so that it arrives while the index loads.
func TestReplayCheckWaitsForTheLoad(t *testing.T) {
	store := &gatedHistoryStore{countingStore: &countingStore{Store: memstore.New()}, reading: make(chan struct{}), open: make(chan struct{})}
	f := newFixture(t, store)
	api := &countingAPI{TokenAPI: f.client}
	const n = 100
	now := time.Now()
	for i := range n {
		c := command(schemas.Target{Kind: schemas.TargetUser, UserID: fmt.Sprintf("u-load-%d", i)}, now)
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	svc, stop := f.run(t, f.config("g-load"), service.Deps{TokenAPI: api})
	select {
	case <-store.reading:
	case <-time.After(testenv.WaitTimeout):
		t.Fatal("the replay index never read the trail")
	}
	// The index tells nothing of the commands it is asked about, so its
	// state is polled; nothing can pass the replay check meanwhile.
	testenv.Eventually(t, "a command checked while the trail loads", func() bool {
		return svc.ReplayPartitionsSeen() > 0
	})
	if got := api.subject.Load(); got != 0 {
		t.Fatalf("%d commands ran before the trail was loaded", got)
	}
	close(store.open)
	revokedOnce(t, f, api, stop, n)
	if got := store.commandRows.Load(); got > n/10 {
		t.Errorf("%d of %d replay checks read the store while the index loaded", got, n)
	}
}

// slowHistoryStore takes delay over every read of the trail, as a store
// does when a refresh reads many rows, and counts the reads.
type slowHistoryStore struct {
	*countingStore
	delay   time.Duration
	history atomic.Int64
}

func (s *slowHistoryStore) History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error) {
	s.history.Add(1)
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.countingStore.History(ctx, q)
}

// TestReplayRefreshSlowerThanIdleGap: a refresh that takes longer than
// the idle gap does not make the partitions whose handlers waited for it
// look silent, so it does not set off another refresh, and so on for as
// long as commands come: the commands wait for the first refreshes and
// then run from the index, none checked against the store.
func TestReplayRefreshSlowerThanIdleGap(t *testing.T) {
	store := &slowHistoryStore{countingStore: &countingStore{Store: memstore.New()}, delay: 500 * time.Millisecond}
	f := newFixture(t, store)
	api := &countingAPI{TokenAPI: f.client}
	cfg := f.config("g-slow-refresh")
	cfg.Replay.IdleGap = 200 * time.Millisecond
	// Every partition's messages are fetched at once (with the default
	// queue, a partition whose lanes wait fills its queue and holds the
	// others' messages back, and they appear one after another).
	cfg.Reader.QueueSize = 1024
	const n = 200
	now := time.Now()
	for i := range n {
		c := command(schemas.Target{Kind: schemas.TargetUser, UserID: fmt.Sprintf("u-slow-%d", i)}, now)
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, c))
	}
	_, stop := f.run(t, cfg, service.Deps{TokenAPI: api})
	revokedOnce(t, f, api, stop, n)
	// The load at start and one more for the partitions that appeared
	// while it read (a third if a partition's first message came only
	// after that one began).
	if got := store.history.Load(); got > 3 {
		t.Errorf("the trail was read %d times for %d commands", got, n)
	}
	if got := store.commandRows.Load(); got != 0 {
		t.Errorf("%d replay checks read the store", got)
	}
}

// revokedOnce waits until n commands have their revocation's outcome in
// the trail, stops the consumer, and checks that the token API saw n
// revocations.
func revokedOnce(t *testing.T, f *fixture, api *countingAPI, stop func() error, n int) {
	t.Helper()
	f.rows.Wait(t, "every command", func(rows []schemas.AuditRow) bool {
		done := map[string]bool{}
		for _, r := range rows {
			if r.Step.Revoked() {
				done[r.CommandID] = true
			}
		}
		return len(done) == n
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := int(api.subject.Load()); got != n {
		t.Errorf("the token API saw %d revocations, want %d", got, n)
	}
}
