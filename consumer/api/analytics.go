package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/ops"
)

// MaxTimelineRows caps the audit rows one timeline is built from: the
// newest ones are kept and the answer says it was truncated.
const MaxTimelineRows = 5000

// DefaultStatsRange is the range /api/v1/stats covers when from is not
// given: the day before to.
const DefaultStatsRange = 24 * time.Hour

// Timeline is the answer of /api/v1/timeline.
type Timeline struct {
	// UserID and CommandID are the timeline's subject: a user's commands,
	// or one command.
	UserID    string `json:"user_id,omitempty"`
	CommandID string `json:"command_id,omitempty"`
	// Entries are oldest first (audit.BuildTimeline).
	Entries []audit.TimelineEntry `json:"entries"`
	// Rows is how many audit rows the entries come from.
	Rows int `json:"rows"`
	// Truncated says the subject has more than MaxTimelineRows rows in the
	// range: only the newest were used. Narrow from and to to see older
	// ones.
	Truncated bool `json:"truncated"`
}

// ParseTimelineQuery reads the parameters of a timeline request: user_id
// (a user's commands) or command_id (one command), or both (that user's
// part of the command), and from and to (RFC 3339). It reports every
// problem at once.
func ParseTimelineQuery(v map[string][]string) (audit.Query, error) {
	var errs []error
	q := audit.Query{UserID: first(v, "user_id"), CommandID: first(v, "command_id"), Limit: MaxTimelineRows + 1}
	if q.UserID == "" && q.CommandID == "" {
		errs = append(errs, errors.New("user_id: required, or command_id"))
	}
	errs = append(errs, parseRange(v, &q.From, &q.To))
	return q, errors.Join(errs...)
}

