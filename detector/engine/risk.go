package engine

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// KindRisk is the risk model: not an evaluator of events but the rule that
// turns the signals of the other rules into commands. A rule with a risk
// block is a signal: when it fires, its detection is not a command but
// evidence of the given weight added to the risk of the user (and, with
// scope session, of the token or session it is about). A user's risk is
// the sum of the weights of their signals within the risk rule's window,
// each halved every half_life since it was seen. When a signal brings the
// risk to a threshold, the command of the highest threshold reached is
// issued, naming every contributing signal with its weight, unless a
// command of that threshold (or a higher one) was issued for the target
// within the risk rule's cooldown. A command that revokes clears the
// target's signals: its tokens are gone, new ones start clean.
//
//	id: risk
//	version: 1
//	kind: risk
//	group_by: [user_id]
//	window: 24h          # how long a signal counts at all
//	cooldown: 6h         # per target and threshold
//	severity: high
//	target: {kind: user, include_downscoped: true}
//	risk:
//	  half_life: 2h
//	  thresholds:
//	    - {at: 0.5, action: notify, severity: medium}
//	    - {at: 1.0, action: revoke_and_reverify}
//	    - {at: 1.0, action: revoke, scope: session}
//
// A signal rule says:
//
//	signal: {weight: 0.6, scope: session}
const KindRisk Kind = "risk"

// RiskModel is the parameter block of KindRisk.
type RiskModel struct {
	HalfLife   Duration        `yaml:"half_life"`
	Thresholds []RiskThreshold `yaml:"thresholds"`
}

// RiskThreshold maps a level of risk to an action. Scope user (the
// default) compares the user's risk and targets the user; scope session
// compares the risk of one token (or session) and targets it, downscoped
// descendants included as the risk rule's target says.
type RiskThreshold struct {
	At       float64          `yaml:"at"`
	Action   schemas.Action   `yaml:"action"`
	Scope    string           `yaml:"scope,omitempty"`
	Severity schemas.Severity `yaml:"severity,omitempty"`
}

// Signal is the block of a rule whose detections are evidence for the risk
// model rather than commands.
type Signal struct {
	Weight float64 `yaml:"weight"`
	// Scope is user (the default) or session: a session signal also adds
	// to the risk of the token or session its rule's target names.
	Scope string `yaml:"scope,omitempty"`
}

// Limits of the risk model.
const (
	maxThresholds = 8
	maxWeight     = 10
)

func (m *RiskModel) validate(errs *fieldErrors) {
	const p = "risk"
	if m.HalfLife <= 0 || m.HalfLife.D() > MaxWindow {
		errs.add(p+".half_life", "must be between 0 and %s", MaxWindow)
	}
	switch {
	case len(m.Thresholds) == 0:
		errs.add(p+".thresholds", "name at least one threshold")
	case len(m.Thresholds) > maxThresholds:
		errs.add(p+".thresholds", "%d thresholds, limit %d", len(m.Thresholds), maxThresholds)
	}
	for i, t := range m.Thresholds {
		tp := fmt.Sprintf("%s.thresholds[%d]", p, i)
		if !(t.At > 0 && t.At <= 100) {
			errs.add(tp+".at", "must be in (0, 100]")
		}
		switch t.Action {
		case schemas.ActionRevoke, schemas.ActionRevokeAndReverify, schemas.ActionNotify:
		default:
			errs.add(tp+".action", "want revoke, revoke_and_reverify or notify, got %q", t.Action)
		}
		switch t.Scope {
		case "", "user", "session":
		default:
			errs.add(tp+".scope", "want user or session, got %q", t.Scope)
		}
		switch t.Severity {
		case "", schemas.SeverityLow, schemas.SeverityMedium, schemas.SeverityHigh, schemas.SeverityCritical:
		default:
			errs.add(tp+".severity", "unknown severity %q", t.Severity)
		}
	}
}

