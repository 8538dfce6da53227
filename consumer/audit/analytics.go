package audit

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// StatsQuery selects the rows Stats aggregates. Empty fields do not filter.
type StatsQuery struct {
	UserID string
	RuleID string
	// From and To select From <= time < To at whole seconds, as in Query.
	// Both are required: stats always cover a bounded range.
	From, To time.Time
	// Bucket is the width of one point of the series: a whole number of
	// minutes up to a week. Buckets start at multiples of Bucket since the
	// Unix epoch (hours on the hour, days at midnight UTC). Zero means an
	// hour.
	Bucket time.Duration
}

// Limits on a StatsQuery.
const (
	MinBucket  = time.Minute
	MaxBucket  = 7 * 24 * time.Hour
	MaxBuckets = 10_000
)

// Normalized returns q with the defaults filled in and the times truncated
// to the second.
func (q StatsQuery) Normalized() StatsQuery {
	if q.Bucket == 0 {
		q.Bucket = time.Hour
	}
	q.From, q.To = q.From.UTC().Truncate(time.Second), q.To.UTC().Truncate(time.Second)
	return q
}

// Validate reports every problem with the query at once.
func (q StatsQuery) Validate() error {
	q = q.Normalized()
	var errs []error
	if q.From.IsZero() || q.To.IsZero() {
		errs = append(errs, fmt.Errorf("%w: stats need both from and to", ErrInvalidQuery))
	} else if !q.To.After(q.From) {
		errs = append(errs, fmt.Errorf("%w: to %s is not after from %s", ErrInvalidQuery, q.To.Format(time.RFC3339), q.From.Format(time.RFC3339)))
	}
	for _, t := range []time.Time{q.From, q.To} {
		if !t.IsZero() && (t.Before(MinTime) || t.After(MaxTime)) {
			errs = append(errs, fmt.Errorf("%w: time %s is outside [%s, %s]", ErrInvalidQuery, t.Format(time.RFC3339), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339)))
		}
	}
	switch {
	case q.Bucket < MinBucket || q.Bucket > MaxBucket || q.Bucket%time.Minute != 0:
		errs = append(errs, fmt.Errorf("%w: bucket %s must be a whole number of minutes between %s and %s", ErrInvalidQuery, q.Bucket, MinBucket, MaxBucket))
	case !q.From.IsZero() && q.To.After(q.From) && q.To.Sub(q.From)/q.Bucket > MaxBuckets:
		errs = append(errs, fmt.Errorf("%w: %s in buckets of %s is more than %d buckets", ErrInvalidQuery, q.To.Sub(q.From), q.Bucket, MaxBuckets))
	}
	return errors.Join(errs...)
}

// BucketStart returns the start of the bucket t falls in. A bucket of
// less than a second (invalid) counts as a second.
func (q StatsQuery) BucketStart(t time.Time) time.Time {
	s := max(int64(q.Normalized().Bucket/time.Second), 1)
	u := t.Unix()
	return time.Unix(u-u%s, 0).UTC()
}

// Stats is the shape of the trail over a time range: how many commands
// ended how, per rule and bucket, and how long they took.
type Stats struct {
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Bucket time.Duration `json:"bucket_ns"`
	// Outcomes counts terminal rows (one per RowID; see Step.Terminal) by
	// bucket, rule and step, sorted by Start, RuleID, Outcome. Buckets
	// without rows are absent.
	Outcomes []OutcomePoint `json:"outcomes"`
	// Latency is the revocation latency (last event to the revoked row) per
	// bucket, over rows whose step is revoked and whose latency is positive,
	// sorted by Start.
	Latency []LatencyPoint `json:"latency"`
	// DetectLatency and RevokeLatency summarise the whole range over the
	// same revoked rows: last event to detection, and to revocation.
	DetectLatency Percentiles `json:"detect_latency_ms"`
	RevokeLatency Percentiles `json:"revoke_latency_ms"`
}

// OutcomePoint is one count of Stats.Outcomes.
type OutcomePoint struct {
	Start   time.Time    `json:"start"`
	RuleID  string       `json:"rule_id"`
	Outcome schemas.Step `json:"outcome"`
	Count   uint64       `json:"count"`
}

