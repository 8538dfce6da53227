package engine

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// record is what a rule keeps of one event: the fields every kind needs and
// room for what the kinds evaluate (vals for distinct values, joins and
// reset_by; num for volume; the location for geo_velocity; ext for the
// rarer token lineage data). Each kind fills in its part in its
// evaluator's record method.
type record struct {
	t    time.Time
	id   string
	user string
	// tid is the id of the rule's target besides the user: the token,
	// session or client id.
	tid  string
	vals [maxDistinct]string
	num  int64
	// cum is num summed over the group's records up to this one, kept by
	// evaluators that sum num (see inserter); only differences of cum
	// mean anything, so dropping the oldest records leaves it right.
	cum      int64
	lat, lon float32
	asn      uint32
	typ      uint8 // index in schemas.EventTypes
	step     uint8
	flags    uint8
	ext      *recordExt
}

// evType is the record's event type.
func (r *record) evType() schemas.EventType { return schemas.EventTypes[r.typ] }

// typeIndex is the index of an event type in schemas.EventTypes; events
// are validated, so the type is one of them.
func typeIndex(t schemas.EventType) uint8 {
	for i, k := range schemas.EventTypes {
		if k == t {
			return uint8(i)
		}
	}
	return 0
}

// Record flags.
const (
	// recTransient marks a record that can only ever complete a detection
	// (never start one): once older than the allowance behind its group's
	// newest event, no event can arrive before it, and it is dropped.
	recTransient uint8 = 1 << iota
)

// recordExt holds what few records need.
type recordExt struct {
	parent  string
	scopes  []string
	resType string
	resID   string
}

// finding is an evaluator's answer: the records that make the detection
// (indexes into the group's records, ascending, ending with the triggering
// record) and a one-line summary.
type finding struct {
	evidence []int
	summary  string
	// describe, when set, writes the summary instead: for kinds whose
	// summary reads the whole window, so that a finding the cooldown
	// suppresses (every event after the first in a busy group) costs
	// none of it.
	describe func() string
}

// text is the finding's summary.
func (f *finding) text() string {
	if f.describe != nil {
		return f.describe()
	}
	return f.summary
}

// evaluator is the logic of one rule kind. It holds the kind's parameters
// and scratch space but no per-group records: the engine keeps each
// group's records in event-time order and asks the evaluator about them.
type evaluator interface {
	// record fills in the kind's part of rec from an event the rule
	// matched, for the group key, or reports false when the kind has no use
	// for the event.
	record(ev *schemas.AuditEvent, key string, rec *record) bool
	// evaluate reports whether the window of event time ending at
	// recs[end] (records with times in [recs[end].t-window, recs[end].t]
	// and indexes up to end) makes a detection, with recs[end] as the
	// triggering record.
	evaluate(recs []record, end int, window time.Duration) (finding, bool)
}

// compactor is an evaluator that can drop records older than before that
// it will never need again (all but the newest, for geo_velocity). It
// drops only the oldest records, never one after a record it keeps, and
// returns the records kept.
type compactor interface {
	compact(recs []record, before time.Time) []record
}

// inserter is an evaluator that keeps something in the group's records
// that depends on the records before them (record.cum): inserted is
// called once recs[i] is in place, before the group is evaluated.
type inserter interface {
	inserted(recs []record, i int)
}

// starter is an evaluator that can tell whether any of a group's records
// could begin a detection: records that can only end one (the then events
// of sequence_threshold) are not worth keeping on their own.
type starter interface {
	canStart(recs []record) bool
}

// stateSweeper is an evaluator that holds state of its own beyond the
// records (first_seen's baselines) and evicts it on event time.
type stateSweeper interface {
	sweepState(watermark time.Time)
	stateSize() int
}

func newEvaluator(r *Rule, act *eventActivation) evaluator {
	if spec, ok := specOf(r.Kind); ok && spec.eval != nil {
		return spec.eval(r, act)
	}
	// Unreachable: New validates every rule first, and the risk model
	// takes the risk rule.
	panic("engine: no evaluator for kind " + string(r.Kind))
}

