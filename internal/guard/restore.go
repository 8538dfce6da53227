package guard

import (
	"time"

	"github.com/revoked-dev/revoked/internal/budget"
	"github.com/revoked-dev/revoked/schemas"
)

// Lookback is how far back the commands that still weigh on the guard's
// decisions go: the longer of the cooldown and the budget's minute. A
// restarted detector restores them (Restore) from its command topic.
func (g *Guard) Lookback() time.Duration { return max(g.cooldown, budget.Period) }

// Restore records cmd, a command this detector published at issuedAt
// before it (re)started, as Check recorded it when it let it pass: an
// enforce command starts the cooldown of its target, and a revoking one
// also takes from the budgets, at issuedAt. Commands that were not
// enforce record nothing, nor do those older than Lookback. The guard
// keeps its state in memory alone; the command topic is its durable
// record, since a command counts as enforced only once it is published.
// Restore commands once each (the caller deduplicates by command id).
func (g *Guard) Restore(cmd *schemas.RevokeCommand, issuedAt time.Time) {
	if cmd.Mode != schemas.ModeEnforce {
		return
	}
	now := g.now()
	if now.Sub(issuedAt) >= g.Lookback() {
		return
	}
	target := string(cmd.Target.Kind) + "\x00" + cmd.Target.ID()
	g.mu.Lock()
	defer g.mu.Unlock()
	if cmd.Action == schemas.ActionNotify {
		g.restoreEnforced(target+"\x00"+string(schemas.ActionNotify), issuedAt)
		return
	}
	if now.Sub(issuedAt) < budget.Period {
		g.global.Insert(issuedAt)
		g.ruleWindow(cmd.Reason.RuleID).Insert(issuedAt)
	}
	g.restoreEnforced(target, issuedAt)
}

// restoreEnforced records an enforcement at t unless a later one is
// known. Callers hold mu.
func (g *Guard) restoreEnforced(key string, t time.Time) {
	if last, ok := g.enforced[key]; !ok || t.After(last) {
		g.markEnforced(key, t)
	}
}