func (s *Signal) validate(errs *fieldErrors) {
	if !(s.Weight > 0 && s.Weight <= maxWeight) {
		errs.add("signal.weight", "must be in (0, %d]", maxWeight)
	}
	switch s.Scope {
	case "", "user", "session":
	default:
		errs.add("signal.scope", "want user or session, got %q", s.Scope)
	}
}

// describeContext says what the context knew of the event that completed
// a signal, for the analyst reading the command: "; from AS16509 (hosting,
// NL) on another device than the token was issued on (residential)".
func describeContext(ev *schemas.AuditEvent, c *Context) string {
	var b strings.Builder
	if g := ev.Geo; g != nil && (g.ASN != 0 || g.Country != "") {
		b.WriteString("; from ")
		if g.ASN != 0 {
			fmt.Fprintf(&b, "AS%d ", g.ASN)
		}
		b.WriteByte('(')
		if g.Network != "" {
			b.WriteString(g.Network)
			b.WriteString(", ")
		}
		b.WriteString(g.Country)
		b.WriteByte(')')
	}
	var facts []string
	add := func(ok bool, s string) {
		if ok {
			facts = append(facts, s)
		}
	}
	add(c.NewDevice, "a device new to the user")
	add(c.NewNetwork, "a network new to the user")
	add(c.NewCountry, "a country new to the user")
	add(c.SharedEgress, "a shared egress address")
	if c.TokenBound {
		add(c.TokenDeviceChanged, "another device than the token was issued on")
		add(c.TokenCountryChanged, "another country than the token was issued in")
		add(c.TokenInterleaved, "two devices using the token at once")
		if c.TokenNetwork != "" && (c.TokenDeviceChanged || c.TokenInterleaved) {
			facts = append(facts, "issued on a "+c.TokenNetwork+" network")
		}
	}
	if len(facts) > 0 {
		b.WriteString("; ")
		b.WriteString(strings.Join(facts, ", "))
	}
	return b.String()
}

// maxSignalEvidence bounds the event ids one signal keeps for the command.
const maxSignalEvidence = 32

// sig is one signal held for a risk.
type sig struct {
	rule   string
	weight float64
	t      time.Time
	first  time.Time // of its evidence
	// in is the session (or, without one, the token) of the event that
	// raised it, if any.
	in       string
	detail   string
	evidence []string
}

// riskAcc is the risk of one user or one token/session.
type riskAcc struct {
	sigs []sig
	// fired is when each threshold (by index) last issued a command.
	fired []time.Time
	// revokedIn are the sessions (or tokens) the signals of the last
	// command that revoked were raised in: within the cooldown, only a
	// signal raised in another one revokes again.
	revokedIn []string
}

// newEvidence reports whether a signal of acc was raised in a session (or
// token) that had no part in its last revocation: the intruder back in
// with new credentials, or another attack, rather than the same one seen
// again.
func (a *riskAcc) newEvidence() bool {
	for i := range a.sigs {
		if in := a.sigs[i].in; in != "" && !slices.Contains(a.revokedIn, in) {
			return true
		}
	}
	return false
}

// value is the decayed sum of the signals at t.
func (a *riskAcc) value(t time.Time, halfLife time.Duration) float64 {
	v := 0.0
	for i := range a.sigs {
		v += decayed(a.sigs[i].weight, t.Sub(a.sigs[i].t), halfLife)
	}
	return v
}

func decayed(w float64, age, halfLife time.Duration) float64 {
	if age <= 0 {
		return w
	}
	return w * math.Exp2(-float64(age)/float64(halfLife))
}

// riskState is the risk model of an engine.
type riskState struct {
	rule       *Rule
	halfLife   time.Duration
	window     time.Duration
	cooldown   time.Duration
	thresholds []RiskThreshold // by At descending
	notifyAt   float64         // the lowest user threshold
	users      map[string]*riskAcc
	sessions   map[string]*riskAcc
	stats      RuleStats
	// peaks, when tracked (TrackRiskPeaks), is each user's highest risk.
	peaks map[string]float64
	// touched are the risks the current event's signals changed.
	touched []touched
	allow   *ruleState // the risk rule's allowlist
}

