package guard

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/budget"
	"github.com/revoked-dev/revoked/internal/killswitch"
	"github.com/revoked-dev/revoked/schemas"
)

// Verdict is what a component does with a command.
type Verdict int

// Verdicts. The detector's guard answers Allow, Hold or Suppress; the
// consumer's, Allow, Hold or Refuse.
const (
	// Allow: the detector publishes the command to the command topic,
	// in the mode the Decision carries; the consumer carries it out.
	Allow Verdict = iota
	// Hold: keep the command for a human to approve or reject
	// (internal/held): the detector publishes it to the held topic, the
	// consumer records a held row.
	Hold
	// Suppress: the detector publishes nothing.
	Suppress
	// Refuse: the consumer never carries it out (the target is
	// allowlisted) and records a rejected row.
	Refuse
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Hold:
		return "hold"
	case Suppress:
		return "suppress"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Why a command was changed, held or suppressed: the decision label of
// revoked_detector_guard_decisions_total and the Reason of a Decision.
const (
	ReasonEnforce      = "enforce"       // published as enforce
	ReasonDryRun       = "dry_run"       // was dry_run already
	ReasonKillSwitch   = "kill_switch"   // demoted to dry_run
	ReasonAllowlist    = "allowlist"     // demoted to dry_run
	ReasonNotify       = "notify"        // enforce, outside the budget: it revokes nothing
	ReasonCooldown     = "cooldown"      // suppressed
	ReasonBudgetGlobal = "budget_global" // held
	ReasonBudgetRule   = "budget_rule"   // held
)

// Decision is the Guard's answer for one command.
type Decision struct {
	Verdict Verdict
	// Reason is one of the Reason* constants.
	Reason string
	// Mode is the mode to publish (or hold) the command in; it is never
	// enforce when the command was dry_run.
	Mode schemas.Mode
}

// Guard applies the safety checks to commands (see the package
// documentation). It is safe for concurrent use.
type Guard struct {
	now       func() time.Time
	allow     *Allowlist          // given by WithAllowlist
	allowFile *reloadingAllowlist // read from Config.AllowlistFile
	log       zerolog.Logger
	kill      *KillSwitch
	cooldown  time.Duration
	heldTopic string
	metrics   *metrics

	mu     sync.Mutex
	global budget.Window
	rules  budget.Rules
	// enforced maps a target (kind and id, and the notify action for
	// notifications) to when an enforce command last named it.
	enforced  map[string]time.Time
	nextSweep time.Time
}

// Option adjusts New.
type Option func(*Guard)

// WithClock replaces time.Now, which times the budget and the cooldown.
func WithClock(now func() time.Time) Option { return func(g *Guard) { g.now = now } }

// WithAllowlist uses a instead of the file Config.AllowlistFile names.
func WithAllowlist(a *Allowlist) Option { return func(g *Guard) { g.allow = a } }

// WithLogger logs allowlist reloads and their failures to log.
func WithLogger(log zerolog.Logger) Option { return func(g *Guard) { g.log = log } }

// WithRegistry registers the guard's metrics on reg.
func WithRegistry(reg prometheus.Registerer) Option {
	return func(g *Guard) { g.metrics.reg = reg }
}

// New validates cfg, reads its allowlist file and returns a Guard. The
// allowlist file is read again when it changes (looked at, at most every
// AllowlistReloadInterval, when a command is checked); a change that does
// not load is logged and counted, and the previous allowlist stays in
// force.
func New(cfg Config, opts ...Option) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	limits, _ := cfg.ruleBudgets() // validated
	g := &Guard{
		now:       time.Now,
		log:       zerolog.Nop(),
		kill:      killswitch.New(cfg.KillSwitchFile, false),
		cooldown:  cfg.Cooldown,
		heldTopic: cfg.HeldTopic,
		metrics:   &metrics{},
		global:    budget.Window{Limit: cfg.Budget},
		rules:     budget.Rules{Default: cfg.RuleBudget, Limits: limits},
		enforced:  make(map[string]time.Time),
	}
	for _, o := range opts {
		o(g)
	}
	if g.allow == nil && cfg.AllowlistFile != "" {
		f, err := newAllowlistFile(cfg.AllowlistFile, g.log)
		if err != nil {
			return nil, err
		}
		g.allowFile = f
	}
	if err := g.metrics.register(g); err != nil {
		return nil, err
	}
	return g, nil
}

