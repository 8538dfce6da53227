package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/state"
	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// startTimeout bounds the attempt at making the baseline topic ready when
// the detector starts.
const startTimeout = 10 * time.Second

// recovery keeps the engine's state across restarts and partition moves.
//
// kafka-go does not say which partitions a rebalance assigned, so recovery
// watches the messages instead: the first message of a partition that a
// detector has not handled before, or one that skips past the offset after
// the last message handled there (someone else handled the ones between),
// is the first message since the partition was taken on, and it sits at the
// group's committed offset. Before handling it, recovery restores the
// partition's baselines and replays, without emitting commands, the
// partition's messages from the engine's horizon before it up to it. The
// reader handles a partition's messages one at a time, so the rebuild is
// finished before any later message of the partition is handled; other
// partitions go on meanwhile.
//
// Because the replay stops at the committed offset, what it replays had its
// commands published already, and what follows is handled normally: a
// detection that spans a restart or a move is emitted once. Its command id
// is a hash of the rule and the evidence, so a redelivered message that
// makes the same detection again makes the same command.
//
// State of partitions the detector no longer owns is kept until the
// engine's own eviction drops it: kafka-go does not say when a partition
// goes, and a partition that comes back after others handled it is
// rebuilt anyway.
type recovery struct {
	cfg   state.Config
	topic string
	skew  time.Duration
	now   func() time.Time
	eng   *engineGuard
	// enrich enriches replayed events as the handler enriches live ones,
	// so the rebuilt state is the state they built.
	enrich *enrich.Enricher
	// evidence remembers replayed events' address context as the
	// handler does live ones, so commands after a restart or a move
	// still say where evidence from before it came from.
	evidence *evidenceIndex
	client   *kafkax.Client
	store    *state.Store
	log      zerolog.Logger
	metrics  *stateMetrics
	// out writes the baselines after the commands of their event.
	out *outbox
	// stopping is Run's context, set by start: a rebuild, which can
	// take minutes, ends when the detector stops rather than holding up
	// its shutdown.
	stopping context.Context

	// topicMu serialises making sure of the baseline topic;
	// topicPartitions is how many partitions it was made ready for.
	topicMu         sync.Mutex
	topicPartitions int

	mu sync.Mutex
	// next holds, per partition, the offset after the last message
	// handled.
	next map[int]int64
	// learnt holds, per partition, the baselines learnt from the message
	// being handled there.
	learnt map[int][]state.Baseline
	// where holds, per baseline record key, the partition its record is
	// in.
	where map[string]int
	// deferred holds, per partition, deletions of its baselines that wait
	// for the next message handled there. The engine reports the values
	// it forgets while sweeping whichever event it is handling, and may
	// still hold, and sweep, users of partitions that have moved to other
	// detectors; deleting their records from here would wipe out what the
	// new owners learnt since. Handling a message of the partition shows
	// this detector owns it.
	deferred map[int][]state.Baseline
}

func newRecovery(cfg Config, eng *engineGuard, now func() time.Time, log zerolog.Logger, reg prometheus.Registerer) (*recovery, error) {
	m, err := newStateMetrics(reg)
	if err != nil {
		return nil, err
	}
	client, err := kafkax.NewClient(cfg.Reader.Brokers, cfg.Reader.Security, cfg.Reader.Component+"-state")
	if err != nil {
		return nil, err
	}
	store, err := state.NewStore(client, cfg.State.BaselineTopic)
	if err != nil {
		return nil, err
	}
	return &recovery{
		cfg:      cfg.State,
		topic:    cfg.Reader.Topic,
		skew:     cfg.MaxClockSkew,
		now:      now,
		eng:      eng,
		client:   client,
		store:    store,
		log:      log.With().Str("kafka_topic", cfg.Reader.Topic).Str("baseline_topic", cfg.State.BaselineTopic).Logger(),
		metrics:  m,
		next:     map[int]int64{},
		learnt:   map[int][]state.Baseline{},
		where:    map[string]int{},
		deferred: map[int][]state.Baseline{},
	}, nil
}

// start makes sure the baseline topic can hold every partition's
// baselines. A failure (the event topic may not exist yet, the brokers may
// be down) is not fatal: the first rebuild tries again, and fails, to be
// retried, until it succeeds.
func (r *recovery) start(ctx context.Context) {
	r.stopping = ctx
	e := r.log.Info().Bool("rebuild", r.cfg.Rebuild)
	if r.cfg.Rebuild {
		e = e.Dur("horizon", r.eng.eng.Horizon()).Dur("replay", r.replaySpan()+r.cfg.ReplaySlack)
	}
	e.Msg("detector state recovery")
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := r.ensureTopic(ctx, 0); err != nil {
		r.log.Warn().Err(err).Msg("baseline topic not ready; trying again before the first event")
	}
}

