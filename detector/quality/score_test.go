package quality

import (
	"testing"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

func TestScoreCountsLabelsAsDesigned(t *testing.T) {
	t0 := time.Date(2026, 1, 8, 12, 0, 0, 0, time.UTC)
	u := simulate.UserID
	labels := []simulate.GroundTruth{
		{UserID: u(0), Attack: "brute_force_success", Label: simulate.LabelAttack, AttackID: "a1", Start: t0, End: t0.Add(3 * time.Minute)},
		{UserID: u(1), Attack: "password_spraying", Label: simulate.LabelAttack, AttackID: "a2", Start: t0.Add(10 * time.Minute), End: t0.Add(11 * time.Minute)},
		{UserID: u(2), Attack: "password_spraying", Label: simulate.LabelAttempt, AttackID: "a2", Start: t0, End: t0},
		{UserID: u(3), Attack: simulate.RuleLogout, Label: simulate.LabelUserAction, SessionID: "s3", Start: t0, End: t0},
		{UserID: u(4), Attack: "token_replay", Label: simulate.LabelAttack, AttackID: "a3", Start: t0, End: t0.Add(time.Minute)},
	}
	cmd := func(rule string, user string, at time.Time, action schemas.Action, session string) detection {
		return detection{cmd: schemas.RevokeCommand{Action: action,
			Target: schemas.Target{Kind: schemas.TargetUser, UserID: user, SessionID: session},
			Reason: schemas.Reason{RuleID: rule, LastEventTime: at}}, latency: time.Microsecond}
	}
	dets := []detection{
		cmd("brute_force_success", u(0), t0.Add(2*time.Minute), schemas.ActionRevokeAndReverify, ""),
		// The spraying rule notifies about a user it tried; the victim is
		// revoked by another rule.
		cmd("password_spraying", u(2), t0.Add(5*time.Minute), schemas.ActionNotify, ""),
		cmd("credential_stuffing", u(1), t0.Add(10*time.Minute), schemas.ActionRevokeAndReverify, ""),
		// A logout answered: intended, not a false positive.
		cmd(simulate.RuleLogout, u(3), t0, schemas.ActionRevoke, "s3"),
		// A benign user notified, and one revoked.
		cmd("brute_force", u(5), t0, schemas.ActionNotify, ""),
		cmd("impossible_travel", u(6), t0, schemas.ActionRevokeAndReverify, ""),
		// An attacked user revoked long after the attack: a false
		// positive, but not a benign user.
		cmd("impossible_travel", u(4), t0.Add(48*time.Hour), schemas.ActionRevoke, ""),
	}
	cfg := Config{Users: 10, Slack: 12 * time.Hour}
	r := score(cfg, []string{"brute_force", "brute_force_success", "credential_stuffing", "impossible_travel", "logout", "password_spraying", "token_replay"}, labels, dets)
	o := r.Overall
	// The spraying victim counts as found by its rule: the rule named a
	// user the same attack tried.
	if o.AttackedUsers != 3 || o.DetectedUsers != 2 || o.DetectedUsersRule != 2 {
		t.Errorf("attacked %d, detected %d, by rule %d; want 3, 2, 2", o.AttackedUsers, o.DetectedUsers, o.DetectedUsersRule)
	}
	if o.BenignUsers != 6 || o.BenignRevoked != 1 || o.BenignRevokedUsers[0] != u(6)+" (impossible_travel)" {
		t.Errorf("benign %d, revoked %d %v; want 6, 1 (%s)", o.BenignUsers, o.BenignRevoked, o.BenignRevokedUsers, u(6))
	}
	if o.Commands != 7 || o.FalsePositives != 3 {
		t.Errorf("commands %d, false positives %d; want 7, 3", o.Commands, o.FalsePositives)
	}
	byRule := map[string]RuleReport{}
	for _, l := range r.Rules {
		byRule[l.Rule] = l
	}
	if l := byRule["password_spraying"]; l.Attacks != 1 || l.DetectedByRule != 1 || l.DetectedByAny != 1 || l.TimeToDetect.P50 != 5*time.Minute {
		t.Errorf("spraying: %+v", l)
	}
	if l := byRule[simulate.RuleLogout]; l.Attacks != 1 || l.DetectedByRule != 1 || l.FalsePositives != 0 {
		t.Errorf("logout: %+v", l)
	}
	if l := byRule["token_replay"]; l.Attacks != 1 || l.DetectedByAny != 0 {
		t.Errorf("replay: %+v", l)
	}
	if err := r.Err(); err == nil {
		t.Error("missed targets not reported")
	}
}
