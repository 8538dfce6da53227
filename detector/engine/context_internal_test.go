package engine

import (
	"math"
	"testing"
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
