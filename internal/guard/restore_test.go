package guard

import (
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Restored commands weigh on the guard as the decisions that let them
// pass did: the cooldown of their targets and the budget's minute, in
// whatever order they are restored; dry runs and old commands weigh
// nothing.
func TestRestore(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Budget = 3
	g, err := New(cfg, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	restore := func(c *schemas.RevokeCommand, ago time.Duration) { g.Restore(c, now.Add(-ago)) }
	restore(cmdFor("r1", "u1", schemas.ActionRevoke), 10*time.Second)
	restore(cmdFor("r2", "u2", schemas.ActionRevoke), 50*time.Second)
	restore(cmdFor("r1", "u3", schemas.ActionRevoke), 5*time.Minute)  // cooldown, not budget
	restore(cmdFor("r1", "u4", schemas.ActionRevoke), 20*time.Minute) // beyond the cooldown
	dry := cmdFor("r1", "u5", schemas.ActionRevoke)
	dry.Mode = schemas.ModeDryRun
	restore(dry, time.Second)

	if u := g.Usage(); u.Global != 2 || u.Rules["r1"] != 1 || u.Rules["r2"] != 1 {
		t.Errorf("usage %+v, want 2 global, 1 each for r1 and r2", u)
	}
	for _, user := range []string{"u1", "u2", "u3"} {
		if d := g.Check(cmdFor("other", user, schemas.ActionRevoke), nil); d.Verdict != Suppress {
			t.Errorf("%s: %v, want suppressed by the restored cooldown", user, d)
		}
	}
	if d := g.Check(cmdFor("other", "u4", schemas.ActionRevoke), nil); d.Verdict != Allow {
		t.Errorf("u4 (revoked 20m ago): %v, want published", d)
	}
	// The budget of three is spent by the two restored and u4's.
	if d := g.Check(cmdFor("other", "u5", schemas.ActionRevoke), nil); d.Verdict != Hold {
		t.Errorf("u5: %v, want held: the restored revocations took from the budget", d)
	}
}
