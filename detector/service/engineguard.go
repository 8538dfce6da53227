package service

import (
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/detector/state"
	"github.com/revoked-dev/revoked/schemas"
)

// engineGuard serialises access to the engine: handlers of different
// partitions run concurrently, state is restored and replayed while they
// run, and metrics are read at scrape time.
//
// Handlers do not take turns at the engine one event each. A handler
// queues its event, then either finds it processed or takes the engine
// and processes every event queued so far, its own and other handlers',
// before it lets go (flat combining). With a plain mutex taken per event,
// eight partitions' handlers on two cores kept the engine held 47% of the
// time while five of them on average waited for it: each unlock woke a
// waiter that then waited for a core, and the engine sat idle meanwhile
// (bench -parts detector; the detector used 1.4 of 2 cores). A lone
// handler still runs its event on its own goroutine, with no hand-off.
//
// The engine is held by owning the one token of sem, so that a handler
// can wait for whichever comes first: its event processed by another, or
// the engine free. Waiters on sem are served in order.
type engineGuard struct {
	sem chan struct{}
	eng *engine.Engine
	// work runs one event on the engine (engine.Process and the baselines
	// it changed); a seam for tests.
	work func(ev *schemas.AuditEvent) ([]schemas.RevokeCommand, []state.Baseline)
	log  zerolog.Logger

	qmu   sync.Mutex
	queue []*engineCall
	spare []*engineCall // the other half of queue's double buffer; the holder's
}

func newEngineGuard(eng *engine.Engine, log zerolog.Logger) *engineGuard {
	g := newGuard(func(ev *schemas.AuditEvent) ([]schemas.RevokeCommand, []state.Baseline) {
		return eng.Process(ev), baselineChanges(eng)
	}, log)
	g.eng = eng
	return g
}

func newGuard(work func(*schemas.AuditEvent) ([]schemas.RevokeCommand, []state.Baseline), log zerolog.Logger) *engineGuard {
	return &engineGuard{sem: make(chan struct{}, 1), work: work, log: log}
}

// lock takes the engine for a caller that is not a handler (restoring
// baselines, replaying, reading stats); unlock lets it go.
func (g *engineGuard) lock()   { g.sem <- struct{}{} }
func (g *engineGuard) unlock() { <-g.sem }

// engineCall is one event on its way through the engine.
type engineCall struct {
	ev     *schemas.AuditEvent
	cmds   []schemas.RevokeCommand
	learnt []state.Baseline
	// panicked is what the engine panicked with on ev, if it did.
	panicked any
	// ready receives once ev has been processed.
	ready chan struct{}
}

// maxCombined caps the events one holder processes for others before it
// lets the engine go, so that a restore or a scrape waiting for the
// engine is not held off for long; a handler still waiting takes over.
const maxCombined = 256

var callPool = sync.Pool{New: func() any { return &engineCall{ready: make(chan struct{}, 1)} }}

// process runs ev through the engine and returns the commands it
// completed and the baselines it changed. A panic in the engine is
// recovered where it happened, logged with its stack, and raised again
// here, so the reader dead-letters the event as it does any handler's
// panic; the other events go on.
func (g *engineGuard) process(ev *schemas.AuditEvent) ([]schemas.RevokeCommand, []state.Baseline) {
	c := callPool.Get().(*engineCall)
	c.ev = ev
	g.qmu.Lock()
	g.queue = append(g.queue, c)
	g.qmu.Unlock()
	select {
	case <-c.ready:
	case g.sem <- struct{}{}:
		// c was queued before the engine was taken, so it is processed by
		// the time combine returns, by this holder or an earlier one.
		g.combine()
		<-g.sem
		<-c.ready
	}
	cmds, learnt, p := c.cmds, c.learnt, c.panicked
	*c = engineCall{ready: c.ready}
	callPool.Put(c)
	if p != nil {
		panic(p)
	}
	return cmds, learnt
}

// combine processes queued events, in the order they were queued, until
// the queue is empty or maxCombined were processed. The caller holds the
// engine.
func (g *engineGuard) combine() {
	for done := 0; done < maxCombined; {
		g.qmu.Lock()
		batch := g.queue
		g.queue, g.spare = g.spare[:0], nil
		g.qmu.Unlock()
		if len(batch) == 0 {
			g.spare = batch
			return
		}
		for _, c := range batch {
			g.one(c)
			c.ready <- struct{}{}
		}
		done += len(batch)
		clear(batch)
		g.spare = batch[:0]
	}
}

// one runs c's event, recovering a panic into c.
func (g *engineGuard) one(c *engineCall) {
	defer func() {
		if p := recover(); p != nil {
			g.log.Error().Str("panic", fmt.Sprint(p)).Str("event_id", c.ev.ID).Bytes("stack", debug.Stack()).
				Msg("the rule engine panicked on an event; it is dead-lettered")
			c.panicked = p
		}
	}()
	c.cmds, c.learnt = g.work(c.ev)
}
