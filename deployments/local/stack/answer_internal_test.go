package stack

import (
	"slices"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// An attack is detected only by another rule than logout, within its
// window; its tokens must be dead from the first such revocation.
func TestAnswerOfCountsOnlyAnswersToTheAttack(t *testing.T) {
	start := time.Date(2026, 12, 7, 0, 44, 0, 0, time.UTC)
	g := simulate.GroundTruth{UserID: "u", Start: start, End: start.Add(2 * time.Minute)}
	at := func(d time.Duration) time.Time { return start.Add(d) }
	for _, c := range []struct {
		name     string
		as       []answer
		detected bool
		revoked  bool
		first    time.Time
	}{
		{name: "nothing", as: nil},
		{name: "the user's own logout", as: []answer{{at: at(30 * time.Second), rule: logoutRule, revoked: true}}},
		{name: "long before the attack", as: []answer{{at: at(-2 * time.Minute), rule: "risk", revoked: true}}},
		{name: "long after the attack", as: []answer{{at: at(13 * time.Hour), rule: "risk", revoked: true}}},
		{name: "a notification", as: []answer{{at: at(time.Minute), rule: "brute_force"}}, detected: true},
		{
			name: "the first revocation in the window, logouts aside",
			as: []answer{
				{at: at(10 * time.Second), rule: logoutRule, revoked: true},
				{at: at(90 * time.Second), rule: "risk", revoked: true},
				{at: at(-30 * time.Second), rule: "impossible_travel", revoked: true},
				{at: at(-5 * time.Minute), rule: "risk", revoked: true},
			},
			detected: true, revoked: true, first: at(-30 * time.Second),
		},
	} {
		detected, first, revoked := answerOf(c.as, g)
		if detected != c.detected || revoked != c.revoked || !first.Equal(c.first) {
			t.Errorf("%s: answerOf = %v, %s, %v; want %v, %s, %v", c.name, detected, first, revoked, c.detected, c.first, c.revoked)
		}
	}
}

// A logout stops an attack only when it revoked the attack's token or
// session, within the attack's window.
func TestLoggedOutNeedsTheAttacksTokenOrSession(t *testing.T) {
	start := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	g := simulate.GroundTruth{UserID: "u", TokenID: "tok-1", SessionID: "ses-1", Start: start, End: start.Add(time.Minute)}
	logout := func(d time.Duration, tok, ses string) answer {
		return answer{at: start.Add(d), rule: logoutRule, revoked: true, tokenID: tok, sessionID: ses}
	}
	for _, c := range []struct {
		name string
		as   []answer
		want bool
	}{
		{name: "the attack's session", as: []answer{logout(10*time.Second, "", "ses-1")}, want: true},
		{name: "the attack's token", as: []answer{logout(-30*time.Second, "tok-1", "")}, want: true},
		{name: "another session of the user", as: []answer{logout(10*time.Second, "", "ses-2")}},
		{name: "the attack's session, before its window", as: []answer{logout(-2*time.Minute, "", "ses-1")}},
		{name: "another rule on the attack's session", as: []answer{{at: start, rule: "risk", revoked: true, sessionID: "ses-1"}}},
	} {
		if got := loggedOut(c.as, g); got != c.want {
			t.Errorf("%s: loggedOut = %v, want %v", c.name, got, c.want)
		}
	}
}

// Users revoked that no attack explains are benign, but not for the
// logout rule when they logged out themselves; each is described by the
// revocations that named them, with the rule's summary.
func TestBenignRevokedDescribesEachUser(t *testing.T) {
	at := time.Date(2026, 12, 7, 6, 8, 41, 0, time.UTC)
	revokedBy := map[string]map[string]int{
		"risk":     {"benign": 1, "victim": 1},
		logoutRule: {"leaver": 1, "benign": 1},
	}
	answers := map[string][]answer{
		"benign": {
			{at: at, rule: "risk", action: schemas.ActionRevoke, revoked: true, kind: schemas.TargetUser, summary: "new_device_network 0.30, mass_download 0.50, impossible_travel 0.70"},
			{at: at.Add(time.Second), rule: "brute_force", summary: "notified only"},
			{at: at.Add(2 * time.Second), rule: logoutRule, action: schemas.ActionRevoke, revoked: true, kind: schemas.TargetSession, sessionID: "s-1", summary: "user logged out"},
		},
		"victim": {{at: at, rule: "risk", revoked: true}},
		"leaver": {{at: at, rule: logoutRule, revoked: true}},
	}
	explained := map[string]bool{"victim": true}
	userAction := map[string]bool{"leaver": true}
	users, byRule, details := benignRevoked(revokedBy, answers, explained, userAction)
	if !slices.Equal(users, []string{"benign"}) {
		t.Fatalf("benign users %v, want [benign]", users)
	}
	if byRule["risk"] != 1 || byRule[logoutRule] != 1 || len(byRule) != 2 {
		t.Errorf("by rule %v, want risk 1 and logout 1", byRule)
	}
	want := "benign: revoke user by risk at 06:08:41.000 (new_device_network 0.30, mass_download 0.50, impossible_travel 0.70); " +
		"revoke session s-1 by logout at 06:08:43.000 (user logged out)"
	if len(details) != 1 || details[0] != want {
		t.Errorf("details %q, want [%q]", details, want)
	}
}
