package quality

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// lead is how long before an attack's first event a command still counts
// as its detection: events of one instant may be processed in either
// order.
const lead = time.Minute

// notifyDetects are the kinds of attack in which the attacker never got
// in, so that there is nothing to revoke: a notification detects them.
var notifyDetects = map[string]bool{simulate.AttackBruteForce: true}

// score matches the detections against the labels and sorts the users
// into kinds of attack and benign classes.
func score(cfg Config, rules []string, labels []simulate.GroundTruth, classes map[string][]string, dets []detection) Report {
	byUser := map[string][]int{}
	for i, g := range labels {
		byUser[g.UserID] = append(byUser[g.UserID], i)
	}
	// first[i] is the earliest detection of label i that counts for it.
	first := make([]*detection, len(labels))
	perRule := map[string]*RuleReport{}
	rule := func(id string) *RuleReport {
		if perRule[id] == nil {
			perRule[id] = &RuleReport{Rule: id}
		}
		return perRule[id]
	}
	// benignHit is, per benign user revoked, the first revocation: the
	// rule and signals behind it, and when.
	type hit struct {
		why string
		at  time.Time
	}
	benignHit := map[string]hit{}
	o := Overall{}
	for k := range dets {
		d := &dets[k]
		c := d.cmd
		revokes := c.Action != schemas.ActionNotify
		at := c.Reason.LastEventTime
		rr := rule(c.Reason.RuleID)
		rr.Commands++
		rr.lat = append(rr.lat, d.latency)
		o.Commands++
		matched, touched, logout := false, false, false
		for _, i := range byUser[d.user] {
			g := labels[i]
			if g.Label == simulate.LabelUserAction {
				// A revocation of the session or token from the logout on
				// honours it; one before it revoked a live session.
				if revokes && !at.Before(g.Start) && (g.SessionID != "" && g.SessionID == c.Target.SessionID || g.TokenID != "" && g.TokenID == c.Target.TokenID) {
					matched, logout = true, true
					if first[i] == nil {
						first[i] = d
					}
				}
				continue
			}
			touched = true
			if at.Before(g.Start.Add(-lead)) || at.After(g.End.Add(cfg.Slack)) {
				continue
			}
			if c.Reason.RuleID == simulate.RuleLogout {
				// The answer to the user's own logout: right, and no
				// detection of an attack that happens to overlap it.
				matched = true
				continue
			}
			matched = true
			if (revokes || notifyDetects[g.Attack]) && (first[i] == nil || at.Before(first[i].cmd.Reason.LastEventTime)) {
				first[i] = d
			}
		}
		if logout {
			o.LogoutCommands++
		}
		// The risk model's commands are also counted under each signal
		// behind them, so the table says which signals revoke whom.
		var sigs []*RuleReport
		for _, sg := range c.Reason.Signals {
			sr := rule(sg.RuleID)
			sr.Commands++
			sigs = append(sigs, sr)
		}
		if matched {
			rr.TruePositives++
			for _, sr := range sigs {
				sr.TruePositives++
			}
			continue
		}
		for _, sr := range sigs {
			sr.FalsePositives++
			if !touched && d.user != "" && revokes {
				if _, ok := benignHit[d.user]; !ok {
					sr.BenignRevoked++
				}
			}
		}
		rr.FalsePositives++
		o.FalsePositives++
		if !touched && d.user != "" && revokes {
			if _, ok := benignHit[d.user]; !ok {
				why := c.Reason.RuleID
				for i, sg := range c.Reason.Signals {
					if i == 0 {
						why += ":"
					}
					why += fmt.Sprintf(" %s %.2f", sg.RuleID, sg.Weight)
				}
				benignHit[d.user] = hit{why: why + " at " + at.UTC().Format("2006-01-02T15:04Z"), at: at}
				rr.BenignRevoked++
			}
		}
	}

	r := Report{Profile: cfg.Name, Users: cfg.Users, Duration: cfg.Duration, Seed: cfg.Seed, Start: cfg.Sim.Start}
	// An attack starts with the first event of any of its lines.
	attackStart := map[string]time.Time{}
	touched := map[string]bool{}
	for _, g := range labels {
		if g.Label == simulate.LabelUserAction {
			continue
		}
		touched[g.UserID] = true
		if at, ok := attackStart[g.AttackID]; g.AttackID != "" && (!ok || g.Start.Before(at)) {
			attackStart[g.AttackID] = g.Start
		}
	}
	kinds := map[string]*KindReport{}
	for _, k := range simulate.Attacks() {
		kinds[k] = &KindReport{Kind: k}
	}
	attacked, detected := map[string]bool{}, map[string]bool{}
	for i, g := range labels {
		switch {
		case g.Label == simulate.LabelUserAction:
			o.Logouts++
			if first[i] != nil {
				o.LogoutsHonoured++
			}
			continue
		case g.Label != simulate.LabelAttack || g.Partial:
			continue
		}
		k := kinds[g.Attack]
		if k == nil {
			k = &KindReport{Kind: g.Attack}
			kinds[g.Attack] = k
		}
		k.Attacks++
		attacked[g.UserID] = true
		d := first[i]
		if d == nil {
			r.missed = append(r.missed, g)
			if len(o.MissedAttacks) < 20 {
				o.MissedAttacks = append(o.MissedAttacks, fmt.Sprintf("%s %s at %s%s", g.UserID, g.Attack,
					g.Start.UTC().Format("2006-01-02T15:04Z"), notifiedBy(dets, g, cfg.Slack)))
			}
			continue
		}
		k.Detected++
		detected[g.UserID] = true
		start := g.Start
		if at, ok := attackStart[g.AttackID]; ok {
			start = at
		}
		ttd := max(0, d.cmd.Reason.LastEventTime.Sub(start))
		k.ttd = append(k.ttd, ttd)
		o.ttd = append(o.ttd, ttd)
	}
	for _, k := range kinds {
		k.Recall, k.TimeToDetect = ratio(k.Detected, k.Attacks), percentiles(k.ttd)
	}
	r.Kinds = sortedKinds(kinds)

	// Benign users: the simulation's users that no attack or attempt
	// touched, by class.
	cls := map[string]*ClassReport{}
	for _, c := range simulate.BenignClasses() {
		cls[c] = &ClassReport{Class: c}
	}
	for i := range cfg.Users {
		u := simulate.UserID(i)
		if touched[u] {
			continue
		}
		o.BenignUsers++
		h, revoked := benignHit[u]
		if revoked {
			r.benign = append(r.benign, benignCase{user: u, at: h.at, classes: classes[u]})
			o.BenignRevoked++
			if len(o.BenignRevokedUsers) < 20 {
				o.BenignRevokedUsers = append(o.BenignRevokedUsers, fmt.Sprintf("%s (%s; %s)", u, h.why, strings.Join(classes[u], ", ")))
			}
		}
		for _, c := range classes[u] {
			cr := cls[c]
			if cr == nil {
				cr = &ClassReport{Class: c}
				cls[c] = cr
			}
			cr.Users++
			if revoked {
				cr.Revoked++
				if len(cr.Examples) < 5 {
					cr.Examples = append(cr.Examples, fmt.Sprintf("%s (%s)", u, h.why))
				}
			}
		}
	}
	for _, c := range cls {
		c.Rate = rate(c.Revoked, c.Users)
	}
	r.Classes = sortedClasses(cls)

	for _, id := range rules {
		rule(id)
	}
	for _, rr := range perRule {
		rr.Latency = percentiles(rr.lat)
		o.lat = append(o.lat, rr.lat...)
		r.Rules = append(r.Rules, *rr)
	}
	slices.SortFunc(r.Rules, func(a, b RuleReport) int { return strings.Compare(a.Rule, b.Rule) })

	o.AttackedUsers, o.DetectedUsers = len(attacked), len(detected)
	o.derive()
	r.Overall = o
	return r
}

