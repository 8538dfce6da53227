// Package budget is the revocation budget of the detector's and the
// consumer's guards: revocations per sliding minute, across rules and per
// rule, configured the same way on both (-guard.budget, -guard.rule-budget,
// -guard.rule-budgets).
package budget

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Window counts events over a sliding minute against a limit. It is not
// safe for concurrent use.
type Window struct {
	Limit int // 0: unlimited
	times []time.Time
}

// Period is the budget's sliding window.
const Period = time.Minute

// prune drops the events that left the minute ending at now.
func (w *Window) prune(now time.Time) {
	cut := now.Add(-Period)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	w.times = w.times[i:]
}

// Full reports whether one more event at now would exceed the limit.
func (w *Window) Full(now time.Time) bool {
	if w.Limit == 0 {
		return false
	}
	w.prune(now)
	return len(w.times) >= w.Limit
}

// Add records an event at now. A clock that stepped back records now after
// later times; they leave the window later than now would, which only
// makes the budget stricter for a minute.
func (w *Window) Add(now time.Time) {
	if w.Limit == 0 {
		return
	}
	w.times = append(w.times, now)
}

// Insert records an event at t, keeping the times in order whatever order
// they come in (a guard restoring what it enforced before a restart).
func (w *Window) Insert(t time.Time) {
	if w.Limit == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(w.times, t, func(a, b time.Time) int { return a.Compare(b) })
	w.times = slices.Insert(w.times, i, t)
}

// Used is the number of events in the minute ending at now.
func (w *Window) Used(now time.Time) int {
	w.prune(now)
	return len(w.times)
}

// Rules holds a window per rule: Limits for the rules named there,
// Default for the others. It is not safe for concurrent use.
type Rules struct {
	Default int
	Limits  map[string]int
	windows map[string]*Window
}

// Window returns rule's window, made on first use.
func (r *Rules) Window(rule string) *Window {
	w, ok := r.windows[rule]
	if !ok {
		limit, named := r.Limits[rule]
		if !named {
			limit = r.Default
		}
		w = &Window{Limit: limit}
		if r.windows == nil {
			r.windows = map[string]*Window{}
		}
		r.windows[rule] = w
	}
	return w
}

// Windows returns the windows made so far, by rule.
func (r *Rules) Windows() map[string]*Window { return r.windows }

// ParseRules reads per-rule budgets, "rule_id=N" items (N >= 0; 0: that
// rule unlimited), each rule named once.
func ParseRules(items []string) (map[string]int, error) {
	out := make(map[string]int, len(items))
	for _, item := range items {
		id, n, ok := strings.Cut(strings.TrimSpace(item), "=")
		id = strings.TrimSpace(id)
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || id == "" || err != nil || v < 0 {
			return nil, fmt.Errorf("want rule_id=N with N >= 0, got %q", item)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("rule %q named twice", id)
		}
		out[id] = v
	}
	return out, nil
}
