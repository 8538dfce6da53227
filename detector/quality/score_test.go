package quality

import (
	"strings"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

var t0 = time.Date(2026, 1, 8, 12, 0, 0, 0, time.UTC)

func det(rule, user string, at time.Time, action schemas.Action, target schemas.Target) detection {
	if target.Kind == "" {
		target = schemas.Target{Kind: schemas.TargetUser, UserID: user}
	}
	return detection{cmd: schemas.RevokeCommand{Action: action, Target: target,
		Reason: schemas.Reason{RuleID: rule, LastEventTime: at}}, user: user, latency: time.Microsecond}
}

func TestScorePerKind(t *testing.T) {
	u := simulate.UserID
	labels := []simulate.GroundTruth{
		// A brute force that gave up: a notification detects it.
		{UserID: u(0), Attack: simulate.AttackBruteForce, Label: simulate.LabelAttack, AttackID: "a0", Start: t0, End: t0.Add(3 * time.Minute)},
		// A distributed stuffing that let two users in and tried a third.
		{UserID: u(1), Attack: simulate.AttackDistributedStuffing, Label: simulate.LabelAttempt, AttackID: "a1", Start: t0, End: t0},
		{UserID: u(2), Attack: simulate.AttackDistributedStuffing, Label: simulate.LabelAttack, AttackID: "a1", Start: t0.Add(10 * time.Minute), End: t0.Add(12 * time.Minute)},
		{UserID: u(3), Attack: simulate.AttackDistributedStuffing, Label: simulate.LabelAttack, AttackID: "a1", Start: t0.Add(20 * time.Minute), End: t0.Add(22 * time.Minute)},
		// An MFA fatigue notified only: the attacker got in, so a
		// notification is no detection.
		{UserID: u(4), Attack: simulate.AttackMFAFatigue, Label: simulate.LabelAttack, AttackID: "a2", Start: t0, End: t0.Add(time.Hour)},
		// A hijacked session revoked through its token.
		{UserID: u(5), Attack: simulate.AttackSessionHijack, Label: simulate.LabelAttack, AttackID: "a3", TokenID: "tok5", Start: t0, End: t0.Add(time.Hour)},
		// A partial attack counts nowhere.
		{UserID: u(6), Attack: simulate.AttackLowAndSlow, Label: simulate.LabelAttack, AttackID: "a4", Start: t0, End: t0.Add(time.Hour), Partial: true},
		// An impossible travel during which the victim logged out: the
		// logout's revocation answers the user, it detects nothing.
		{UserID: u(7), Attack: simulate.AttackImpossibleTravel, Label: simulate.LabelAttack, AttackID: "a5", Start: t0, End: t0.Add(time.Hour)},
	}
	dets := []detection{
		det("brute_force", u(0), t0.Add(2*time.Minute), schemas.ActionNotify, schemas.Target{}),
		// The attempt is revoked: no false alarm, no detection either.
		det("risk", u(1), t0.Add(time.Minute), schemas.ActionRevoke, schemas.Target{}),
		det("risk", u(2), t0.Add(15*time.Minute), schemas.ActionRevokeAndReverify, schemas.Target{}),
		det("risk", u(4), t0.Add(30*time.Minute), schemas.ActionNotify, schemas.Target{}),
		det("token_replay", u(5), t0.Add(5*time.Minute), schemas.ActionRevoke, schemas.Target{Kind: schemas.TargetToken, TokenID: "tok5"}),
		// A revocation too late for the attack: unmatched, but the user
		// is no benign user either.
		det("risk", u(3), t0.Add(48*time.Hour), schemas.ActionRevoke, schemas.Target{}),
		det(simulate.RuleLogout, u(7), t0.Add(10*time.Minute), schemas.ActionRevoke, schemas.Target{Kind: schemas.TargetSession, SessionID: "s7", UserID: u(7)}),
	}
	cfg := Config{Name: "t", Users: 10, Slack: 12 * time.Hour}
	classes := map[string][]string{}
	r := score(cfg, []string{"brute_force", "risk", "token_replay"}, labels, classes, dets)
	kinds := map[string]KindReport{}
	for _, k := range r.Kinds {
		kinds[k.Kind] = k
	}
	for kind, want := range map[string][2]int{
		simulate.AttackBruteForce:          {1, 1},
		simulate.AttackDistributedStuffing: {2, 1},
		simulate.AttackMFAFatigue:          {1, 0},
		simulate.AttackSessionHijack:       {1, 1},
		simulate.AttackLowAndSlow:          {0, 0},
		simulate.AttackImpossibleTravel:    {1, 0},
	} {
		if k := kinds[kind]; k.Attacks != want[0] || k.Detected != want[1] {
			t.Errorf("%s: %d attacks, %d detected; want %v", kind, k.Attacks, k.Detected, want)
		}
	}
	// Time to detect runs from the attack's first event, of any line.
	if k := kinds[simulate.AttackDistributedStuffing]; k.TimeToDetect.P50 != 15*time.Minute || k.Recall != 0.5 {
		t.Errorf("stuffing: %+v", k)
	}
	for _, k := range simulate.Attacks() {
		if _, ok := kinds[k]; !ok {
			t.Errorf("kind %s missing from the report", k)
		}
	}
	o := r.Overall
	if o.AttackedUsers != 6 || o.DetectedUsers != 3 || o.FalsePositives != 1 || o.BenignUsers != 2 || o.BenignRevoked != 0 {
		t.Errorf("overall %+v", o)
	}
	f := strings.Join(r.Failures(), "\n")
	for _, want := range []string{"recall of attacked users", "recall of mfa_fatigue", "recall of distributed_credential_stuffing"} {
		if !strings.Contains(f, want) {
			t.Errorf("failures lack %q:\n%s", want, f)
		}
	}
	if strings.Contains(f, "low_and_slow") || strings.Contains(f, "brute_force") {
		t.Errorf("kinds without attacks or detected in full reported:\n%s", f)
	}
}

func TestScorePerClass(t *testing.T) {
	u := simulate.UserID
	labels := []simulate.GroundTruth{
		{UserID: u(0), Attack: simulate.AttackTokenReplay, Label: simulate.LabelAttack, AttackID: "a0", Start: t0, End: t0},
		{UserID: u(1), Attack: simulate.RuleLogout, Label: simulate.LabelUserAction, SessionID: "s1", TokenID: "t1", Start: t0, End: t0},
		{UserID: u(2), Attack: simulate.RuleLogout, Label: simulate.LabelUserAction, SessionID: "s2", TokenID: "t2", Start: t0, End: t0},
	}
	classes := map[string][]string{
		u(0): {simulate.ClassHandoff},
		u(1): {simulate.ClassHandoff, simulate.ClassTraveller},
		u(2): {simulate.ClassPlain},
		u(3): {simulate.ClassSharedNAT},
		u(4): {simulate.ClassSharedNAT, simulate.ClassIdPOutage},
		u(5): {simulate.ClassServiceAccount},
	}
	dets := []detection{
		// Logouts: one honoured through its session; the other's token
		// revoked only before the logout, which honours nothing (and
		// revokes a benign user).
		det(simulate.RuleLogout, u(1), t0, schemas.ActionRevoke, schemas.Target{Kind: schemas.TargetSession, SessionID: "s1", UserID: u(1)}),
		det("token_replay", u(2), t0.Add(-time.Minute), schemas.ActionRevoke, schemas.Target{Kind: schemas.TargetToken, TokenID: "t2", UserID: u(2)}),
		// A benign traveller revoked by a rule that also honoured a
		// logout, a NAT user notified only (not revoked), a NAT user in
		// an outage revoked twice (counted once).
		det("risk", u(1), t0.Add(time.Hour), schemas.ActionRevokeAndReverify, schemas.Target{}),
		det("risk", u(3), t0, schemas.ActionNotify, schemas.Target{}),
		det("risk", u(4), t0, schemas.ActionRevoke, schemas.Target{}),
		det("credential_stuffing", u(4), t0.Add(time.Minute), schemas.ActionRevoke, schemas.Target{}),
	}
	cfg := Config{Name: "t", Users: 6, Slack: time.Hour}
	r := score(cfg, []string{"risk", "logout"}, labels, classes, dets)
	got := map[string]ClassReport{}
	for _, c := range r.Classes {
		got[c.Class] = c
	}
	for class, want := range map[string][2]int{
		simulate.ClassHandoff:        {1, 1}, // u(0) was attacked, so not benign
		simulate.ClassTraveller:      {1, 1},
		simulate.ClassPlain:          {1, 1},
		simulate.ClassSharedNAT:      {2, 1},
		simulate.ClassIdPOutage:      {1, 1},
		simulate.ClassServiceAccount: {1, 0},
		simulate.ClassCorporateVPN:   {0, 0},
	} {
		if c := got[class]; c.Users != want[0] || c.Revoked != want[1] {
			t.Errorf("%s: %d users, %d revoked; want %v", class, c.Users, c.Revoked, want)
		}
	}
	for _, c := range simulate.BenignClasses() {
		if _, ok := got[c]; !ok {
			t.Errorf("class %s missing from the report", c)
		}
	}
	o := r.Overall
	if o.BenignUsers != 5 || o.BenignRevoked != 3 || o.Logouts != 2 || o.LogoutsHonoured != 1 || o.LogoutCommands != 1 {
		t.Errorf("overall %+v", o)
	}
	f := strings.Join(r.Failures(), "\n")
	for _, want := range []string{"class traveller", "class shared_nat", "class idp_outage", "logouts honoured 1 of 2", "benign users revoked 60.000%", "class plain"} {
		if !strings.Contains(f, want) {
			t.Errorf("failures lack %q:\n%s", want, f)
		}
	}
	if strings.Contains(f, "class weekend_worker") || strings.Contains(f, "class corporate_vpn") {
		t.Errorf("classes without revocations reported:\n%s", f)
	}
	byRule := map[string]RuleReport{}
	for _, l := range r.Rules {
		byRule[l.Rule] = l
	}
	if l := byRule["risk"]; l.Commands != 3 || l.BenignRevoked != 2 || l.FalsePositives != 3 {
		t.Errorf("risk: %+v", l)
	}
}

func TestAggregate(t *testing.T) {
	a := Report{Profile: "a", Users: 10, Events: 100,
		Kinds:   []KindReport{{Kind: simulate.AttackMFAFatigue, Attacks: 4, Detected: 4, ttd: []time.Duration{time.Minute}}},
		Classes: []ClassReport{{Class: simulate.ClassSharedNAT, Users: 100, Revoked: 1}},
		Overall: Overall{AttackedUsers: 4, DetectedUsers: 4, BenignUsers: 100, BenignRevoked: 1, Logouts: 10, LogoutsHonoured: 10}}
	b := Report{Profile: "b", Users: 20, Events: 200,
		Kinds:   []KindReport{{Kind: simulate.AttackMFAFatigue, Attacks: 16, Detected: 15, ttd: []time.Duration{3 * time.Minute}}},
		Classes: []ClassReport{{Class: simulate.ClassSharedNAT, Users: 300, Revoked: 0}},
		Overall: Overall{AttackedUsers: 16, DetectedUsers: 15, BenignUsers: 300, BenignRevoked: 0, Logouts: 5, LogoutsHonoured: 5}}
	agg := Aggregate("family", []Report{a, b})
	if agg.Users != 30 || agg.Events != 300 || len(agg.Profiles) != 2 {
		t.Errorf("aggregate %+v", agg)
	}
	if k := agg.Kinds[0]; k.Attacks != 20 || k.Detected != 19 || k.Recall != 0.95 || k.TimeToDetect.N != 2 {
		t.Errorf("kind %+v", k)
	}
	if c := agg.Classes[0]; c.Users != 400 || c.Revoked != 1 || c.Rate != 0.0025 {
		t.Errorf("class %+v", c)
	}
	if o := agg.Overall; o.Recall != 0.95 || o.BenignRevokedRate != 0.0025 || o.LogoutRate != 1 {
		t.Errorf("overall %+v", o)
	}
}