// KillSwitch is the guard's kill switch.
func (g *Guard) KillSwitch() *KillSwitch { return g.kill }

// Allowlist is the allowlist in use (nil when none).
func (g *Guard) Allowlist() *Allowlist {
	if g.allowFile != nil {
		return g.allowFile.cur.Load()
	}
	return g.allow
}

// allowlist is the allowlist in force at now.
func (g *Guard) allowlist(now time.Time) *Allowlist {
	if g.allowFile != nil {
		return g.allowFile.get(now)
	}
	return g.allow
}

// HeldTopic is the topic held commands go to.
func (g *Guard) HeldTopic() string { return g.heldTopic }

// Check decides what becomes of cmd, built from the triggering event ev
// (nil when unknown), and records the decision: an enforce command that
// passes starts the cooldown of its target and takes from the budget.
// Call it once per command.
func (g *Guard) Check(cmd *schemas.RevokeCommand, ev *schemas.AuditEvent) Decision {
	d := g.decide(cmd, ev)
	g.metrics.decided(cmd.Reason.RuleID, d)
	return d
}

func (g *Guard) decide(cmd *schemas.RevokeCommand, ev *schemas.AuditEvent) Decision {
	if cmd.Mode != schemas.ModeEnforce {
		return Decision{Verdict: Allow, Reason: ReasonDryRun, Mode: schemas.ModeDryRun}
	}
	if g.kill.On() {
		return Decision{Verdict: Allow, Reason: ReasonKillSwitch, Mode: schemas.ModeDryRun}
	}
	now := g.now()
	if g.allowlist(now).Allows(cmd, ev) {
		return Decision{Verdict: Allow, Reason: ReasonAllowlist, Mode: schemas.ModeDryRun}
	}
	target := string(cmd.Target.Kind) + "\x00" + cmd.Target.ID()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now)
	// A revocation is suppressed after a revocation of its target; a
	// notification after either. A notification never holds back a
	// revocation.
	notified := target + "\x00" + string(schemas.ActionNotify)
	if g.inCooldown(target, now) || (cmd.Action == schemas.ActionNotify && g.inCooldown(notified, now)) {
		return Decision{Verdict: Suppress, Reason: ReasonCooldown, Mode: schemas.ModeEnforce}
	}
	if cmd.Action == schemas.ActionNotify {
		g.markEnforced(notified, now)
		return Decision{Verdict: Allow, Reason: ReasonNotify, Mode: schemas.ModeEnforce}
	}
	rw := g.ruleWindow(cmd.Reason.RuleID)
	if g.global.Full(now) {
		return Decision{Verdict: Hold, Reason: ReasonBudgetGlobal, Mode: schemas.ModeEnforce}
	}
	if rw.Full(now) {
		return Decision{Verdict: Hold, Reason: ReasonBudgetRule, Mode: schemas.ModeEnforce}
	}
	g.global.Add(now)
	rw.Add(now)
	g.markEnforced(target, now)
	return Decision{Verdict: Allow, Reason: ReasonEnforce, Mode: schemas.ModeEnforce}
}

func (g *Guard) inCooldown(key string, now time.Time) bool {
	last, ok := g.enforced[key]
	return ok && g.cooldown > 0 && now.Sub(last) < g.cooldown
}

func (g *Guard) markEnforced(target string, now time.Time) {
	if g.cooldown > 0 {
		g.enforced[target] = now
	}
}

func (g *Guard) ruleWindow(rule string) *budget.Window { return g.rules.Window(rule) }

// sweep forgets cooldowns that ended, at most once a minute.
func (g *Guard) sweep(now time.Time) {
	if now.Before(g.nextSweep) {
		return
	}
	g.nextSweep = now.Add(time.Minute)
	for t, last := range g.enforced {
		if now.Sub(last) >= g.cooldown {
			delete(g.enforced, t)
		}
	}
}

