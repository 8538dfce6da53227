package guard

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/allowlist"
	"github.com/revoked-dev/revoked/schemas"
)

// oracleEntry is an allowlist entry as the property test generates it; the
// test decides what is allowlisted from these, independently of Allowlist.
type oracleEntry struct {
	users, clients, rules []string
	cidr                  string
	actions               []schemas.Action
}

func (e oracleEntry) yaml() string {
	q := func(xs []string) string {
		var qs []string
		for _, x := range xs {
			qs = append(qs, strconv.Quote(x))
		}
		return "[" + strings.Join(qs, ", ") + "]"
	}
	s := "  - user_ids: " + q(e.users) + "\n    client_ids: " + q(e.clients) + "\n"
	if e.cidr != "" {
		s += "    ips: [" + e.cidr + "]\n"
	}
	if len(e.rules) > 0 {
		s += "    rules: " + q(e.rules) + "\n"
	}
	if len(e.actions) > 0 {
		var as []string
		for _, a := range e.actions {
			as = append(as, string(a))
		}
		s += "    actions: " + q(as) + "\n"
	}
	return s
}

func (e oracleEntry) matches(cmd *schemas.RevokeCommand, ev *schemas.AuditEvent) bool {
	if len(e.rules) > 0 && !slices.Contains(e.rules, cmd.Reason.RuleID) {
		return false
	}
	if len(e.actions) > 0 && !slices.Contains(e.actions, cmd.Action) {
		return false
	}
	if slices.Contains(e.users, cmd.Target.UserID) || slices.Contains(e.users, ev.UserID) ||
		slices.Contains(e.clients, cmd.Target.ClientID) || slices.Contains(e.clients, ev.ClientID) {
		return true
	}
	if e.cidr != "" {
		return netip.MustParsePrefix(e.cidr).Contains(netip.MustParseAddr(ev.IP))
	}
	return false
}

