package stack

import (
	"testing"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
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
