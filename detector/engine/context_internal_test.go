package engine

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// The organisation sketch tells one user from a few and a few from twenty:
// averaged over many addresses, its estimate at the default thresholds is
// within a few percent, and an address reaches "shared" within a couple of
// users of the threshold.
func TestSketchCountsDistinctUsers(t *testing.T) {
	for _, n := range []int{1, 2, 5, 10, 20, 30} {
		var sum float64
		const trials = 2000
		for trial := range trials {
			var sk orgSketch
			for u := range n {
				sk, _ = addUser(sk, fnv32(string(rune('a'+trial%26)), string(rune(trial)), string(rune(u))), 255)
			}
			sum += sketchCount(sk)
		}
		mean := sum / trials
		if math.Abs(mean-float64(n)) > 0.06*float64(n)+0.1 {
			t.Errorf("%d users: mean estimate %.2f", n, mean)
		}
	}
	reached := make([]int, 0, 500)
	for trial := range 500 {
		var sk orgSketch
		for u := 1; u <= 64; u++ {
			var shared bool
			sk, shared = addUser(sk, fnv32("addr", string(rune(trial)), string(rune(u))), 20)
			if shared {
				reached = append(reached, u)
				break
			}
		}
	}
	var mean float64
	for _, u := range reached {
		mean += float64(u)
	}
	mean /= float64(len(reached))
	if len(reached) != 500 || mean < 18 || mean > 23 {
		t.Errorf("shared after %.1f users on average (%d of 500 reached it), want about 20", mean, len(reached))
	}
	// The same user again changes nothing.
	sk, _ := addUser(0, 42, 20)
	if again, _ := addUser(sk, 42, 20); again != sk {
		t.Error("a user counted twice")
	}
}

// What the organisation baseline learned (an address twenty users sign in
// from) is drained as entries, and an engine restored from them knows the
// address as shared at once.
func TestSharedEgressSurvivesRestore(t *testing.T) {
	ct := newContextTracker(DefaultContextConfig())
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	var c Context
	for u := range 40 {
		ev := &schemas.AuditEvent{ID: fmt.Sprint(u), Time: t0.Add(time.Duration(u) * time.Minute), Type: schemas.EventLoginSuccess,
			UserID: fmt.Sprintf("student%d", u), IP: "128.103.1.1"}
		ct.compute(ev, &c)
		ct.learn(ev, &c, true)
	}
	probe := &schemas.AuditEvent{ID: "p", Time: t0.Add(time.Hour), Type: schemas.EventLoginFailure, UserID: "student99", IP: "128.103.1.1"}
	ct.compute(probe, &c)
	if !c.SharedEgress {
		t.Fatal("40 users from one address: not a shared egress")
	}
	entries := ct.drain(nil)
	restored := newContextTracker(DefaultContextConfig())
	for _, en := range entries {
		restored.restore(en)
	}
	restored.compute(probe, &c)
	if !c.SharedEgress {
		t.Errorf("restored from %d entries: the address is not known as shared", len(entries))
	}
	other := &schemas.AuditEvent{ID: "o", Time: t0.Add(time.Hour), Type: schemas.EventLoginFailure, UserID: "x", IP: "198.51.100.7"}
	if restored.compute(other, &c); c.SharedEgress {
		t.Error("an address no one signed in from is shared")
	}
}
