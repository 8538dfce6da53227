package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
)

// timeCounter counts published events by their event time.
type timeCounter struct {
	mu       sync.Mutex
	from, to time.Time
	n        int
}

func (c *timeCounter) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		var ev struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			return err
		}
		if !ev.Time.Before(c.from) && ev.Time.Before(c.to) {
			c.n++
		}
	}
	return nil
}

// followQueue stands in for the wall clock of s: start at first, then
// always at the next scheduled step, so a live run runs at once.
func followQueue(s *Sim, start time.Time) func() time.Time {
	first := true
	return func() time.Time {
		if first {
			first = false
			return start
		}
		if s.queue.Len() > 0 && s.queue[0].at.After(s.simNow) {
			return s.queue[0].at
		}
		return s.simNow
	}
}

// A live run makes the rate it is asked for at the hour and day it runs,
// however busy the simulated users are then on average: a Sunday night and
// a weekday afternoon both give the asked rate once the first logins are
// spread out. The wall clock is stood in for by one that is always at the
// next scheduled event, so the minute runs at once.
func TestLiveRunMakesTheAskedRateAtAnyHour(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC), // Sunday evening
		time.Date(2026, 12, 9, 3, 0, 0, 0, time.UTC),  // Wednesday night (UTC)
		time.Date(2026, 12, 8, 14, 0, 0, 0, time.UTC), // Tuesday afternoon
	} {
		t.Run(start.Format("Mon 15:04"), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Clock = ClockLive
			cfg.Users = 4000
			cfg.Rate = 4000
			cfg.Duration = time.Minute
			cfg.Seed = 3
			s, err := New(cfg, nil, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			s.wall = followQueue(s, start)
			// The first logins are spread over half an offline pause: measure
			// after the first 20 seconds.
			c := &timeCounter{from: start.Add(20 * time.Second), to: start.Add(time.Minute)}
			if _, err := s.Run(context.Background(), c, Options{}); err != nil {
				t.Fatal(err)
			}
			rate := float64(c.n) / 40
			if rate < 0.9*cfg.Rate || rate > 1.1*cfg.Rate {
				t.Errorf("%.0f events/s (scale %.2f), want %.0f ± 10%%", rate, s.liveScale, cfg.Rate)
			}
			t.Logf("%.0f events/s with the users' gap scaled by %.2f", rate, s.liveScale)
		})
	}
}

// heldPublisher holds its first write until release is closed (or gives
// up after a while, so that a simulator that waits for that write instead
// of generating fails the test rather than hanging it) and records the
// event times of every write.
type heldPublisher struct {
	release chan struct{}
	held    atomic.Bool
	mu      sync.Mutex
	writes  [][]time.Time
}

func (p *heldPublisher) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	p.mu.Lock()
	first := len(p.writes) == 0
	times := make([]time.Time, 0, len(msgs))
	for _, m := range msgs {
		var ev struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			p.mu.Unlock()
			return err
		}
		times = append(times, ev.Time)
	}
	p.writes = append(p.writes, times)
	p.mu.Unlock()
	if first {
		p.held.Store(true)
		select {
		case <-p.release:
		case <-time.After(10 * time.Second):
			return errors.New("the simulator generated nothing more while its first batch was on the wire")
		}
	}
	return nil
}

// A live run keeps generating while a batch is being written, the batch
// after it growing meanwhile, instead of waiting for the write when its
// next batch is FlushInterval old: waiting held a run asked for 10,000
// events/s to about 5,000 with the pipeline in the same process. The
// first write is held until the simulator has generated 500 more events;
// every event still arrives, in order.
func TestLiveRunGeneratesWhileABatchIsOnTheWire(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Clock = ClockLive
	cfg.Users = 1000
	cfg.Rate = 4000
	cfg.Events = 3000
	cfg.BatchSize = 2000
	cfg.FlushInterval = 2 * time.Millisecond
	cfg.Seed = 5
	s, err := New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	pub := &heldPublisher{release: make(chan struct{})}
	start := time.Date(2026, 12, 8, 14, 0, 0, 0, time.UTC)
	wall, whileHeld := followQueue(s, start), 0
	s.wall = func() time.Time {
		if pub.held.Load() && whileHeld >= 0 {
			if whileHeld++; whileHeld == 500 {
				close(pub.release)
				whileHeld = -1
			}
		}
		return wall()
	}
	stats, err := s.Run(context.Background(), pub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.writes) < 2 {
		t.Fatalf("%d writes, want the held one and more", len(pub.writes))
	}
	n := 0
	var last time.Time
	for i, w := range pub.writes {
		for _, at := range w {
			if at.Before(last) {
				t.Fatalf("write %d: event at %s after one at %s", i, at, last)
			}
			last = at
		}
		n += len(w)
	}
	if n != int(stats.Events) || n < int(cfg.Events) {
		t.Errorf("%d events written, stats say %d, asked for %d", n, stats.Events, cfg.Events)
	}
	// Events come about every 250 µs at 4,000/s: the write after the held
	// one carries what was generated while it was held, far more than the
	// 2 ms of FlushInterval.
	if got := len(pub.writes[1]); got < 100 {
		t.Errorf("the write after the held one carries %d events, want the hundreds generated while it was held", got)
	}
	t.Logf("%d writes; the first %d events, the one after it %d", len(pub.writes), len(pub.writes[0]), len(pub.writes[1]))
}