// rate is a share that is zero, not one, of nothing.
func rate(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// sortedKinds lists kinds in simulate.Attacks order, others after.
func sortedKinds(m map[string]*KindReport) []KindReport {
	order := simulate.Attacks()
	out := make([]KindReport, 0, len(m))
	for _, k := range m {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b KindReport) int { return compareIn(order, a.Kind, b.Kind) })
	return out
}

// sortedClasses lists classes in simulate.BenignClasses order.
func sortedClasses(m map[string]*ClassReport) []ClassReport {
	order := simulate.BenignClasses()
	out := make([]ClassReport, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b ClassReport) int { return compareIn(order, a.Class, b.Class) })
	return out
}

func compareIn(order []string, a, b string) int {
	i, j := slices.Index(order, a), slices.Index(order, b)
	if i < 0 {
		i = len(order)
	}
	if j < 0 {
		j = len(order)
	}
	if i != j {
		return i - j
	}
	return strings.Compare(a, b)
}

// Aggregate sums up the reports of a family of profiles under name: every
// count added up, every rate and percentile computed over the union.
func Aggregate(name string, rs []Report) Report {
	agg := Report{Profile: name}
	kinds := map[string]*KindReport{}
	cls := map[string]*ClassReport{}
	rules := map[string]*RuleReport{}
	o := &agg.Overall
	for _, r := range rs {
		agg.Profiles = append(agg.Profiles, r.Profile)
		agg.Users += r.Users
		agg.Duration += r.Duration
		agg.Events += r.Events
		agg.SimTime += r.SimTime
		agg.Elapsed += r.Elapsed
		agg.engineEvents += r.engineEvents
		agg.engineBusy += r.engineBusy
		for _, k := range r.Kinds {
			a := kinds[k.Kind]
			if a == nil {
				a = &KindReport{Kind: k.Kind}
				kinds[k.Kind] = a
			}
			a.Attacks += k.Attacks
			a.Detected += k.Detected
			a.ttd = append(a.ttd, k.ttd...)
		}
		for _, c := range r.Classes {
			a := cls[c.Class]
			if a == nil {
				a = &ClassReport{Class: c.Class}
				cls[c.Class] = a
			}
			a.Users += c.Users
			a.Revoked += c.Revoked
			for _, e := range c.Examples {
				if len(a.Examples) < 5 {
					a.Examples = append(a.Examples, r.Profile+": "+e)
				}
			}
		}
		for _, l := range r.Rules {
			a := rules[l.Rule]
			if a == nil {
				a = &RuleReport{Rule: l.Rule}
				rules[l.Rule] = a
			}
			a.Commands += l.Commands
			a.TruePositives += l.TruePositives
			a.FalsePositives += l.FalsePositives
			a.BenignRevoked += l.BenignRevoked
			a.lat = append(a.lat, l.lat...)
		}
		ro := r.Overall
		o.AttackedUsers += ro.AttackedUsers
		o.DetectedUsers += ro.DetectedUsers
		o.BenignUsers += ro.BenignUsers
		o.BenignRevoked += ro.BenignRevoked
		o.Logouts += ro.Logouts
		o.LogoutsHonoured += ro.LogoutsHonoured
		o.Commands += ro.Commands
		o.FalsePositives += ro.FalsePositives
		o.LogoutCommands += ro.LogoutCommands
		o.ttd = append(o.ttd, ro.ttd...)
		o.lat = append(o.lat, ro.lat...)
		for _, u := range ro.BenignRevokedUsers {
			if len(o.BenignRevokedUsers) < 20 {
				o.BenignRevokedUsers = append(o.BenignRevokedUsers, r.Profile+": "+u)
			}
		}
	}
	for _, k := range kinds {
		k.Recall, k.TimeToDetect = ratio(k.Detected, k.Attacks), percentiles(k.ttd)
	}
	for _, c := range cls {
		c.Rate = rate(c.Revoked, c.Users)
	}
	for _, l := range rules {
		l.Latency = percentiles(l.lat)
		agg.Rules = append(agg.Rules, *l)
	}
	slices.SortFunc(agg.Rules, func(a, b RuleReport) int { return strings.Compare(a.Rule, b.Rule) })
	agg.Kinds, agg.Classes = sortedKinds(kinds), sortedClasses(cls)
	o.derive()
	if agg.engineBusy > 0 {
		agg.EngineEventsPerSec = float64(agg.engineEvents) / agg.engineBusy.Seconds()
	}
	return agg
}

