package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Steps of a token_lineage record. vals[0] is the event's token id.
const (
	stepGrant uint8 = 1 + iota
	stepRevoked
	stepUse
)

// maxLineageDepth bounds how many ancestors of a token are followed.
const maxLineageDepth = 8

// lineageEval evaluates KindTokenLineage.
type lineageEval struct {
	scopes, resource, revoked bool
	hierarchical              []string

	// granted holds, for every token a grant was recorded for, the event
	// time of its newest grant. Most uses are of tokens no exchange
	// minted; a use whose token has no grant within the window is
	// settled here, without scanning the group's grants (a user's can
	// number hundreds within the window: the scan was a tenth of the
	// detector's time per event). It may name tokens whose grant records
	// are gone (a filter, never a source of findings); sweepGrants bounds
	// it to grants within keep of the newest.
	granted map[string]time.Time
	newest  time.Time
	keep    time.Duration
	added   int // grants recorded since the last sweep
}

var _ evaluator = (*lineageEval)(nil)

// grantSweepEvery is how many grants are recorded between sweeps of
// lineageEval.granted.
const grantSweepEvery = 4096

func newLineageEval(p *TokenLineage, window time.Duration) *lineageEval {
	on := func(b *bool) bool { return b == nil || *b }
	return &lineageEval{scopes: on(p.Scopes), resource: on(p.Resource), revoked: on(p.Revoked),
		hierarchical: slices.Clone(p.HierarchicalTypes),
		// Twice the window: a use can be older than the newest event by
		// the out-of-order allowance, which is far less than a window.
		granted: make(map[string]time.Time), keep: 2 * window}
}

// noteGrant remembers a grant of token at t.
func (l *lineageEval) noteGrant(token string, t time.Time) {
	if old, ok := l.granted[token]; !ok || t.After(old) {
		l.granted[token] = t
	}
	if t.After(l.newest) {
		l.newest = t
	}
	if l.added++; l.added >= grantSweepEvery {
		l.sweepGrants()
	}
}

// sweepGrants forgets grants older than keep before the newest.
func (l *lineageEval) sweepGrants() {
	l.added = 0
	cut := l.newest.Add(-l.keep)
	for tok, t := range l.granted {
		if t.Before(cut) {
			delete(l.granted, tok)
		}
	}
}

func (l *lineageEval) record(ev *schemas.AuditEvent, _ string, rec *record) bool {
	if ev.TokenID == "" {
		return false
	}
	rec.vals[0] = ev.TokenID
	switch ev.Type {
	case schemas.EventTokenExchanged:
		rec.step = stepGrant
		l.noteGrant(ev.TokenID, ev.Time)
		rec.ext = &recordExt{parent: ev.ParentTokenID, scopes: slices.Clone(ev.Scopes)}
		if ev.Resource != nil {
			rec.ext.resType, rec.ext.resID = ev.Resource.Type, ev.Resource.ID
		}
	case schemas.EventTokenRevoked:
		if !l.revoked {
			return false
		}
		rec.step = stepRevoked
	case schemas.EventTokenIssued:
		return false
	default:
		rec.step = stepUse
		rec.flags |= recTransient
		if len(ev.Scopes) > 0 || ev.Resource != nil {
			rec.ext = &recordExt{scopes: slices.Clone(ev.Scopes)}
			if ev.Resource != nil {
				rec.ext.resType, rec.ext.resID = ev.Resource.Type, ev.Resource.ID
			}
		}
	}
	return true
}

// grant finds the newest grant of token before end within the window.
func grantOf(recs []record, end int, from time.Time, token string) int {
	for j := end - 1; j >= 0 && !recs[j].t.Before(from); j-- {
		if recs[j].step == stepGrant && recs[j].vals[0] == token {
			return j
		}
	}
	return -1
}

func (l *lineageEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	use := &recs[end]
	if use.step != stepUse {
		return finding{}, false
	}
	from := use.t.Add(-window)
	if t, ok := l.granted[use.vals[0]]; !ok || t.Before(from) {
		return finding{}, false // no grant of the token within the window
	}
	g := grantOf(recs, end, from, use.vals[0])
	if g < 0 {
		return finding{}, false
	}
	grant := recs[g].ext
	if l.scopes && use.ext != nil && len(grant.scopes) > 0 {
		for _, s := range use.ext.scopes {
			if !slices.Contains(grant.scopes, s) {
				return finding{evidence: []int{g, end},
					summary: fmt.Sprintf("downscoped token %s used with scope %q beyond its grant %v", use.vals[0], s, grant.scopes)}, true
			}
		}
	}
	if l.resource && use.ext != nil && grant.resID != "" && use.ext.resID != "" && !slices.Contains(l.hierarchical, grant.resType) &&
		(use.ext.resType != grant.resType || use.ext.resID != grant.resID) {
		return finding{evidence: []int{g, end},
			summary: fmt.Sprintf("downscoped token %s used on %s %s, granted %s %s", use.vals[0], use.ext.resType, use.ext.resID, grant.resType, grant.resID)}, true
	}
	if !l.revoked {
		return finding{}, false
	}
	// The token's ancestors, nearest first.
	ancestors := make([]string, 0, 2)
	for p, j, depth := grant.parent, g, 0; p != "" && depth < maxLineageDepth; depth++ {
		ancestors = append(ancestors, p)
		if j = grantOf(recs, j, from, p); j < 0 {
			break
		}
		p = recs[j].ext.parent
	}
	for j := end - 1; j >= 0 && !recs[j].t.Before(from); j-- {
		r := &recs[j]
		if r.step != stepRevoked || !slices.Contains(ancestors, r.vals[0]) || !r.t.Before(use.t) {
			continue
		}
		ev := []int{g, j, end}
		if j < g {
			ev = []int{j, g, end}
		}
		return finding{evidence: ev,
			summary: fmt.Sprintf("downscoped token %s used after its ancestor %s was revoked", use.vals[0], r.vals[0])}, true
	}
	return finding{}, false
}
