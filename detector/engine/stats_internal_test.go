package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Stats keeps its counts as the state changes instead of walking it under
// the engine's lock; at every point of a long, mixed run, with sweeps and
// a restore, they equal what a walk of the state finds.
func TestStatsCountsMatchTheState(t *testing.T) {
	rules, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(DefaultConfig(), rules)
	if err != nil {
		t.Fatal(err)
	}
	check := func(at int) {
		t.Helper()
		st := e.Stats()
		for i, rs := range e.rules {
			walked := 0
			for _, g := range rs.groups {
				walked += len(g.recs)
			}
			if st.Rules[i].Records != walked {
				t.Fatalf("after %d events, rule %s: Stats says %d records, the groups hold %d", at, rs.rule.ID, st.Rules[i].Records, walked)
			}
		}
		if e.ctx == nil {
			return
		}
		shared, orgs, candidates := 0, 0, 0
		for _, o := range e.ctx.egress {
			if o == sharedSketch {
				shared++
			} else {
				candidates++
			}
		}
		for _, o := range e.ctx.asns {
			if o == sharedSketch {
				orgs++
			} else {
				candidates++
			}
		}
		c := st.Context
		if c.SharedEgress != shared || c.OrgNetworks != orgs || c.Candidates != candidates {
			t.Fatalf("after %d events: Stats says %d shared, %d networks, %d candidates; the state holds %d, %d, %d",
				at, c.SharedEgress, c.OrgNetworks, c.Candidates, shared, orgs, candidates)
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	types := []schemas.EventType{schemas.EventLoginFailure, schemas.EventLoginFailure, schemas.EventLoginSuccess,
		schemas.EventLoginSuccess, schemas.EventTokenUsed, schemas.EventFileDownload, schemas.EventLogout}
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	const n = 40_000
	for i := range n {
		u := rng.IntN(300)
		ev := schemas.AuditEvent{
			ID: fmt.Sprintf("e%d", i), Type: types[rng.IntN(len(types))], UserID: fmt.Sprintf("u%d", u),
			// Now and then out of order, within the allowance.
			Time:    t0.Add(time.Duration(i)*200*time.Millisecond - time.Duration(rng.IntN(3))*time.Second),
			IP:      fmt.Sprintf("10.0.%d.%d", rng.IntN(4), u%40),
			TokenID: fmt.Sprintf("tok%d", u),
			Geo:     &schemas.Geo{Country: "US", ASN: uint32(64500 + rng.IntN(20))},
		}
		e.Process(&ev)
		if i%5000 == 0 {
			check(i)
		}
	}
	check(n)
}
