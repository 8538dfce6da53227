package budget_test

import (
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/budget"
)

// A window fills at its limit, empties as the minute slides past, takes
// events restored out of order, and never fills without a limit.
func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	w := budget.Window{Limit: 2}
	w.Add(t0)
	w.Insert(t0.Add(-30 * time.Second))
	if !w.Full(t0) || w.Used(t0) != 2 {
		t.Fatalf("two events, limit 2: full %v, used %d", w.Full(t0), w.Used(t0))
	}
	if at := t0.Add(31 * time.Second); w.Full(at) || w.Used(at) != 1 {
		t.Errorf("31 s later: full %v, used %d, want the restored event gone", w.Full(at), w.Used(at))
	}
	free := budget.Window{}
	for range 100 {
		free.Add(t0)
	}
	if free.Full(t0) {
		t.Error("a window without a limit filled")
	}
}

func TestParseRules(t *testing.T) {
	got, err := budget.ParseRules([]string{" campaign = 500 ", "noisy=0"})
	if err != nil || got["campaign"] != 500 || got["noisy"] != 0 || len(got) != 2 {
		t.Fatalf("ParseRules = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"x"}, {"x=-1"}, {"=3"}, {"a=1", "a=2"}} {
		if _, err := budget.ParseRules(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
