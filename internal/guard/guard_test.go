package guard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/revoked-dev/revoked/schemas"
)

func cmdFor(rule, user string, action schemas.Action) *schemas.RevokeCommand {
	return &schemas.RevokeCommand{CommandID: "cmd_" + rule + "_" + user, Action: action, Mode: schemas.ModeEnforce,
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: user}, Reason: schemas.Reason{RuleID: rule}}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Cooldown: -1, Budget: -1, RuleBudget: -1, RuleBudgets: []string{"r1=2", "bad", "r1=3"}}
	err := c.Validate()
	for _, want := range []string{"cooldown", "budget:", "rule-budget:", "rule-budgets", "held-topic"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, lacks %q", err, want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

// A budget holds what exceeds it and frees up as the minute slides; the
// per-rule budget holds one rule while others pass.
func TestBudgetHoldsAndRecovers(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Budget, cfg.RuleBudget, cfg.RuleBudgets, cfg.Cooldown = 3, 2, []string{"wide=5"}, 0
	reg := prometheus.NewRegistry()
	g, err := New(cfg, WithClock(func() time.Time { return now }), WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	check := func(rule, user string, want string) {
		t.Helper()
		if d := g.Check(cmdFor(rule, user, schemas.ActionRevoke), nil); d.Reason != want {
			t.Errorf("%s/%s at %s: %+v, want %s", rule, user, now.Format("15:04:05"), d, want)
		}
	}
	check("a", "u1", ReasonEnforce)
	check("a", "u2", ReasonEnforce)
	check("a", "u3", ReasonBudgetRule)
	check("wide", "u4", ReasonEnforce)
	check("wide", "u5", ReasonBudgetGlobal)
	if d := g.Check(cmdFor("wide", "u6", schemas.ActionNotify), nil); d.Verdict != Allow || d.Mode != schemas.ModeEnforce {
		t.Errorf("notify is outside the budget: %+v", d)
	}
	if u := g.Usage(); u.Global != 3 || u.Rules["a"] != 2 || u.Rules["wide"] != 1 {
		t.Errorf("usage %+v", u)
	}
	now = now.Add(time.Minute)
	check("a", "u3", ReasonEnforce)
	if got := gauge(t, reg, "revoked_detector_guard_held_total", "a"); got != 1 {
		t.Errorf("held{a} = %v", got)
	}
	if got := gauge(t, reg, "revoked_detector_guard_budget_used", ""); got != 1 {
		t.Errorf("budget_used{global} = %v a minute later", got)
	}
	if got := gauge(t, reg, "revoked_detector_guard_budget_limit", "wide"); got != 5 {
		t.Errorf("budget_limit{wide} = %v", got)
	}
}

func TestCooldownAcrossRules(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Cooldown = 10 * time.Minute
	g, err := New(cfg, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Check(cmdFor("a", "u1", schemas.ActionRevoke), nil); d.Reason != ReasonEnforce {
		t.Fatal(d)
	}
	dry := cmdFor("b", "u1", schemas.ActionRevoke)
	dry.Mode = schemas.ModeDryRun
	if d := g.Check(dry, nil); d.Verdict != Allow || d.Mode != schemas.ModeDryRun {
		t.Errorf("dry run in cooldown: %+v", d)
	}
	now = now.Add(9 * time.Minute)
	if d := g.Check(cmdFor("b", "u1", schemas.ActionRevoke), nil); d.Verdict != Suppress || d.Reason != ReasonCooldown {
		t.Errorf("second rule within the cooldown: %+v", d)
	}
	if d := g.Check(cmdFor("b", "u2", schemas.ActionRevoke), nil); d.Reason != ReasonEnforce {
		t.Errorf("other target: %+v", d)
	}
	now = now.Add(time.Minute)
	if d := g.Check(cmdFor("b", "u1", schemas.ActionRevoke), nil); d.Reason != ReasonEnforce {
		t.Errorf("after the cooldown: %+v", d)
	}
	// A notification does not hold back a revocation; it is held back by
	// one.
	if d := g.Check(cmdFor("n", "u3", schemas.ActionNotify), nil); d.Reason != ReasonNotify {
		t.Errorf("notify: %+v", d)
	}
	if d := g.Check(cmdFor("n", "u3", schemas.ActionNotify), nil); d.Reason != ReasonCooldown {
		t.Errorf("second notify: %+v", d)
	}
	if d := g.Check(cmdFor("a", "u3", schemas.ActionRevoke), nil); d.Reason != ReasonEnforce {
		t.Errorf("revoke after notify: %+v", d)
	}
	if d := g.Check(cmdFor("n", "u1", schemas.ActionNotify), nil); d.Reason != ReasonCooldown {
		t.Errorf("notify after revoke: %+v", d)
	}
}

func TestKillSwitchFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "stop")
	cfg := DefaultConfig()
	cfg.KillSwitchFile = file
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Check(cmdFor("a", "u1", schemas.ActionRevoke), nil); d.Mode != schemas.ModeEnforce {
		t.Fatalf("%+v", d)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if d := g.Check(cmdFor("a", "u2", schemas.ActionRevoke), nil); d.Mode != schemas.ModeDryRun || d.Reason != ReasonKillSwitch {
		t.Errorf("with the file: %+v", d)
	}
	g.KillSwitch().Set(false, "test")
	if !g.KillSwitch().On() {
		t.Error("Set(false) overrode the file")
	}
}

// gauge returns the value of the first series of name whose rule label is
// label.
func gauge(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			rule := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "rule" {
					rule = l.GetValue()
				}
			}
			if rule != label {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s{%q}", name, label)
	return 0
}

// A changed allowlist file is read again; one that does not load leaves
// the previous allowlist in force and is counted.
func TestAllowlistReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "allow.yaml")
	write := func(body string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	write("entries:\n  - user_ids: [u1]\n", t0)
	now := t0
	cfg := DefaultConfig()
	cfg.AllowlistFile, cfg.Cooldown = file, 0
	reg := prometheus.NewRegistry()
	g, err := New(cfg, WithClock(func() time.Time { return now }), WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	reason := func(user string) string {
		t.Helper()
		return g.Check(cmdFor("r", user, schemas.ActionRevoke), nil).Reason
	}
	if reason("u1") != ReasonAllowlist || reason("u2") != ReasonEnforce {
		t.Fatal("initial allowlist not in force")
	}
	write("entries:\n  - user_ids: [u2]\n", t0.Add(time.Second))
	now = now.Add(AllowlistReloadInterval)
	if reason("u2") != ReasonAllowlist || reason("u1") != ReasonEnforce {
		t.Error("changed allowlist not reloaded")
	}
	write("entries:\n  - user_idz: [u3]\n", t0.Add(2*time.Second))
	now = now.Add(AllowlistReloadInterval)
	if reason("u2") != ReasonAllowlist {
		t.Error("an invalid file replaced the allowlist in force")
	}
	if got := gauge(t, reg, "revoked_detector_guard_allowlist_reload_errors_total", ""); got != 1 {
		t.Errorf("reload errors %v", got)
	}
	if got := gauge(t, reg, "revoked_detector_guard_allowlist_entries", ""); got != 1 {
		t.Errorf("entries %v", got)
	}
	if _, err := New(Config{AllowlistFile: file + ".missing", HeldTopic: "h", DecisionsTopic: "d"}); err == nil {
		t.Error("a missing allowlist file at start: no error")
	}
}
