package guard

import (
	"time"

	"github.com/revoked-dev/revoked/internal/budget"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/held"
)

// Default topics of held commands and of the decisions taken on them.
const (
	TopicHeld          = held.TopicHeld
	TopicHeldDecisions = held.TopicHeldDecisions
)

// Config configures a Guard.
type Config struct {
	// Cooldown is how long after an enforce command for a target another
	// enforce command for the same target, from any rule, is suppressed.
	// Zero turns the cross-rule cooldown off (each rule keeps its own).
	Cooldown time.Duration `flag:"cooldown" env:"COOLDOWN" yaml:"cooldown" usage:"suppress an enforce command for a target that any rule enforced within this long (0: off)"`
	// Budget is how many revoking enforce commands may pass per minute,
	// across rules. Beyond it commands are held for approval. Zero means
	// no global budget.
	Budget int `flag:"budget" env:"BUDGET" yaml:"budget" usage:"revocations per minute across rules before commands are held for approval (0: unlimited)"`
	// RuleBudget is the per-minute budget of each rule that RuleBudgets
	// does not name. Zero means no per-rule budget.
	RuleBudget int `flag:"rule-budget" env:"RULE_BUDGET" yaml:"rule_budget" usage:"revocations per minute per rule before its commands are held for approval (0: unlimited)"`
	// RuleBudgets overrides RuleBudget for some rules: "rule_id=N" items.
	RuleBudgets []string `flag:"rule-budgets" env:"RULE_BUDGETS" yaml:"rule_budgets" usage:"per-rule budgets overriding rule-budget, as rule_id=N, comma-separated"`
	// AllowlistFile is a YAML file of allowlist entries (see Allowlist),
	// read again when it changes.
	AllowlistFile string `flag:"allowlist-file" env:"ALLOWLIST_FILE" yaml:"allowlist_file" usage:"YAML file of allowlisted user ids, IP CIDRs and client ids, optionally scoped to rules and actions; re-read when it changes"`
	// KillSwitchFile, when set, names a file whose existence turns every
	// command into dry_run.
	KillSwitchFile string `flag:"kill-switch-file" env:"KILL_SWITCH_FILE" yaml:"kill_switch_file" usage:"while this file exists every command is dry_run"`
	// AdminToken is the bearer token of the ops server's
	// POST /admin/kill-switch. Unset, the endpoint is not served.
	AdminToken config.Secret `env:"ADMIN_TOKEN" yaml:"admin_token"`
	// HeldTopic receives the commands held for approval.
	HeldTopic string `flag:"held-topic" env:"HELD_TOPIC" yaml:"held_topic" usage:"topic of commands held for approval"`
	// DecisionsTopic records approvals and rejections of held commands.
	DecisionsTopic string `flag:"decisions-topic" env:"DECISIONS_TOPIC" yaml:"decisions_topic" usage:"topic recording approvals and rejections of held commands"`
}

// DefaultConfig holds commands beyond 60 revocations a minute overall or
// 20 per rule, and suppresses a second enforce command for a target within
// 15 minutes.
func DefaultConfig() Config {
	return Config{
		Cooldown:       15 * time.Minute,
		Budget:         60,
		RuleBudget:     20,
		HeldTopic:      TopicHeld,
		DecisionsTopic: TopicHeldDecisions,
	}
}

// Validate reports every problem at once. It does not read the allowlist
// file; New does.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(c.Cooldown >= 0, "cooldown", "must not be negative")
	p.Check(c.Budget >= 0, "budget", "must not be negative (0: unlimited)")
	p.Check(c.RuleBudget >= 0, "rule-budget", "must not be negative (0: unlimited)")
	if _, err := c.ruleBudgets(); err != nil {
		p.Addf("rule-budgets", "%v", err)
	}
	p.Check(c.HeldTopic != "", "held-topic", "required: commands beyond the budget go there")
	p.Check(c.DecisionsTopic != "", "decisions-topic", "required: approvals and rejections are recorded there")
	p.Check(c.HeldTopic == "" || c.HeldTopic != c.DecisionsTopic, "decisions-topic", "must differ from held-topic")
	return p.Err()
}

// ruleBudgets parses RuleBudgets.
func (c Config) ruleBudgets() (map[string]int, error) { return budget.ParseRules(c.RuleBudgets) }
