package audittest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// statsBase is the start of the trail StatsTrail writes: a Monday, so day
// and week buckets start inside it.
var statsBase = time.Date(2025, time.February, 3, 0, 0, 0, 0, time.UTC)

// StatsTrail returns a realistic trail of about 400 rows over three days
// (statsBase on): commands of six users under four rules, each with its
// received row and the steps of one of the ways a command ends (held,
// rejected, dry run, notified, revoked and verified, failed then revoked,
// failed then dead-lettered), at times with a millisecond part. Revoked
// rows carry latencies, some zero or negative (not measured), many tied.
// It also holds rows before and after the three days, a command with a
// known latency spread (1 to 10 seconds in one minute), identical copies of
// some rows, and copies of others as a second writer recorded them (another
// chain, another time, other latencies). Every row is linked in one of two
// chains, so the trail is valid for Append.
func StatsTrail() []schemas.AuditRow {
	rng := rand.New(rand.NewPCG(7, 11))
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	rules := []string{"impossible_travel", "mass_download", "mfa_fatigue", "token_reuse"}
	var rows []schemas.AuditRow
	offset := int64(0)
	add := func(cmd, user, rule string, step schemas.Step, at time.Time) *schemas.AuditRow {
		offset++
		r := schemas.AuditRow{
			Time: at, CommandID: cmd, Step: step, Issuer: "detector", Actor: "consumer-1",
			TargetKind: schemas.TargetUser, UserID: user, TokenID: schemas.Fingerprint(cmd),
			Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, RuleID: rule, RuleVersion: 1,
			Severity: schemas.SeverityHigh, Summary: rule + " for " + user,
			FirstEventTime: at.Add(-2 * time.Minute), LastEventTime: at.Add(-time.Minute),
			DetectedAt: at.Add(-50 * time.Second), IssuedAt: at.Add(-49 * time.Second),
			SourceTopic: schemas.TopicRevokeCommands, SourcePartition: int32(offset % 3), SourceOffset: offset,
		}
		r.RowID = schemas.AuditRowID(r.CommandID, r.Step, r.SourceTopic, r.SourcePartition, r.SourceOffset)
		rows = append(rows, r)
		return &rows[len(rows)-1]
	}
	revoked := func(r *schemas.AuditRow) {
		r.TokensRevoked, r.Attempts, r.IdPStatus = 1, 1, 200
		// Latencies in steps of 250 ms: ties are common.
		r.DetectLatencyMs = int64(rng.IntN(40)) * 250
		r.RevokeLatencyMs = r.DetectLatencyMs + int64(rng.IntN(20))*250
		switch rng.IntN(12) {
		case 0:
			r.RevokeLatencyMs = 0 // not measured
		case 1:
			r.RevokeLatencyMs = -40 // clock skew: not counted
		}
	}
	command := func(i int, at time.Time) {
		cmd := fmt.Sprintf("stats-cmd-%03d", i)
		user, rule := users[rng.IntN(len(users))], rules[rng.IntN(len(rules))]
		add(cmd, user, rule, schemas.StepReceived, at)
		next := at.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
		switch k := rng.IntN(10); k {
		case 0:
			add(cmd, user, rule, schemas.StepHeld, next)
		case 1:
			add(cmd, user, rule, schemas.StepRejected, next).Detail = "expired"
		case 2:
			add(cmd, user, rule, schemas.StepDryRun, next)
		case 3:
			add(cmd, user, rule, schemas.StepNotified, next)
		case 4, 5, 6:
			revoked(add(cmd, user, rule, schemas.StepRevoked, next))
			if k != 6 {
				add(cmd, user, rule, schemas.StepVerified, next.Add(300*time.Millisecond))
			}
		case 7, 8:
			add(cmd, user, rule, schemas.StepFailed, next).Attempts = 1
			revoked(add(cmd, user, rule, schemas.StepRevoked, next.Add(2*time.Second)))
		case 9:
			add(cmd, user, rule, schemas.StepFailed, next).Attempts = 3
			add(cmd, user, rule, schemas.StepDeadLettered, next.Add(time.Second))
		}
	}
	// 150 commands over three days, at random times with milliseconds.
	for i := range 150 {
		command(i, statsBase.Add(time.Duration(rng.Int64N(int64(72*time.Hour)))).Truncate(time.Millisecond))
	}
	// Commands before and after the three days.
	for i := range 10 {
		command(200+i, statsBase.Add(-time.Duration(1+rng.IntN(48))*time.Hour))
		command(300+i, statsBase.Add(72*time.Hour+time.Duration(rng.IntN(48))*time.Hour))
	}
	// Ten revocations in one minute with latencies 1..10 s: p50 is the 6th
	// value, p90 and p99 the 10th (index floor(level*n)).
	spread := statsBase.Add(30*time.Hour + 7*time.Minute)
	for i := range 10 {
		cmd := fmt.Sprintf("stats-spread-%d", i)
		add(cmd, "grace", "mass_download", schemas.StepReceived, spread)
		r := add(cmd, "grace", "mass_download", schemas.StepRevoked, spread.Add(time.Duration(i)*time.Second+123*time.Millisecond))
		r.DetectLatencyMs, r.RevokeLatencyMs = int64(500*(10-i)), int64(1000*(i+1))
	}
	rows = Link("stats-a", 0, "", rows)

	// A second writer recorded some of the same steps again: the same
	// RowID with another chain, time and latencies; some of its copies
	// fall in another bucket, some outside the range.
	var copies []schemas.AuditRow
	for i := 0; i < len(rows); i += 7 {
		c := rows[i]
		if !c.Step.Terminal() {
			continue
		}
		c.Time = c.Time.Add(time.Duration(rng.IntN(3)) * 40 * time.Minute)
		if i%3 == 0 {
			c.Time = c.Time.Add(-time.Duration(rng.IntN(600)) * time.Millisecond)
		}
		if c.Step == schemas.StepRevoked {
			c.RevokeLatencyMs += 777
		}
		copies = append(copies, c)
	}
	// One copy at the very same second as its original, with other
	// latencies: the tie is broken by chain.
	for i := range rows {
		if rows[i].Step == schemas.StepRevoked && rows[i].RevokeLatencyMs > 0 {
			c := rows[i]
			c.Time = c.Time.Truncate(time.Second)
			c.RevokeLatencyMs, c.DetectLatencyMs = 1, 1
			copies = append(copies, c)
			break
		}
	}
	copies = Link("stats-b", 0, "", copies)
	return append(rows, copies...)
}

