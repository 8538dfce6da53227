package simulate

import (
	"context"
	"encoding/json"
	"sync"
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
			first := true
			s.wall = func() time.Time {
				if first {
					first = false
					return start
				}
				if s.queue.Len() > 0 && s.queue[0].at.After(s.simNow) {
					return s.queue[0].at
				}
				return s.simNow
			}
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