// LatencyPoint is the revocation latency of one bucket.
type LatencyPoint struct {
	Start time.Time `json:"start"`
	Percentiles
}

// Percentiles of latencies in milliseconds. A percentile p of n sorted
// values is the value at index floor(p*n) (ClickHouse's quantileExact);
// all are zero when Count is.
type Percentiles struct {
	Count uint64 `json:"count"`
	P50   int64  `json:"p50"`
	P90   int64  `json:"p90"`
	P99   int64  `json:"p99"`
	Max   int64  `json:"max"`
}

// PercentileLevels are the levels of Percentiles, in field order.
var PercentileLevels = []float64{0.5, 0.9, 0.99}

// PercentilesOf computes Percentiles of values, which it sorts in place.
func PercentilesOf(values []int64) Percentiles {
	n := len(values)
	if n == 0 {
		return Percentiles{}
	}
	slices.Sort(values)
	at := func(p float64) int64 { return values[min(int(p*float64(n)), n-1)] }
	return Percentiles{Count: uint64(n), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: values[n-1]}
}

// TerminalSteps lists the steps that end a command (Step.Terminal), the
// outcomes Stats counts.
func TerminalSteps() []schemas.Step {
	var out []schemas.Step
	for _, s := range schemas.Steps {
		if s.Terminal() {
			out = append(out, s)
		}
	}
	return out
}

// ComputeStats aggregates rows the way every backend's Stats must: the
// reference the contract suite compares backends with, and memstore's
// implementation. Rows are filtered by q, then deduplicated by RowID before
// anything is counted. Of copies of a RowID that differ (the same step
// recorded by two writers, at different times), the one counted is the
// newest at whole seconds, then the first by Chain, Seq descending and
// Hash: an order every backend can follow whatever its time precision and
// whatever order the copies were appended in.
func ComputeStats(rows []schemas.AuditRow, q StatsQuery) (Stats, error) {
	if err := q.Validate(); err != nil {
		return Stats{}, err
	}
	q = q.Normalized()
	type key struct {
		start int64
		rule  string
		step  schemas.Step
	}
	counts := map[key]uint64{}
	lat := map[int64][]int64{}
	var detect, revoke []int64
	kept := map[string]*schemas.AuditRow{}
	for i := range rows {
		r := &rows[i]
		t := r.Time.UTC().Truncate(time.Second)
		switch {
		case q.UserID != "" && r.UserID != q.UserID,
			q.RuleID != "" && r.RuleID != q.RuleID,
			t.Before(q.From), !t.Before(q.To),
			!r.Step.Terminal():
			continue
		}
		if k, dup := kept[r.RowID]; dup && statsCopyOrder(k, r) <= 0 {
			continue
		}
		kept[r.RowID] = r
	}
	for _, r := range kept {
		start := q.BucketStart(r.Time).Unix()
		counts[key{start, r.RuleID, r.Step}]++
		if r.Step.Revoked() && r.RevokeLatencyMs > 0 {
			lat[start] = append(lat[start], r.RevokeLatencyMs)
			revoke = append(revoke, r.RevokeLatencyMs)
			detect = append(detect, r.DetectLatencyMs)
		}
	}
	st := Stats{From: q.From, To: q.To, Bucket: q.Bucket, Outcomes: []OutcomePoint{}, Latency: []LatencyPoint{}}
	for k, n := range counts {
		st.Outcomes = append(st.Outcomes, OutcomePoint{Start: time.Unix(k.start, 0).UTC(), RuleID: k.rule, Outcome: k.step, Count: n})
	}
	SortOutcomes(st.Outcomes)
	for start, v := range lat {
		st.Latency = append(st.Latency, LatencyPoint{Start: time.Unix(start, 0).UTC(), Percentiles: PercentilesOf(v)})
	}
	slices.SortFunc(st.Latency, func(a, b LatencyPoint) int { return a.Start.Compare(b.Start) })
	st.DetectLatency = PercentilesOf(detect)
	st.RevokeLatency = PercentilesOf(revoke)
	return st, nil
}

