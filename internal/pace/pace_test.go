package pace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/revoked-dev/revoked/internal/pace"
)

// A wait ends when the fake clock reaches the token's due time, and not
// before.
func TestWaitFollowsTheClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a hang fails instead of stalling the run
	defer cancel()
	clk := clockwork.NewFakeClock()
	l := rate.NewLimiter(10, 1)
	if err := pace.Wait(ctx, clk, l, 1); err != nil {
		t.Fatalf("first token: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- pace.Wait(ctx, clk, l, 1) }()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(99 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("returned %v before the token was due", err)
	default:
	}
	clk.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An ended ctx gives the reserved tokens back.
func TestWaitCancelled(t *testing.T) {
	clk := clockwork.NewFakeClock()
	l := rate.NewLimiter(1, 1)
	if err := pace.Wait(t.Context(), clk, l, 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- pace.Wait(ctx, clk, l, 1) }()
	if err := clk.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	clk.Advance(time.Second)
	if got := l.TokensAt(clk.Now()); got != 1 {
		t.Errorf("%v tokens a second after the cancelled wait, want 1", got)
	}
}

// More tokens than the burst can never be granted.
func TestWaitBeyondBurst(t *testing.T) {
	if err := pace.Wait(t.Context(), clockwork.NewFakeClock(), rate.NewLimiter(1, 2), 3); err == nil {
		t.Fatal("no error")
	}
}
