package engine

import (
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// record is what a rule keeps of one event: the fields every kind needs and
// room for what the kinds evaluate (vals for distinct). A new kind that
// needs other fields (coordinates for geo-velocity, bytes for volume) adds
// them here and fills them in its evaluator's record method.
type record struct {
	t    time.Time
	id   string
	typ  schemas.EventType
	user string
	// tid is the id of the rule's target besides the user: the token,
	// session or client id.
	tid  string
	step uint8
	vals [maxDistinct]string
}

// finding is an evaluator's answer: the records that make the detection
// (indexes into the group's records, ascending, ending with the triggering
// record) and a one-line summary.
type finding struct {
	evidence []int
	summary  string
}

// evaluator is the logic of one rule kind. It holds the kind's parameters
// and scratch space but no per-group state: the engine keeps each group's
// records in event-time order and asks the evaluator about them.
type evaluator interface {
	// record fills in the kind's part of rec from an event the rule
	// matched, or reports false when the kind has no use for the event.
	record(ev *schemas.AuditEvent, rec *record) bool
	// evaluate reports whether the window of event time ending at
	// recs[end] (records with times in [recs[end].t-window, recs[end].t]
	// and indexes up to end) makes a detection, with recs[end] as the
	// triggering record.
	evaluate(recs []record, end int, window time.Duration) (finding, bool)
}

func newEvaluator(r *Rule) evaluator {
	switch r.Kind {
	case KindSequenceThreshold:
		return newSequenceEval(r.SequenceThreshold)
	case KindDistinct:
		return newDistinctEval(r.Distinct)
	}
	// Unreachable: New validates every rule first.
	panic("engine: no evaluator for kind " + string(r.Kind))
}

// ruleState is one rule, compiled, with its state.
type ruleState struct {
	rule     *Rule
	match    matchers
	groupBy  []accessor
	allow    map[string]struct{}
	eval     evaluator
	window   time.Duration
	cooldown time.Duration
	// keep is how far behind its group's newest event a record is kept:
	// the window plus the out-of-order allowance.
	keep      time.Duration
	allowance time.Duration
	maxRecs   int

	groups map[string]*group
	// fired holds, per target, the detection time of the target's last
	// command.
	fired map[string]time.Time
	stats RuleStats
}

// group is the state of one group key of one rule: its records in
// event-time order (ties in arrival order) and its newest event time.
type group struct {
	key    string
	recs   []record
	newest time.Time
}

func newRuleState(r *Rule, cfg Config) *ruleState {
	rs := &ruleState{
		rule:      r,
		match:     compileConditions(r.Match),
		eval:      newEvaluator(r),
		window:    r.Window.D(),
		cooldown:  r.cooldown(),
		keep:      r.Window.D() + cfg.Allowance,
		allowance: cfg.Allowance,
		maxRecs:   cfg.MaxEventsPerGroup,
		groups:    make(map[string]*group),
		fired:     make(map[string]time.Time),
	}
	for _, f := range r.GroupBy {
		get, _ := lookupField(f)
		rs.groupBy = append(rs.groupBy, get)
	}
	if len(r.Allowlist.UserIDs) > 0 {
		rs.allow = make(map[string]struct{}, len(r.Allowlist.UserIDs))
		for _, u := range r.Allowlist.UserIDs {
			rs.allow[u] = struct{}{}
		}
	}
	return rs
}

// groupKey is the event's values of the group_by fields, joined by NUL, or
// false when one is missing.
func (rs *ruleState) groupKey(ev *schemas.AuditEvent) (string, bool) {
	if len(rs.groupBy) == 1 {
		v := rs.groupBy[0](ev)
		return v, v != ""
	}
	var b strings.Builder
	for i, get := range rs.groupBy {
		v := get(ev)
		if v == "" {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// targetID is the id, besides the user, that the rule's target needs.
func (rs *ruleState) targetID(ev *schemas.AuditEvent) string {
	switch rs.rule.Target.Kind {
	case schemas.TargetToken:
		return ev.TokenID
	case schemas.TargetSession:
		return ev.SessionID
	case schemas.TargetClient:
		return ev.ClientID
	}
	return ""
}

func (rs *ruleState) process(ev *schemas.AuditEvent, e *Engine) (schemas.RevokeCommand, bool) {
	if !rs.match.match(ev) {
		return schemas.RevokeCommand{}, false
	}
	if _, ok := rs.allow[ev.UserID]; ok {
		return schemas.RevokeCommand{}, false
	}
	rec := record{t: ev.Time, id: ev.ID, typ: ev.Type, user: ev.UserID, tid: rs.targetID(ev)}
	if !rs.eval.record(ev, &rec) {
		return schemas.RevokeCommand{}, false
	}
	key, ok := rs.groupKey(ev)
	if !ok {
		return schemas.RevokeCommand{}, false
	}
	rs.stats.Matched++
	g := rs.groups[key]
	if g != nil && ev.Time.Before(g.newest.Add(-rs.allowance)) {
		rs.stats.Late++
		return schemas.RevokeCommand{}, false
	}
	if g == nil {
		g = &group{key: key}
		rs.groups[key] = g
	}
	i, dup := g.position(&rec)
	if dup {
		rs.stats.Duplicates++
		return schemas.RevokeCommand{}, false
	}
	g.recs = append(g.recs, record{})
	copy(g.recs[i+1:], g.recs[i:])
	g.recs[i] = rec
	if ev.Time.After(g.newest) {
		g.newest = ev.Time
	}
	byTime, byCap := g.prune(g.newest.Add(-rs.keep), rs.maxRecs)
	rs.stats.Truncated += uint64(byCap)
	if i -= byTime + byCap; i < 0 {
		return schemas.RevokeCommand{}, false
	}
	// In order, the new record is the last and only the window ending at
	// it is new. Out of order, it also joins the windows ending at the
	// later records within one window of it.
	limit := ev.Time.Add(rs.window)
	for end := i; end < len(g.recs) && !g.recs[end].t.After(limit); end++ {
		f, ok := rs.eval.evaluate(g.recs, end, rs.window)
		if !ok {
			continue
		}
		return rs.fire(e, g, end, f)
	}
	return schemas.RevokeCommand{}, false
}

// fire turns a finding into a command unless the target lacks its id or is
// within the cooldown of the rule's last command for it.
func (rs *ruleState) fire(e *Engine, g *group, end int, f finding) (schemas.RevokeCommand, bool) {
	trig := &g.recs[end]
	target := schemas.Target{Kind: rs.rule.Target.Kind, IncludeDownscoped: rs.rule.Target.IncludeDownscoped}
	switch target.Kind {
	case schemas.TargetUser:
		target.UserID = trig.user
	case schemas.TargetToken:
		target.TokenID, target.UserID = trig.tid, trig.user
	case schemas.TargetSession:
		target.SessionID, target.UserID = trig.tid, trig.user
	case schemas.TargetClient:
		target.ClientID = trig.tid
	}
	if target.ID() == "" {
		rs.stats.NoTarget++
		return schemas.RevokeCommand{}, false
	}
	tkey := string(target.Kind) + "\x00" + target.ID()
	last, seen := rs.fired[tkey]
	if seen {
		d := trig.t.Sub(last)
		if d < 0 {
			d = -d
		}
		if d < rs.cooldown {
			rs.stats.Suppressed++
			return schemas.RevokeCommand{}, false
		}
	}
	if !seen || trig.t.After(last) {
		rs.fired[tkey] = trig.t
	}
	rs.stats.Detections++
	return e.command(rs, target, g, end, f), true
}

// sweep evicts groups whose newest event fell out of every window, and
// cooldowns that ended, as of the watermark.
func (rs *ruleState) sweep(watermark time.Time, allowance time.Duration) {
	groupsBefore := watermark.Add(-rs.keep)
	for k, g := range rs.groups {
		if g.newest.Before(groupsBefore) {
			delete(rs.groups, k)
		}
	}
	firedBefore := watermark.Add(-rs.cooldown - allowance)
	for k, t := range rs.fired {
		if t.Before(firedBefore) {
			delete(rs.fired, k)
		}
	}
}

// position finds where rec goes in the group's records (after every record
// not newer than it) and whether the group already holds its event id.
func (g *group) position(rec *record) (int, bool) {
	n := len(g.recs)
	i := n
	if n > 0 && rec.t.Before(g.recs[n-1].t) {
		lo, hi := 0, n
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if rec.t.Before(g.recs[m].t) {
				hi = m
			} else {
				lo = m + 1
			}
		}
		i = lo
	}
	// A duplicate carries the same event, so the same time.
	for j := i - 1; j >= 0 && g.recs[j].t.Equal(rec.t); j-- {
		if g.recs[j].id == rec.id {
			return i, true
		}
	}
	return i, false
}

// prune drops the records older than before, then the oldest beyond
// maxRecs.
func (g *group) prune(before time.Time, maxRecs int) (byTime, byCap int) {
	for byTime < len(g.recs) && g.recs[byTime].t.Before(before) {
		byTime++
	}
	if rest := len(g.recs) - byTime; rest > maxRecs {
		byCap = rest - maxRecs
	}
	if n := byTime + byCap; n > 0 {
		m := copy(g.recs, g.recs[n:])
		clear(g.recs[m:])
		g.recs = g.recs[:m]
	}
	return byTime, byCap
}
