package guard

import "time"

// window counts events over a sliding minute.
type window struct {
	limit int // 0: unlimited
	times []time.Time
}

const budgetPeriod = time.Minute

// prune drops the events that left the minute ending at now.
func (w *window) prune(now time.Time) {
	cut := now.Add(-budgetPeriod)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	w.times = w.times[i:]
}

// full reports whether one more event at now would exceed the limit.
func (w *window) full(now time.Time) bool {
	if w.limit == 0 {
		return false
	}
	w.prune(now)
	return len(w.times) >= w.limit
}

// add records an event at now. A clock that stepped back records now after
// later times; they leave the window later than now would, which only
// makes the budget stricter for a minute.
func (w *window) add(now time.Time) {
	if w.limit == 0 {
		return
	}
	w.times = append(w.times, now)
}

// used is the number of events in the minute ending at now.
func (w *window) used(now time.Time) int {
	w.prune(now)
	return len(w.times)
}