var (
	propRules   = []string{"r0", "r1", "r2", "r3"}
	propActions = []schemas.Action{schemas.ActionRevoke, schemas.ActionRevokeAndReverify, schemas.ActionNotify}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func some(r *rand.Rand, prefix string, n, most int) []string {
	out := []string{}
	for range r.IntN(most + 1) {
		out = append(out, fmt.Sprintf("%s%d", prefix, r.IntN(n)))
	}
	return out
}

type enforced struct {
	at     time.Time
	rule   string
	target string
	counts bool // takes from the budget (not notify)
}

// Over random streams of commands, with random budgets, cooldowns,
// allowlists and kill-switch flips on a fake clock: no minute ever holds
// more enforced revocations than the global or a rule's budget, no target
// is enforced twice within the cooldown, and nothing dry_run, allowlisted
// or issued while the kill switch is on is ever enforced or held.
func TestGuardProperties(t *testing.T) {
	cases := 3000
	if testing.Short() {
		cases = 300
	}
	killFile := filepath.Join(t.TempDir(), "kill")
	seen := map[string]int{}
	defer func() {
		// The streams must reach every decision, or the properties hold
		// vacuously.
		for _, reason := range []string{ReasonEnforce, ReasonDryRun, ReasonKillSwitch, ReasonAllowlist, ReasonNotify, ReasonCooldown, ReasonBudgetGlobal, ReasonBudgetRule} {
			if seen[reason] < cases/10 {
				t.Errorf("decision %s reached %d times in %d streams", reason, seen[reason], cases)
			}
		}
		t.Logf("decisions: %v", seen)
	}()
	for c := range cases {
		seed := uint64(c)
		t.Run("", func(t *testing.T) {
			if err := checkGuardProperties(rand.New(rand.NewPCG(seed, 0x5eed)), killFile, seen); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		})
		if t.Failed() {
			return
		}
	}
}

func checkGuardProperties(r *rand.Rand, killFile string, seen map[string]int) error {
	cfg := DefaultConfig()
	cfg.Budget = r.IntN(8)
	cfg.RuleBudget = r.IntN(5)
	ruleLimit := map[string]int{}
	if r.IntN(2) == 0 {
		n := r.IntN(4)
		cfg.RuleBudgets = []string{fmt.Sprintf("r0=%d", n)}
		ruleLimit["r0"] = n
	}
	cfg.Cooldown = time.Duration(r.IntN(4)) * time.Minute
	useFile := r.IntN(10) == 0
	if useFile {
		cfg.KillSwitchFile = killFile
		_ = os.Remove(killFile)
		defer os.Remove(killFile)
	}
	var entries []oracleEntry
	doc := "entries:\n"
	for range r.IntN(4) {
		e := oracleEntry{users: some(r, "u", 10, 2), clients: some(r, "c", 4, 1)}
		if r.IntN(3) == 0 {
			e.cidr = fmt.Sprintf("10.0.%d.0/24", r.IntN(4))
		}
		if len(e.users)+len(e.clients) == 0 && e.cidr == "" {
			e.users = []string{"u0"}
		}
		if r.IntN(2) == 0 {
			e.rules = some(r, "r", 4, 2)
		}
		if r.IntN(3) == 0 {
			e.actions = []schemas.Action{pick(r, propActions)}
		}
		entries = append(entries, e)
		doc += e.yaml()
	}
	allow, err := allowlist.Parse([]byte(doc))
	if err != nil {
		return fmt.Errorf("allowlist %q: %w", doc, err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	g, err := New(cfg, WithClock(func() time.Time { return now }), WithAllowlist(allow))
	if err != nil {
		return err
	}
	var log []enforced
	for i := range 1 + r.IntN(250) {
		switch r.IntN(20) {
		case 0:
			now = now.Add(time.Duration(r.IntN(120)) * time.Second)
		case 1, 2, 3, 4, 5:
		default:
			now = now.Add(time.Duration(r.IntN(8000)) * time.Millisecond)
		}
		if r.IntN(25) == 0 {
			g.KillSwitch().Set(!g.KillSwitch().State().Runtime, "property test")
		}
		if useFile && r.IntN(25) == 0 {
			if _, err := os.Stat(killFile); err == nil {
				_ = os.Remove(killFile)
			} else {
				_ = os.WriteFile(killFile, nil, 0o600)
			}
		}
		user := fmt.Sprintf("u%d", r.IntN(10))
		ev := &schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: now, Type: schemas.EventLoginSuccess, UserID: user,
			IP: fmt.Sprintf("10.0.%d.%d", r.IntN(4), r.IntN(256)), ClientID: fmt.Sprintf("c%d", r.IntN(4))}
		cmd := &schemas.RevokeCommand{CommandID: fmt.Sprintf("cmd%d", i), Action: pick(r, propActions), Mode: schemas.ModeEnforce,
			Reason: schemas.Reason{RuleID: pick(r, propRules)}}
		switch r.IntN(3) {
		case 0:
			cmd.Target = schemas.Target{Kind: schemas.TargetUser, UserID: user}
		case 1:
			cmd.Target = schemas.Target{Kind: schemas.TargetClient, ClientID: ev.ClientID}
		default:
			cmd.Target = schemas.Target{Kind: schemas.TargetToken, TokenID: fmt.Sprintf("t%d", r.IntN(20))}
		}
		if r.IntN(4) == 0 {
			cmd.Mode = schemas.ModeDryRun
		}
		wasDry := cmd.Mode == schemas.ModeDryRun
		killed := g.KillSwitch().State().Runtime
		if useFile {
			_, err := os.Stat(killFile)
			killed = killed || err == nil
		}
		listed := false
		for _, e := range entries {
			listed = listed || e.matches(cmd, ev)
		}

		d := g.Check(cmd, ev)
		seen[d.Reason]++
		if d.Mode != schemas.ModeDryRun && d.Mode != schemas.ModeEnforce {
			return fmt.Errorf("command %d: mode %q", i, d.Mode)
		}
		safe := wasDry || killed || listed
		if safe && (d.Mode != schemas.ModeDryRun || d.Verdict != Allow) {
			return fmt.Errorf("command %d (dry_run %t, kill switch %t, allowlisted %t): decision %+v", i, wasDry, killed, listed, d)
		}
		if d.Verdict == Allow && d.Mode == schemas.ModeEnforce {
			log = append(log, enforced{at: now, rule: cmd.Reason.RuleID, target: string(cmd.Target.Kind) + "/" + cmd.Target.ID(), counts: cmd.Action != schemas.ActionNotify})
		}
	}
	// The clock only moves forward, so log is in time order: look back
	// from each enforced command over the longer of the minute and the
	// cooldown.
	span := max(time.Minute, cfg.Cooldown)
	for i, e := range log {
		global, rule := 0, 0
		for j := i; j >= 0 && e.at.Sub(log[j].at) < span; j-- {
			o := log[j]
			if o.counts && e.counts && o.at.After(e.at.Add(-time.Minute)) {
				global++
				if o.rule == e.rule {
					rule++
				}
			}
			if j < i && o.target == e.target && e.at.Sub(o.at) < cfg.Cooldown && (o.counts || !e.counts) {
				return fmt.Errorf("%s enforced at %s and again at %s, within the cooldown %s", e.target, o.at, e.at, cfg.Cooldown)
			}
		}
		if cfg.Budget > 0 && global > cfg.Budget {
			return fmt.Errorf("%d revocations in the minute to %s, budget %d", global, e.at, cfg.Budget)
		}
		limit, ok := ruleLimit[e.rule]
		if !ok {
			limit = cfg.RuleBudget
		}
		if limit > 0 && rule > limit {
			return fmt.Errorf("rule %s: %d revocations in the minute to %s, budget %d", e.rule, rule, e.at, limit)
		}
	}
	return nil
}
