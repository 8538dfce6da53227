package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/retry"
)

// Waits double from the least, stay in the upper half of each interval,
// never exceed the most, and start over after Reset.
func TestScheduleDoublesWithinBounds(t *testing.T) {
	const least, most = 100 * time.Millisecond, time.Second
	for range 50 {
		s := retry.New(least, most)
		want := least
		for i := range 8 {
			d := s.Next()
			if d < want/2 || d > want {
				t.Fatalf("wait %d: %s, want within [%s, %s]", i, d, want/2, want)
			}
			want = min(2*want, most)
		}
		s.Reset()
		if d := s.Next(); d < least/2 || d > least {
			t.Fatalf("after Reset: %s, want within [%s, %s]", d, least/2, least)
		}
	}
	if d := retry.New(time.Second, time.Millisecond).Next(); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("most below least: %s", d)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if retry.Sleep(ctx, time.Hour) {
		t.Error("Sleep waited out an hour with its context ended")
	}
	if !retry.Sleep(context.Background(), 0) {
		t.Error("Sleep of nothing did not report that it waited")
	}
}
