package engine

import (
	"fmt"
	"testing"
	"time"
)

// A sequence_threshold scan with reset_by counts the Of records that no
// later Then record of the same value cleared, however many values the
// Then records carry (past linearCleared they are kept in a map).
func TestSequenceScanResetBy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, cleared := range []int{0, 1, linearCleared - 1, linearCleared, linearCleared + 1, 100} {
		s := &sequenceEval{reset: true, resetBy: make([]accessor, 1)}
		var recs []record
		add := func(step uint8, ip string) {
			r := record{t: t0.Add(time.Duration(len(recs)) * time.Second), step: step}
			r.vals[0] = ip
			recs = append(recs, r)
		}
		const addrs = 120
		for i := range addrs {
			add(stepOf, fmt.Sprintf("198.51.100.%d", i))
		}
		for i := range cleared {
			add(stepThen, fmt.Sprintf("198.51.100.%d", i))
		}
		add(stepThen, "203.0.113.1")
		n := 0
		s.scan(recs, len(recs)-1, t0, func(int) { n++ })
		if want := addrs - cleared; n != want {
			t.Errorf("%d cleared: counted %d, want %d", cleared, n, want)
		}
		// A second scan starts from nothing cleared.
		n = 0
		s.scan(recs[:addrs+1], addrs, t0, func(int) { n++ })
		if n != addrs {
			t.Errorf("%d cleared, then a scan without: counted %d, want %d", cleared, n, addrs)
		}
	}
}
