// Package pace waits on a golang.org/x/time/rate limiter under an injected
// clock. rate.Limiter's own Wait reads time.Now and sleeps on a real
// timer; its ReserveN(now, n), DelayFrom and CancelAt take the time as an
// argument, which is all a fake clock needs.
package pace

import (
	"context"
	"fmt"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"
)

// Wait takes n tokens from l, waiting on clk's timer until they are due.
// It returns nil at once when they are there (whether or not ctx has
// ended: the caller decides what an ended ctx means). If ctx ends during
// the wait the reservation is cancelled, giving its tokens back as far as
// later reservations allow, and ctx's error is returned. n beyond l's
// burst can never be granted and is an error.
func Wait(ctx context.Context, clk clockwork.Clock, l *rate.Limiter, n int) error {
	now := clk.Now()
	r := l.ReserveN(now, n)
	if !r.OK() {
		return fmt.Errorf("pace: %d tokens exceed the burst of %d", n, l.Burst())
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		r.CancelAt(clk.Now())
		return ctx.Err()
	}
}
