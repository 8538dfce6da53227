package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// ReplayConfig tunes the in-memory index of executed commands that answers
// the replay check without a store query per command (see replayIndex).
type ReplayConfig struct {
	// Window is how far back the index loads the trail's terminal rows at
	// start. A command issued before the load's start minus Window is
	// checked against the store instead (it may have run before the
	// loaded rows begin). Longer than commands normally live.
	Window time.Duration `flag:"window" env:"WINDOW" yaml:"window" usage:"how far back the replay index loads executed commands from the audit trail at start"`
	// IdleGap is how long a partition may go without a message before
	// its next message counts as a (re)appearance: the reader does not
	// report assignments, and a partition that moved away and back was
	// silent here meanwhile.
	IdleGap time.Duration `flag:"idle-gap" env:"IDLE_GAP" yaml:"idle_gap" usage:"how long a partition may be silent before its next message is taken as a reassignment"`
	// Overlap is how far before the previous refresh's start a refresh
	// reads again: it covers clock differences between consumers and
	// rows that reached the store a little after their time.
	Overlap time.Duration `flag:"overlap" env:"OVERLAP" yaml:"overlap" usage:"how far back beyond the previous refresh a refresh of the replay index reads"`
}

// DefaultReplayConfig loads a day of executed commands and reads the
// store again when a partition appears or speaks after 2 s of silence.
func DefaultReplayConfig() ReplayConfig {
	return ReplayConfig{Window: 24 * time.Hour, IdleGap: 2 * time.Second, Overlap: time.Minute}
}

func (c ReplayConfig) validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"window": c.Window, "idle-gap": c.IdleGap, "overlap": c.Overlap} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("replay.%s must be positive", name))
		}
	}
	return errors.Join(errs...)
}

// refreshTimeout bounds one load or refresh of the index from the store.
const refreshTimeout = time.Minute

// doneEntry is what the index keeps of one terminal row: enough for the
// replay check (schemas.Step.Terminal, and the Kafka position that tells a
// redelivery from a replay).
type doneEntry struct {
	rowID     string
	step      schemas.Step
	topic     string
	partition int32
	offset    int64
	expiresAt time.Time
	at        time.Time // the row's time
}

func (e doneEntry) row(commandID string) schemas.AuditRow {
	return schemas.AuditRow{
		RowID: e.rowID, CommandID: commandID, Step: e.step, ExpiresAt: e.expiresAt,
		SourceTopic: e.topic, SourcePartition: e.partition, SourceOffset: e.offset,
	}
}

type partKey struct {
	topic     string
	partition int32
}

type partState struct {
	seen time.Time // the last message of the partition
	gen  uint64    // the refresh generation asked for when it last (re)appeared
}

// replayIndex knows the terminal steps of executed commands, so the
// replay check (at most one execution per command id) costs no store
// query per command. It holds:
//
//   - every terminal row this consumer wrote (record, fed by the handler
//     after each durable write), and
//   - the trail's terminal rows of the last Window, loaded from the store
//     at start, and the trail's newer rows, read again whenever a
//     partition (re)appears (refresh).
//
// A hit is a fact: the command already reached a terminal step, and the
// row's position tells a redelivery (skipped) from a replay (refused). A
// miss means "never executed" only when nobody else can have executed it
// since the index last read the store (sure): commands of one target are
// keyed by it and so land on one partition, and this consumer owns the
// partition. So a miss is answered from the index alone when
//
//   - the message's key is the command's target key (a command
//     republished under another key may sit on a partition another
//     consumer owns),
//   - the command was issued after the start of the loaded window (and
//     so cannot have run before it; the index keeps steps for Window
//     also after their command expired, as a copy re-signed under the
//     same id with a later expiry is a replay too),
//   - a refresh that began after its partition appeared here has
//     completed. A partition appears with its first message, and again
//     with a message after a silence of IdleGap: the reader does not
//     report assignments, and a partition that moved to another consumer
//     and back was silent here meanwhile. The refresh reads what the
//     other consumer recorded before it lost the partition (it records
//     before it commits).
//
// Otherwise the handler asks the audit log (the store, and the spool's
// ledger while the store is down), as before; a hit there is added to the
// index. In steady state that is never; right after a start or a
// reassignment it is the commands of the partitions that just arrived,
// until one refresh completes. What neither this index nor the store-read
// it replaces can see is a row that another consumer's handler, still
// running after it lost the partition, records after the read.
type replayIndex struct {
	store audit.Store
	cfg   ReplayConfig
	now   func() time.Time
	log   zerolog.Logger
	wg    sync.WaitGroup

	mu         sync.Mutex
	done       map[string][]doneEntry // by command id
	loadedFrom time.Time              // zero until the first load completed
	nextFrom   time.Time              // From of the next refresh
	gen        uint64                 // refreshes asked for
	doneGen    uint64                 // the gen when the last completed refresh began
	parts      map[partKey]*partState
	refreshing bool // a refresh runs
	again      bool // and another is due after it
	// refreshed is closed when the refresh under way ends (completed or
	// failed) and replaced by the next one's; see await.
	refreshed chan struct{}
	closed    bool
	recorded  int // entries added since the last prune
}

