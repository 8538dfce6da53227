package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/schemas"
)

func newDefaultEngine(t testing.TB, mutate func(*engine.Config)) *engine.Engine {
	t.Helper()
	rules, err := engine.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	eng, err := engine.New(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func ruleStats(t *testing.T, eng *engine.Engine, id string) engine.RuleStats {
	t.Helper()
	for _, rs := range eng.Stats().Rules {
		if rs.RuleID == id {
			return rs
		}
	}
	t.Fatalf("no stats for %s", id)
	return engine.RuleStats{}
}

// Idle groups and cooldowns are evicted once the watermark has moved a
// window plus the allowance (a cooldown plus the allowance) past them.
func TestStateIsEvictedOnEventTime(t *testing.T) {
	eng := newDefaultEngine(t, nil)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range 1000 {
		u := fmt.Sprintf("u%d", i)
		eng.Process(&schemas.AuditEvent{ID: u + "-f", Time: t0, Type: schemas.EventLoginFailure, UserID: u})
		eng.Process(&schemas.AuditEvent{ID: u + "-t", Time: t0, Type: schemas.EventTokenUsed, UserID: u,
			TokenID: "tok-" + u, Geo: &schemas.Geo{Country: "US"}})
	}
	if g := ruleStats(t, eng, "brute_force_success").Groups; g != 1000 {
		t.Fatalf("brute_force_success holds %d groups, want 1000", g)
	}
	// One user, later: everything else is idle, past the longest window.
	for m := 1; m <= 14*60; m += 10 {
		eng.Process(&schemas.AuditEvent{ID: fmt.Sprintf("late-%d", m), Time: t0.Add(time.Duration(m) * time.Minute),
			Type: schemas.EventLoginFailure, UserID: "other"})
	}
	for _, rs := range eng.Stats().Rules {
		if rs.Groups > 1 {
			t.Errorf("%s still holds %d groups after its window", rs.RuleID, rs.Groups)
		}
	}
}

func TestGroupRecordsAreBounded(t *testing.T) {
	eng := newDefaultEngine(t, func(c *engine.Config) { c.MaxEventsPerGroup = 64 })
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range 5000 {
		eng.Process(&schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i) * 10 * time.Millisecond),
			Type: schemas.EventFileDownload, UserID: "u1", TokenID: "tok", Bytes: 1})
	}
	rs := ruleStats(t, eng, "mass_download")
	if rs.Records > 64 || rs.Truncated != 5000-64 {
		t.Errorf("records %d truncated %d", rs.Records, rs.Truncated)
	}
	// The bound does not hide a guessing spree: the newest records are
	// kept, and six address blocks among them make the signal.
	var cmds []schemas.RevokeCommand
	for i := range 6 {
		cmds = append(cmds, eng.Process(&schemas.AuditEvent{ID: fmt.Sprintf("g%d", i), Time: t0.Add(time.Minute + time.Duration(i)*time.Second),
			Type: schemas.EventLoginFailure, UserID: "u1", IP: fmt.Sprintf("198.51.%d.7", 100+i)})...)
	}
	if len(cmds) != 1 || cmds[0].Reason.Signals[0].RuleID != "slow_guessing" {
		t.Fatalf("got %+v, want one slow_guessing notification", cmds)
	}
}

func TestLateAndDuplicateEventsAreCounted(t *testing.T) {
	eng := newDefaultEngine(t, nil)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	ev := schemas.AuditEvent{ID: "a", Time: t0, Type: schemas.EventLoginFailure, UserID: "u1"}
	eng.Process(&ev)
	eng.Process(&ev)
	eng.Process(&schemas.AuditEvent{ID: "b", Time: t0.Add(10 * time.Minute), Type: schemas.EventLoginFailure, UserID: "u1"})
	eng.Process(&schemas.AuditEvent{ID: "c", Time: t0.Add(7 * time.Minute), Type: schemas.EventLoginFailure, UserID: "u1"})
	rs := ruleStats(t, eng, "brute_force_success")
	if rs.Duplicates != 1 || rs.Late != 1 || rs.Matched != 4 || rs.Records != 2 {
		t.Errorf("stats %+v", rs)
	}
	// The risk model: signals count for a day, and a 6h cooldown.
	if h := eng.Horizon(); h != 30*time.Hour {
		t.Errorf("horizon %s, want 30h", h)
	}
}
