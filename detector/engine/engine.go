package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// MaxEvidenceRecords bounds the evidence of one command: the newest records
// that make the detection are kept, the older ones dropped.
const MaxEvidenceRecords = 100

// sweepInterval is how much the watermark must advance, in event time,
// between two sweeps of idle groups and cooldowns.
const sweepInterval = time.Minute

// ErrNoRules is returned by New when given no rules: a detector without
// rules detects nothing, which is a misconfiguration, not a mode.
var ErrNoRules = errors.New("engine: no rules")

// Engine evaluates rules over events. It is not safe for concurrent use.
type Engine struct {
	cfg       Config
	rules     []*ruleState
	events    uint64
	watermark time.Time
	nextSweep time.Time

	// act binds the event being processed for the rules' conditions.
	act eventActivation
	// silent is set while ProcessSilently runs.
	silent bool
	// ip is the event's address, parsed once per event when an allowlist
	// needs it.
	ip       netip.Addr
	ipParsed bool

	// ctx learns baselines and token bindings and computes each event's
	// Context; risk is the risk model, nil without a rule of kind risk.
	ctx           *contextTracker
	risk          *riskState
	nextBaseSweep time.Time
}

// New builds an engine running rules. It validates the configuration and
// every rule, and refuses two rules with the same id.
func New(cfg Config, rules []*Rule) (*Engine, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(rules) == 0 {
		errs = append(errs, ErrNoRules)
	}
	seen := make(map[string]bool, len(rules))
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rule %q (%s): %w", r.ID, r.Source, err))
			continue
		}
		if seen[r.ID] {
			errs = append(errs, fmt.Errorf("rule %q (%s): %w: id used by two rules", r.ID, r.Source, ErrInvalidRule))
		}
		seen[r.ID] = true
	}
	var riskRules, signals []string
	for _, r := range rules {
		if r.Kind == KindRisk {
			riskRules = append(riskRules, r.ID)
		}
		if r.Signal != nil {
			signals = append(signals, r.ID)
		}
	}
	if len(riskRules) > 1 {
		errs = append(errs, fmt.Errorf("%w: rules %s are all of kind risk; one risk model runs", ErrInvalidRule, strings.Join(riskRules, ", ")))
	}
	if len(signals) > 0 && len(riskRules) == 0 {
		errs = append(errs, fmt.Errorf("%w: rules %s are signals, but no rule of kind risk turns signals into commands", ErrInvalidRule, strings.Join(signals, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sorted := slices.Clone(rules)
	SortRules(sorted)
	e := &Engine{cfg: cfg}
	e.act.ctx = &Context{}
	for _, r := range sorted {
		if r.usesContext() || r.Signal != nil || r.Kind == KindRisk {
			e.ctx = newContextTracker(cfg.Context)
		}
	}
	for _, r := range sorted {
		if r.Kind == KindRisk {
			e.risk = newRiskState(r)
			continue
		}
		e.rules = append(e.rules, newRuleState(r, cfg, &e.act))
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Rules returns the rules the engine runs, by id.
func (e *Engine) Rules() []*Rule {
	out := make([]*Rule, 0, len(e.rules)+1)
	for _, rs := range e.rules {
		out = append(out, rs.rule)
	}
	if e.risk != nil {
		out = append(out, e.risk.rule)
		SortRules(out)
	}
	return out
}

// Watermark is the newest event time the engine has seen.
func (e *Engine) Watermark() time.Time { return e.watermark }

// Horizon is how much event history, before the first event it is to
// process live, an engine rebuilding its state replays (with
// ProcessSilently): per rule, the window plus the allowance (what a
// detection's events span) plus the cooldown (how far back a detection
// still suppresses a repeat), the longest of the rules. first_seen
// baselines outlive it; they are restored, not replayed (see
// RestoreBaselines).
func (e *Engine) Horizon() time.Duration {
	var h time.Duration
	if e.ctx != nil {
		h = max(e.cfg.Context.TokenTTL, e.cfg.Context.RetryWindow)
	}
	for _, rs := range e.rules {
		h = max(h, rs.keep+rs.cooldown)
	}
	if e.risk != nil {
		h = max(h, e.risk.window+e.risk.cooldown)
	}
	return h
}

// Process feeds one event to every rule and returns the commands of the
// rules it made fire, in rule id order (usually none). The event must be
// valid (see schemas.AuditEvent.Validate); the engine keeps no reference to
// it.
func (e *Engine) Process(ev *schemas.AuditEvent) []schemas.RevokeCommand {
	e.events++
	e.advance(ev.Time)
	e.act.ev, e.act.typIdx, e.ipParsed = ev, typeIndex(ev.Type), false
	e.act.typ = 1 << e.act.typIdx
	if e.ctx != nil {
		e.ctx.compute(ev, e.act.ctx)
	}
	var out []schemas.RevokeCommand
	for _, rs := range e.rules {
		out = rs.process(ev, e, out)
	}
	if e.risk != nil {
		out = e.risk.settle(e, out)
	}
	if e.ctx != nil {
		e.ctx.learn(ev, e.act.ctx, e.risk == nil || !e.risk.suspicious(ev.UserID, ev.Time))
	}
	e.act.ev = nil
	return out
}

// ProcessSilently feeds one event to every rule like Process but emits
// nothing: the rules learn, count and start their cooldowns as if they had
// fired. A detector rebuilding its state after a restart replays, this
// way, the Horizon of input before the first event it has not yet handled,
// then processes the rest with Process.
//
// The guarantee, when the silent part covers Horizon() of event time
// before the first live event: the live part emits no command for a
// detection completed in the silent part, nor for one within the cooldown
// of such a detection, since the detection started its target's cooldown;
// events of the silent part met again live (an overlap after a restart)
// are duplicates and count once; and a detection completed live carries
// the id an engine that ran all along would have given it, so a command
// published twice around a restart is deduplicated downstream by its id.
// Every command emitted live is one that engine would have emitted too.
// The converse holds but for one rare case: when a target's detections
// follow each other within cooldowns across the start of the replay, the
// rebuilt engine may start the cooldown at a later detection and so hold
// back a repeat the other engine would have sent.
func (e *Engine) ProcessSilently(ev *schemas.AuditEvent) {
	e.silent = true
	e.Process(ev)
	e.silent = false
}

// addr is the current event's address, parsed once.
func (e *Engine) addr(ev *schemas.AuditEvent) (netip.Addr, bool) {
	if !e.ipParsed {
		e.ip, _ = netip.ParseAddr(ev.IP)
		e.ip = e.ip.Unmap()
		e.ipParsed = true
	}
	return e.ip, e.ip.IsValid()
}

// advance moves the watermark and sweeps idle state when it has moved far
// enough since the last sweep.
func (e *Engine) advance(t time.Time) {
	if t.After(e.watermark) {
		e.watermark = t
	}
	if e.nextSweep.IsZero() {
		e.nextSweep = e.watermark.Add(sweepInterval)
		return
	}
	if e.watermark.Before(e.nextSweep) {
		return
	}
	for _, rs := range e.rules {
		rs.sweep(e.watermark, e.cfg.Allowance)
	}
	if e.risk != nil {
		e.risk.sweep(e.watermark)
	}
	if e.ctx != nil {
		e.ctx.sweep(e.watermark)
	}
	if e.ctx != nil && !e.watermark.Before(e.nextBaseSweep) {
		e.ctx.sweepBaselines(e.watermark)
		e.nextBaseSweep = e.watermark.Add(baselineSweepInterval)
	}
	e.nextSweep = e.watermark.Add(sweepInterval)
}

// Stats are the engine's counters, for metrics.
type Stats struct {
	Events    uint64
	Watermark time.Time
	Rules     []RuleStats
	Context   ContextStats
}

// ContextStats are the sizes of the context's state.
type ContextStats struct {
	// Users with a baseline; Tokens bound; SharedEgress addresses and
	// OrgNetworks ASNs known as shared, Candidates not (yet).
	Users, Tokens, SharedEgress, OrgNetworks, Candidates int
	// RiskUsers and RiskSessions hold signals or cooldowns.
	RiskUsers, RiskSessions int
}

// RuleStats are one rule's counters and the size of its state.
type RuleStats struct {
	RuleID string
	// Matched counts events the rule tracked.
	Matched uint64
	// Late counts events dropped for arriving later than the allowance.
	Late uint64
	// Duplicates counts events whose id the group already held.
	Duplicates uint64
	// Truncated counts records dropped by Config.MaxEventsPerGroup.
	Truncated uint64
	// Detections counts commands the rule produced.
	Detections uint64
	// Silenced counts detections made by ProcessSilently, which emits
	// none.
	Silenced uint64
	// Suppressed counts detections dropped by the cooldown.
	Suppressed uint64
	// NoTarget counts detections dropped because the event lacked the
	// target's id.
	NoTarget uint64
	// Groups and Cooldowns are the live state entries.
	Groups    int
	Cooldowns int
	// Records is the number of event records held across groups.
	Records int
	// Baselines is the number of groups with a learned baseline
	// (first_seen).
	Baselines int
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{Events: e.events, Watermark: e.watermark, Rules: make([]RuleStats, len(e.rules))}
	for i, rs := range e.rules {
		rst := rs.stats
		rst.RuleID = rs.rule.ID
		rst.Groups = len(rs.groups)
		rst.Cooldowns = len(rs.fired)
		rst.Records = rs.records
		if sw, ok := rs.eval.(stateSweeper); ok {
			rst.Baselines = sw.stateSize()
		}
		s.Rules[i] = rst
	}
	if e.risk != nil {
		rst := e.risk.stats
		rst.RuleID = e.risk.rule.ID
		rst.Groups = len(e.risk.users)
		s.Rules = append(s.Rules, rst)
		s.Context.RiskUsers, s.Context.RiskSessions = len(e.risk.users), len(e.risk.sessions)
	}
	if e.ctx == nil {
		return s
	}
	c := &s.Context
	c.Users, c.Tokens = len(e.ctx.users), len(e.ctx.tokens)
	c.SharedEgress, c.OrgNetworks = e.ctx.sharedEgress, e.ctx.sharedASNs
	c.Candidates = len(e.ctx.egress) - c.SharedEgress + len(e.ctx.asns) - c.OrgNetworks
	return s
}

// command builds the command of a detection. Evidence indexes are
// ascending and end with the triggering record.
func (e *Engine) command(rs *ruleState, target schemas.Target, g *group, end int, f finding) schemas.RevokeCommand {
	r := rs.rule
	trig := &g.recs[end]
	if n := len(f.evidence); n > MaxEvidenceRecords {
		f.evidence = f.evidence[n-MaxEvidenceRecords:]
	}
	ids := make([]string, len(f.evidence))
	first := trig.t
	for i, idx := range f.evidence {
		rec := &g.recs[idx]
		ids[i] = rec.id
		if rec.t.Before(first) {
			first = rec.t
		}
	}
	summary := f.text() + " for " + rs.describeGroup(g.key)
	return e.stamp(r, target, r.Action, trig.t, schemas.Reason{
		Severity:       r.Severity,
		Summary:        truncateText(summary, 1000),
		Evidence:       ids,
		FirstEventTime: first.UTC(),
	})
}

// stamp completes the command of a detection by rule r completed at event
// time t: its id (from the rule, target and evidence), times, issuer and
// mode, and the reason's rule and times.
func (e *Engine) stamp(r *Rule, target schemas.Target, action schemas.Action, t time.Time, reason schemas.Reason) schemas.RevokeCommand {
	mode := schemas.ModeEnforce
	if r.DryRun || e.cfg.DryRun {
		mode = schemas.ModeDryRun
	}
	detected := t.UTC()
	reason.RuleID, reason.RuleVersion = r.ID, r.Version
	reason.LastEventTime, reason.DetectedAt = detected, detected
	return schemas.RevokeCommand{
		CommandID: schemas.DetectionCommandID(r.ID, r.Version, target, reason.Evidence),
		IssuedAt:  detected,
		ExpiresAt: detected.Add(e.cfg.CommandTTL),
		Issuer:    e.cfg.Issuer,
		Target:    target,
		Action:    action,
		Mode:      mode,
		Reason:    reason,
	}
}

// describeGroup renders a group key as "user_id u1" or
// "token_id t1, ip 10.0.0.1".
func (rs *ruleState) describeGroup(key string) string {
	if len(rs.rule.GroupBy) == 1 {
		return rs.rule.GroupBy[0] + " " + key
	}
	parts := strings.Split(key, "\x00")
	var b strings.Builder
	for i, name := range rs.rule.GroupBy {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteByte(' ')
		if i < len(parts) {
			b.WriteString(parts[i])
		}
	}
	return b.String()
}