func newRiskState(r *Rule) *riskState {
	rs := &riskState{
		rule:     r,
		halfLife: r.Risk.HalfLife.D(),
		window:   r.Window.D(),
		cooldown: r.cooldown(),
		users:    make(map[string]*riskAcc),
		sessions: make(map[string]*riskAcc),
	}
	rs.thresholds = slices.Clone(r.Risk.Thresholds)
	slices.SortStableFunc(rs.thresholds, func(a, b RiskThreshold) int { return cmp.Compare(b.At, a.At) })
	rs.notifyAt = math.Inf(1)
	for _, t := range rs.thresholds {
		if t.Scope != "session" {
			rs.notifyAt = min(rs.notifyAt, t.At)
		}
	}
	rs.allow = &ruleState{rule: r}
	rs.allow.compileAllowlist(r.Allowlist)
	return rs
}

// suspicious reports whether the user's risk is at or above the lowest
// user threshold at t: such a user's events do not teach the baselines.
func (rs *riskState) suspicious(user string, t time.Time) bool {
	a := rs.users[user]
	return a != nil && a.value(t, rs.halfLife) >= rs.notifyAt
}

// add records the signal of a firing signal rule and returns the commands
// the risk model issues for it.
func (rs *riskState) add(e *Engine, src *ruleState, target schemas.Target, g *group, end int, f finding, out []schemas.RevokeCommand) []schemas.RevokeCommand {
	if rs.allow.allowlisted(e.act.ev, e) {
		return out
	}
	trig := &g.recs[end]
	s := sig{rule: src.rule.ID, weight: src.rule.Signal.Weight, t: trig.t, first: trig.t, detail: f.text()}
	switch ev := e.act.ev; {
	case ev.SessionID != "":
		s.in = "session\x00" + ev.SessionID
	case ev.TokenID != "":
		s.in = "token\x00" + ev.TokenID
	}
	if src.usesCtx && e.act.ctx != nil {
		s.detail += describeContext(e.act.ev, e.act.ctx)
	}
	for _, idx := range f.evidence {
		if rt := g.recs[idx].t; rt.Before(s.first) {
			s.first = rt
		}
	}
	ev := f.evidence
	if len(ev) > maxSignalEvidence {
		ev = ev[len(ev)-maxSignalEvidence:]
	}
	for _, idx := range ev {
		s.evidence = append(s.evidence, g.recs[idx].id)
	}
	user := trig.user
	if user == "" {
		return out
	}
	session := ""
	if src.rule.Signal.Scope == "session" {
		switch {
		case target.TokenID != "":
			session = "token\x00" + target.TokenID
		case target.SessionID != "":
			session = "session\x00" + target.SessionID
		}
	}
	if session != "" {
		acc := rs.acc(rs.sessions, user+"\x00"+session)
		rs.addSig(acc, s)
		rs.touch(acc, user, session, s.t)
	}
	acc := rs.acc(rs.users, user)
	rs.addSig(acc, s)
	rs.touch(acc, user, "", s.t)
	return out
}

// touched is a risk a signal of the current event changed; the engine
// settles each once the event has been through every rule, so that
// signals of one event make one decision (not a notification and then a
// revocation a moment apart).
type touched struct {
	acc     *riskAcc
	user    string
	session string
	t       time.Time
}

