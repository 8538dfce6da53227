package service

import (
	"context"
	"errors"
	"sync"

	"github.com/revoked-dev/revoked/detector/state"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/retry"
)

// errOutboxClosed is what waiting on an entry reports when the detector
// stopped before the entry was written: its event stays uncommitted and is
// handled again after the restart.
var errOutboxClosed = errors.New("detector stopped before the event's output was written")

// outbox writes what handling an event produced (its commands, the
// commands the guard held and the baselines it taught the engine) to Kafka
// after the handler returns, so that a partition's next event is handled
// while the last one's output is on the wire.
//
// Each partition has a flusher that takes everything queued since its
// last write and writes it as one batch per topic: commands, then held
// commands, then baselines, in the order the events were handled. Commands
// go first because a baseline saved without the command of its event
// would, after a crash, rebuild a state that no longer detects what the
// event completed. A write that fails is retried with backoff until it
// succeeds or the outbox closes, so an entry is never skipped: an event
// is committed (the reader's Later) only once its entry is written, and
// every entry queued before it is written too.
//
// Without the outbox each event with output waited one Kafka round trip
// (1 to 2 ms on loopback) before the partition's next event: with most
// events teaching a baseline, the detector read 13,000 events/s on 8
// partitions with half a core busy (go run ./deployments/local bench
// -parts detector).
type outbox struct {
	s   *Service
	ctx context.Context // ends when the outbox closes

	mu     sync.Mutex
	parts  map[int]*outboxQueue
	closed bool
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// outboxQueue is one partition's entries not yet taken by its flusher.
type outboxQueue struct {
	mu      sync.Mutex
	entries []*outboxEntry
	wake    chan struct{}
}

// outboxEntry is the output of one handled event.
type outboxEntry struct {
	ev        pendingEvent
	baselines []state.Baseline
	done      chan struct{}
	err       error // set before done closes when the entry was not written
}

func newOutbox(s *Service) *outbox {
	ctx, stop := context.WithCancel(context.Background())
	return &outbox{s: s, ctx: ctx, stop: stop, parts: map[int]*outboxQueue{}}
}

// add queues e for partition and returns what waits until it is written.
func (o *outbox) add(partition int, e *outboxEntry) func(context.Context) error {
	e.done = make(chan struct{})
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		e.err = errOutboxClosed
		close(e.done)
		return e.wait
	}
	q, ok := o.parts[partition]
	if !ok {
		q = &outboxQueue{wake: make(chan struct{}, 1)}
		o.parts[partition] = q
		o.wg.Go(func() { o.flusher(partition, q) })
	}
	o.mu.Unlock()
	q.mu.Lock()
	q.entries = append(q.entries, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return e.wait
}

func (e *outboxEntry) wait(ctx context.Context) error {
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flusher writes partition's entries in order until the outbox closes;
// entries still queued then are failed with errOutboxClosed.
func (o *outbox) flusher(partition int, q *outboxQueue) {
	for {
		select {
		case <-o.ctx.Done():
			q.mu.Lock()
			rest := q.entries
			q.entries = nil
			q.mu.Unlock()
			for _, e := range rest {
				e.err = errOutboxClosed
				close(e.done)
			}
			return
		case <-q.wake:
		}
		q.mu.Lock()
		batch := q.entries
		q.entries = nil
		q.mu.Unlock()
		if len(batch) > 0 {
			o.flush(partition, batch)
		}
	}
}

// flush writes batch, retrying what fails, and settles its entries.
func (o *outbox) flush(partition int, batch []*outboxEntry) {
	var cmds []kafkax.Message
	var heldCmds []heldCommand
	var baselines []state.Baseline
	for _, e := range batch {
		cmds = append(cmds, e.ev.msgs...)
		heldCmds = append(heldCmds, e.ev.held...)
		baselines = append(baselines, e.baselines...)
	}
	steps := []func(context.Context) error{
		func(ctx context.Context) error { return o.s.publish(ctx, cmds) },
		func(ctx context.Context) error { return o.s.publishHeld(ctx, heldCmds) },
		func(ctx context.Context) error { return o.s.rec.persist(ctx, partition, baselines) },
	}
	for _, step := range steps {
		// Backing off as the reader does between attempts at a message.
		sched := retry.New(o.s.cfg.Reader.RetryMin, o.s.cfg.Reader.RetryMax)
		for attempt := 0; ; attempt++ {
			err := step(o.ctx)
			if err == nil {
				break
			}
			if o.ctx.Err() != nil {
				for _, e := range batch {
					e.err = errOutboxClosed
					close(e.done)
				}
				return
			}
			wait := sched.Next()
			o.s.log.Warn().Err(err).Int("partition", partition).Int("attempt", attempt+1).Dur("retry_in", wait).
				Msg("writing the detector's output failed; retrying")
			retry.Sleep(o.ctx, wait)
		}
	}
	published := o.s.now()
	for _, e := range batch {
		o.s.published(e.ev, published)
		close(e.done)
	}
}

// close stops the flushers after the batches they are writing; entries
// not written by then report errOutboxClosed. The handlers must be done
// adding.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.stop()
	o.wg.Wait()
}
