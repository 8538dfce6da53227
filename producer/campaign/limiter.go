package campaign

import (
	"context"
	"time"
)

// bucket is a token bucket: tokens accrue at rate per second up to burst,
// and take reserves n of them, waiting until they have accrued. A rate of
// zero or less never waits.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate float64, burst int, now func() time.Time) *bucket {
	// It starts empty, so the first batch is paced like every other
	// rather than leaving at once and making the first second twice as
	// busy as the rate allows.
	return &bucket{rate: rate, burst: float64(max(burst, 1)), now: now, last: now()}
}

// take waits until n tokens are available and takes them. It returns
// ctx.Err() if ctx ends first, having taken nothing.
func (b *bucket) take(ctx context.Context, n int) error {
	if b.rate <= 0 {
		return ctx.Err()
	}
	now := b.now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	need := float64(n) - b.tokens
	if need > 0 {
		t := time.NewTimer(time.Duration(need / b.rate * float64(time.Second)))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now = b.now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	// A late timer leaves the bucket slightly short; going negative
	// carries the debt into the next wait, which keeps the long-run rate.
	b.tokens -= float64(n)
	return nil
}
