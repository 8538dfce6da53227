package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// randomRecords returns n records in time order, with ties.
func randomRecords(rng *rand.Rand, t0 time.Time, n int) []record {
	recs := make([]record, n)
	t := t0
	for i := range recs {
		t = t.Add(time.Duration(rng.IntN(3)) * time.Second)
		recs[i] = record{t: t, num: int64(rng.IntN(1000))}
	}
	return recs
}

// windowStart finds what a walk back from end finds: the first record at
// or after from, ties included.
func TestWindowStartIsTheWalkBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 200 {
		recs := randomRecords(rng, t0, 1+rng.IntN(60))
		for end := range recs {
			for _, back := range []time.Duration{0, time.Second, 5 * time.Second, time.Hour} {
				from := recs[end].t.Add(-back)
				want := end
				for want > 0 && !recs[want-1].t.Before(from) {
					want--
				}
				if got := windowStart(recs, end, from); got != want {
					t.Fatalf("windowStart(end %d, back %s) = %d, want %d", end, back, got, want)
				}
			}
		}
	}
}

// volume's running sum gives every window's total, with records inserted
// out of order and the oldest dropped as prune drops them.
func TestVolumeRunningSumMatchesTheWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := &volumeEval{min: 1}
	const window = 20 * time.Second
	g := &group{}
	for i := range 3000 {
		r := record{t: t0.Add(time.Duration(i-rng.IntN(10)) * time.Second), num: int64(1 + rng.IntN(1000))}
		at, _ := g.position(&r)
		g.recs = slices.Insert(g.recs, at, r)
		v.inserted(g.recs, at)
		if i%7 == 0 {
			g.prune(g.recs[len(g.recs)-1].t.Add(-2*window), 40)
		}
		for end := range g.recs {
			start := windowStart(g.recs, end, g.recs[end].t.Add(-window))
			var want int64
			for j := start; j <= end; j++ {
				want += g.recs[j].num
			}
			f, ok := v.evaluate(g.recs, end, window)
			if !ok {
				t.Fatalf("event %d: no finding at end %d with min 1", i, end)
			}
			if got := g.recs[end].cum - g.recs[start].cum + g.recs[start].num; got != want {
				t.Fatalf("event %d: window ending at %d sums to %d, want %d", i, end, got, want)
			}
			if len(f.evidence) == 0 || f.evidence[len(f.evidence)-1] != end {
				t.Fatalf("event %d: evidence %v does not end at %d", i, f.evidence, end)
			}
		}
	}
	// The summary reports the sum.
	g.recs = g.recs[:0]
	for i, n := range []int64{100, 250, 7} {
		g.recs = append(g.recs, record{t: t0.Add(time.Duration(i) * time.Second), num: n, typ: typeIndex("file.download")})
		v.inserted(g.recs, i)
	}
	v.field = "bytes"
	f, ok := v.evaluate(g.recs, 2, window)
	if !ok {
		t.Fatal("no finding")
	}
	if got, want := f.text(), "3 file.download totalling 357 bytes within 20s"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
}

// compactGroup keeps what dropping every transient record older than the
// allowance keeps, however records arrive, are pruned and compacted: the
// records it has already looked at (settled) are never looked at again,
// and moving either side of the gaps leaves the same records in order.
func TestCompactGroupKeepsWhatAFullScanKeeps(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, compact := range []compactor{nil, &geoEval{}, &sequenceEval{}} {
		rs := &ruleState{allowance: 10 * time.Second, compact: compact}
		g := &group{}
		var want []record
		for i := range 5000 {
			r := record{t: t0.Add(time.Duration(i-rng.IntN(8)) * time.Second), num: int64(i)}
			if rng.IntN(3) == 0 {
				r.flags |= recTransient
			}
			r.step = uint8(1 + rng.IntN(2)) // stepOf or stepThen for sequence
			at, _ := g.position(&r)
			g.recs = slices.Insert(g.recs, at, r)
			g.settled = min(g.settled, at)
			if r.flags&recTransient != 0 {
				g.transient++
			}
			if r.t.After(g.newest) {
				g.newest = r.t
			}
			want = slices.Insert(want, at, r)
			if i%11 == 0 {
				n := len(g.recs)
				g.prune(g.newest.Add(-time.Minute), 50)
				want = want[len(want)-len(g.recs):]
				if n-len(g.recs) > 0 && !slices.EqualFunc(want, g.recs, sameRecord) {
					t.Fatal("prune diverged")
				}
			}
			rs.compactGroup(g)
			before := g.newest.Add(-rs.allowance)
			want = slices.DeleteFunc(want, func(r record) bool { return r.flags&recTransient != 0 && r.t.Before(before) })
			if compact != nil {
				want = compact.compact(slices.Clone(want), before)
			}
			if !slices.EqualFunc(want, g.recs, sameRecord) {
				t.Fatalf("%T, event %d: compactGroup kept %d records, a full scan %d", compact, i, len(g.recs), len(want))
			}
			n := 0
			for _, r := range g.recs {
				if r.flags&recTransient != 0 {
					n++
				}
			}
			if n != g.transient {
				t.Fatalf("%T, event %d: %d transient records, group counts %d", compact, i, n, g.transient)
			}
			for _, r := range g.recs[:g.settled] {
				if r.flags&recTransient != 0 || !r.t.Before(before) {
					t.Fatalf("%T, event %d: a settled record is transient or within the allowance", compact, i)
				}
			}
		}
	}
}

func sameRecord(a, b record) bool { return a.t.Equal(b.t) && a.num == b.num && a.flags == b.flags }