// StatsQueries returns the queries the contract compares with
// audit.ComputeStats over StatsTrail.
func StatsQueries() map[string]audit.StatsQuery {
	from, to := statsBase, statsBase.Add(72*time.Hour)
	return map[string]audit.StatsQuery{
		"whole range default bucket": {From: from.Add(-48 * time.Hour), To: to.Add(48 * time.Hour)},
		"three days by minute":       {From: from, To: to, Bucket: time.Minute},
		"three days by 15 minutes":   {From: from, To: to, Bucket: 15 * time.Minute},
		"three days by hour":         {From: from, To: to, Bucket: time.Hour},
		"three days by day":          {From: from, To: to, Bucket: 24 * time.Hour},
		"a week by week":             {From: from.Add(-7 * 24 * time.Hour), To: to.Add(7 * 24 * time.Hour), Bucket: 7 * 24 * time.Hour},
		"sub-second bounds":          {From: from.Add(5*time.Hour + 700*time.Millisecond), To: to.Add(-9*time.Hour - 300*time.Millisecond), Bucket: time.Hour},
		"user":                       {UserID: "alice", From: from, To: to},
		"rule":                       {RuleID: "mass_download", From: from, To: to, Bucket: 6 * time.Hour},
		"user and rule":              {UserID: "bob", RuleID: "impossible_travel", From: from, To: to, Bucket: 24 * time.Hour},
		"latency spread":             {UserID: "grace", From: from, To: to, Bucket: time.Minute},
		"unknown user":               {UserID: "nobody", From: from, To: to},
		"empty range":                {From: from.AddDate(5, 0, 0), To: from.AddDate(5, 0, 1)},
		"injection attempt":          {UserID: "' OR 1=1 --", RuleID: `\'`, From: from, To: to},
	}
}