// ruleState is one rule, compiled, with its state.
type ruleState struct {
	rule        *Rule
	when        cond
	groupBy     []accessor
	allowUsers  map[string]struct{}
	allowClient map[string]struct{}
	allowIPs    []netip.Prefix
	eval        evaluator
	starts      starter
	usesCtx     bool
	compact     compactor
	insert      inserter
	window      time.Duration
	cooldown    time.Duration
	byGroup     bool
	// keep is how far behind its group's newest event a record is kept:
	// the window plus the out-of-order allowance.
	keep      time.Duration
	allowance time.Duration
	maxRecs   int

	groups map[string]*group
	// records is the number of records in groups, kept as they change so
	// that Stats does not walk every group under the engine's lock.
	records int
	// scratch holds a transient record judged alone (see process).
	scratch group
	// rec is the record process builds for the current event. Built in a
	// local variable, it escaped to the heap through the evaluator's
	// record method (an interface call): one allocation of a record per
	// rule matching an event, 950,000 of BenchmarkEngine's 2.6 million.
	rec record
	// fired holds, per target (or group), the detection time of the last
	// command.
	fired map[string]time.Time
	stats RuleStats
}

// group is the state of one group key of one rule: its records in
// event-time order (ties in arrival order) and its newest event time.
type group struct {
	key       string
	recs      []record
	newest    time.Time
	transient int
	// settled is how many of the oldest records compactGroup already
	// found older than the allowance and kept: none of them is transient,
	// so its next look starts after them.
	settled int
}

func newRuleState(r *Rule, cfg Config, act *eventActivation) *ruleState {
	rs := &ruleState{
		rule:      r,
		when:      newCond(r.When, act),
		eval:      newEvaluator(r, act),
		window:    r.Window.D(),
		cooldown:  r.cooldown(),
		byGroup:   r.CooldownScope == "group",
		keep:      r.Window.D() + cfg.Allowance,
		allowance: cfg.Allowance,
		maxRecs:   cfg.MaxEventsPerGroup,
		groups:    make(map[string]*group),
		fired:     make(map[string]time.Time),
	}
	rs.compact, _ = rs.eval.(compactor)
	rs.insert, _ = rs.eval.(inserter)
	rs.starts, _ = rs.eval.(starter)
	rs.usesCtx = r.usesContext()
	for _, f := range r.GroupBy {
		get, _ := lookupField(f)
		rs.groupBy = append(rs.groupBy, get)
	}
	rs.compileAllowlist(r.Allowlist)
	return rs
}

// compileAllowlist prepares the allowlist for allowlisted.
func (rs *ruleState) compileAllowlist(a Allowlist) {
	rs.allowUsers = setOf(a.UserIDs)
	rs.allowClient = setOf(a.ClientIDs)
	for _, ip := range a.IPs {
		p, _ := parsePrefix(ip)
		rs.allowIPs = append(rs.allowIPs, p)
	}
}

func setOf(ids []string) map[string]struct{} {
	if len(ids) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return m
}

