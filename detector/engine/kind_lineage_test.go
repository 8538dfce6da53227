package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// TestLineageGrantFilter checks the index of granted tokens that spares a
// use of an ungranted token the scan of its group: a use of a token
// granted within the window is still judged (here, with a scope beyond
// its grant) however many grants came after it and however many sweeps
// ran; a use of a token never granted, or granted before the window, is
// not; and sweeps forget grants older than twice the window.
func TestLineageGrantFilter(t *testing.T) {
	const window = 12 * time.Hour
	l := newLineageEval(&TokenLineage{}, window)
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var recs []record
	grant := func(tok string, at time.Time) {
		var r record
		r.t = at
		ev := &schemas.AuditEvent{Type: schemas.EventTokenExchanged, Time: at, TokenID: tok, ParentTokenID: "parent", Scopes: []string{"files.read"}}
		if !l.record(ev, "u", &r) {
			t.Fatal("grant not recorded")
		}
		recs = append(recs, r)
	}
	use := func(tok string, at time.Time) bool {
		var r record
		r.t = at
		ev := &schemas.AuditEvent{Type: schemas.EventTokenUsed, Time: at, TokenID: tok, Scopes: []string{"files.write"}}
		if !l.record(ev, "u", &r) {
			t.Fatal("use not recorded")
		}
		all := append(recs[:len(recs):len(recs)], r)
		_, ok := l.evaluate(all, len(all)-1, window)
		return ok
	}

	grant("tok-early", t0)
	// More grants than a sweep's period, spread over the next 11 hours.
	n := 3 * grantSweepEvery
	for i := range n {
		grant(fmt.Sprintf("tok-%05d", i), t0.Add(time.Duration(i+1)*11*time.Hour/time.Duration(n)))
	}
	at := t0.Add(11*time.Hour + time.Minute)
	if !use("tok-early", at) {
		t.Error("a use beyond the grant of a token granted 11 h before (within the 12 h window) was not found")
	}
	if use("tok-never-granted", at) {
		t.Error("a use of a token never granted was found")
	}
	if use("tok-early", t0.Add(13*time.Hour)) {
		t.Error("a use of a token granted 13 h before (outside the 12 h window) was found")
	}
	if _, ok := l.granted["tok-early"]; !ok {
		t.Fatal("a grant 11 h old was swept")
	}
	// A day and a half on, the next sweep forgets the first grants.
	recs = recs[:0]
	later := t0.Add(36 * time.Hour)
	for i := range grantSweepEvery {
		grant(fmt.Sprintf("late-%05d", i), later)
	}
	if _, ok := l.granted["tok-early"]; ok {
		t.Error("a grant 36 h old (three windows) was kept after a sweep")
	}
	if len(l.granted) != grantSweepEvery {
		t.Errorf("after the sweep %d grants are remembered, want the %d within twice the window", len(l.granted), grantSweepEvery)
	}
}
