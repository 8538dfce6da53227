package engine

import (
	"errors"
	"fmt"
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
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sorted := slices.Clone(rules)
	SortRules(sorted)
	e := &Engine{cfg: cfg}
	for _, r := range sorted {
		e.rules = append(e.rules, newRuleState(r, cfg))
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Rules returns the rules the engine runs, by id.
func (e *Engine) Rules() []*Rule {
	out := make([]*Rule, len(e.rules))
	for i, rs := range e.rules {
		out[i] = rs.rule
	}
	return out
}

// Watermark is the newest event time the engine has seen.
func (e *Engine) Watermark() time.Time { return e.watermark }

// Horizon is how much event history, before the first event it is given,
// an engine needs to reach the state it would have had running all along:
// the longest window plus the allowance, or the longest cooldown if longer.
// A detector rebuilding its state after a restart replays that much of its
// input.
func (e *Engine) Horizon() time.Duration {
	var h time.Duration
	for _, rs := range e.rules {
		h = max(h, rs.keep, rs.cooldown)
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
	var out []schemas.RevokeCommand
	for _, rs := range e.rules {
		if cmd, ok := rs.process(ev, e); ok {
			out = append(out, cmd)
		}
	}
	return out
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
	e.nextSweep = e.watermark.Add(sweepInterval)
}

// Stats are the engine's counters, for metrics.
type Stats struct {
	Events    uint64
	Watermark time.Time
	Rules     []RuleStats
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
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{Events: e.events, Watermark: e.watermark, Rules: make([]RuleStats, len(e.rules))}
	for i, rs := range e.rules {
		rst := rs.stats
		rst.RuleID = rs.rule.ID
		rst.Groups = len(rs.groups)
		rst.Cooldowns = len(rs.fired)
		for _, g := range rs.groups {
			rst.Records += len(g.recs)
		}
		s.Rules[i] = rst
	}
	return s
}

// command builds the command of a detection. Evidence indexes are
// ascending and end with the triggering record.
func (e *Engine) command(rs *ruleState, target schemas.Target, g *group, end int, f finding) schemas.RevokeCommand {
	r := rs.rule
	trig := &g.recs[end]
	ids := make([]string, len(f.evidence))
	first := trig.t
	for i, idx := range f.evidence {
		rec := &g.recs[idx]
		ids[i] = rec.id
		if rec.t.Before(first) {
			first = rec.t
		}
	}
	mode := schemas.ModeEnforce
	if r.DryRun || e.cfg.DryRun {
		mode = schemas.ModeDryRun
	}
	detected := trig.t.UTC()
	summary := f.summary + " for " + rs.describeGroup(g.key)
	if len(summary) > 1000 {
		summary = summary[:1000] + "…"
	}
	return schemas.RevokeCommand{
		CommandID: schemas.DetectionCommandID(r.ID, r.Version, target, ids),
		IssuedAt:  detected,
		ExpiresAt: detected.Add(e.cfg.CommandTTL),
		Issuer:    e.cfg.Issuer,
		Target:    target,
		Action:    r.Action,
		Mode:      mode,
		Reason: schemas.Reason{
			RuleID:         r.ID,
			RuleVersion:    r.Version,
			Severity:       r.Severity,
			Summary:        summary,
			Evidence:       ids,
			FirstEventTime: first.UTC(),
			LastEventTime:  detected,
			DetectedAt:     detected,
		},
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
