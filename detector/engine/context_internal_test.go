package engine

import (
	"fmt"
	"math"
	"strings"
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

// An address's failed sign-ins: half the users who failed signing in
// after it makes the address's failures recovered; failures older than
// the retry window count for nothing; a list of thousands keeps the most
// recent few; and the sweep forgets the address once its failures are out
// of the window.
func TestFailedSignInsAtAnAddress(t *testing.T) {
	ct := newContextTracker(DefaultContextConfig())
	t0 := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	var c Context
	step := func(at time.Duration, typ schemas.EventType, user, ip string) Context {
		ev := &schemas.AuditEvent{ID: user + at.String(), Time: t0.Add(at), Type: typ, UserID: user, IP: ip}
		ct.compute(ev, &c)
		got := c
		ct.learn(ev, &c, true)
		return got
	}
	const office = "198.51.100.20"
	for u := range 4 {
		step(time.Duration(u)*time.Second, schemas.EventLoginFailure, fmt.Sprint("clerk", u), office)
	}
	if c := step(5*time.Second, schemas.EventLoginSuccess, "clerk0", office); c.FailuresRecovered {
		t.Errorf("clerk0 back after a failure, none recovered before: %+v", c)
	}
	if c := step(6*time.Second, schemas.EventLoginSuccess, "clerk9", office); c.FailuresRecovered {
		t.Errorf("a user who never failed, 1 of 4 recovered: %+v", c)
	}
	step(7*time.Second, schemas.EventLoginSuccess, "clerk1", office)
	// clerk0's first failure again, redelivered late: still recovered.
	step(0, schemas.EventLoginFailure, "clerk0", office)
	if c := step(8*time.Second, schemas.EventLoginSuccess, "clerk8", office); !c.FailuresRecovered {
		t.Errorf("2 of 4 recovered: %+v", c)
	}
	// clerk1 fails again: pending until back.
	step(9*time.Second, schemas.EventLoginFailure, "clerk1", office)
	if c := step(10*time.Second, schemas.EventLoginFailure, "clerk7", office); c.FailuresRecovered {
		t.Errorf("1 of 5 recovered: %+v", c)
	}
	if c := step(11*time.Minute, schemas.EventLoginSuccess, "clerk2", office); c.FailuresRecovered {
		t.Errorf("after the window the failures count for nothing: %+v", c)
	}
	if c := step(0, schemas.EventFileDownload, "clerk0", office); c.FailuresRecovered {
		t.Errorf("not a sign-in: %+v", c)
	}

	const proxy = "203.0.113.66"
	for u := range 5000 {
		step(time.Duration(u)*100*time.Millisecond, schemas.EventLoginFailure, fmt.Sprint("listed", u), proxy)
	}
	if n := len(ct.failed[proxy].users); n != maxFailedUsers {
		t.Errorf("an address that tried 5000 users keeps %d, want %d", n, maxFailedUsers)
	}
	// The oldest users signing in change nothing: forgotten. Half of the
	// newest make it recovered.
	for u := range maxFailedUsers {
		step(500*time.Second, schemas.EventLoginSuccess, fmt.Sprint("listed", u), proxy)
	}
	if c := step(500*time.Second, schemas.EventLoginFailure, "listed0", proxy); c.FailuresRecovered {
		t.Error("the oldest failures were kept")
	}
	for u := 5000 - maxFailedUsers/2; u < 5000; u++ {
		step(500*time.Second, schemas.EventLoginSuccess, fmt.Sprint("listed", u), proxy)
	}
	if c := step(501*time.Second, schemas.EventLoginSuccess, "other", proxy); !c.FailuresRecovered {
		t.Error("the newest failures were not kept")
	}
	ct.sweep(t0.Add(500*time.Second + 10*time.Minute + time.Second))
	if _, ok := ct.failed[proxy]; ok || len(ct.failed) != 0 {
		t.Errorf("swept: %d addresses kept", len(ct.failed))
	}
}

// The retry window must be set and at most the longest window.
func TestRetryWindowValidated(t *testing.T) {
	for _, w := range []time.Duration{0, -time.Minute, MaxWindow + time.Second} {
		cfg := DefaultContextConfig()
		cfg.RetryWindow = w
		errs := cfg.validate()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "retry_window") {
			t.Errorf("retry window %s: %v", w, errs)
		}
	}
	if errs := DefaultContextConfig().validate(); len(errs) != 0 {
		t.Errorf("defaults: %v", errs)
	}
}