// ensureTopic makes sure the baseline topic has a partition for partition
// of the event topic, growing it when the event topic grew.
func (r *recovery) ensureTopic(ctx context.Context, partition int) error {
	r.topicMu.Lock()
	defer r.topicMu.Unlock()
	if partition < r.topicPartitions {
		return nil
	}
	n, err := r.store.Ensure(ctx, r.topic, r.cfg.CreateTopic)
	if err != nil {
		return fmt.Errorf("baseline topic: %w", err)
	}
	r.topicPartitions = n
	return nil
}

// close flushes and closes the baseline writer.
func (r *recovery) close() error {
	err := r.store.Close()
	r.client.Close()
	return err
}

// wrap runs h with the partition's state rebuilt before it, and queues the
// baselines h made the engine learn on the outbox after h's own output, so
// that they are written after the event's commands and before the reader
// commits the event (h's result becomes, or stays, kafkax.Later). A
// failure to rebuild, or any transient error of h, is returned for the
// reader to retry the message. A poison event is dead-lettered and
// committed without waiting for the baselines it made the engine forget
// (it taught none): they are written by the same outbox soon after.
func (r *recovery) wrap(h kafkax.Handler) kafkax.Handler {
	return func(ctx context.Context, m kafkax.Message) error {
		if err := r.ensure(ctx, m); err != nil {
			return err
		}
		err := h(ctx, m)
		var pe *kafkax.PoisonError
		var le *kafkax.LaterError
		if err != nil && !errors.As(err, &pe) && !errors.As(err, &le) {
			return err
		}
		if batch := r.collect(m.Partition); len(batch) > 0 {
			// The outbox writes a partition's entries in order and never
			// skips one, so this entry written means h's is too.
			wait := r.out.add(m.Partition, &outboxEntry{baselines: batch})
			if pe == nil {
				err = kafkax.Later(wait)
			}
		}
		r.mu.Lock()
		if m.Offset >= r.next[m.Partition] {
			r.next[m.Partition] = m.Offset + 1
		}
		r.mu.Unlock()
		return err
	}
}

// learn keeps baselines learnt from a message of partition until collect.
func (r *recovery) learn(partition int, learnt []state.Baseline) {
	if len(learnt) == 0 {
		return
	}
	r.mu.Lock()
	r.learnt[partition] = append(r.learnt[partition], learnt...)
	r.mu.Unlock()
}

// collect returns what partition's records must become: the baselines
// learnt on partition, and the deletions deferred for it; deletions of
// records in other partitions are deferred to them. It records each
// record's partition as the one it is written to: the outbox writes it
// there, retrying until it does.
func (r *recovery) collect(partition int) []state.Baseline {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := r.deferred[partition]
	delete(r.deferred, partition)
	for _, b := range r.learnt[partition] {
		if q, ok := r.where[b.RecordKey()]; ok && q != partition && b.LastSeen.IsZero() {
			r.deferred[q] = append(r.deferred[q], b)
			continue
		}
		batch = append(batch, b)
	}
	delete(r.learnt, partition)
	for _, b := range batch {
		if b.LastSeen.IsZero() {
			delete(r.where, b.RecordKey())
		} else {
			r.where[b.RecordKey()] = partition
		}
	}
	return batch
}

// persist writes baselines to partition of the baseline topic.
func (r *recovery) persist(ctx context.Context, partition int, baselines []state.Baseline) error {
	if len(baselines) == 0 {
		return nil
	}
	if err := r.store.Save(ctx, partition, baselines); err != nil {
		r.metrics.errors.WithLabelValues("persist").Inc()
		return fmt.Errorf("saving baselines: %w", err)
	}
	r.metrics.persisted.Add(float64(len(baselines)))
	return nil
}

// ensure rebuilds the state of m's partition when m is the first message
// handled there since the partition was taken on.
func (r *recovery) ensure(ctx context.Context, m kafkax.Message) error {
	r.mu.Lock()
	next, seen := r.next[m.Partition]
	r.mu.Unlock()
	if seen && m.Offset <= next {
		// The next message, or one redelivered after a rebalance that
		// this detector has handled already.
		return nil
	}
	// Baselines learnt from a message that was never done here are
	// stale: the message went to the partition's other owner, or comes
	// back in the replay. Deletions deferred from a copy of the
	// partition's state that others have moved past are stale too.
	r.mu.Lock()
	delete(r.learnt, m.Partition)
	delete(r.deferred, m.Partition)
	r.mu.Unlock()
	if r.stopping != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(r.stopping, cancel)()
	}
	start := time.Now()
	restored, replayed, err := r.rebuild(ctx, m)
	r.metrics.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		r.metrics.errors.WithLabelValues("rebuild").Inc()
		return fmt.Errorf("rebuilding state of %s/%d: %w", m.Topic, m.Partition, err)
	}
	r.mu.Lock()
	r.next[m.Partition] = m.Offset
	r.mu.Unlock()
	reason := "partition taken on"
	if seen {
		reason = fmt.Sprintf("offsets %d to %d handled elsewhere", next, m.Offset-1)
	}
	r.log.Info().Int("partition", m.Partition).Int64("offset", m.Offset).Str("reason", reason).
		Int("baselines_restored", restored).Int("events_replayed", replayed).
		Dur("took", time.Since(start)).Msg("detector state rebuilt")
	return nil
}

