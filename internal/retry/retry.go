// Package retry is the project's one backoff: an exponential schedule
// from github.com/cenkalti/backoff/v5 (ExponentialBackOff, doubling from a
// least to a most wait), with each wait drawn from the upper half of the
// schedule's interval, so that many callers retrying at once spread out
// and no wait exceeds the most. The loops that use it stay their own:
// each decides what a failure means (retry, give up, dead-letter) and
// logs it; backoff.Retry would decide for them and reads the wall clock.
package retry

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Schedule is the waits between attempts of one retry loop. It is not
// safe for concurrent use.
type Schedule struct {
	b backoff.ExponentialBackOff
}

// New returns a schedule whose waits start at least and double up to
// most (most below least is taken as least).
func New(least, most time.Duration) *Schedule {
	s := &Schedule{b: backoff.ExponentialBackOff{
		InitialInterval: least,
		Multiplier:      2,
		MaxInterval:     max(least, most),
	}}
	s.b.Reset()
	return s
}

// Next returns the wait before the next attempt: drawn from [d/2, d],
// where d is the schedule's next interval.
func (s *Schedule) Next() time.Duration {
	d := s.b.NextBackOff()
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset starts the schedule over, after a success.
func (s *Schedule) Reset() { s.b.Reset() }

// Sleep waits d and reports true, or reports false as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