// allowlisted reports whether the rule's allowlist exempts the event.
func (rs *ruleState) allowlisted(ev *schemas.AuditEvent, e *Engine) bool {
	if _, ok := rs.allowUsers[ev.UserID]; ok {
		return true
	}
	if _, ok := rs.allowClient[ev.ClientID]; ok && ev.ClientID != "" {
		return true
	}
	if len(rs.allowIPs) > 0 {
		if a, ok := e.addr(ev); ok {
			for _, p := range rs.allowIPs {
				if p.Contains(a) {
					return true
				}
			}
		}
	}
	return false
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

func (rs *ruleState) process(ev *schemas.AuditEvent, e *Engine, out []schemas.RevokeCommand) []schemas.RevokeCommand {
	if !rs.when.match() || rs.allowlisted(ev, e) {
		return out
	}
	key, ok := rs.groupKey(ev)
	if !ok {
		return out
	}
	rs.rec = record{t: ev.Time, id: ev.ID, typ: e.act.typIdx, user: ev.UserID, tid: rs.targetID(ev)}
	if !rs.eval.record(ev, key, &rs.rec) {
		return out
	}
	rec := &rs.rec
	rs.stats.Matched++
	g := rs.groups[key]
	if g != nil && ev.Time.Before(g.newest.Add(-rs.allowance)) {
		rs.stats.Late++
		return out
	}
	if g == nil && rec.flags&recTransient != 0 {
		// A record that can only end a detection, in a group with nothing
		// to end: it is judged on its own and not kept. Keeping it would
		// only serve an earlier event of the group arriving after it,
		// which per-user partitions make rare, and most events (a token
		// used, a login) are this case in most rules: a group per user and
		// rule for two minutes. A redelivered copy meets the cooldown of
		// whatever it fired.
		rs.scratch.key, rs.scratch.newest = key, ev.Time
		rs.scratch.recs = append(rs.scratch.recs[:0], *rec)
		if f, ok := rs.eval.evaluate(rs.scratch.recs, 0, rs.window); ok {
			out = rs.fire(e, &rs.scratch, 0, f, out)
		}
		clear(rs.scratch.recs)
		return out
	}
	if g == nil {
		g = &group{key: key}
		rs.groups[key] = g
	}
	had := len(g.recs)
	defer func() { rs.records += len(g.recs) - had }()
	i, dup := g.position(rec)
	if dup {
		rs.stats.Duplicates++
		return out
	}
	g.recs = append(g.recs, record{})
	copy(g.recs[i+1:], g.recs[i:])
	g.recs[i] = *rec
	if rec.flags&recTransient != 0 {
		g.transient++
	}
	g.settled = min(g.settled, i)
	if rs.insert != nil {
		rs.insert.inserted(g.recs, i)
	}
	if ev.Time.After(g.newest) {
		g.newest = ev.Time
	}
	byTime, byCap := g.prune(g.newest.Add(-rs.keep), rs.maxRecs)
	rs.stats.Truncated += uint64(byCap)
	if i -= byTime + byCap; i >= 0 {
		// In order, the new record is the last and only the window ending
		// at it is new. Out of order, it also joins the windows ending at
		// the later records within one window of it.
		limit := ev.Time.Add(rs.window)
		for end := i; end < len(g.recs) && !g.recs[end].t.After(limit); end++ {
			f, ok := rs.eval.evaluate(g.recs, end, rs.window)
			if !ok {
				continue
			}
			out = rs.fire(e, g, end, f, out)
			break
		}
	}
	rs.compactGroup(g)
	if len(g.recs) == 0 {
		// Nothing left that a later event could need; the group's newest
		// time goes with it, so a later event is judged on its own.
		delete(rs.groups, key)
	}
	return out
}

// compactGroup drops the records no later event can need: transient
// records beyond the allowance, and what the evaluator's compactor lets go.
func (rs *ruleState) compactGroup(g *group) {
	before := g.newest.Add(-rs.allowance)
	if g.transient > 0 {
		// Records are in time order, so only those of the prefix older
		// than before can go. A group whose oldest records are kept (a
		// grant, a failed login still in the window) has such a prefix
		// at every event; only its part not yet looked at (after
		// g.settled) is read, and the group rewritten only when that
		// holds a transient record.
		k, drop := g.settled, 0
		for k < len(g.recs) && g.recs[k].t.Before(before) {
			if g.recs[k].flags&recTransient != 0 {
				drop++
			}
			k++
		}
		if drop > 0 {
			g.dropTransient(k)
			g.transient -= drop
		}
		g.settled = k - drop
	}
	if rs.compact != nil {
		n := len(g.recs)
		g.recs = rs.compact.compact(g.recs, before)
		g.settled = max(0, g.settled-(n-len(g.recs)))
	}
}

// dropTransient removes the transient records of recs[:k], moving
// whichever side of the gaps is shorter: the records kept before k up
// against recs[k:] (then slicing past the gap, as prune does), or the
// records from k on down.
func (g *group) dropTransient(k int) {
	if k <= len(g.recs)-k {
		w := k
		for j := k - 1; j >= 0; j-- {
			if g.recs[j].flags&recTransient != 0 {
				continue
			}
			w--
			if w != j {
				g.recs[w] = g.recs[j]
			}
		}
		clear(g.recs[:w])
		g.recs = g.recs[w:]
		return
	}
	n := g.settled
	for j := g.settled; j < k; j++ {
		if g.recs[j].flags&recTransient != 0 {
			continue
		}
		if n != j {
			g.recs[n] = g.recs[j]
		}
		n++
	}
	m := n + copy(g.recs[n:], g.recs[k:])
	clear(g.recs[m:])
	g.recs = g.recs[:m]
}

// fire turns a finding into a command unless the target lacks its id or is
// within the cooldown of the rule's last command for it. When the engine
// is silent (rebuilding its state), the cooldown is kept but no command is
// built.
func (rs *ruleState) fire(e *Engine, g *group, end int, f finding, out []schemas.RevokeCommand) []schemas.RevokeCommand {
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
		return out
	}
	tkey := string(target.Kind) + "\x00" + target.ID()
	if rs.byGroup {
		tkey = "group\x00" + g.key
	}
	last, seen := rs.fired[tkey]
	if seen {
		d := trig.t.Sub(last)
		if d < 0 {
			d = -d
		}
		if d < rs.cooldown {
			rs.stats.Suppressed++
			return out
		}
	}
	if !seen || trig.t.After(last) {
		rs.fired[tkey] = trig.t
	}
	if rs.rule.Signal != nil {
		// A signal: evidence for the risk model, which decides (and is
		// silent in its turn while the engine is).
		if e.silent {
			rs.stats.Silenced++
		} else {
			rs.stats.Detections++
		}
		if e.risk == nil {
			return out
		}
		return e.risk.add(e, rs, target, g, end, f, out)
	}
	if e.silent {
		rs.stats.Silenced++
		return out
	}
	rs.stats.Detections++
	return append(out, e.command(rs, target, g, end, f))
}

