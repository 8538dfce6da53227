package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// thresholdEval evaluates KindThreshold.
type thresholdEval struct {
	count int
}

var _ evaluator = (*thresholdEval)(nil)

// record keeps every event; with a count of one, an event only ever makes
// its own detection, so its record is transient.
func (t *thresholdEval) record(_ *schemas.AuditEvent, _ string, rec *record) bool {
	if t.count == 1 {
		rec.flags |= recTransient
	}
	return true
}

func (t *thresholdEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	from := recs[end].t.Add(-window)
	start := windowStart(recs, end, from)
	n := end - start + 1
	if n < t.count {
		return finding{}, false
	}
	return finding{
		evidence: newestEvidence(start, end),
		describe: func() string { return fmt.Sprintf("%d %s within %s", n, typesOf(recs[start:end+1]), window) },
	}, true
}

// newestEvidence is the indexes start..end, at most MaxEvidenceRecords of
// the newest.
func newestEvidence(start, end int) []int {
	start = max(start, end-MaxEvidenceRecords+1)
	ev := make([]int, 0, end-start+1)
	for j := start; j <= end; j++ {
		ev = append(ev, j)
	}
	return ev
}

// typesOf names the event types of records, "a/b".
func typesOf(recs []record) string {
	var types []string
	for i := range recs {
		if t := string(recs[i].evType()); !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	slices.Sort(types)
	return strings.Join(types, "/")
}

// volumeEval evaluates KindVolume.
type volumeEval struct {
	field    string
	get      accessor
	min      int64
	minCount int
}

var _ evaluator = (*volumeEval)(nil)

func newVolumeEval(p *Volume) *volumeEval {
	v := &volumeEval{field: p.Field, min: p.Min, minCount: p.MinCount}
	if p.Field != "bytes" {
		v.get, _ = lookupField(p.Field)
	}
	return v
}

func (v *volumeEval) record(ev *schemas.AuditEvent, _ string, rec *record) bool {
	if v.get == nil {
		rec.num = ev.Bytes
	} else if n, err := strconv.ParseInt(v.get(ev), 10, 64); err == nil && n > 0 {
		rec.num = n
	}
	// Without a count threshold, an event adding nothing is not kept.
	return rec.num > 0 || v.minCount > 0
}

var _ inserter = (*volumeEval)(nil)

// inserted keeps the running sum of num (record.cum) from the record
// inserted on, so that evaluate sums a window without reading it.
func (v *volumeEval) inserted(recs []record, i int) {
	var cum int64
	if i > 0 {
		cum = recs[i-1].cum
	}
	for j := i; j < len(recs); j++ {
		cum += recs[j].num
		recs[j].cum = cum
	}
}

func (v *volumeEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	start := windowStart(recs, end, recs[end].t.Add(-window))
	sum := recs[end].cum - recs[start].cum + recs[start].num
	n := end - start + 1
	if !(v.min > 0 && sum >= v.min) && !(v.minCount > 0 && n >= v.minCount) {
		return finding{}, false
	}
	return finding{
		evidence: newestEvidence(start, end),
		describe: func() string {
			return fmt.Sprintf("%d %s totalling %d %s within %s", n, typesOf(recs[start:end+1]), sum, v.field, window)
		},
	}, true
}
