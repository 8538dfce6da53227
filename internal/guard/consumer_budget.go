package guard

import (
	"fmt"
	"sync"
	"time"

	"github.com/revoked-dev/revoked/internal/budget"
)

// ConsumerBudget counts the commands carried out in the last minute, across rules
// and per rule (budget.Window, as the detector's guard counts them), and
// refuses those that would exceed a cap. A command id already charged
// within the minute is not charged again. It is safe for concurrent use;
// the clock is the caller's (Take's now).
type ConsumerBudget struct {
	capped bool // some cap is set; without one Take charges nothing
	mu     sync.Mutex
	global budget.Window
	rules  budget.Rules
	// charged holds the ids charged within the minute, oldest first, and
	// ids the same as a set.
	charged []charge
	ids     map[string]struct{}
}

type charge struct {
	at time.Time
	id string
}

// NewConsumerBudget caps the commands per minute at global across rules, at
// ruleDefault per rule and at perRule[rule] for the rules named there (0:
// no cap).
func NewConsumerBudget(global, ruleDefault int, perRule map[string]int) *ConsumerBudget {
	capped := global > 0 || ruleDefault > 0
	for _, n := range perRule {
		capped = capped || n > 0
	}
	return &ConsumerBudget{capped: capped, global: budget.Window{Limit: global},
		rules: budget.Rules{Default: ruleDefault, Limits: perRule}, ids: map[string]struct{}{}}
}

// Take charges command id of rule to the budget at now, or returns why it
// cannot: the global or the rule's cap is reached within the last minute.
func (b *ConsumerBudget) Take(now time.Time, id, rule string) error {
	if b == nil || !b.capped {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cut := 0
	for cut < len(b.charged) && !b.charged[cut].at.After(now.Add(-budget.Period)) {
		delete(b.ids, b.charged[cut].id)
		cut++
	}
	b.charged = b.charged[cut:]
	if _, ok := b.ids[id]; ok {
		return nil
	}
	rw := b.rules.Window(rule)
	if b.global.Full(now) {
		return fmt.Errorf("over budget: %d revocations in the last minute (global cap %d)", b.global.Used(now), b.global.Limit)
	}
	if rw.Full(now) {
		return fmt.Errorf("over budget: %d revocations of rule %s in the last minute (cap %d)", rw.Used(now), rule, rw.Limit)
	}
	b.global.Add(now)
	rw.Add(now)
	b.charged = append(b.charged, charge{at: now, id: id})
	b.ids[id] = struct{}{}
	return nil
}
