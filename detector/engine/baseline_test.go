package engine_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/schemas"
)

var day0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func located(id string, at time.Time, typ schemas.EventType, user, country string, asn uint32) *schemas.AuditEvent {
	return &schemas.AuditEvent{ID: id, Time: at, Type: typ, UserID: user, DeviceID: "d-" + user, Geo: &schemas.Geo{Country: country, ASN: asn}}
}

func entriesOf(es []engine.BaselineEntry, rule string) []string {
	var out []string
	for _, e := range es {
		if e.Rule == rule {
			v := e.Value
			if e.Field == "device" {
				v = "#" // a hash of the device id and user agent
			}
			out = append(out, fmt.Sprintf("%s %s=%s %s..%s", e.Key, e.Field, v,
				e.FirstSeen.Format(time.DateOnly), e.LastSeen.Format(time.DateOnly)))
		}
	}
	return out
}

// What one engine learns, drained, stored as JSON and restored into
// another, makes the second judge new places as the first would.
func TestBaselineDrainAndRestore(t *testing.T) {
	// The user baselines of the default pack are the context's (a user's
	// devices, networks and countries: new_location_sensitive_action and
	// the other rules read them as ctx.new_device and so on).
	const rule = "_context"
	us := fmt.Sprint('U'<<8 | 'S')
	a := newDefaultEngine(t, nil)
	a.Process(located("h0", day0, schemas.EventLoginSuccess, "u1", "US", 7922))
	a.Process(located("h1", day0.Add(time.Hour), schemas.EventLoginSuccess, "u1", "US", 7922))
	first := a.BaselineChanges()
	got := entriesOf(first, rule)
	want := []string{"u1 = 2025-03-01..2025-03-01", "u1 device=# 2025-03-01..2025-03-01", "u1 asn=7922 2025-03-01..2025-03-01",
		"u1 country=" + us + " 2025-03-01..2025-03-01"}
	if !slices.Equal(got, want) {
		t.Fatalf("first drain\n got %q\nwant %q", got, want)
	}
	if again := a.BaselineChanges(); len(again) != 0 {
		t.Errorf("a second drain returned %v", again)
	}
	// A day later the values are reported as seen again; within the day
	// they are not.
	a.Process(located("h2", day0.Add(3*time.Hour), schemas.EventLoginSuccess, "u1", "US", 7922))
	if c := a.BaselineChanges(); len(c) != 0 {
		t.Errorf("changes within the day: %v", c)
	}
	a.Process(located("h3", day0.Add(8*24*time.Hour), schemas.EventLoginSuccess, "u1", "US", 7922))
	stored := a.BaselineChanges()
	if got := entriesOf(stored, rule); !slices.Equal(got, []string{"u1 device=# 2025-03-01..2025-03-09", "u1 asn=7922 2025-03-01..2025-03-09",
		"u1 country=" + us + " 2025-03-01..2025-03-09"}) {
		t.Errorf("second drain %q", got)
	}

	// Stored as JSON, in drain order, and read back: a store upserting
	// by rule, key, field and value ends with the latest of each.
	data, err := json.Marshal(append(first, stored...))
	if err != nil {
		t.Fatal(err)
	}
	var restore []engine.BaselineEntry
	if err := json.Unmarshal(data, &restore); err != nil {
		t.Fatal(err)
	}

	attack := func(eng *engine.Engine) []schemas.RevokeCommand {
		at := day0.Add(9 * 24 * time.Hour)
		var cmds []schemas.RevokeCommand
		// From the user's country: a new country too would make the login
		// itself suspicious (new_country_login), and nothing of it learned.
		intruder := located("n1", at, schemas.EventLoginSuccess, "u1", "US", 12389)
		intruder.DeviceID = "d-intruder"
		cmds = append(cmds, eng.Process(intruder)...)
		cmds = append(cmds, eng.Process(&schemas.AuditEvent{ID: "s1", Time: at.Add(10 * time.Minute), Type: schemas.EventShareCreated,
			UserID: "u1", Resource: &schemas.Resource{Type: "file", ID: "f1"}})...)
		return cmds
	}
	restored := newDefaultEngine(t, nil)
	restored.RestoreBaselines(restore)
	if c := restored.BaselineChanges(); len(c) != 0 {
		t.Errorf("restored entries reported as changes: %v", c)
	}
	cmds := attack(restored)
	if len(cmds) != 1 || cmds[0].Reason.RuleID != "risk" || !slices.ContainsFunc(cmds[0].Reason.Signals, func(s schemas.Signal) bool { return s.RuleID == "new_location_sensitive_action" }) ||
		!slices.Equal(cmds[0].Reason.Evidence, []string{"n1", "s1"}) {
		t.Fatalf("restored engine: %+v", cmds)
	}
	// The intruder's device and network were learned when he logged in
	// (the country is the user's own, seen again), and forgotten when the
	// revocation answered him.
	if got := entriesOf(restored.BaselineChanges(), rule); !slices.Equal(got, []string{
		"u1 device=# 2025-03-10..2025-03-10", "u1 asn=12389 2025-03-10..2025-03-10", "u1 country=" + us + " 2025-03-01..2025-03-10",
		"u1 device=# 2025-03-10..0001-01-01", "u1 asn=12389 2025-03-10..0001-01-01",
	}) {
		t.Errorf("restored engine learned %q", got)
	}
	// Without the baseline the user has no history: nothing is new.
	if cmds := attack(newDefaultEngine(t, nil)); len(cmds) != 0 {
		t.Errorf("engine without baseline: %+v", cmds)
	}
	// The original engine agrees with the restored one.
	if cmds := attack(a); len(cmds) != 1 {
		t.Errorf("original engine: %+v", cmds)
	}
}