func (a *API) timeline(w http.ResponseWriter, r *http.Request) {
	q, err := ParseTimelineQuery(r.URL.Query())
	if err != nil {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	rows, err := a.store.History(r.Context(), q)
	if err != nil {
		a.storeError(w, err, "timeline query failed")
		return
	}
	tl := Timeline{UserID: q.UserID, CommandID: q.CommandID}
	if len(rows) > MaxTimelineRows {
		rows, tl.Truncated = rows[:MaxTimelineRows], true
	}
	tl.Rows = len(rows)
	tl.Entries = audit.BuildTimeline(rows)
	ops.WriteJSON(w, http.StatusOK, tl)
}

// MaxActivityRange bounds /api/v1/activity: the newest row is looked for
// in at most this long before to (the default range too), so the query
// reads one or two monthly partitions at most.
const MaxActivityRange = 31 * 24 * time.Hour

// Activity is the answer of /api/v1/activity: what the UI needs before it
// picks the range it shows.
type Activity struct {
	// Latest is the time, at whole seconds, of the newest row the filters
	// select in [From, To); absent when there is none.
	Latest time.Time `json:"latest,omitzero"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// TimePrecision is the precision at which the store keeps times: "ms"
	// (DateTime64(3)) or "s" (DateTime, ClickHouse before 20.3); absent
	// while the store cannot tell.
	TimePrecision string `json:"time_precision,omitempty"`
}

// ParseActivityQuery reads an activity request: the filters of ParseQuery
// (but paging), to (default: a minute after now) and from (default and
// earliest: MaxActivityRange before to). It reports every problem at once.
func ParseActivityQuery(v map[string][]string, now time.Time) (audit.Query, error) {
	q, err := ParseQuery(v)
	errs := []error{err}
	if q.To.IsZero() {
		q.To = now.UTC().Truncate(time.Second).Add(time.Minute)
	}
	switch {
	case q.From.IsZero():
		q.From = q.To.Add(-MaxActivityRange)
	case q.To.Sub(q.From) > MaxActivityRange:
		errs = append(errs, fmt.Errorf("from: more than %s before to", fmtDays(MaxActivityRange)))
	}
	q.Limit, q.Offset = 0, 0
	return q, errors.Join(errs...)
}

func fmtDays(d time.Duration) string { return strconv.Itoa(int(d/(24*time.Hour))) + " days" }

func (a *API) activity(w http.ResponseWriter, r *http.Request) {
	q, err := ParseActivityQuery(r.URL.Query(), time.Now())
	if err != nil {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	latest, err := a.store.Latest(r.Context(), q)
	if err != nil {
		a.storeError(w, err, "activity query failed")
		return
	}
	act := Activity{Latest: latest, From: q.From.UTC(), To: q.To.UTC()}
	switch a.store.TimePrecision() {
	case time.Millisecond:
		act.TimePrecision = "ms"
	case time.Second:
		act.TimePrecision = "s"
	}
	ops.WriteJSON(w, http.StatusOK, act)
}

// ParseStatsQuery reads the parameters of a stats request: from and to
// (RFC 3339; to defaults to now, from to DefaultStatsRange before to),
// bucket (a Go duration such as 15m or 1h, or a number of days such as
// 1d; default 1h), rule_id and user_id. It reports every problem at once,
// each naming its parameter.
func ParseStatsQuery(v map[string][]string, now time.Time) (audit.StatsQuery, error) {
	q := audit.StatsQuery{UserID: first(v, "user_id"), RuleID: first(v, "rule_id"), Bucket: time.Hour}
	errs := []error{parseTime(v, "from", &q.From), parseTime(v, "to", &q.To)}
	if s := first(v, "bucket"); s != "" {
		d, err := parseBucket(s)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("bucket: %q is not a duration such as 1m, 15m, 1h or 1d", s))
		case d < audit.MinBucket || d > audit.MaxBucket || d%time.Minute != 0:
			errs = append(errs, fmt.Errorf("bucket: must be a whole number of minutes between %s and %s", audit.MinBucket, audit.MaxBucket))
		default:
			q.Bucket = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		return q, err
	}
	if q.To.IsZero() {
		// The bucket holding now is included whole.
		q.To = q.BucketStart(now).Add(q.Bucket)
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-DefaultStatsRange)
	}
	q = q.Normalized()
	for _, p := range []struct {
		name string
		t    time.Time
	}{{"from", q.From}, {"to", q.To}} {
		if name, t := p.name, p.t; t.Before(audit.MinTime) || t.After(audit.MaxTime) {
			errs = append(errs, fmt.Errorf("%s: outside [%s, %s]", name, audit.MinTime.Format(time.RFC3339), audit.MaxTime.Format(time.RFC3339)))
		}
	}
	switch {
	case !q.To.After(q.From):
		errs = append(errs, errors.New("to: not after from"))
	case q.To.Sub(q.From)/q.Bucket > audit.MaxBuckets:
		errs = append(errs, fmt.Errorf("bucket: %s in buckets of %s is more than %d buckets", q.To.Sub(q.From), q.Bucket, audit.MaxBuckets))
	}
	return q, errors.Join(errs...)
}

// parseBucket reads a Go duration or a whole number of days ("1d", "7d").
func parseBucket(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, errors.New("bad number of days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	q, err := ParseStatsQuery(r.URL.Query(), time.Now())
	if err != nil {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	st, err := a.store.Stats(r.Context(), q)
	if err != nil {
		a.storeError(w, err, "stats query failed")
		return
	}
	ops.WriteJSON(w, http.StatusOK, st)
}

// storeError answers a failed store call: 400 for a query the store
// refuses, 503 for anything else (the store may be down; try again).
func (a *API) storeError(w http.ResponseWriter, err error, msg string) {
	if errors.Is(err, audit.ErrInvalidQuery) {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	a.log.Error().Err(err).Msg(msg)
	ops.WriteJSON(w, http.StatusServiceUnavailable, apiError{Error: "audit store unavailable"})
}

func first(v map[string][]string, k string) string {
	if vs := v[k]; len(vs) > 0 {
		return strings.TrimSpace(vs[0])
	}
	return ""
}

// parseTime sets *dst from the RFC 3339 parameter name when it is given.
func parseTime(v map[string][]string, name string, dst *time.Time) error {
	s := first(v, name)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("%s: not an RFC 3339 time", name)
	}
	*dst = t
	return nil
}

// parseRange sets from and to from their RFC 3339 parameters and checks
// that to is not before from.
func parseRange(v map[string][]string, from, to *time.Time) error {
	err := errors.Join(parseTime(v, "from", from), parseTime(v, "to", to))
	if !from.IsZero() && !to.IsZero() && to.Before(*from) {
		err = errors.Join(err, errors.New("to: before from"))
	}
	return err
}

// parseInt sets *dst from the integer parameter name when it is given,
// which must lie in [lo, hi].
func parseInt(v map[string][]string, name string, dst *int, lo, hi int) error {
	s := first(v, name)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("%s: must be an integer in [%d, %d]", name, lo, hi)
	}
	*dst = n
	return nil
}
