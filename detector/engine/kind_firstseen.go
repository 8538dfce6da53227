package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Limits and defaults of first_seen baselines.
const (
	maxBaselineValues     = 256
	defaultBaselineValues = 16
	maxRetention          = 400 * 24 * time.Hour
	defaultRetention      = 90 * 24 * time.Hour
	// lastSeenGranularity is how far a value's LastSeen must move before
	// the change is reported by BaselineChanges: a user seen all day from
	// one place is one change a day, not one per event.
	lastSeenGranularity = 24 * time.Hour
	// baselineSweepInterval is how much event time passes between two
	// sweeps of the baselines.
	baselineSweepInterval = time.Hour
)

// Steps of a first_seen record.
const (
	fsNew  uint8 = 1
	fsThen uint8 = 2
)

// firstSeenEval evaluates KindFirstSeen and holds its baselines.
type firstSeenEval struct {
	rule      string
	fields    []string
	get       []accessor
	learning  time.Duration
	retention time.Duration
	maxValues int
	then      cond
	hasThen   bool
	allNew    bool

	base      map[string]*baseline
	dirty     []*baseline
	forgotten []BaselineEntry
	nextSweep time.Time
}

// baseline is what a first_seen rule learned of one group (one user).
type baseline struct {
	key    string
	since  time.Time
	vals   [maxDistinct][]baseValue
	queued bool // in dirty
	// sinceDirty marks since as changed since the last drain.
	sinceDirty bool
	gone       bool
}

type baseValue struct {
	v           string
	first, last time.Time
	// reported is the LastSeen last reported; dirty marks the value as
	// changed since the last drain.
	reported time.Time
	dirty    bool
}

var (
	_ evaluator    = (*firstSeenEval)(nil)
	_ stateSweeper = (*firstSeenEval)(nil)
)

func newFirstSeenEval(r *Rule, act *eventActivation) *firstSeenEval {
	p := r.FirstSeen
	f := &firstSeenEval{
		rule:      r.ID,
		fields:    slices.Clone(p.Fields),
		learning:  p.Learning.D(),
		retention: p.Retention.D(),
		maxValues: p.MaxValues,
		allNew:    p.AllNew,
		base:      make(map[string]*baseline),
	}
	if f.retention == 0 {
		f.retention = defaultRetention
	}
	if f.maxValues == 0 {
		f.maxValues = defaultBaselineValues
	}
	for _, name := range p.Fields {
		get, _ := lookupField(name)
		f.get = append(f.get, get)
	}
	if p.Then != "" {
		f.then, f.hasThen = newCond(p.Then, act), true
	}
	return f
}

func (f *firstSeenEval) touch(b *baseline) {
	if !b.queued {
		b.queued = true
		f.dirty = append(f.dirty, b)
	}
}

// record learns the event's values. A value is new when no event before
// this one carried it, the group's history is at least the learning period
// old, and the field already has a value learned before: a user's first
// located event is not a new place.
func (f *firstSeenEval) record(ev *schemas.AuditEvent, key string, rec *record) bool {
	b := f.base[key]
	if b == nil {
		b = &baseline{key: key, since: ev.Time, sinceDirty: true}
		f.base[key] = b
		f.touch(b)
	} else if ev.Time.Before(b.since) {
		b.since, b.sinceDirty = ev.Time, true
		f.touch(b)
	}
	mature := ev.Time.Sub(b.since) >= f.learning
	present, fresh := 0, 0
	for i, get := range f.get {
		v := get(ev)
		if v == "" {
			continue
		}
		present++
		vals := b.vals[i]
		k := slices.IndexFunc(vals, func(x baseValue) bool { return x.v == v })
		if k < 0 {
			known := false
			for _, x := range vals {
				known = known || x.first.Before(ev.Time)
			}
			if mature && known {
				fresh++
				rec.vals[i] = v
			}
			b.vals[i] = f.add(b, i, vals, baseValue{v: v, first: ev.Time, last: ev.Time, dirty: true})
			f.touch(b)
			continue
		}
		x := &vals[k]
		if ev.Time.Before(x.first) {
			x.first, x.dirty = ev.Time, true
			f.touch(b)
		}
		if ev.Time.After(x.last) {
			x.last = ev.Time
			if x.last.Sub(x.reported) >= lastSeenGranularity {
				x.dirty = true
				f.touch(b)
			}
		}
		// Replayed after a restore, the event that taught the value
		// finds it learned at its own time: still new.
		if mature && !x.first.Before(ev.Time) {
			known := false
			for j, y := range vals {
				known = known || (j != k && y.first.Before(ev.Time))
			}
			if known {
				fresh++
				rec.vals[i] = v
			}
		}
	}
	if fresh > 0 && (!f.allNew || (present == len(f.get) && fresh == present)) {
		rec.step |= fsNew
	} else {
		clear(rec.vals[:len(f.get)])
	}
	if f.hasThen && f.then.match() {
		rec.step |= fsThen
	}
	if !f.hasThen {
		return rec.step&fsNew != 0
	}
	if rec.step == fsThen {
		rec.flags |= recTransient
	}
	return rec.step != 0
}