// statsCopyOrder orders copies of one RowID: the copy ComputeStats counts
// sorts first.
func statsCopyOrder(a, b *schemas.AuditRow) int {
	return cmp.Or(cmp.Compare(b.Time.Unix(), a.Time.Unix()), cmp.Compare(a.Chain, b.Chain),
		cmp.Compare(b.Seq, a.Seq), cmp.Compare(a.Hash, b.Hash))
}

// SortOutcomes puts points in Stats.Outcomes order.
func SortOutcomes(points []OutcomePoint) {
	slices.SortFunc(points, func(a, b OutcomePoint) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Outcome, b.Outcome))
	})
}

// TimelineKind says what a timeline entry is.
type TimelineKind string

// The kinds of a user's timeline, in the order of a command's life.
const (
	// TimelineEvents: the window of events that triggered the detection
	// (first to last event time), with the evidence.
	TimelineEvents TimelineKind = "events"
	// TimelineDetection: the rule fired (detected_at).
	TimelineDetection TimelineKind = "detection"
	// TimelineCommand: the command was signed and issued (issued_at).
	TimelineCommand TimelineKind = "command"
	// TimelineExecution: a step of the command's execution (received, held,
	// revoked, failed, dead_lettered, rejected, dry_run, notified).
	TimelineExecution TimelineKind = "execution"
	// TimelineProof: the revocation was checked against the token API
	// (the verified row and its proof).
	TimelineProof TimelineKind = "proof"
)

// TimelineEntry is one moment of a user's timeline.
type TimelineEntry struct {
	Time      time.Time    `json:"time"`
	End       time.Time    `json:"end,omitzero"`
	Kind      TimelineKind `json:"kind"`
	CommandID string       `json:"command_id"`
	RuleID    string       `json:"rule_id,omitempty"`
	Severity  string       `json:"severity,omitempty"`
	Action    string       `json:"action,omitempty"`
	Step      schemas.Step `json:"step,omitempty"`
	// Summary is one line a person reads; Detail the rest (evidence, the
	// token API's answer, the proof, the reason of a failure).
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail,omitempty"`
	Evidence []string `json:"evidence,omitempty"`
	// EvidenceContext says where evidence events came from (address,
	// country, autonomous system), for those the detector knew: the
	// row's evidence_context entries, decoded (an entry that does not
	// decode is left out).
	EvidenceContext []schemas.EventContext `json:"evidence_context,omitempty"`
	// Row is the audit row the entry comes from.
	RowID string `json:"row_id"`
}

// BuildTimeline turns one user's audit rows into their timeline, oldest
// first: for each command, the events behind it, the detection, the
// command itself (from the command's first row), then every execution step
// and proof row. Rows are deduplicated by RowID.
func BuildTimeline(rows []schemas.AuditRow) []TimelineEntry {
	sorted := slices.Clone(rows)
	slices.SortStableFunc(sorted, func(a, b schemas.AuditRow) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(stepOrder(a.Step), stepOrder(b.Step)), cmp.Compare(a.RowID, b.RowID))
	})
	out := []TimelineEntry{}
	seenRow := map[string]bool{}
	seenCmd := map[string]bool{}
	for _, r := range sorted {
		if seenRow[r.RowID] {
			continue
		}
		seenRow[r.RowID] = true
		base := TimelineEntry{CommandID: r.CommandID, RuleID: r.RuleID, Severity: string(r.Severity), Action: string(r.Action), RowID: r.RowID}
		if !seenCmd[r.CommandID] {
			seenCmd[r.CommandID] = true
			if !r.FirstEventTime.IsZero() || !r.LastEventTime.IsZero() {
				e := base
				e.Kind, e.Time, e.End = TimelineEvents, r.FirstEventTime, r.LastEventTime
				if e.Time.IsZero() {
					e.Time = r.LastEventTime
				}
				e.Summary = fmt.Sprintf("%d events", len(r.Evidence))
				if len(r.Evidence) == 0 {
					e.Summary = "events"
				}
				e.Evidence = r.Evidence
				e.EvidenceContext = evidenceContext(r.EvidenceContext)
				out = append(out, e)
			}
			if !r.DetectedAt.IsZero() {
				e := base
				e.Kind, e.Time = TimelineDetection, r.DetectedAt
				e.Summary = fmt.Sprintf("%s (%s) fired", r.RuleID, r.Severity)
				e.Detail = r.Summary
				out = append(out, e)
			}
			if !r.IssuedAt.IsZero() {
				e := base
				e.Kind, e.Time = TimelineCommand, r.IssuedAt
				e.Summary = fmt.Sprintf("%s %s issued by %s", r.Action, targetOf(r), r.Issuer)
				if !r.ExpiresAt.IsZero() {
					e.Detail = "expires " + r.ExpiresAt.UTC().Format(time.RFC3339)
				}
				out = append(out, e)
			}
		}
		e := base
		e.Time, e.Step = r.Time, r.Step
		e.Kind = TimelineExecution
		if r.Step == schemas.StepVerified || r.Step == schemas.StepNotEffective {
			e.Kind = TimelineProof
		}
		e.Summary, e.Detail = stepSummary(r)
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b TimelineEntry) int { return a.Time.Compare(b.Time) })
	return out
}