// rebuild restores m's partition's baselines, then replays the messages of
// the partition before m that the engine's horizon reaches.
func (r *recovery) rebuild(ctx context.Context, m kafkax.Message) (restored, replayed int, err error) {
	if err := r.ensureTopic(ctx, m.Partition); err != nil {
		return 0, 0, err
	}
	entries, skipped, err := r.store.Load(ctx, m.Partition)
	if err != nil {
		return 0, 0, fmt.Errorf("loading baselines: %w", err)
	}
	if skipped > 0 {
		r.log.Warn().Int("partition", m.Partition).Int("skipped", skipped).Msg("baseline records that do not decode were skipped")
	}
	if len(entries) > 0 {
		r.eng.lock()
		restoreBaselines(r.eng.eng, entries)
		r.eng.unlock()
		r.mu.Lock()
		for _, b := range entries {
			r.where[b.RecordKey()] = m.Partition
		}
		r.mu.Unlock()
		r.metrics.restored.Add(float64(len(entries)))
	}
	if !r.cfg.Rebuild {
		return len(entries), 0, nil
	}
	since := r.replayFrom(m)
	from, ok, err := r.client.OffsetAt(ctx, r.topic, m.Partition, since)
	if err != nil {
		return len(entries), 0, err
	}
	if !ok || from >= m.Offset {
		return len(entries), 0, nil
	}
	n, err := r.client.Read(ctx, r.topic, m.Partition, from, m.Offset, r.replay)
	return len(entries), n, err
}

// replayFrom is the time from which the messages before m are replayed:
// the engine's horizon plus the slack before the earlier of m's event time
// and its Kafka timestamp. Events are written after they happen, so every
// event within the horizon of m's event time was stamped by Kafka after
// that point, give or take the slack.
func (r *recovery) replayFrom(m kafkax.Message) time.Time {
	ref := m.Time
	if ev, err := schemas.DecodeEvent(m.Value); err == nil && (ref.IsZero() || ev.Time.Before(ref)) {
		ref = ev.Time
	}
	if ref.IsZero() {
		ref = r.now()
	}
	return ref.Add(-(r.replaySpan() + r.cfg.ReplaySlack))
}

// replaySpan is the engine's horizon, capped by MaxReplay.
func (r *recovery) replaySpan() time.Duration {
	h := r.eng.eng.Horizon()
	if r.cfg.MaxReplay > 0 && h > r.cfg.MaxReplay {
		return r.cfg.MaxReplay
	}
	return h
}

// replay feeds one message from before the committed offset to the engine
// without emitting commands. Messages the handler dead-lettered are
// skipped the same way; the baselines replayed events touch were saved
// when the events were first handled.
func (r *recovery) replay(m kafkax.Message) error {
	if schema := headerBytes(m, schemas.HeaderSchema); len(schema) > 0 && string(schema) != schemas.SchemaAuditEventV1 {
		return nil
	}
	ev, err := schemas.DecodeEvent(m.Value)
	if err != nil {
		return nil
	}
	if ev.Time.Sub(r.now()) > r.skew {
		return nil
	}
	r.enrich.Enrich(&ev)
	r.evidence.add(&ev)
	r.eng.lock()
	replaySilently(r.eng.eng, &ev)
	_ = baselineChanges(r.eng.eng)
	r.eng.unlock()
	r.metrics.replayed.Inc()
	return nil
}

// stateMetrics are the metrics of state recovery.
type stateMetrics struct {
	duration  prometheus.Histogram
	replayed  prometheus.Counter
	restored  prometheus.Counter
	persisted prometheus.Counter
	errors    *prometheus.CounterVec
}

func newStateMetrics(reg prometheus.Registerer) (*stateMetrics, error) {
	m := &stateMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "state_rebuild_duration_seconds",
			Help:    "Time to rebuild a partition's state when it is taken on: restoring its baselines and replaying its recent events.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "state_replayed_events_total",
			Help: "Events replayed, without emitting commands, to rebuild windowed state.",
		}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "baselines_restored_total",
			Help: "Baseline entries read back from the baseline topic and given to the engine.",
		}),
		persisted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "baselines_persisted_total",
			Help: "Baseline entries written to the baseline topic.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "revoked", Subsystem: "detector", Name: "state_errors_total",
			Help: "Failed state rebuilds and baseline writes, by operation (rebuild, persist); the event is retried.",
		}, []string{"op"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.duration, m.replayed, m.restored, m.persisted, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("detector state metrics: %w", err)
		}
	}
	return m, nil
}
