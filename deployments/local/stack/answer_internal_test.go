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
