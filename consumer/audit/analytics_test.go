package audit_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

func TestPercentilesOf(t *testing.T) {
	seq := func(n int) []int64 {
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(i + 1)
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { v[i], v[j] = v[j], v[i] })
		return v
	}
	for name, tc := range map[string]struct {
		in   []int64
		want audit.Percentiles
	}{
		"none":  {nil, audit.Percentiles{}},
		"empty": {[]int64{}, audit.Percentiles{}},
		"one":   {[]int64{42}, audit.Percentiles{Count: 1, P50: 42, P90: 42, P99: 42, Max: 42}},
		// Index floor(level*n) of the sorted values: 1 for p50 of two.
		"two":      {[]int64{9, 3}, audit.Percentiles{Count: 2, P50: 9, P90: 9, P99: 9, Max: 9}},
		"1..10":    {seq(10), audit.Percentiles{Count: 10, P50: 6, P90: 10, P99: 10, Max: 10}},
		"1..100":   {seq(100), audit.Percentiles{Count: 100, P50: 51, P90: 91, P99: 100, Max: 100}},
		"1..1000":  {seq(1000), audit.Percentiles{Count: 1000, P50: 501, P90: 901, P99: 991, Max: 1000}},
		"ties":     {[]int64{5, 5, 5, 1, 9}, audit.Percentiles{Count: 5, P50: 5, P90: 9, P99: 9, Max: 9}},
		"negative": {[]int64{-3, -1, -2}, audit.Percentiles{Count: 3, P50: -2, P90: -1, P99: -1, Max: -1}},
	} {
		if got := audit.PercentilesOf(tc.in); got != tc.want {
			t.Errorf("%s: PercentilesOf = %+v, want %+v", name, got, tc.want)
		}
	}
	v := []int64{3, 1, 2}
	audit.PercentilesOf(v)
	if !slices.IsSorted(v) {
		t.Errorf("PercentilesOf did not sort its argument in place: %v", v)
	}
}

func TestTerminalSteps(t *testing.T) {
	got := audit.TerminalSteps()
	want := []schemas.Step{schemas.StepRejected, schemas.StepHeld, schemas.StepDryRun, schemas.StepRevoked, schemas.StepConfirmed, schemas.StepUnconfirmed, schemas.StepNotEffective, schemas.StepDeadLettered, schemas.StepNotified}
	if !slices.Equal(got, want) {
		t.Errorf("TerminalSteps = %v, want %v", got, want)
	}
}

var t0 = time.Date(2025, time.May, 5, 10, 0, 0, 0, time.UTC)

// statsRow is a linked-enough row for ComputeStats (which reads no chain
// fields but the tie-breakers).
func statsRow(id, user, rule string, step schemas.Step, at time.Duration, revokeMs, detectMs int64) schemas.AuditRow {
	return schemas.AuditRow{
		RowID: id, CommandID: "cmd-" + id, UserID: user, RuleID: rule, Step: step, Time: t0.Add(at),
		RevokeLatencyMs: revokeMs, DetectLatencyMs: detectMs, Chain: "a", Seq: 1, Hash: "h-" + id,
	}
}