func testStats(t *testing.T, s audit.Store) {
	c := ctx(t)
	trail := StatsTrail()
	// Three appends (two parts at least), with identical copies of a few
	// rows in the last.
	third := len(trail) / 3
	for _, batch := range [][]schemas.AuditRow{trail[:third], trail[third : 2*third], append(trail[2*third:], trail[10:20]...)} {
		if err := s.Append(c, batch); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	for name, q := range StatsQueries() {
		want, err := audit.ComputeStats(trail, q)
		if err != nil {
			t.Fatalf("%s: ComputeStats: %v", name, err)
		}
		got, err := s.Stats(c, q)
		if err != nil {
			t.Errorf("%s: Stats: %v", name, err)
			continue
		}
		CompareStats(t, name, got, want)
	}
	// The queries above see what they should: a guard against a trail
	// that stops exercising the aggregation.
	all, _ := audit.ComputeStats(trail, StatsQueries()["whole range default bucket"])
	if len(all.Outcomes) < 50 || len(all.Latency) < 20 || all.RevokeLatency.Count < 40 {
		t.Errorf("the trail is too thin: %d outcome points, %d latency points, %d revocations",
			len(all.Outcomes), len(all.Latency), all.RevokeLatency.Count)
	}
	spread, _ := audit.ComputeStats(trail, StatsQueries()["latency spread"])
	if want := (audit.Percentiles{Count: 10, P50: 6000, P90: 10000, P99: 10000, Max: 10000}); spread.RevokeLatency != want {
		t.Errorf("latency spread: reference %+v, want %+v", spread.RevokeLatency, want)
	}

	for name, bad := range map[string]audit.StatsQuery{
		"no to":           {From: statsBase},
		"no from":         {To: statsBase},
		"to before from":  {From: statsBase, To: statsBase.Add(-time.Hour)},
		"empty":           {From: statsBase, To: statsBase.Add(900 * time.Millisecond)},
		"bucket 30s":      {From: statsBase, To: statsBase.Add(time.Hour), Bucket: 30 * time.Second},
		"bucket too wide": {From: statsBase, To: statsBase.Add(time.Hour), Bucket: 8 * 24 * time.Hour},
		"too many":        {From: statsBase, To: statsBase.AddDate(0, 0, 8), Bucket: time.Minute},
		"before 1970":     {From: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), To: statsBase},
	} {
		if _, err := s.Stats(c, bad); !errors.Is(err, audit.ErrInvalidQuery) {
			t.Errorf("Stats(%s) error = %v, want ErrInvalidQuery", name, err)
		}
	}
}

// CompareStats reports every difference between got and want, a Stats of
// a backend and the reference.
func CompareStats(t testing.TB, name string, got, want audit.Stats) {
	t.Helper()
	js := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	if !got.From.Equal(want.From) || !got.To.Equal(want.To) || got.Bucket != want.Bucket {
		t.Errorf("%s: range %s..%s by %s, want %s..%s by %s", name, got.From, got.To, got.Bucket, want.From, want.To, want.Bucket)
	}
	if len(got.Outcomes) != len(want.Outcomes) {
		t.Errorf("%s: %d outcome points, want %d", name, len(got.Outcomes), len(want.Outcomes))
	}
	for i := range min(len(got.Outcomes), len(want.Outcomes)) {
		if g, w := got.Outcomes[i], want.Outcomes[i]; !g.Start.Equal(w.Start) || g.RuleID != w.RuleID || g.Outcome != w.Outcome || g.Count != w.Count {
			t.Errorf("%s: outcome %d: %s, want %s", name, i, js(g), js(w))
		}
	}
	if len(got.Latency) != len(want.Latency) {
		t.Errorf("%s: %d latency points, want %d", name, len(got.Latency), len(want.Latency))
	}
	for i := range min(len(got.Latency), len(want.Latency)) {
		if g, w := got.Latency[i], want.Latency[i]; !g.Start.Equal(w.Start) || g.Percentiles != w.Percentiles {
			t.Errorf("%s: latency %d: %s, want %s", name, i, js(g), js(w))
		}
	}
	if got.DetectLatency != want.DetectLatency {
		t.Errorf("%s: detect latency %s, want %s", name, js(got.DetectLatency), js(want.DetectLatency))
	}
	if got.RevokeLatency != want.RevokeLatency {
		t.Errorf("%s: revoke latency %s, want %s", name, js(got.RevokeLatency), js(want.RevokeLatency))
	}
	if got.Outcomes == nil || got.Latency == nil {
		t.Errorf("%s: nil outcomes or latency (want empty slices, which encode as [])", name)
	}
	// The JSON an API serves is the same too.
	if g, w := js(got), js(want); g != w && !reflect.DeepEqual(got, want) && !t.Failed() {
		t.Errorf("%s: JSON %s\nwant %s", name, g, w)
	}
}
