package quality

import (
	"fmt"
	"slices"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// lead is how long before an attack's first event a revocation still
// counts as its detection: events of one instant may be processed in
// either order.
const lead = time.Minute

type ruleTally struct {
	commands, tp, fp int
	ttd, lat         []time.Duration
}

// score matches the detections against the labels.
func score(cfg Config, rules []string, labels []simulate.GroundTruth, dets []detection) Report {
	byUser := map[string][]int{}
	for i, g := range labels {
		byUser[g.UserID] = append(byUser[g.UserID], i)
	}
	// first[i][rule] is the earliest detection of label i by rule.
	first := make([]map[string]detection, len(labels))
	tallies := map[string]*ruleTally{}
	tally := func(rule string) *ruleTally {
		if tallies[rule] == nil {
			tallies[rule] = &ruleTally{}
		}
		return tallies[rule]
	}
	benignHit := map[string]string{}
	var commands, fps, logoutTP int
	for _, d := range dets {
		c := d.cmd
		revokes := c.Action != schemas.ActionNotify
		rule, user, at := c.Reason.RuleID, c.Target.UserID, c.Reason.LastEventTime
		t := tally(rule)
		t.commands++
		commands++
		matched := false
		touched := false
		for _, i := range byUser[user] {
			g := labels[i]
			if g.Label == simulate.LabelUserAction {
				if rule == g.Attack && (g.SessionID != "" && g.SessionID == c.Target.SessionID ||
					g.TokenID != "" && g.TokenID == c.Target.TokenID || at.Equal(g.End)) {
					matched = true
					logoutTP++
					record(first, i, rule, d)
				}
				continue
			}
			touched = true
			if at.Before(g.Start.Add(-lead)) || at.After(g.End.Add(cfg.Slack)) {
				continue
			}
			matched = true
			record(first, i, rule, d)
		}
		if matched {
			t.tp++
			continue
		}
		t.fp++
		fps++
		if !touched && user != "" && revokes {
			if _, ok := benignHit[user]; !ok {
				benignHit[user] = rule
			}
		}
	}

	r := Report{Users: cfg.Users, Duration: cfg.Duration, Seed: cfg.Seed}
	attacked := map[string]bool{}
	touchedUsers := map[string]bool{}
	detUser, detUserRule := map[string]bool{}, map[string]bool{}
	perRule := map[string]*RuleReport{}
	line := func(rule string) *RuleReport {
		if perRule[rule] == nil {
			perRule[rule] = &RuleReport{Rule: rule}
		}
		return perRule[rule]
	}
	// byAttack[id][rule] is the earliest detection of any line of an
	// attack by rule: a many-user attack's rule may name a user it tried
	// rather than the victim.
	byAttack := map[string]map[string]detection{}
	attackStart := map[string]time.Time{}
	for i, g := range labels {
		if g.AttackID == "" {
			continue
		}
		if at, ok := attackStart[g.AttackID]; !ok || g.Start.Before(at) {
			attackStart[g.AttackID] = g.Start
		}
		for rule, d := range first[i] {
			if byAttack[g.AttackID] == nil {
				byAttack[g.AttackID] = map[string]detection{}
			}
			if prev, ok := byAttack[g.AttackID][rule]; !ok || d.cmd.Reason.LastEventTime.Before(prev.cmd.Reason.LastEventTime) {
				byAttack[g.AttackID][rule] = d
			}
		}
	}
	real := make(map[string]bool, cfg.Users)
	for i := range cfg.Users {
		real[simulate.UserID(i)] = true
	}
	var allTTD []time.Duration
	for i, g := range labels {
		if g.Label != simulate.LabelUserAction && real[g.UserID] {
			touchedUsers[g.UserID] = true
		}
		if g.Partial || g.Label == simulate.LabelAttempt {
			continue
		}
		rr := line(g.Attack)
		rr.Attacks++
		if g.Label == simulate.LabelAttack {
			attacked[g.UserID] = true
			if _, ok := detUserRule[g.UserID]; !ok {
				detUserRule[g.UserID] = true
			}
		}
		if len(first[i]) > 0 {
			rr.DetectedByAny++
			if g.Label == simulate.LabelAttack {
				detUser[g.UserID] = true
			}
		}
		d, ok := first[i][g.Attack]
		if !ok && g.AttackID != "" {
			d, ok = byAttack[g.AttackID][g.Attack]
		}
		if ok {
			rr.DetectedByRule++
			start := g.Start
			if at, ok := attackStart[g.AttackID]; ok {
				start = at
			}
			ttd := max(0, d.cmd.Reason.LastEventTime.Sub(start))
			tally(g.Attack).ttd = append(tally(g.Attack).ttd, ttd)
			tally(g.Attack).lat = append(tally(g.Attack).lat, d.latency)
			if g.Label == simulate.LabelAttack {
				allTTD = append(allTTD, ttd)
			}
		} else if g.Label == simulate.LabelAttack {
			detUserRule[g.UserID] = false
		}
	}
	var allLat []time.Duration
	for _, id := range rules {
		rr := line(id)
		t := tally(id)
		rr.Commands, rr.TruePositives, rr.FalsePositives = t.commands, t.tp, t.fp
		rr.Precision = ratio(t.tp, t.commands)
		rr.Recall, rr.RecallAny = ratio(rr.DetectedByRule, rr.Attacks), ratio(rr.DetectedByAny, rr.Attacks)
		rr.TimeToDetect, rr.Latency = percentiles(t.ttd), percentiles(t.lat)
		allLat = append(allLat, t.lat...)
	}
	for id := range perRule {
		if !slices.Contains(rules, id) {
			rules = append(rules, id)
			rr := perRule[id]
			rr.Recall, rr.RecallAny = ratio(rr.DetectedByRule, rr.Attacks), ratio(rr.DetectedByAny, rr.Attacks)
			rr.Precision = 1
		}
	}
	slices.Sort(rules)
	for _, id := range rules {
		r.Rules = append(r.Rules, *perRule[id])
	}

	o := &r.Overall
	o.AttackedUsers = len(attacked)
	o.DetectedUsers = len(detUser)
	for u := range attacked {
		if detUserRule[u] {
			o.DetectedUsersRule++
		}
	}
	o.Recall, o.RecallRule = ratio(o.DetectedUsers, o.AttackedUsers), ratio(o.DetectedUsersRule, o.AttackedUsers)
	o.BenignUsers = cfg.Users - len(touchedUsers)
	o.BenignRevoked = len(benignHit)
	if o.BenignUsers > 0 {
		o.BenignRevokedRate = float64(o.BenignRevoked) / float64(o.BenignUsers)
	}
	o.Commands, o.FalsePositives = commands, fps
	o.Precision = ratio(commands-fps, commands)
	o.PrecisionDetections = ratio(commands-fps-logoutTP, commands-logoutTP)
	o.TimeToDetect, o.Latency = percentiles(allTTD), percentiles(allLat)
	users := make([]string, 0, len(benignHit))
	for u := range benignHit {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users[:min(20, len(users))] {
		o.BenignRevokedUsers = append(o.BenignRevokedUsers, fmt.Sprintf("%s (%s)", u, benignHit[u]))
	}
	return r
}

func record(first []map[string]detection, i int, rule string, d detection) {
	if first[i] == nil {
		first[i] = map[string]detection{}
	}
	if _, ok := first[i][rule]; !ok {
		first[i][rule] = d
	}
}