func (rs *riskState) touch(acc *riskAcc, user, session string, t time.Time) {
	for i := range rs.touched {
		if rs.touched[i].acc == acc {
			rs.touched[i].t = maxTime(rs.touched[i].t, t)
			return
		}
	}
	rs.touched = append(rs.touched, touched{acc: acc, user: user, session: session, t: t})
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// settle checks the thresholds of the risks the current event changed:
// tokens' and sessions' first, then users'.
func (rs *riskState) settle(e *Engine, out []schemas.RevokeCommand) []schemas.RevokeCommand {
	if len(rs.touched) == 0 {
		return out
	}
	for _, pass := range []bool{true, false} {
		for _, tc := range rs.touched {
			if (tc.session != "") == pass {
				out = rs.check(e, tc.acc, tc.t, tc.user, tc.session, pass, out)
			}
		}
	}
	clear(rs.touched)
	rs.touched = rs.touched[:0]
	return out
}

func (rs *riskState) acc(m map[string]*riskAcc, key string) *riskAcc {
	a := m[key]
	if a == nil {
		a = &riskAcc{fired: make([]time.Time, len(rs.thresholds))}
		m[key] = a
	}
	return a
}

// push adds s to acc and checks the thresholds of its scope.
// addSig adds s to acc: what fell out of the window is forgotten, and at
// most MaxSignals are kept, the weakest dropped.
func (rs *riskState) addSig(acc *riskAcc, s sig) {
	acc.sigs = slices.DeleteFunc(acc.sigs, func(o sig) bool { return s.t.Sub(o.t) > rs.window })
	acc.sigs = append(acc.sigs, s)
	if len(acc.sigs) > schemas.MaxSignals {
		weakest := 0
		for i := range acc.sigs {
			if decayed(acc.sigs[i].weight, s.t.Sub(acc.sigs[i].t), rs.halfLife) < decayed(acc.sigs[weakest].weight, s.t.Sub(acc.sigs[weakest].t), rs.halfLife) {
				weakest = i
			}
		}
		acc.sigs = slices.Delete(acc.sigs, weakest, weakest+1)
	}
}

// check issues the command of the highest threshold of its scope that
// acc's risk at t reaches, unless one of it or a higher one is cooling
// down.
func (rs *riskState) check(e *Engine, acc *riskAcc, t time.Time, user, session string, sessionScope bool, out []schemas.RevokeCommand) []schemas.RevokeCommand {
	v := acc.value(t, rs.halfLife)
	if rs.peaks != nil && !sessionScope && v > rs.peaks[user] {
		rs.peaks[user] = v
	}
	for i, th := range rs.thresholds {
		if (th.Scope == "session") != sessionScope || v < th.At {
			continue
		}
		// A command of this threshold, or of a higher one, within the
		// cooldown holds this one back; a revocation is held back only
		// while its signals come from the sessions and tokens that made
		// the last one (the same attack seen again), not once a signal
		// comes from another (the intruder back in with new credentials,
		// a second attack).
		fresh := th.Action != schemas.ActionNotify && acc.newEvidence()
		for j := 0; j <= i && !fresh; j++ {
			if (rs.thresholds[j].Scope == "session") != sessionScope || acc.fired[j].IsZero() {
				continue
			}
			if d := t.Sub(acc.fired[j]); d < rs.cooldown && d > -rs.cooldown {
				rs.stats.Suppressed++
				return out
			}
		}
		acc.fired[i] = t
		target := schemas.Target{Kind: schemas.TargetUser, UserID: user, IncludeDownscoped: rs.rule.Target.IncludeDownscoped}
		if sessionScope {
			kind, id, _ := strings.Cut(session, "\x00")
			target.Kind = schemas.TargetKind(kind)
			if target.Kind == schemas.TargetToken {
				target.TokenID = id
			} else {
				target.SessionID = id
			}
		}
		var cmd schemas.RevokeCommand
		if e.silent {
			rs.stats.Silenced++
		} else {
			rs.stats.Detections++
			cmd = rs.command(e, th, target, acc, v, t)
			out = append(out, cmd)
		}
		if th.Action != schemas.ActionNotify {
			if !sessionScope && e.ctx != nil {
				first := t
				for _, o := range acc.sigs {
					if o.first.Before(first) {
						first = o.first
					}
				}
				e.ctx.unlearn(user, first)
			}
			acc.revokedIn = acc.revokedIn[:0]
			for _, o := range acc.sigs {
				if o.in != "" && !slices.Contains(acc.revokedIn, o.in) {
					acc.revokedIn = append(acc.revokedIn, o.in)
				}
			}
			acc.sigs = acc.sigs[:0]
		}
		return out
	}
	return out
}

// command builds the command of a threshold reached.
func (rs *riskState) command(e *Engine, th RiskThreshold, target schemas.Target, acc *riskAcc, v float64, t time.Time) schemas.RevokeCommand {
	r := rs.rule
	sigs := make([]schemas.Signal, 0, len(acc.sigs))
	var ids []string
	seen := make(map[string]bool)
	first := t
	for _, s := range acc.sigs {
		sigs = append(sigs, schemas.Signal{
			RuleID: s.rule, Weight: round3(decayed(s.weight, t.Sub(s.t), rs.halfLife)), Time: s.t.UTC(),
			Detail: truncateText(s.detail, 1000), EventID: last(s.evidence),
		})
		for _, id := range s.evidence {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if s.first.Before(first) {
			first = s.first
		}
	}
	if n := len(ids); n > MaxEvidenceRecords {
		ids = ids[n-MaxEvidenceRecords:]
	}
	slices.SortStableFunc(sigs, func(a, b schemas.Signal) int { return cmp.Compare(b.Weight, a.Weight) })
	var b strings.Builder
	fmt.Fprintf(&b, "risk %.2f reached %.2f (%s) for %s %s:", v, th.At, th.Action, target.Kind, target.ID())
	for i, s := range sigs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %.2f (%s)", s.RuleID, s.Weight, s.Detail)
	}
	sev := th.Severity
	if sev == "" {
		sev = r.Severity
	}
	return e.stamp(r, target, th.Action, t, schemas.Reason{
		Severity:       sev,
		Summary:        truncateText(b.String(), 1000),
		Evidence:       ids,
		FirstEventTime: first.UTC(),
		Risk:           round3(v),
		Signals:        sigs,
	})
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sweep forgets risks whose signals all fell out of the window or decayed
// to nothing, once their cooldowns are over.
func (rs *riskState) sweep(watermark time.Time) {
	for _, m := range []map[string]*riskAcc{rs.users, rs.sessions} {
		for k, a := range m {
			a.sigs = slices.DeleteFunc(a.sigs, func(o sig) bool { return watermark.Sub(o.t) > rs.window })
			if len(a.sigs) > 0 && a.value(watermark, rs.halfLife) >= 0.01 {
				continue
			}
			cooling := false
			for _, f := range a.fired {
				cooling = cooling || (!f.IsZero() && watermark.Sub(f) < rs.cooldown)
			}
			if !cooling {
				delete(m, k)
			}
		}
	}
}

// TrackRiskPeaks makes the engine remember the highest risk each user
// reached, for PeakRisks; a backtest wants it, a live detector not (it
// costs a map entry per user ever at risk).
func (e *Engine) TrackRiskPeaks() {
	if e.risk != nil && e.risk.peaks == nil {
		e.risk.peaks = make(map[string]float64)
	}
}

// PeakRisks returns the highest risk each user reached since
// TrackRiskPeaks, by user; users who never raised a signal are absent.
func (e *Engine) PeakRisks() map[string]float64 {
	if e.risk == nil {
		return nil
	}
	return e.risk.peaks
}

// usesContext reports whether any condition of the rule reads the ctx
// variable: an engine none of whose rules does keeps no context.
func (r *Rule) usesContext() bool {
	exprs := []string{r.When}
	if s := r.Sequence; s != nil {
		for _, st := range s.Steps {
			exprs = append(exprs, st.When)
		}
	}
	if s := r.SequenceThreshold; s != nil {
		exprs = append(exprs, s.Of.expr(), s.Then.expr())
	}
	if f := r.FirstSeen; f != nil {
		exprs = append(exprs, f.Then)
	}
	for _, x := range exprs {
		if ctxRE.MatchString(x) {
			return true
		}
	}
	return false
}

var ctxRE = regexp.MustCompile(`\bctx\.`)