func TestComputeStats(t *testing.T) {
	rows := []schemas.AuditRow{
		statsRow("r1", "u1", "rule-a", schemas.StepReceived, 0, 0, 0), // not terminal
		statsRow("r2", "u1", "rule-a", schemas.StepRevoked, 10*time.Second, 300, 100),
		statsRow("r3", "u1", "rule-a", schemas.StepRevoked, 20*time.Minute, 500, 200),
		statsRow("r4", "u2", "rule-a", schemas.StepRevoked, 30*time.Minute, 0, 50),  // not measured
		statsRow("r5", "u2", "rule-b", schemas.StepRevoked, 40*time.Minute, -7, 50), // skewed
		statsRow("r6", "u2", "rule-b", schemas.StepHeld, 61*time.Minute, 0, 0),
		statsRow("r7", "u2", "rule-b", schemas.StepDeadLettered, 62*time.Minute, 0, 0),
		statsRow("r8", "u1", "rule-b", schemas.StepVerified, 63*time.Minute, 0, 0), // not terminal
		statsRow("r9", "u1", "rule-a", schemas.StepRevoked, 90*time.Minute, 900, 300),
		// Outside [t0, t0+2h): one before, one at To exactly, one just
		// before To by milliseconds (inside: compared at whole seconds).
		statsRow("out1", "u1", "rule-a", schemas.StepRevoked, -time.Second, 1, 1),
		statsRow("out2", "u1", "rule-a", schemas.StepRevoked, 2*time.Hour, 1, 1),
		statsRow("in1", "u1", "rule-a", schemas.StepRejected, 2*time.Hour-time.Millisecond, 0, 0),
	}
	// Copies of r2: identical (ignored), and a second writer's copy a
	// minute later (newer: it is the one counted) with other latencies.
	rows = append(rows, rows[1])
	later := rows[1]
	later.Chain, later.Hash, later.Time, later.RevokeLatencyMs, later.DetectLatencyMs = "b", "h-r2b", later.Time.Add(time.Minute), 700, 400
	rows = append(rows, later)
	// A copy of r3 at the same second from another chain: chain "a" sorts
	// first, so the original counts.
	same := rows[2]
	same.Chain, same.Hash, same.Time, same.RevokeLatencyMs = "z", "h-r3z", same.Time.Add(300*time.Millisecond), 1
	rows = append(rows, same)

	q := audit.StatsQuery{From: t0.Add(400 * time.Millisecond), To: t0.Add(2*time.Hour + 900*time.Millisecond)}
	got, err := audit.ComputeStats(rows, q)
	if err != nil {
		t.Fatal(err)
	}
	h := func(d time.Duration) time.Time { return t0.Add(d) }
	wantOutcomes := []audit.OutcomePoint{
		{Start: h(0), RuleID: "rule-a", Outcome: schemas.StepRevoked, Count: 3},
		{Start: h(0), RuleID: "rule-b", Outcome: schemas.StepRevoked, Count: 1},
		{Start: h(time.Hour), RuleID: "rule-a", Outcome: schemas.StepRejected, Count: 1},
		{Start: h(time.Hour), RuleID: "rule-a", Outcome: schemas.StepRevoked, Count: 1},
		{Start: h(time.Hour), RuleID: "rule-b", Outcome: schemas.StepDeadLettered, Count: 1},
		{Start: h(time.Hour), RuleID: "rule-b", Outcome: schemas.StepHeld, Count: 1},
	}
	if !slices.Equal(got.Outcomes, wantOutcomes) {
		t.Errorf("Outcomes:\n got %+v\nwant %+v", got.Outcomes, wantOutcomes)
	}
	wantLatency := []audit.LatencyPoint{
		{Start: h(0), Percentiles: audit.Percentiles{Count: 2, P50: 700, P90: 700, P99: 700, Max: 700}},
		{Start: h(time.Hour), Percentiles: audit.Percentiles{Count: 1, P50: 900, P90: 900, P99: 900, Max: 900}},
	}
	if !slices.Equal(got.Latency, wantLatency) {
		t.Errorf("Latency:\n got %+v\nwant %+v", got.Latency, wantLatency)
	}
	if want := (audit.Percentiles{Count: 3, P50: 700, P90: 900, P99: 900, Max: 900}); got.RevokeLatency != want {
		t.Errorf("RevokeLatency = %+v, want %+v", got.RevokeLatency, want)
	}
	if want := (audit.Percentiles{Count: 3, P50: 300, P90: 400, P99: 400, Max: 400}); got.DetectLatency != want {
		t.Errorf("DetectLatency = %+v, want %+v", got.DetectLatency, want)
	}
	if !got.From.Equal(t0) || !got.To.Equal(t0.Add(2*time.Hour)) || got.Bucket != time.Hour {
		t.Errorf("range %s..%s by %s, want the query's at whole seconds by an hour", got.From, got.To, got.Bucket)
	}

	// The copy counted does not depend on the order rows come in.
	rev := slices.Clone(rows)
	slices.Reverse(rev)
	if again, _ := audit.ComputeStats(rev, q); !slices.Equal(again.Outcomes, got.Outcomes) || again.RevokeLatency != got.RevokeLatency || !slices.Equal(again.Latency, got.Latency) {
		t.Errorf("reversed input: %+v, want %+v", again, got)
	}

	// Filters.
	byUser, _ := audit.ComputeStats(rows, audit.StatsQuery{UserID: "u2", From: t0, To: t0.Add(2 * time.Hour), Bucket: 24 * time.Hour})
	if want := []audit.OutcomePoint{
		{Start: t0.Truncate(24 * time.Hour), RuleID: "rule-a", Outcome: schemas.StepRevoked, Count: 1},
		{Start: t0.Truncate(24 * time.Hour), RuleID: "rule-b", Outcome: schemas.StepDeadLettered, Count: 1},
		{Start: t0.Truncate(24 * time.Hour), RuleID: "rule-b", Outcome: schemas.StepHeld, Count: 1},
		{Start: t0.Truncate(24 * time.Hour), RuleID: "rule-b", Outcome: schemas.StepRevoked, Count: 1},
	}; !slices.Equal(byUser.Outcomes, want) {
		t.Errorf("user u2 by day:\n got %+v\nwant %+v", byUser.Outcomes, want)
	}
	if byUser.RevokeLatency.Count != 0 || len(byUser.Latency) != 0 {
		t.Errorf("user u2 has no measured revocation: %+v", byUser)
	}
	byRule, _ := audit.ComputeStats(rows, audit.StatsQuery{RuleID: "rule-b", From: t0, To: t0.Add(2 * time.Hour), Bucket: time.Minute})
	if len(byRule.Outcomes) != 3 || byRule.Outcomes[0].Start != h(40*time.Minute) || byRule.Outcomes[2].Start != h(62*time.Minute) {
		t.Errorf("rule-b by minute: %+v", byRule.Outcomes)
	}

	empty, err := audit.ComputeStats(rows, audit.StatsQuery{From: t0.AddDate(1, 0, 0), To: t0.AddDate(1, 0, 1)})
	if err != nil || empty.Outcomes == nil || empty.Latency == nil || len(empty.Outcomes)+len(empty.Latency) != 0 || empty.RevokeLatency != (audit.Percentiles{}) {
		t.Errorf("empty range: %+v, %v; want empty, non-nil slices", empty, err)
	}
	if _, err := audit.ComputeStats(rows, audit.StatsQuery{From: t0}); !errors.Is(err, audit.ErrInvalidQuery) {
		t.Errorf("ComputeStats without To: %v, want ErrInvalidQuery", err)
	}
}

func TestStatsQueryValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		q  audit.StatsQuery
		ok bool
	}{
		"hour default":    {audit.StatsQuery{From: t0, To: t0.Add(time.Hour)}, true},
		"minute":          {audit.StatsQuery{From: t0, To: t0.Add(time.Hour), Bucket: time.Minute}, true},
		"week":            {audit.StatsQuery{From: t0, To: t0.AddDate(1, 0, 0), Bucket: 7 * 24 * time.Hour}, true},
		"max buckets":     {audit.StatsQuery{From: t0, To: t0.Add(audit.MaxBuckets * time.Minute), Bucket: time.Minute}, true},
		"too many":        {audit.StatsQuery{From: t0, To: t0.Add((audit.MaxBuckets + 1) * time.Minute), Bucket: time.Minute}, false},
		"no from":         {audit.StatsQuery{To: t0}, false},
		"no to":           {audit.StatsQuery{From: t0}, false},
		"to before from":  {audit.StatsQuery{From: t0, To: t0.Add(-time.Second)}, false},
		"within a second": {audit.StatsQuery{From: t0.Add(100 * time.Millisecond), To: t0.Add(900 * time.Millisecond)}, false},
		"90 seconds":      {audit.StatsQuery{From: t0, To: t0.Add(time.Hour), Bucket: 90 * time.Second}, false},
		"negative bucket": {audit.StatsQuery{From: t0, To: t0.Add(time.Hour), Bucket: -time.Hour}, false},
		"past max bucket": {audit.StatsQuery{From: t0, To: t0.Add(time.Hour), Bucket: 8 * 24 * time.Hour}, false},
		"after MaxTime":   {audit.StatsQuery{From: t0, To: audit.MaxTime.Add(time.Hour)}, false},
	} {
		err := tc.q.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if !tc.ok && !errors.Is(err, audit.ErrInvalidQuery) {
			t.Errorf("%s: Validate = %v, want ErrInvalidQuery", name, err)
		}
	}
	q := audit.StatsQuery{Bucket: 15 * time.Minute}
	if got, want := q.BucketStart(t0.Add(29*time.Minute+59*time.Second+999*time.Millisecond)), t0.Add(15*time.Minute); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("BucketStart = %v, want %v in UTC", got, want)
	}
	if got, want := (audit.StatsQuery{Bucket: 24 * time.Hour}).BucketStart(t0.In(time.FixedZone("X", 5*3600))), t0.Truncate(24*time.Hour); !got.Equal(want) {
		t.Errorf("day BucketStart = %v, want midnight UTC %v", got, want)
	}
	if got := (audit.StatsQuery{Bucket: time.Millisecond}).BucketStart(t0.Add(1500 * time.Millisecond)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("BucketStart of a sub-second bucket = %v", got)
	}
}

