package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// distinctEval evaluates KindDistinct.
type distinctEval struct {
	fields []string
	get    []accessor
	min    int
	// seen is scratch space: per field, the distinct values found so far
	// and the index of their newest record.
	seen [maxDistinct][]seenValue
}

type seenValue struct {
	v   string
	idx int
}

var _ evaluator = (*distinctEval)(nil)

func newDistinctEval(p *Distinct) *distinctEval {
	d := &distinctEval{fields: slices.Clone(p.Fields), min: p.Min}
	for _, f := range p.Fields {
		get, _ := lookupField(f)
		d.get = append(d.get, get)
	}
	return d
}

// record keeps the event's values of the fields; an event with none of
// them cannot add a distinct value and is not kept.
func (d *distinctEval) record(ev *schemas.AuditEvent, rec *record) bool {
	some := false
	for i, get := range d.get {
		rec.vals[i] = get(ev)
		some = some || rec.vals[i] != ""
	}
	return some
}

func (d *distinctEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	last := &recs[end]
	from := last.t.Add(-window)
	for f := range d.get {
		d.seen[f] = d.seen[f][:0]
	}
	// Scanning back from the last record, the first record of each value
	// is that value's newest. A field counts only if the last record has a
	// value for it: the detection is about what the last event added.
	for j := end; j >= 0 && !recs[j].t.Before(from); j-- {
		for f := range d.get {
			v := recs[j].vals[f]
			if v == "" || last.vals[f] == "" || containsValue(d.seen[f], v) {
				continue
			}
			d.seen[f] = append(d.seen[f], seenValue{v: v, idx: j})
			if len(d.seen[f]) >= d.min {
				return d.finding(f, window), true
			}
		}
	}
	return finding{}, false
}

func (d *distinctEval) finding(f int, window time.Duration) finding {
	seen := d.seen[f]
	ev := make([]int, len(seen))
	vals := make([]string, len(seen))
	for i, s := range seen {
		ev[i], vals[i] = s.idx, s.v
	}
	slices.Sort(ev)
	slices.Sort(vals)
	return finding{
		evidence: ev,
		summary:  fmt.Sprintf("%d distinct %s (%s) within %s", len(seen), d.fields[f], strings.Join(vals, ", "), window),
	}
}

func containsValue(s []seenValue, v string) bool {
	for _, x := range s {
		if x.v == v {
			return true
		}
	}
	return false
}
