package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Join modes of a sequence step.
const (
	joinSame uint8 = iota
	joinDiffer
	joinAny
)

// stepsEval evaluates KindSequence. A record's step is a bit set of the
// steps its event matches; vals[0] holds the join value and vals[1..]
// the values of the steps' distinct fields.
type stepsEval struct {
	steps []stepEval
	join  accessor
	// distinct are the accessors of the distinct fields, by slot.
	distinct []accessor
	// seen is scratch space for distinct values.
	seen []string
}

type stepEval struct {
	when  cond
	count int
	slot  int // 1 + index into distinct, or 0
	join  uint8
}

var _ evaluator = (*stepsEval)(nil)

func newStepsEval(p *Sequence, act *eventActivation) *stepsEval {
	s := &stepsEval{}
	if p.Join != "" {
		s.join, _ = lookupField(p.Join)
	}
	var slots []string
	for _, st := range p.Steps {
		se := stepEval{when: newCond(st.When, act), count: max(st.Count, 1)}
		switch st.Join {
		case "differ":
			se.join = joinDiffer
		case "any":
			se.join = joinAny
		}
		if p.Join == "" {
			se.join = joinAny
		}
		if st.Distinct != "" {
			i := slices.Index(slots, st.Distinct)
			if i < 0 {
				slots = append(slots, st.Distinct)
				get, _ := lookupField(st.Distinct)
				s.distinct = append(s.distinct, get)
				i = len(slots) - 1
			}
			se.slot = i + 1
		}
		s.steps = append(s.steps, se)
	}
	return s
}

func (s *stepsEval) record(ev *schemas.AuditEvent, _ string, rec *record) bool {
	for i := range s.steps {
		if s.steps[i].when.match() {
			rec.step |= 1 << i
		}
	}
	if rec.step == 0 {
		return false
	}
	if s.join != nil {
		rec.vals[0] = s.join(ev)
	}
	for i, get := range s.distinct {
		rec.vals[1+i] = get(ev)
	}
	last := len(s.steps) - 1
	if rec.step == 1<<last && s.steps[last].count == 1 {
		rec.flags |= recTransient
	}
	return true
}

func (s *stepsEval) joins(st *stepEval, r *record, v string) bool {
	switch st.join {
	case joinSame:
		return r.vals[0] == v
	case joinDiffer:
		return r.vals[0] != v
	}
	return true
}

// canStart: a detection begins with an event of the first step.
func (s *stepsEval) canStart(recs []record) bool {
	for i := range recs {
		if recs[i].step&1 != 0 {
			return true
		}
	}
	return false
}

func (s *stepsEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	last := &recs[end]
	lastStep := len(s.steps) - 1
	if last.step&(1<<lastStep) == 0 {
		return finding{}, false
	}
	jv := last.vals[0]
	if s.join != nil && jv == "" {
		return finding{}, false
	}
	from := last.t.Add(-window)
	pos := windowStart(recs, end, from)
	var ev []int
	var parts []string
	// Each step takes the earliest events that complete it after the
	// previous step completed: if any order of events fits, this one does.
	for i := range s.steps {
		st := &s.steps[i]
		n, done, first := 0, -1, len(ev)
		s.seen = s.seen[:0]
		for j := pos; j <= end; j++ {
			r := &recs[j]
			if r.step&(1<<i) == 0 || !s.joins(st, r, jv) {
				continue
			}
			if i < lastStep && j == end {
				break
			}
			if st.slot > 0 {
				v := r.vals[st.slot]
				if v == "" || slices.Contains(s.seen, v) {
					continue
				}
				s.seen = append(s.seen, v)
			}
			n++
			ev = append(ev, j)
			if n >= st.count && (i < lastStep || j == end) {
				done = j
				break
			}
		}
		if done < 0 || (i == lastStep && done != end) {
			return finding{}, false
		}
		if n > st.count {
			// The last step's earlier matches count towards it, but only
			// the newest it needs are its evidence.
			ev = append(ev[:first], ev[len(ev)-st.count:]...)
			n = st.count
		}
		desc := string(recs[done].evType())
		if st.count > 1 {
			desc = fmt.Sprintf("%d %s", n, typesOf(pick(recs, ev[len(ev)-n:])))
			if st.slot > 0 {
				desc += fmt.Sprintf(" (%d distinct)", n)
			}
		}
		parts = append(parts, desc)
		pos = done + 1
	}
	return finding{
		evidence: ev,
		summary:  fmt.Sprintf("%s within %s", strings.Join(parts, " then "), window),
	}, true
}

func pick(recs []record, idx []int) []record {
	out := make([]record, len(idx))
	for i, j := range idx {
		out[i] = recs[j]
	}
	return out
}
