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
	mins   [maxDistinct]int
	maxPer int
	// seen is scratch space: per field, the distinct values found so far
	// and the index of their newest record; at indexes each value's
	// position in seen, so a group of many distinct values (one address
	// failing as thousands of users) costs one map lookup per record, not
	// a scan of every value seen.
	seen [maxDistinct][]seenValue
	at   [maxDistinct]map[string]int
}

type seenValue struct {
	v   string
	idx int
	n   int
}

var _ evaluator = (*distinctEval)(nil)

func newDistinctEval(p *Distinct) *distinctEval {
	d := &distinctEval{fields: slices.Clone(p.Fields), maxPer: p.MaxPerValue}
	for i, f := range p.Fields {
		get, _ := lookupField(f)
		d.get = append(d.get, get)
		d.mins[i] = p.Min
		if m, ok := p.MinPerField[f]; ok {
			d.mins[i] = m
		}
	}
	return d
}

// record keeps the event's values of the fields; an event with none of
// them cannot add a distinct value and is not kept.
func (d *distinctEval) record(ev *schemas.AuditEvent, _ string, rec *record) bool {
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
		if d.at[f] == nil {
			d.at[f] = make(map[string]int)
		}
		clear(d.at[f])
	}
	// Scanning back from the last record, the first record of each value
	// is that value's newest. A field counts only if the last record has a
	// value for it: the detection is about what the last event added.
	for j := end; j >= 0 && !recs[j].t.Before(from); j-- {
		for f := range d.get {
			v := recs[j].vals[f]
			if v == "" || last.vals[f] == "" {
				continue
			}
			if k, ok := d.at[f][v]; ok {
				d.seen[f][k].n++
				continue
			}
			d.at[f][v] = len(d.seen[f])
			d.seen[f] = append(d.seen[f], seenValue{v: v, idx: j, n: 1})
			if d.maxPer == 0 && len(d.seen[f]) >= d.mins[f] {
				return d.finding(f, window), true
			}
		}
	}
	if d.maxPer == 0 {
		return finding{}, false
	}
	// With max_per_value, every value's count is needed: drop the values
	// seen too often, then count.
	for f := range d.get {
		kept := d.seen[f][:0]
		for _, sv := range d.seen[f] {
			if sv.n <= d.maxPer {
				kept = append(kept, sv)
			}
		}
		d.seen[f] = kept
		if len(kept) >= d.mins[f] {
			return d.finding(f, window), true
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