// sweep evicts groups whose newest event fell out of every window, and
// cooldowns that ended, as of the watermark.
func (rs *ruleState) sweep(watermark time.Time, allowance time.Duration) {
	groupsBefore := watermark.Add(-rs.keep)
	settled := watermark.Add(-allowance)
	for k, g := range rs.groups {
		switch {
		case g.newest.Before(groupsBefore):
			rs.records -= len(g.recs)
			delete(rs.groups, k)
		case g.newest.Before(settled) && (g.transient == len(g.recs) || rs.starts != nil && !rs.starts.canStart(g.recs)):
			// Nothing in the group can begin a detection, and no event
			// can arrive before its records any more: records that can
			// only end one have nothing left to end. Most groups of
			// most rules are one user's last login or token use.
			rs.records -= len(g.recs)
			delete(rs.groups, k)
		}
	}
	firedBefore := watermark.Add(-rs.cooldown - allowance)
	for k, t := range rs.fired {
		if t.Before(firedBefore) {
			delete(rs.fired, k)
		}
	}
	if sw, ok := rs.eval.(stateSweeper); ok {
		sw.sweepState(watermark)
	}
}

// position finds where rec goes in the group's records (after every record
// not newer than it) and whether the group already holds its event id.
func (g *group) position(rec *record) (int, bool) {
	n := len(g.recs)
	i := n
	if n > 0 && rec.t.Before(g.recs[n-1].t) {
		i = sort.Search(n, func(m int) bool { return rec.t.Before(g.recs[m].t) })
	}
	// A duplicate carries the same event, so the same time.
	for j := i - 1; j >= 0 && g.recs[j].t.Equal(rec.t); j-- {
		if g.recs[j].id == rec.id {
			return i, true
		}
	}
	return i, false
}

// windowStart is the index of the first of recs[:end+1] at or after from:
// records are in time order, so a binary search finds it without reading
// the records in between, which in a busy group's hour are thousands.
func windowStart(recs []record, end int, from time.Time) int {
	return sort.Search(end, func(i int) bool { return !recs[i].t.Before(from) })
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
		if g.transient > 0 {
			for j := range n {
				if g.recs[j].flags&recTransient != 0 {
					g.transient--
				}
			}
		}
		// Drop the oldest by slicing past them rather than moving the
		// rest down, which cost a copy of the whole group at nearly every
		// event of a busy group; append moves the records when the array
		// is full, once per doubling.
		clear(g.recs[:n])
		g.recs = g.recs[n:]
		g.settled = max(0, g.settled-n)
	}
	return byTime, byCap
}
