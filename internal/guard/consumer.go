package guard

// The consumer's own safety net, independent of the detector's: a
// revocation budget per minute (global and per rule), allowlists of users
// and clients scoped per rule and action, and a kill switch that stops
// enforcement. The handler asks Check before it carries out an enforcing
// command; a command over budget or under the kill switch is held for
// approval, an allowlisted one is refused.

import (
	"errors"
	"fmt"
	"time"

	"github.com/revoked-dev/revoked/internal/budget"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/killswitch"
	"github.com/revoked-dev/revoked/schemas"
)

// ConsumerConfig configures the consumer's guard. The zero value guards
// nothing.
type ConsumerConfig struct {
	// Budget caps the commands carried out in any 60 s window across all
	// rules (0: no cap); RuleBudget caps each rule that RuleBudgets does
	// not name; RuleBudgets names rules of their own, as rule_id=N items.
	// The detector's guard reads the same three settings.
	Budget      int      `flag:"budget" env:"BUDGET" yaml:"budget" usage:"revocations per minute across rules before commands are held for approval (0: unlimited)"`
	RuleBudget  int      `flag:"rule-budget" env:"RULE_BUDGET" yaml:"rule_budget" usage:"revocations per minute per rule before its commands are held for approval (0: unlimited)"`
	RuleBudgets []string `flag:"rule-budgets" env:"RULE_BUDGETS" yaml:"rule_budgets" usage:"per-rule budgets overriding rule-budget, as rule_id=N, comma-separated"`
	// AllowlistFile names the YAML allowlist (see Allowlist).
	AllowlistFile string `flag:"allowlist-file" env:"ALLOWLIST_FILE" yaml:"allowlist_file" usage:"YAML allowlist (user_ids, client_ids, scoped per rule and action) of targets never revoked automatically"`
	// KillSwitchFile: while a file exists at this path, enforcement stops.
	KillSwitchFile string `flag:"kill-switch-file" env:"KILL_SWITCH_FILE" yaml:"kill_switch_file" usage:"while this file exists, no command is enforced (they are held)"`
	// KillSwitch engaged from the start (environment or configuration).
	KillSwitch bool `flag:"kill-switch" env:"KILL_SWITCH" yaml:"kill_switch" usage:"hold every enforcing command from the start"`
	// AdminToken authenticates the kill-switch and held-command HTTP
	// endpoints (bearer); unset disables them.
	AdminToken config.Secret `env:"ADMIN_TOKEN" yaml:"admin_token"`
	// HeldTopic and DecisionsTopic are the detector's held commands and
	// the decisions on them, the detector's settings of the same names:
	// the consumer lists and decides them beside its own. Empty
	// HeldTopic: the consumer shows only its own.
	HeldTopic      string `flag:"held-topic" env:"HELD_TOPIC" yaml:"held_topic" usage:"topic of the commands the detector held for approval, listed and decided beside the consumer's own (empty: only the consumer's)"`
	DecisionsTopic string `flag:"decisions-topic" env:"DECISIONS_TOPIC" yaml:"decisions_topic" usage:"topic recording approvals and rejections of the detector's held commands"`
}

// Validate reports every problem at once.
func (c ConsumerConfig) Validate() error {
	var p config.Problems
	p.Check(c.Budget >= 0, "budget", "must not be negative (0: unlimited)")
	p.Check(c.RuleBudget >= 0, "rule-budget", "must not be negative (0: unlimited)")
	if _, err := budget.ParseRules(c.RuleBudgets); err != nil {
		p.Addf("rule-budgets", "%v", err)
	}
	p.Check(c.HeldTopic == "" || c.DecisionsTopic != "", "decisions-topic", "required with held-topic")
	p.Check(c.HeldTopic == "" || c.HeldTopic != c.DecisionsTopic, "decisions-topic", "must differ from held-topic")
	return p.Err()
}

// Consumer is the consumer's guard. It is safe for concurrent use.
type Consumer struct {
	budget *ConsumerBudget
	allow  *Allowlist
	kill   *KillSwitch
	now    func() time.Time
}

// NewConsumer builds the consumer's guard from cfg, reading the allowlist file. now is the
// clock of the budget (nil: time.Now).
func NewConsumer(cfg ConsumerConfig, now func() time.Time) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	perRule, _ := budget.ParseRules(cfg.RuleBudgets)
	g := &Consumer{
		budget: NewConsumerBudget(cfg.Budget, cfg.RuleBudget, perRule),
		kill:   killswitch.New(cfg.KillSwitchFile, cfg.KillSwitch),
		now:    now,
	}
	if cfg.AllowlistFile != "" {
		a, err := LoadConsumerAllowlist(cfg.AllowlistFile)
		if err != nil {
			return nil, err
		}
		g.allow = a
	}
	return g, nil
}

// WithAllowlist replaces the allowlist (for tests and embedding).
func (g *Consumer) WithAllowlist(a *Allowlist) *Consumer { g.allow = a; return g }

// KillSwitch returns the guard's kill switch.
func (g *Consumer) KillSwitch() *KillSwitch { return g.kill }

// Check decides whether cmd may be carried out now and, when it may,
// charges it to the budget. Checking the same command id again within the
// window (a retried message) does not charge it twice. Only enforcing
// commands that revoke should be checked: dry runs and notifications touch
// nothing.
func (g *Consumer) Check(cmd *schemas.RevokeCommand) Decision {
	if g == nil {
		return Decision{Verdict: Allow}
	}
	if g.allow != nil {
		if e, ok := g.allow.Match(cmd, nil); ok {
			return Decision{Verdict: Refuse, Reason: "allowlisted: " + e}
		}
	}
	if on, why := g.kill.Engaged(); on {
		return Decision{Verdict: Hold, Reason: "kill switch engaged: " + why}
	}
	if err := g.budget.Take(g.now(), cmd.CommandID, cmd.Reason.RuleID); err != nil {
		return Decision{Verdict: Hold, Reason: err.Error()}
	}
	return Decision{Verdict: Allow}
}

// Enforcing reports an error when the kill switch is engaged: approvals
// are refused while it is.
func (g *Consumer) Enforcing() error {
	if g == nil {
		return nil
	}
	if on, why := g.kill.Engaged(); on {
		return fmt.Errorf("%w: %s", ErrKillSwitch, why)
	}
	return nil
}

// ErrKillSwitch means enforcement is stopped.
var ErrKillSwitch = errors.New("kill switch engaged")
