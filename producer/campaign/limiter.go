package campaign

import (
	"context"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/revoked-dev/revoked/internal/pace"
)

// bucket paces a campaign: a token bucket (golang.org/x/time/rate) whose
// tokens accrue at rate per second up to burst, waited on with the
// Runner's clock. A rate of zero or less never waits.
type bucket struct {
	lim *rate.Limiter // nil: no rate
	clk clockwork.Clock
}

func newBucket(perSecond float64, burst int, clk clockwork.Clock) *bucket {
	if perSecond <= 0 {
		return &bucket{clk: clk}
	}
	burst = max(burst, 1)
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	// It starts empty, so the first batch is paced like every other
	// rather than leaving at once and making the first second twice as
	// busy as the rate allows.
	lim.ReserveN(clk.Now(), burst)
	return &bucket{lim: lim, clk: clk}
}

// take waits until n tokens are available and takes them. It returns
// ctx.Err() if ctx ends first, having taken nothing. A late wake-up
// leaves no debt behind: reservations are timed from when they were due.
func (b *bucket) take(ctx context.Context, n int) error {
	if b.lim == nil {
		return ctx.Err()
	}
	return pace.Wait(ctx, b.clk, b.lim, n)
}
