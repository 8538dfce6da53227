package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLatencySplit(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	// 100 revocations: the detector takes each event after i % 10 ms and
	// the token is revoked 2*i ms after that, so the halves' percentiles
	// come from different revocations.
	var rs []Revocation
	for i := range 100 {
		rs = append(rs, Revocation{ToDetector: ms(i % 10), ToRevoked: ms(i%10 + 2*i)})
	}
	var l Latency
	l.percentiles(rs)
	if l.Revocations != 100 {
		t.Errorf("revocations = %d, want 100", l.Revocations)
	}
	if want := (Split{P50: ms(5), P99: ms(9)}); l.ToDetector != want {
		t.Errorf("to detector = %+v, want %+v", l.ToDetector, want)
	}
	if want := (Split{P50: ms(100), P99: ms(198)}); l.ToRevoked != want {
		t.Errorf("then to revoked = %+v, want %+v", l.ToRevoked, want)
	}
	// The totals i%10+2i, sorted: the 51st is 104 (i=48), the 100th 207.
	if l.P50 != ms(104) || l.P99 != ms(207) || l.Max != ms(207) {
		t.Errorf("p50, p99, max = %s, %s, %s, want 104ms, 207ms, 207ms", l.P50, l.P99, l.Max)
	}

	l.Rate, l.Achieved, l.CaughtUp, l.CPU = 1000, 990, true, 1.234
	var out bytes.Buffer
	Results{Latency: []Latency{l}}.Print(&out)
	for _, want := range []string{"1.23 cores", "5.0 ms / 9.0 ms", "100.0 ms / 198.0 ms", "207.0 ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
