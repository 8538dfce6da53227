package guard

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/internal/allowlist"
	"github.com/revoked-dev/revoked/schemas"
)

// The same properties with the real engine in front: random event streams
// through rules of random dry_run, under a random global dry-run, with the
// guard's clock on event time. Nothing the engine issues as dry_run (global
// or per rule) is ever enforced or held, allowlisted users never are, and
// the budgets hold in every minute.
func TestGuardOverEngineProperties(t *testing.T) {
	cases := 200
	if testing.Short() {
		cases = 40
	}
	var commands, enforcedTotal int
	for c := range cases {
		seed := uint64(c)
		n, e, err := checkEngineProperties(rand.New(rand.NewPCG(seed, 0xe9)))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		commands += n
		enforcedTotal += e
	}
	if commands < cases || enforcedTotal < cases/4 {
		t.Errorf("%d commands, %d enforced over %d streams: the streams hardly reach the guard", commands, enforcedTotal, cases)
	}
	t.Logf("%d commands, %d enforced", commands, enforcedTotal)
}

func checkEngineProperties(r *rand.Rand) (commands, enforcedN int, err error) {
	rules, err := engine.LoadDir("testdata/rules")
	if err != nil {
		return 0, 0, err
	}
	dryRules := map[string]bool{}
	for _, rule := range rules {
		rule.DryRun = r.IntN(4) == 0
		dryRules[rule.ID] = rule.DryRun
	}
	ecfg := engine.DefaultConfig()
	ecfg.DryRun = r.IntN(6) == 0
	eng, err := engine.New(ecfg, rules)
	if err != nil {
		return 0, 0, err
	}
	allowed := some(r, "u", 8, 2)
	doc := "entries: []\n"
	if len(allowed) > 0 {
		doc = fmt.Sprintf("entries:\n  - user_ids: [%s]\n", joinQuoted(allowed))
	}
	allow, err := allowlist.Parse([]byte(doc))
	if err != nil {
		return 0, 0, err
	}
	gcfg := DefaultConfig()
	gcfg.Budget, gcfg.RuleBudget = 1+r.IntN(4), r.IntN(3)
	gcfg.Cooldown = time.Duration(r.IntN(3)) * time.Minute
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	g, err := New(gcfg, WithClock(func() time.Time { return now }), WithAllowlist(allow))
	if err != nil {
		return 0, 0, err
	}
	countries := []string{"US", "FR", "DE"}
	var log []enforced
	for i := range 400 {
		now = now.Add(time.Duration(r.IntN(6000)) * time.Millisecond)
		user := fmt.Sprintf("u%d", r.IntN(8))
		ev := schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: now, UserID: user, IP: fmt.Sprintf("10.1.0.%d", r.IntN(3))}
		switch r.IntN(5) {
		case 0, 1:
			ev.Type = schemas.EventLoginFailure
		case 2:
			ev.Type = schemas.EventLoginSuccess
		default:
			ev.Type = schemas.EventTokenUsed
			ev.TokenID = fmt.Sprintf("tfp_%d", r.IntN(6))
			ev.Geo = &schemas.Geo{Country: pick(r, countries)}
		}
		if r.IntN(8) == 0 {
			g.KillSwitch().Set(!g.KillSwitch().On(), "property test")
		}
		for _, cmd := range eng.Process(&ev) {
			commands++
			killed := g.KillSwitch().On()
			engineDry := cmd.Mode == schemas.ModeDryRun
			if engineDry != (ecfg.DryRun || dryRules[cmd.Reason.RuleID]) {
				return commands, enforcedN, fmt.Errorf("engine issued %s for rule %s (global dry run %t)", cmd.Mode, cmd.Reason.RuleID, ecfg.DryRun)
			}
			listed := slices.Contains(allowed, cmd.Target.UserID) || slices.Contains(allowed, ev.UserID)
			d := g.Check(&cmd, &ev)
			if (engineDry || killed || listed) && (d.Mode != schemas.ModeDryRun || d.Verdict != Allow) {
				return commands, enforcedN, fmt.Errorf("event %d, rule %s (dry run %t, kill switch %t, allowlisted %t): %+v", i, cmd.Reason.RuleID, engineDry, killed, listed, d)
			}
			if d.Verdict == Allow && d.Mode == schemas.ModeEnforce {
				enforcedN++
				log = append(log, enforced{at: now, rule: cmd.Reason.RuleID, target: string(cmd.Target.Kind) + "/" + cmd.Target.ID(), counts: cmd.Action != schemas.ActionNotify})
			}
		}
	}
	for i, e := range log {
		global, rule := 0, 0
		for _, o := range log[:i+1] {
			if o.counts && o.at.After(e.at.Add(-time.Minute)) {
				global++
				if o.rule == e.rule {
					rule++
				}
			}
		}
		if global > gcfg.Budget || (gcfg.RuleBudget > 0 && rule > gcfg.RuleBudget) {
			return commands, enforcedN, fmt.Errorf("minute to %s: %d revocations (budget %d), %d by %s (budget %d)", e.at, global, gcfg.Budget, rule, e.rule, gcfg.RuleBudget)
		}
	}
	return commands, enforcedN, nil
}

func joinQuoted(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", x)
	}
	return out
}