func newReplayIndex(store audit.Store, cfg ReplayConfig, now func() time.Time, log zerolog.Logger) *replayIndex {
	if now == nil {
		now = time.Now
	}
	return &replayIndex{
		store: store, cfg: cfg, now: now, log: log.With().Str("component", "replay-index").Logger(),
		done: make(map[string][]doneEntry), parts: make(map[partKey]*partState),
		refreshed: make(chan struct{}),
	}
}

// start begins the first load in the background; until it completes,
// every miss is checked against the store.
func (x *replayIndex) start() { x.trigger() }

// close waits for a refresh under way and refuses new ones.
func (x *replayIndex) close() {
	x.mu.Lock()
	x.closed = true
	x.mu.Unlock()
	x.wg.Wait()
}

// lookup returns the terminal steps the index knows for the command at
// pos, and whether they are the whole truth (sure): see replayIndex. It
// also notes that pos's partition was live here at arrived, when the
// handler took the message: what the handler waited for since (another
// handler's lock on the command id, a refresh) is not the partition's
// silence.
func (x *replayIndex) lookup(cmd *schemas.RevokeCommand, pos position, arrived time.Time, canonicalKey bool) (rows []schemas.AuditRow, sure bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := partKey{pos.topic, pos.partition}
	p := x.parts[k]
	if p == nil {
		p = &partState{}
		x.parts[k] = p
	}
	if p.seen.IsZero() || arrived.Sub(p.seen) >= x.cfg.IdleGap {
		x.triggerLocked()
		p.gen = x.gen
	}
	if arrived.After(p.seen) {
		p.seen = arrived
	}
	for _, e := range x.done[cmd.CommandID] {
		rows = append(rows, e.row(cmd.CommandID))
	}
	sure = canonicalKey && !x.loadedFrom.IsZero() && !cmd.IssuedAt.Before(x.loadedFrom) &&
		x.doneGen >= p.gen
	return rows, sure
}

// record adds the terminal steps among rows, once they are durable.
func (x *replayIndex) record(rows []schemas.AuditRow) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range rows {
		x.addLocked(&rows[i])
	}
	x.maybePruneLocked()
}

// maybePruneLocked prunes once the entries added since the last prune
// reach 100,000 or half the index, whichever is more: a prune walks the
// whole index, so its cost stays in proportion to what was added (at a
// million commands, a walk every 100,000 took 3% of a campaign's CPU
// and pruned nothing, the commands being inside the window).
func (x *replayIndex) maybePruneLocked() {
	if x.recorded >= max(100000, len(x.done)/2) {
		x.pruneLocked()
	}
}

func (x *replayIndex) addLocked(r *schemas.AuditRow) {
	if !r.Step.Terminal() || r.ExpiresAt.IsZero() || r.CommandID == "" {
		// Rows without an expiry never verified as a command, so no
		// command can be a replay of them.
		return
	}
	es := x.done[r.CommandID]
	for _, e := range es {
		if e.rowID == r.RowID {
			return
		}
	}
	x.done[r.CommandID] = append(es, doneEntry{
		rowID: r.RowID, step: r.Step, topic: r.SourceTopic, partition: r.SourcePartition,
		offset: r.SourceOffset, expiresAt: r.ExpiresAt, at: r.Time,
	})
	x.recorded++
}

