package engine_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// BenchmarkEngine feeds the default pack a mix of traffic: logins with
// occasional brute-force bursts, and token use from mostly one place per
// token with occasional replays, over 20k users, in event-time order.
// It reports events per second.
func BenchmarkEngine(b *testing.B) {
	const users, n = 20000, 1 << 16
	rng := rand.New(rand.NewPCG(1, 2))
	countries := []string{"US", "DE", "FR", "GB", "BR", "JP"}
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	events := make([]schemas.AuditEvent, n)
	for i := range events {
		u := rng.IntN(users)
		ev := schemas.AuditEvent{
			ID:     fmt.Sprintf("e%d", i),
			Time:   t0.Add(time.Duration(i) * 5 * time.Millisecond),
			UserID: fmt.Sprintf("u%d", u),
			IP:     "198.51.100.7",
		}
		home := &schemas.Geo{Country: countries[u%len(countries)], ASN: uint32(64500 + u%50)}
		switch r := rng.IntN(100); {
		case r < 20:
			ev.Type = schemas.EventLoginFailure
		case r < 30:
			ev.Type = schemas.EventLoginSuccess
		default:
			ev.Type = schemas.EventTokenUsed
			ev.TokenID = fmt.Sprintf("tok%d-%d", u, rng.IntN(3))
			ev.Geo = home
			if rng.IntN(1000) == 0 {
				ev.Geo = &schemas.Geo{Country: "ZZ", ASN: 1}
			}
		}
		events[i] = ev
	}
	span := events[n-1].Time.Sub(t0) + time.Second

	eng := newDefaultEngine(b, nil)
	b.ReportAllocs()
	b.ResetTimer()
	detections := 0
	for i := 0; b.Loop(); i++ {
		// Later rounds replay the same traffic shifted in time and with new
		// ids, so that time keeps moving forward and state keeps turning
		// over.
		ev := events[i%n]
		if round := i / n; round > 0 {
			ev.Time = ev.Time.Add(time.Duration(round) * span)
			ev.ID = fmt.Sprintf("%s-r%d", ev.ID, round)
		}
		detections += len(eng.Process(&ev))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(detections)/float64(b.N)*1e6, "detections/Mevent")
}
