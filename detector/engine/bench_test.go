package engine_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/schemas"
)

// benchTraffic is a mix of traffic over users: logins with occasional
// brute-force bursts, token use from mostly one place per user (located,
// with the user's home address and network) with occasional replays from
// abroad, downloads, shares, token exchanges and logouts, in event-time
// order, one event every step.
func benchTraffic(users, n int, step time.Duration) []schemas.AuditEvent {
	rng := rand.New(rand.NewPCG(1, 2))
	type place struct {
		country  string
		lat, lon float64
	}
	places := []place{{"US", 40.7, -74}, {"DE", 50.1, 8.7}, {"FR", 48.9, 2.35}, {"GB", 51.5, -0.1}, {"BR", -23.5, -46.6}, {"JP", 35.7, 139.7}}
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	events := make([]schemas.AuditEvent, n)
	for i := range events {
		u := rng.IntN(users)
		p := places[u%len(places)]
		lat, lon := p.lat, p.lon
		ev := schemas.AuditEvent{
			ID:     fmt.Sprintf("e%d", i),
			Time:   t0.Add(time.Duration(i) * step),
			UserID: fmt.Sprintf("u%d", u),
			IP:     fmt.Sprintf("10.%d.%d.%d", u>>16&255, u>>8&255, u&255),
			Geo:    &schemas.Geo{Country: p.country, ASN: uint32(64500 + u%50), Lat: &lat, Lon: &lon},
		}
		switch r := rng.IntN(100); {
		case r < 15:
			ev.Type = schemas.EventLoginFailure
		case r < 25:
			ev.Type = schemas.EventLoginSuccess
		case r < 30:
			ev.Type = schemas.EventFileDownload
			ev.TokenID = fmt.Sprintf("tok%d-%d", u, rng.IntN(3))
			ev.Bytes = int64(rng.IntN(50 << 20))
			ev.Resource = &schemas.Resource{Type: "file", ID: fmt.Sprintf("f%d", rng.IntN(1000))}
		case r < 32:
			ev.Type = schemas.EventShareCreated
			ev.Resource = &schemas.Resource{Type: "file", ID: fmt.Sprintf("f%d", rng.IntN(1000))}
		case r < 33:
			ev.Type = schemas.EventTokenExchanged
			ev.ParentTokenID = fmt.Sprintf("tok%d-%d", u, rng.IntN(3))
			ev.TokenID = fmt.Sprintf("child%d-%d", u, i)
			ev.Scopes = []string{"item_preview"}
			ev.Resource = &schemas.Resource{Type: "file", ID: fmt.Sprintf("f%d", rng.IntN(1000))}
		case r < 34:
			ev.Type = schemas.EventLogout
			ev.SessionID = fmt.Sprintf("s%d", u)
		default:
			ev.Type = schemas.EventTokenUsed
			ev.TokenID = fmt.Sprintf("tok%d-%d", u, rng.IntN(3))
			if rng.IntN(1000) == 0 {
				zlat, zlon := -33.9, 151.2
				ev.Geo = &schemas.Geo{Country: "AU", ASN: 1, Lat: &zlat, Lon: &zlon}
				ev.IP = "203.0.113.77"
			}
		}
		events[i] = ev
	}
	return events
}

// BenchmarkEngine feeds the default pack benchTraffic over 20k users and
// reports events per second. Run it with -cpu 1 for the rate of one core.
func BenchmarkEngine(b *testing.B) {
	const users, n = 20000, 1 << 16
	events := benchTraffic(users, n, 5*time.Millisecond)
	t0 := events[0].Time
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

// BenchmarkStatePerUser measures the memory the default pack holds per
// tracked user: 1,000,000 users each log in (located, from their own
// address) and use a token three times, once to download a file, within
// ten minutes of event time, interleaved. It reports the live heap after
// a GC, divided by the users (bytes/user: every user's last event still
// within the out-of-order allowance, as if all million had been active in
// the last two minutes), and again once event time has moved past the
// allowance (settled-bytes/user: what an idle tracked user costs). It runs once whatever b.N is; run it with
// -bench StatePerUser -benchtime 1x.
func BenchmarkStatePerUser(b *testing.B) {
	users := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("REVOKED_BENCH_USERS")); err == nil && n > 0 {
		users = n
	}
	countries := []string{"US", "DE", "FR", "GB", "BR", "JP"}
	lats := []float64{40.7, 50.1, 48.9, 51.5, -23.5, 35.7}
	lons := []float64{-74, 8.7, 2.35, -0.1, -46.6, 139.7}
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	step := 10 * time.Minute / time.Duration(4*users)
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		eng := newDefaultEngine(b, nil)
		i := 0
		for round := range 4 {
			for u := range users {
				c := u % len(countries)
				ev := schemas.AuditEvent{
					ID:     "e" + strconv.Itoa(round) + "-" + strconv.Itoa(u),
					Time:   t0.Add(time.Duration(i) * step),
					UserID: "user-" + strconv.Itoa(u),
					IP:     fmt.Sprintf("10.%d.%d.%d", u>>16&255, u>>8&255, u&255),
					Geo:    &schemas.Geo{Country: countries[c], ASN: uint32(64500 + u%50), Lat: &lats[c], Lon: &lons[c]},
				}
				switch round {
				case 0:
					ev.Type, ev.SessionID = schemas.EventLoginSuccess, "s-"+strconv.Itoa(u)
				case 2:
					ev.Type, ev.TokenID, ev.Bytes = schemas.EventFileDownload, "tok-"+strconv.Itoa(u), 1<<20
					ev.Resource = &schemas.Resource{Type: "file", ID: "f-" + strconv.Itoa(u)}
				default:
					ev.Type, ev.TokenID = schemas.EventTokenUsed, "tok-"+strconv.Itoa(u)
				}
				eng.Process(&ev)
				i++
				if i%4096 == 0 {
					// The detector drains what the baselines learned to its
					// store as it goes (service.Service persists them).
					eng.BaselineChanges()
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		inFlight := float64(after.HeapAlloc-before.HeapAlloc) / float64(users)
		// Then event time moves on past the out-of-order allowance and a
		// sweep (another user's event carries the watermark), as it does
		// for any user between two bursts of activity: what each user
		// costs while not active.
		eng.Process(&schemas.AuditEvent{ID: "clock", Time: t0.Add(10*time.Minute + engine.DefaultAllowance + 2*time.Minute),
			Type: schemas.EventTokenUsed, UserID: "clock", TokenID: "clock"})
		runtime.GC()
		runtime.ReadMemStats(&after)
		if path := os.Getenv("REVOKED_BENCH_HEAPPROFILE"); path != "" {
			// Where the bytes per user go: go tool pprof -sample_index=inuse_space.
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		b.ReportMetric(inFlight, "bytes/user")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(users), "settled-bytes/user")
		var groups, records int
		st := eng.Stats()
		for _, rs := range st.Rules {
			groups += rs.Groups + rs.Baselines
			records += rs.Records
			if rs.Groups+rs.Baselines > 0 {
				b.Logf("%-30s groups %8d records %8d baselines %8d cooldowns %8d", rs.RuleID, rs.Groups, rs.Records, rs.Baselines, rs.Cooldowns)
			}
		}
		b.Logf("context: %+v", st.Context)
		b.ReportMetric(float64(groups)/float64(users), "groups/user")
		b.ReportMetric(float64(records)/float64(users), "records/user")
		runtime.KeepAlive(eng)
	}
}