func TestBuildTimeline(t *testing.T) {
	cmd := func(id string, at time.Duration) schemas.AuditRow {
		return schemas.AuditRow{
			CommandID: id, UserID: "u1", RuleID: "impossible_travel", Severity: schemas.SeverityHigh, Action: schemas.ActionRevoke,
			Issuer: "detector", Actor: "consumer-1", TokenID: "tok-" + id, Summary: "Paris then Tokyo in 10 minutes",
			Evidence:       []string{"ev-1", "ev-2", "ev-3"},
			FirstEventTime: t0.Add(at - 10*time.Minute), LastEventTime: t0.Add(at - time.Minute),
			DetectedAt: t0.Add(at - 30*time.Second), IssuedAt: t0.Add(at - 29*time.Second), ExpiresAt: t0.Add(at + time.Hour),
		}
	}
	step := func(r schemas.AuditRow, s schemas.Step, at time.Duration) schemas.AuditRow {
		r.Step, r.Time, r.RowID = s, t0.Add(at), r.CommandID+"/"+string(s)
		return r
	}
	a, b := cmd("A", 0), cmd("B", time.Hour)
	revoked := step(a, schemas.StepRevoked, 2*time.Second)
	revoked.TokensRevoked, revoked.Attempts, revoked.IdPStatus, revoked.IdPResponse = 3, 2, 200, "ok"
	verified := step(a, schemas.StepVerified, 2*time.Second) // same time as revoked: step order decides
	verified.Proof = "introspection: active=false"
	rows := []schemas.AuditRow{
		step(b, schemas.StepHeld, time.Hour+time.Second),
		verified,
		revoked,
		step(a, schemas.StepReceived, 0),
		step(a, schemas.StepFailed, time.Second),
		step(b, schemas.StepReceived, time.Hour),
		revoked, // a second copy
		step(a, schemas.StepReceived, 0),
	}
	got := audit.BuildTimeline(rows)
	type entry struct {
		kind audit.TimelineKind
		cmd  string
		step schemas.Step
		at   time.Time
	}
	want := []entry{
		{audit.TimelineEvents, "A", "", t0.Add(-10 * time.Minute)},
		{audit.TimelineDetection, "A", "", t0.Add(-30 * time.Second)},
		{audit.TimelineCommand, "A", "", t0.Add(-29 * time.Second)},
		{audit.TimelineExecution, "A", schemas.StepReceived, t0},
		{audit.TimelineExecution, "A", schemas.StepFailed, t0.Add(time.Second)},
		{audit.TimelineExecution, "A", schemas.StepRevoked, t0.Add(2 * time.Second)},
		{audit.TimelineProof, "A", schemas.StepVerified, t0.Add(2 * time.Second)},
		{audit.TimelineEvents, "B", "", t0.Add(50 * time.Minute)},
		{audit.TimelineDetection, "B", "", t0.Add(time.Hour - 30*time.Second)},
		{audit.TimelineCommand, "B", "", t0.Add(time.Hour - 29*time.Second)},
		{audit.TimelineExecution, "B", schemas.StepReceived, t0.Add(time.Hour)},
		{audit.TimelineExecution, "B", schemas.StepHeld, t0.Add(time.Hour + time.Second)},
	}
	if len(got) != len(want) {
		for _, e := range got {
			t.Logf("%s %s %s %s %s", e.Time.Format(time.TimeOnly), e.Kind, e.CommandID, e.Step, e.Summary)
		}
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.CommandID != w.cmd || g.Step != w.step || !g.Time.Equal(w.at) {
			t.Errorf("entry %d: %s %s %s at %s, want %s %s %s at %s", i, g.Kind, g.CommandID, g.Step, g.Time.Format(time.TimeOnly), w.kind, w.cmd, w.step, w.at.Format(time.TimeOnly))
		}
		if g.RuleID != "impossible_travel" || g.Severity != "high" || g.RowID == "" {
			t.Errorf("entry %d lacks the command's rule, severity or row: %+v", i, g)
		}
	}
	if e := got[0]; !e.End.Equal(t0.Add(-time.Minute)) || e.Summary != "3 events" || len(e.Evidence) != 3 {
		t.Errorf("events entry: %+v", e)
	}
	if e := got[1]; e.Detail != "Paris then Tokyo in 10 minutes" {
		t.Errorf("detection entry detail %q", e.Detail)
	}
	if e := got[2]; e.Summary != "revoke token tok-A issued by detector" || e.Detail == "" {
		t.Errorf("command entry: %+v", e)
	}
	if e := got[5]; e.Summary != "revoked 3 token(s) after 2 attempt(s)" || e.Detail != "token API answered 200 ok" {
		t.Errorf("revoked entry: %+v", e)
	}
	if e := got[6]; e.Detail != "introspection: active=false" {
		t.Errorf("proof entry: %+v", e)
	}

	if got := audit.BuildTimeline(nil); got == nil || len(got) != 0 {
		t.Errorf("BuildTimeline(nil) = %#v, want an empty, non-nil slice", got)
	}
	// A command whose rows carry no detection (a manual command): only
	// its steps.
	manual := schemas.AuditRow{CommandID: "M", RowID: "M/received", Step: schemas.StepReceived, Time: t0, Actor: "consumer-1"}
	if got := audit.BuildTimeline([]schemas.AuditRow{manual}); len(got) != 1 || got[0].Kind != audit.TimelineExecution || got[0].Summary != "command received by consumer-1" {
		t.Errorf("manual command timeline: %+v", got)
	}
}
