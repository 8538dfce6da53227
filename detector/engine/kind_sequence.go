package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Steps of a sequence_threshold record.
const (
	stepOf uint8 = iota + 1
	stepThen
)

// sequenceEval evaluates KindSequenceThreshold.
type sequenceEval struct {
	count   int
	of      cond
	then    cond
	reset   bool
	resetBy []accessor
	// cleared is scratch space: the reset_by values of the Then records
	// met while scanning back; beyond linearCleared of them, clearedSet
	// holds them all.
	cleared    [][maxDistinct]string
	clearedSet map[[maxDistinct]string]struct{}
}

// linearCleared is how many cleared values a scan searches one by one
// before it puts them in a map: a group of an address-rotating attack
// meets hundreds.
const linearCleared = 16

var _ evaluator = (*sequenceEval)(nil)

func newSequenceEval(p *SequenceThreshold, act *eventActivation) *sequenceEval {
	reset := true
	if p.Reset != nil {
		reset = *p.Reset
	}
	s := &sequenceEval{count: p.Count, of: newCond(p.Of.expr(), act), then: newCond(p.Then.expr(), act), reset: reset}
	for _, f := range p.ResetBy {
		get, _ := lookupField(f)
		s.resetBy = append(s.resetBy, get)
	}
	return s
}

func (s *sequenceEval) record(ev *schemas.AuditEvent, _ string, rec *record) bool {
	switch {
	case s.then.match():
		rec.step = stepThen
	case s.of.match():
		rec.step = stepOf
	default:
		return false
	}
	for i, get := range s.resetBy {
		rec.vals[i] = get(ev)
	}
	return true
}

// canStart: only the of events begin a detection; then events alone
// (a user's logins, with no failure before them) never will.
func (s *sequenceEval) canStart(recs []record) bool {
	for i := range recs {
		if recs[i].step == stepOf {
			return true
		}
	}
	return false
}

func (s *sequenceEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	last := &recs[end]
	if last.step != stepThen {
		return finding{}, false
	}
	from := last.t.Add(-window)
	n := 0
	s.scan(recs, end, from, func(int) { n++ })
	if n < s.count {
		return finding{}, false
	}
	// The evidence is the newest of the counted events, then the last.
	ev := make([]int, 0, min(n, MaxEvidenceRecords-1)+1)
	var types []string
	s.scan(recs, end, from, func(j int) {
		if len(ev) == MaxEvidenceRecords-1 {
			return
		}
		ev = append(ev, j)
		if t := string(recs[j].evType()); !slices.Contains(types, t) {
			types = append(types, t)
		}
	})
	slices.Reverse(ev)
	ev = append(ev, end)
	slices.Sort(types)
	return finding{
		evidence: ev,
		summary:  fmt.Sprintf("%d %s then %s within %s", n, strings.Join(types, "/"), last.evType(), window),
	}, true
}

// scan calls count, newest first, for every Of record before end and not
// before from that no Then record in between cleared.
func (s *sequenceEval) scan(recs []record, end int, from time.Time, count func(int)) {
	s.cleared = s.cleared[:0]
	clear(s.clearedSet)
	for j := end - 1; j >= 0 && !recs[j].t.Before(from); j-- {
		r := &recs[j]
		if r.step == stepThen {
			switch {
			case !s.reset:
			case len(s.resetBy) == 0:
				return
			default:
				s.addCleared(&r.vals)
			}
			continue
		}
		if len(s.resetBy) > 0 && s.isCleared(&r.vals) {
			continue
		}
		count(j)
	}
}

// addCleared adds vals to the cleared values.
func (s *sequenceEval) addCleared(vals *[maxDistinct]string) {
	switch {
	case len(s.clearedSet) > 0:
		s.clearedSet[*vals] = struct{}{}
	case s.isCleared(vals):
	case len(s.cleared) < linearCleared:
		s.cleared = append(s.cleared, *vals)
	default:
		if s.clearedSet == nil {
			s.clearedSet = make(map[[maxDistinct]string]struct{})
		}
		for _, c := range s.cleared {
			s.clearedSet[c] = struct{}{}
		}
		s.clearedSet[*vals] = struct{}{}
	}
}

// isCleared reports whether vals are among the cleared values, comparing
// only the reset_by values (the others are empty).
func (s *sequenceEval) isCleared(vals *[maxDistinct]string) bool {
	if len(s.clearedSet) > 0 {
		_, ok := s.clearedSet[*vals]
		return ok
	}
	n := len(s.resetBy)
	for i := range s.cleared {
		c := &s.cleared[i]
		if c[0] == vals[0] && (n < 2 || c[1] == vals[1]) && (n < 3 || c[2] == vals[2]) {
			return true
		}
	}
	return false
}

var _ compactor = (*sequenceEval)(nil)

// compact drops the Then records older than before that no Of record
// precedes: they clear nothing and complete nothing any more.
func (s *sequenceEval) compact(recs []record, before time.Time) []record {
	k := 0
	for k < len(recs) && recs[k].t.Before(before) && recs[k].step == stepThen {
		k++
	}
	if k == 0 {
		return recs
	}
	// As geoEval.compact: slice past them.
	clear(recs[:k])
	return recs[k:]
}