// Usage is how much of the budget the minute ending now used.
type Usage struct {
	Global int
	Rules  map[string]int
}

// Usage returns the budget used in the last minute.
func (g *Guard) Usage() Usage {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	u := Usage{Global: g.global.Used(now), Rules: make(map[string]int, len(g.rules.Windows()))}
	for id, w := range g.rules.Windows() {
		u.Rules[id] = w.Used(now)
	}
	return u
}

// metrics are the guard's Prometheus metrics.
type metrics struct {
	reg       prometheus.Registerer
	decisions *prometheus.CounterVec
	held      *prometheus.CounterVec
}

func (m *metrics) register(g *Guard) error {
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "revoked", Subsystem: "detector_guard", Name: "decisions_total",
		Help: "Commands the guard decided on, by rule and decision: enforce, notify, dry_run (was already), kill_switch and allowlist (demoted to dry_run), cooldown (suppressed), budget_global and budget_rule (held for approval).",
	}, []string{"rule", "decision"})
	m.held = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "revoked", Subsystem: "detector_guard", Name: "held_total",
		Help: "Commands held for approval because a revocation budget was spent, by rule and budget (global, rule). Alert on any increase.",
	}, []string{"rule", "budget"})
	if m.reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.held, &guardCollector{g: g,
		kill: prometheus.NewDesc("revoked_detector_guard_kill_switch", "1 while the kill switch is on (every command dry_run), by source: runtime (HTTP) or file.", []string{"source"}, nil),
		used: prometheus.NewDesc("revoked_detector_guard_budget_used", "Revocations in the last minute, by rule (empty: the global budget), against revoked_detector_guard_budget_limit.", []string{"rule"}, nil),
		lim:  prometheus.NewDesc("revoked_detector_guard_budget_limit", "Revocations allowed per minute, by rule (empty: the global budget; 0: unlimited).", []string{"rule"}, nil),
		allw: prometheus.NewDesc("revoked_detector_guard_allowlist_entries", "Entries of the allowlist in use.", nil, nil),
		fail: prometheus.NewDesc("revoked_detector_guard_allowlist_reload_errors_total", "Changes of the allowlist file that did not load (the previous allowlist stayed in force).", nil, nil),
	}} {
		if err := m.reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("guard metrics: already registered (one guard per registry): %w", err)
			}
			return fmt.Errorf("guard metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) decided(rule string, d Decision) {
	if m.decisions == nil {
		return
	}
	m.decisions.WithLabelValues(rule, d.Reason).Inc()
	switch d.Reason {
	case ReasonBudgetGlobal:
		m.held.WithLabelValues(rule, "global").Inc()
	case ReasonBudgetRule:
		m.held.WithLabelValues(rule, "rule").Inc()
	}
}

// guardCollector exports the kill switch and the budget when scraped.
type guardCollector struct {
	g                           *Guard
	kill, used, lim, allw, fail *prometheus.Desc
}

func (c *guardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.kill
	ch <- c.used
	ch <- c.lim
	ch <- c.allw
	ch <- c.fail
}

func (c *guardCollector) Collect(ch chan<- prometheus.Metric) {
	ks := c.g.kill.State()
	runtime, file := ks.Runtime, ks.File
	ch <- prometheus.MustNewConstMetric(c.kill, prometheus.GaugeValue, b2f(runtime), "runtime")
	ch <- prometheus.MustNewConstMetric(c.kill, prometheus.GaugeValue, b2f(file), "file")
	ch <- prometheus.MustNewConstMetric(c.allw, prometheus.GaugeValue, float64(c.g.Allowlist().Len()))
	if c.g.allowFile != nil {
		ch <- prometheus.MustNewConstMetric(c.fail, prometheus.CounterValue, float64(c.g.allowFile.failures.Load()))
	}
	now := c.g.now()
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(c.g.global.Used(now)), "")
	ch <- prometheus.MustNewConstMetric(c.lim, prometheus.GaugeValue, float64(c.g.global.Limit), "")
	for id, w := range c.g.rules.Windows() {
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(w.Used(now)), id)
		ch <- prometheus.MustNewConstMetric(c.lim, prometheus.GaugeValue, float64(w.Limit), id)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
