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
	count int
	of    matchers
	then  matchers
	reset bool
}

var _ evaluator = (*sequenceEval)(nil)

func newSequenceEval(p *SequenceThreshold) *sequenceEval {
	reset := true
	if p.Reset != nil {
		reset = *p.Reset
	}
	return &sequenceEval{count: p.Count, of: compileConditions(p.Of), then: compileConditions(p.Then), reset: reset}
}

func (s *sequenceEval) record(ev *schemas.AuditEvent, rec *record) bool {
	switch {
	case s.then.match(ev):
		rec.step = stepThen
	case s.of.match(ev):
		rec.step = stepOf
	default:
		return false
	}
	return true
}

func (s *sequenceEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	last := &recs[end]
	if last.step != stepThen {
		return finding{}, false
	}
	from := last.t.Add(-window)
	n := 0
	for j := end - 1; j >= 0 && !recs[j].t.Before(from); j-- {
		if recs[j].step == stepThen {
			if s.reset {
				break
			}
			continue
		}
		n++
	}
	if n < s.count {
		return finding{}, false
	}
	// The evidence is the newest of the counted events, then the last.
	ev := make([]int, 0, min(n, MaxEvidenceRecords-1)+1)
	var types []string
	for j := end - 1; j >= 0 && len(ev) < MaxEvidenceRecords-1 && !recs[j].t.Before(from); j-- {
		if recs[j].step == stepThen {
			if s.reset {
				break
			}
			continue
		}
		ev = append(ev, j)
		if t := string(recs[j].typ); !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	slices.Reverse(ev)
	ev = append(ev, end)
	slices.Sort(types)
	return finding{
		evidence: ev,
		summary:  fmt.Sprintf("%d %s then %s within %s", n, strings.Join(types, "/"), last.typ, window),
	}, true
}