// evidenceContext decodes a row's evidence context entries, leaving out
// those that do not decode; nil for none.
func evidenceContext(entries []string) []schemas.EventContext {
	var out []schemas.EventContext
	for _, s := range entries {
		if c, err := schemas.ParseEventContext(s); err == nil {
			out = append(out, c)
		}
	}
	return out
}

func stepOrder(s schemas.Step) int {
	if i := slices.Index(schemas.Steps, s); i >= 0 {
		return i
	}
	return len(schemas.Steps)
}

func targetOf(r schemas.AuditRow) string {
	switch {
	case r.TokenID != "":
		return "token " + r.TokenID
	case r.SessionID != "":
		return "session " + r.SessionID
	case r.UserID != "":
		return "user " + r.UserID
	case r.ClientID != "":
		return "client " + r.ClientID
	}
	return string(r.TargetKind)
}

func stepSummary(r schemas.AuditRow) (summary, detail string) {
	switch r.Step {
	case schemas.StepReceived:
		summary = "command received by " + r.Actor
	case schemas.StepRevoked, schemas.StepConfirmed, schemas.StepUnconfirmed:
		summary = fmt.Sprintf("revoked %d token(s) after %d attempt(s)", r.TokensRevoked, r.Attempts)
		switch r.Step {
		case schemas.StepConfirmed:
			summary = fmt.Sprintf("revoked and confirmed: %d token(s) after %d attempt(s)", r.TokensRevoked, r.Attempts)
		case schemas.StepUnconfirmed:
			summary = fmt.Sprintf("revoked, unconfirmed: the token API accepted after %d attempt(s) and offers no proof", r.Attempts)
		}
		if r.IdPStatus != 0 {
			detail = fmt.Sprintf("token API answered %d %s", r.IdPStatus, r.IdPResponse)
		}
		if r.Proof != "" {
			detail = strings.TrimPrefix(detail+"; proof: "+r.Proof, "; ")
		}
	case schemas.StepNotEffective:
		summary = "not effective: the token API accepted, its proof shows a targeted token still active; dead-lettered"
		detail = r.Proof
		if r.IdPStatus != 0 {
			detail = strings.TrimPrefix(fmt.Sprintf("%s; token API answered %d %s", detail, r.IdPStatus, r.IdPResponse), "; ")
		}
	case schemas.StepVerified:
		summary = "revocation verified"
		detail = r.Proof
	case schemas.StepFailed:
		summary = fmt.Sprintf("attempt failed (%d)", r.Attempts)
	case schemas.StepHeld:
		summary = "held for approval"
	case schemas.StepRejected:
		summary = "rejected"
	case schemas.StepDeadLettered:
		summary = "dead-lettered"
	case schemas.StepDryRun:
		summary = "dry run: nothing revoked"
	case schemas.StepNotified:
		summary = "notified: nothing revoked"
	default:
		summary = string(r.Step)
	}
	if r.Approver != "" {
		summary += " (approved by " + r.Approver + ")"
	}
	if detail == "" {
		detail = r.Detail
	} else if r.Detail != "" {
		detail += "; " + r.Detail
	}
	return summary, detail
}
