package guard

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Window is the budget's sliding window.
const Window = time.Minute

// Budget counts the commands carried out in the last minute, globally and
// per rule, and refuses those that would exceed a cap. It is safe for
// concurrent use; the clock is the caller's (Take's now).
type Budget struct {
	global  int
	perRule map[string]int

	mu    sync.Mutex
	taken []taken // in time order
	ids   map[string]struct{}
}

type taken struct {
	at   time.Time
	id   string
	rule string
}

// NewBudget caps the commands per minute at global (0: no cap) and at
// perRule[rule] for the rules named there.
func NewBudget(global int, perRule map[string]int) *Budget {
	return &Budget{global: global, perRule: perRule, ids: map[string]struct{}{}}
}

// ParsePerRule parses rule=count pairs.
func ParsePerRule(pairs []string) (map[string]int, error) {
	out := map[string]int{}
	for _, p := range pairs {
		rule, n, ok := strings.Cut(strings.TrimSpace(p), "=")
		count, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || strings.TrimSpace(rule) == "" || err != nil || count <= 0 {
			return nil, fmt.Errorf("%q: want rule=count with a positive count", p)
		}
		out[strings.TrimSpace(rule)] = count
	}
	return out, nil
}

// Take charges command id of rule to the budget at now, or returns why it
// cannot: the global or the rule's cap is reached within the last minute.
// An id already charged within the window is not charged again.
func (b *Budget) Take(now time.Time, id, rule string) error {
	if b == nil || (b.global <= 0 && len(b.perRule) == 0) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cut := 0
	for cut < len(b.taken) && !b.taken[cut].at.After(now.Add(-Window)) {
		delete(b.ids, b.taken[cut].id)
		cut++
	}
	b.taken = b.taken[cut:]
	if _, ok := b.ids[id]; ok {
		return nil
	}
	if b.global > 0 && len(b.taken) >= b.global {
		return fmt.Errorf("over budget: %d revocations in the last minute (global cap %d)", len(b.taken), b.global)
	}
	if limit, ok := b.perRule[rule]; ok {
		n := 0
		for _, t := range b.taken {
			if t.rule == rule {
				n++
			}
		}
		if n >= limit {
			return fmt.Errorf("over budget: %d revocations of rule %s in the last minute (cap %d)", n, rule, limit)
		}
	}
	b.taken = append(b.taken, taken{at: now, id: id, rule: rule})
	b.ids[id] = struct{}{}
	return nil
}
