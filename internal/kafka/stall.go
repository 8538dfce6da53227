package kafka

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// stallListed is how many stalled lanes Check names; it counts the rest.
const stallListed = 3

// laneProgress is what one lane is doing, for the stall check: the message
// it holds (taken from its queue and not yet terminal and recorded for
// commit) and since when.
//
// A lane takes its next message as soon as it is done with the previous
// one, and a message waits in the lane's queue only while the lane holds
// another. So a lane with work pending always holds a message, and the
// time it took that message is the time of its last progress: a lane that
// holds nothing is idle and never stalled, and one that has held the same
// message for longer than StallTimeout is stalled, whether its handler
// blocks, keeps failing transiently, waits for a handler slot or cannot
// dead-letter.
type laneProgress struct {
	partition int
	lane      int // key lane, or -1 when the partition is one lane

	mu       sync.Mutex
	holding  bool
	offset   int64
	since    time.Time
	failures int
	lastErr  string
	reported bool // the stall of the message held was logged
}

// take records that the lane started on m at now.
func (p *laneProgress) take(m kafka.Message, now time.Time) {
	p.mu.Lock()
	p.holding, p.offset, p.since = true, m.Offset, now
	p.failures, p.lastErr, p.reported = 0, "", false
	p.mu.Unlock()
}

// failed records a transient failure of the message held.
func (p *laneProgress) failed(err error) {
	p.mu.Lock()
	p.failures++
	p.lastErr = err.Error()
	p.mu.Unlock()
}

// release records that the lane is done with the message it held, and
// returns the stall that was logged for it, if any, so that its end is
// logged too.
func (p *laneProgress) release(now time.Time) (stalled laneStall, wasReported bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reported {
		stalled, wasReported = p.snapshot(now), true
	}
	p.holding, p.reported = false, false
	return stalled, wasReported
}

// laneStall is a lane that has held one message for a while.
type laneStall struct {
	partition int
	lane      int
	offset    int64
	since     time.Time
	age       time.Duration
	failures  int
	lastErr   string
}

// snapshot must be called with p.mu held.
func (p *laneProgress) snapshot(now time.Time) laneStall {
	return laneStall{
		partition: p.partition, lane: p.lane, offset: p.offset, since: p.since,
		age: now.Sub(p.since), failures: p.failures, lastErr: p.lastErr,
	}
}

// laneTable is the progress of every lane of one Run.
type laneTable struct {
	mu  sync.Mutex
	all []*laneProgress
}

// add registers a lane of partition (lane -1: the whole partition).
func (l *laneTable) add(partition, lane int) *laneProgress {
	p := &laneProgress{partition: partition, lane: lane}
	l.mu.Lock()
	l.all = append(l.all, p)
	l.mu.Unlock()
	return p
}

// stalled returns the lanes that have held one message for longer than
// timeout at now, the longest first. With report, each stall not reported
// before is also returned in fresh, and marked reported.
func (l *laneTable) stalled(now time.Time, timeout time.Duration, report bool) (all, fresh []laneStall) {
	l.mu.Lock()
	ps := slices.Clone(l.all)
	l.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		if p.holding && now.Sub(p.since) > timeout {
			st := p.snapshot(now)
			all = append(all, st)
			if report && !p.reported {
				p.reported = true
				fresh = append(fresh, st)
			}
		}
		p.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b laneStall) int { return a.since.Compare(b.since) })
	return all, fresh
}

// describeStalls names the stalled lanes for Check, the longest first.
func describeStalls(topic string, timeout time.Duration, stalls []laneStall) string {
	var b strings.Builder
	for i, st := range stalls {
		if i == stallListed {
			fmt.Fprintf(&b, "; and %d more", len(stalls)-stallListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s partition %d", topic, st.partition)
		if st.lane >= 0 {
			fmt.Fprintf(&b, " (key lane %d)", st.lane)
		}
		fmt.Fprintf(&b, " has made no progress for %s at offset %d", roundStall(st.age), st.offset)
		if st.failures > 0 {
			fmt.Fprintf(&b, " after %d transient handler failures, the last: %s", st.failures, st.lastErr)
		}
	}
	fmt.Fprintf(&b, " (stall-timeout %s)", timeout)
	return b.String()
}

// roundStall rounds a stall's age for people: to the second from a second
// up, to the millisecond below.
func roundStall(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// stallTick is how often the session looks for stalled lanes to log and
// count: a quarter of the timeout, between 10 ms and a second.
func stallTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 10*time.Millisecond), time.Second)
}

// fields adds the stall's lane and message to a log event.
func (st laneStall) fields(e *zerolog.Event) *zerolog.Event {
	e = e.Int("partition", st.partition).Int64("offset", st.offset)
	if st.lane >= 0 {
		e = e.Int("key_lane", st.lane)
	}
	return e.Dur("stalled_for", st.age)
}

// progressed records that the lane p is done with the message it held
// (terminal and recorded for commit) and logs the end of its stall, if one
// was logged.
func (s *session) progressed(p *laneProgress) {
	if st, stalled := p.release(s.r.now()); stalled {
		st.fields(s.r.log.Warn()).Msg("stalled lane progressed again")
	}
}

// watchStalls logs each stall once, at error level, and keeps the
// stalled_lanes gauge, until intake stops.
func (s *session) watchStalls(done chan<- struct{}) {
	defer close(done)
	defer s.r.metrics.stalled.Set(0)
	t := time.NewTicker(stallTick(s.r.cfg.StallTimeout))
	defer t.Stop()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case <-t.C:
		}
		all, fresh := s.lanes.stalled(s.r.now(), s.r.cfg.StallTimeout, true)
		s.r.metrics.stalled.Set(float64(len(all)))
		for _, st := range fresh {
			e := st.fields(s.r.log.Error()).Time("since", st.since).Int("transient_failures", st.failures).
				Dur("stall_timeout", s.r.cfg.StallTimeout)
			if st.lastErr != "" {
				e = e.Str("last_error", st.lastErr)
			}
			e.Msg("lane stalled: one message held longer than the stall timeout; readiness fails until it progresses")
		}
	}
}