// pruneLocked forgets steps recorded more than Window ago of commands
// past their expiry (the handler refuses an expired command before its
// replay check; a minute of grace covers clock differences). Steps are
// kept for Window even after their command expired, since a command
// re-signed under the same id with a later expiry is still a replay.
func (x *replayIndex) pruneLocked() {
	now := x.now()
	expired, old := now.Add(-time.Minute), now.Add(-x.cfg.Window)
	for id, es := range x.done {
		keep := es[:0]
		for _, e := range es {
			if !e.expiresAt.Before(expired) || !e.at.Before(old) {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			delete(x.done, id)
		} else {
			x.done[id] = keep
		}
	}
	x.recorded = 0
}

func (x *replayIndex) trigger() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.triggerLocked()
}

// triggerLocked starts a refresh, or asks the one under way for another
// after it (its read may have begun before the partition appeared).
func (x *replayIndex) triggerLocked() {
	x.gen++
	switch {
	case x.closed:
	case x.refreshing:
		x.again = true
	default:
		x.refreshing = true
		x.wg.Go(x.refreshLoop)
	}
}

// await waits until the refresh under way ends and reports whether one
// was under way and can make the lookup of cmd sure (false at once when
// not, or when ctx ends first).
// A lookup that was not sure because a refresh had yet to read its
// partition is worth repeating after it: one store read then answers the
// commands that would each have read the store meanwhile (at start, every
// command in flight until the first load completes).
//
// A handler that waited held a message of pos's partition all along, so
// the partition was not silent: when the refresh ends, the partition
// counts as seen then. Otherwise a refresh slower than IdleGap would make
// every partition that waited for it look (re)appeared at its next
// lookup, which asks for another refresh, which its handlers wait for
// again, for as long as commands come.
func (x *replayIndex) await(ctx context.Context, cmd *schemas.RevokeCommand, pos position, canonicalKey bool) bool {
	x.mu.Lock()
	// Only a refresh can make such a lookup sure (see lookup).
	helps := canonicalKey && (x.loadedFrom.IsZero() || !cmd.IssuedAt.Before(x.loadedFrom))
	if !x.refreshing || !helps {
		x.mu.Unlock()
		return false
	}
	ch := x.refreshed
	x.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return false
	}
	now := x.now()
	x.mu.Lock()
	if p := x.parts[partKey{pos.topic, pos.partition}]; p != nil && now.After(p.seen) {
		p.seen = now
	}
	x.mu.Unlock()
	return true
}

func (x *replayIndex) refreshLoop() {
	for {
		x.refresh()
		x.mu.Lock()
		close(x.refreshed)
		x.refreshed = make(chan struct{})
		if !x.again || x.closed {
			x.refreshing = false
			x.mu.Unlock()
			return
		}
		x.again = false
		x.mu.Unlock()
	}
}

// refresh reads the trail's terminal rows since the last refresh (the
// first time: of the last Window) into the index. A failure (the store is
// down) leaves the index unsure where it was; the next appearance of a
// partition tries again.
func (x *replayIndex) refresh() {
	start := x.now()
	x.mu.Lock()
	gen := x.gen
	first := x.loadedFrom.IsZero()
	from := x.nextFrom
	if first {
		from = start.Add(-x.cfg.Window)
	}
	x.mu.Unlock()
	if from.Before(audit.MinTime) {
		from = audit.MinTime
	}
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	rows, err := x.store.History(ctx, audit.Query{Steps: terminalSteps, From: from})
	if err != nil {
		x.log.Warn().Err(err).Msg("reading executed commands from the audit store failed; unknown commands are checked against the store")
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range rows {
		x.addLocked(&rows[i])
	}
	if first {
		x.loadedFrom = from
	}
	x.doneGen = gen
	x.nextFrom = start.Add(-x.cfg.Overlap)
	x.maybePruneLocked()
	x.log.Debug().Int("rows", len(rows)).Time("from", from).Dur("took", x.now().Sub(start)).Msg("replay index refreshed")
}

// terminalSteps are the steps for which schemas.Step.Terminal holds.
var terminalSteps = func() []schemas.Step {
	var out []schemas.Step
	for _, s := range schemas.Steps {
		if s.Terminal() {
			out = append(out, s)
		}
	}
	return out
}()