// add appends a value, forgetting the least recently seen one beyond the
// bound.
func (f *firstSeenEval) add(b *baseline, i int, vals []baseValue, v baseValue) []baseValue {
	if len(vals) >= f.maxValues {
		old := 0
		for j := range vals {
			if vals[j].last.Before(vals[old].last) {
				old = j
			}
		}
		f.forget(b, i, vals[old])
		vals = slices.Delete(vals, old, old+1)
	}
	return append(vals, v)
}

// forget reports a value as forgotten: an entry with a zero LastSeen.
func (f *firstSeenEval) forget(b *baseline, field int, v baseValue) {
	if v.reported.IsZero() {
		return // never reported: nothing to take back
	}
	f.forgotten = append(f.forgotten, BaselineEntry{Rule: f.rule, Key: b.key, Field: f.fields[field], Value: v.v, FirstSeen: v.first.UTC()})
}

func (f *firstSeenEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	last := &recs[end]
	if !f.hasThen {
		if last.step&fsNew == 0 {
			return finding{}, false
		}
		return finding{evidence: []int{end}, summary: "first " + f.newValues(last)}, true
	}
	if last.step&fsThen == 0 {
		return finding{}, false
	}
	from := last.t.Add(-window)
	for j := end; j >= 0 && !recs[j].t.Before(from); j-- {
		if recs[j].step&fsNew == 0 {
			continue
		}
		ev := []int{j, end}
		if j == end {
			ev = ev[1:]
		}
		return finding{
			evidence: ev,
			summary:  fmt.Sprintf("first %s, then %s within %s", f.newValues(&recs[j]), last.evType(), window),
		}, true
	}
	return finding{}, false
}

func (f *firstSeenEval) newValues(r *record) string {
	var parts []string
	for i, name := range f.fields {
		if r.vals[i] != "" {
			parts = append(parts, name+" "+r.vals[i])
		}
	}
	return strings.Join(parts, ", ")
}

// sweepState forgets, once an hour of event time, values unseen for the
// retention and groups with nothing left.
func (f *firstSeenEval) sweepState(watermark time.Time) {
	if watermark.Before(f.nextSweep) {
		return
	}
	f.nextSweep = watermark.Add(baselineSweepInterval)
	before := watermark.Add(-f.retention)
	for k, b := range f.base {
		left := 0
		for i := range b.vals {
			vals := b.vals[i][:0]
			for _, x := range b.vals[i] {
				if x.last.Before(before) {
					f.forget(b, i, x)
					continue
				}
				vals = append(vals, x)
			}
			clear(b.vals[i][len(vals):])
			b.vals[i] = vals
			left += len(vals)
		}
		if left == 0 && b.since.Before(before) {
			b.gone = true
			delete(f.base, k)
		}
	}
}

func (f *firstSeenEval) stateSize() int { return len(f.base) }

// changes drains the entries changed since the last drain.
func (f *firstSeenEval) changes(out []BaselineEntry) []BaselineEntry {
	out = append(out, f.forgotten...)
	f.forgotten = nil
	for _, b := range f.dirty {
		b.queued = false
		if b.gone {
			continue
		}
		if b.sinceDirty {
			out = append(out, BaselineEntry{Rule: f.rule, Key: b.key, FirstSeen: b.since.UTC(), LastSeen: b.since.UTC()})
			b.sinceDirty = false
		}
		for i := range b.vals {
			for j := range b.vals[i] {
				x := &b.vals[i][j]
				if !x.dirty {
					continue
				}
				out = append(out, BaselineEntry{Rule: f.rule, Key: b.key, Field: f.fields[i], Value: x.v,
					FirstSeen: x.first.UTC(), LastSeen: x.last.UTC()})
				x.dirty, x.reported = false, x.last
			}
		}
	}
	clear(f.dirty)
	f.dirty = f.dirty[:0]
	return out
}

// restore merges entries into the baselines without reporting them.
func (f *firstSeenEval) restore(e BaselineEntry) {
	if e.LastSeen.IsZero() {
		return
	}
	b := f.base[e.Key]
	if b == nil {
		b = &baseline{key: e.Key, since: e.FirstSeen}
		f.base[e.Key] = b
	}
	if e.Field == "" {
		if e.FirstSeen.Before(b.since) {
			b.since = e.FirstSeen
		}
		return
	}
	i := slices.Index(f.fields, e.Field)
	if i < 0 {
		return
	}
	if e.FirstSeen.Before(b.since) {
		b.since = e.FirstSeen
	}
	vals := b.vals[i]
	if k := slices.IndexFunc(vals, func(x baseValue) bool { return x.v == e.Value }); k >= 0 {
		x := &vals[k]
		if e.FirstSeen.Before(x.first) {
			x.first = e.FirstSeen
		}
		if e.LastSeen.After(x.last) {
			x.last, x.reported = e.LastSeen, e.LastSeen
		}
		return
	}
	if len(vals) >= f.maxValues {
		old := 0
		for j := range vals {
			if vals[j].last.Before(vals[old].last) {
				old = j
			}
		}
		if !vals[old].last.Before(e.LastSeen) {
			return
		}
		vals = slices.Delete(vals, old, old+1)
	}
	b.vals[i] = append(vals, baseValue{v: e.Value, first: e.FirstSeen, last: e.LastSeen, reported: e.LastSeen})
}