// A baseline keeps the most recently seen values per field; a value it
// forgets after reporting it is reported again with a zero LastSeen.
func TestBaselineIsBounded(t *testing.T) {
	rules, err := engine.ParseRules("devices.yaml", []byte(`id: new_device
version: 1
kind: first_seen
group_by: [user_id]
window: 1h
severity: low
action: notify
target: {kind: user}
first_seen:
  fields: [device_id]
  learning: 24h
  max_values: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.DefaultConfig(), rules)
	if err != nil {
		t.Fatal(err)
	}
	var fired []string
	for i := range 6 {
		cmds := eng.Process(&schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: day0.Add(time.Duration(i) * 24 * time.Hour),
			Type: schemas.EventLoginSuccess, UserID: "u1", DeviceID: fmt.Sprintf("d%d", i)})
		for _, c := range cmds {
			fired = append(fired, c.Reason.Evidence...)
		}
		if i < 5 {
			eng.BaselineChanges()
		}
	}
	// d0 on day 0 is the first value; d1 on day 1 is new after a day of
	// history, and so is every later one.
	if !slices.Equal(fired, []string{"e1", "e2", "e3", "e4", "e5"}) {
		t.Errorf("fired for %v", fired)
	}
	var forgotten []string
	for _, e := range eng.BaselineChanges() {
		if e.LastSeen.IsZero() {
			forgotten = append(forgotten, e.Value)
		}
	}
	if !slices.Equal(forgotten, []string{"d2"}) {
		t.Errorf("forgotten in the last drain: %v, want d2", forgotten)
	}
	if st := ruleStats(t, eng, "new_device"); st.Baselines != 1 {
		t.Errorf("baselines %d", st.Baselines)
	}
}

// A detector that rebuilds its state by replaying its input silently, then
// goes on live, emits each detection once.
func TestReplaySilentlyThenLive(t *testing.T) {
	var evs []schemas.AuditEvent
	for i := range 5 {
		evs = append(evs, schemas.AuditEvent{ID: fmt.Sprintf("f%d", i), Time: day0.Add(time.Duration(i) * time.Minute),
			Type: schemas.EventLoginFailure, UserID: "u1", IP: "203.0.113.9"})
	}
	evs = append(evs,
		schemas.AuditEvent{ID: "ok", Time: day0.Add(5 * time.Minute), Type: schemas.EventLoginSuccess, UserID: "u1", IP: "203.0.113.9"},
		schemas.AuditEvent{ID: "f5", Time: day0.Add(6 * time.Minute), Type: schemas.EventLoginFailure, UserID: "u1", IP: "203.0.113.9"},
		schemas.AuditEvent{ID: "ok2", Time: day0.Add(7 * time.Minute), Type: schemas.EventLoginSuccess, UserID: "u1", IP: "203.0.113.9"},
	)
	live := newDefaultEngine(t, nil)
	want := processAll(live, evs)
	if len(want) != 1 {
		t.Fatalf("a live engine made %d commands, want 1", len(want))
	}
	for silent := 0; silent <= len(evs); silent++ {
		// Live processing resumes a few events before the end of the
		// replay, as after a restart that lost uncommitted offsets.
		for _, overlap := range []int{0, 3} {
			eng := newDefaultEngine(t, nil)
			for i := range evs[:silent] {
				eng.ProcessSilently(&evs[i])
			}
			from := max(0, silent-overlap)
			got := processAll(eng, evs[from:])
			detectedLive := silent <= 5 // the success "ok" is evs[5]
			switch {
			case detectedLive && (len(got) != 1 || got[0].CommandID != want[0].CommandID):
				t.Errorf("silent %d overlap %d: got %d commands, want the live engine's one", silent, overlap, len(got))
			case !detectedLive && len(got) != 0:
				t.Errorf("silent %d overlap %d: the replayed detection was emitted again: %+v", silent, overlap, got)
			}
			if st := ruleStats(t, eng, "brute_force_success"); !detectedLive && st.Silenced != 1 {
				t.Errorf("silent %d: silenced %d", silent, st.Silenced)
			}
		}
	}
}

// An engine rebuilt by replaying Horizon() of traffic silently emits, from
// then on, only commands an engine that ran all along emits too, and none
// that engine emitted before the rebuild.
func TestRebuildFromHorizonEmitsNoRepeat(t *testing.T) {
	events := benchTraffic(200, 20000, 10*time.Second) // about 55 hours
	all := newDefaultEngine(t, nil)
	before := map[string]bool{}
	after := map[string]bool{}
	cut := events[0].Time.Add(36 * time.Hour)
	for i := range events {
		for _, c := range all.Process(&events[i]) {
			if events[i].Time.Before(cut) {
				before[c.CommandID] = true
			} else {
				after[c.CommandID] = true
			}
		}
	}
	if len(before) == 0 || len(after) == 0 {
		t.Fatalf("traffic made %d commands before the cut, %d after", len(before), len(after))
	}
	rebuilt := newDefaultEngine(t, nil)
	from := cut.Add(-rebuilt.Horizon())
	live := 0
	for i := range events {
		switch {
		case events[i].Time.Before(from):
		case events[i].Time.Before(cut):
			rebuilt.ProcessSilently(&events[i])
		default:
			for _, c := range rebuilt.Process(&events[i]) {
				live++
				if before[c.CommandID] || !after[c.CommandID] {
					t.Errorf("the rebuilt engine emitted %s (%s for %s), which the engine running all along did not emit then",
						c.CommandID, c.Reason.RuleID, c.Target.ID())
				}
			}
		}
	}
	if live == 0 {
		t.Error("the rebuilt engine emitted nothing")
	}
	t.Logf("%d commands before the cut, %d after; the rebuilt engine emitted %d", len(before), len(after), live)
}

// Restored baselines count as watching: an engine started now on a store
// a week old judges a user it has never seen as new from its first event,
// where an engine with nothing restored waits out its warm-up.
func TestRestoredBaselinesCountAsWatched(t *testing.T) {
	a := newDefaultEngine(t, nil)
	a.Process(located("old", day0, schemas.EventLoginSuccess, "u1", "US", 7922))
	a.Process(located("recent", day0.Add(7*24*time.Hour), schemas.EventLoginSuccess, "u1", "US", 7922))
	stored := a.BaselineChanges()

	// A user never seen fails five times and gets in from a cloud.
	guess := func(eng *engine.Engine, at time.Time) []schemas.RevokeCommand {
		var cmds []schemas.RevokeCommand
		for i := range 5 {
			ev := located(fmt.Sprintf("f%d", i), at.Add(time.Duration(i)*time.Second), schemas.EventLoginFailure, "dormant", "NL", 16509)
			cmds = append(cmds, eng.Process(ev)...)
		}
		return append(cmds, eng.Process(located("ok", at.Add(time.Minute), schemas.EventLoginSuccess, "dormant", "NL", 16509))...)
	}
	at := day0.Add(8 * 24 * time.Hour)
	restored := newDefaultEngine(t, nil)
	restored.RestoreBaselines(stored)
	if cmds := guess(restored, at); !slices.ContainsFunc(cmds, func(c schemas.RevokeCommand) bool {
		return c.Action == schemas.ActionRevokeAndReverify && slices.ContainsFunc(c.Reason.Signals, func(s schemas.Signal) bool { return s.RuleID == "brute_force_success" })
	}) {
		t.Errorf("restored engine: %+v", cmds)
	}
	if cmds := guess(newDefaultEngine(t, nil), at); len(cmds) != 0 {
		t.Errorf("engine with nothing restored, in its first minute: %+v", cmds)
	}
}