// notifiedBy names the notifications a missed attack's user got within
// the attack's span, with their signals: what the detector saw but did
// not find enough to revoke.
func notifiedBy(dets []detection, g simulate.GroundTruth, slack time.Duration) string {
	var parts []string
	for k := range dets {
		c := &dets[k].cmd
		at := c.Reason.LastEventTime
		if dets[k].user != g.UserID || at.Before(g.Start.Add(-lead)) || at.After(g.End.Add(slack)) {
			continue
		}
		why := string(c.Action) + " " + c.Reason.RuleID
		for _, sg := range c.Reason.Signals {
			why += fmt.Sprintf(" %s %.2f", sg.RuleID, sg.Weight)
		}
		parts = append(parts, why)
		if len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		return "; nothing"
	}
	return "; " + strings.Join(parts, "; ")
}

// derive works out the rates and percentiles of o from its counts and
// samples.
func (o *Overall) derive() {
	o.Recall = ratio(o.DetectedUsers, o.AttackedUsers)
	o.BenignRevokedRate = rate(o.BenignRevoked, o.BenignUsers)
	o.LogoutRate = ratio(o.LogoutsHonoured, o.Logouts)
	o.PrecisionDetections = ratio(o.Commands-o.FalsePositives-o.LogoutCommands, o.Commands-o.LogoutCommands)
	o.TimeToDetect, o.Latency = percentiles(o.ttd), percentiles(o.lat)
}
