package engine

import (
	"fmt"
	"math"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// geoEval evaluates KindGeoVelocity. A record holds the event's
// coordinates, its network and, in vals[0], its country.
type geoEval struct {
	maxKmh   float64
	minKm    float64
	sameASNs bool // ignore pairs on the same network
	sameDev  bool // ignore pairs from the same device
}

var (
	_ evaluator = (*geoEval)(nil)
	_ compactor = (*geoEval)(nil)
)

func newGeoEval(p *GeoVelocity) *geoEval {
	g := &geoEval{maxKmh: p.MaxKmh, minKm: p.MinDistanceKm, sameASNs: true}
	if p.IgnoreSameASN != nil {
		g.sameASNs = *p.IgnoreSameASN
	}
	g.sameDev = p.IgnoreSameDevice
	return g
}

func (g *geoEval) record(ev *schemas.AuditEvent, _ string, rec *record) bool {
	if ev.Geo == nil || ev.Geo.Lat == nil || ev.Geo.Lon == nil {
		return false
	}
	rec.lat, rec.lon = float32(*ev.Geo.Lat), float32(*ev.Geo.Lon)
	rec.asn = ev.Geo.ASN
	rec.vals[0] = ev.Geo.Country
	rec.num = int64(deviceHash(ev))
	return true
}

// evaluate compares the last record with the one before it: consecutive
// located events.
func (g *geoEval) evaluate(recs []record, end int, window time.Duration) (finding, bool) {
	if end == 0 {
		return finding{}, false
	}
	a, b := &recs[end-1], &recs[end]
	if a.t.Before(b.t.Add(-window)) {
		return finding{}, false
	}
	if g.sameASNs && a.asn != 0 && a.asn == b.asn {
		return finding{}, false
	}
	if g.sameDev && a.num != 0 && a.num == b.num {
		// One device cannot be in two places: the addresses are (a VPN's
		// exit, a phone roaming through its home carrier abroad).
		return finding{}, false
	}
	km := haversineKm(float64(a.lat), float64(a.lon), float64(b.lat), float64(b.lon))
	if km < g.minKm || km == 0 {
		return finding{}, false
	}
	dt := b.t.Sub(a.t)
	speed := math.Inf(1)
	if dt > 0 {
		speed = km / dt.Hours()
	}
	if speed <= g.maxKmh {
		return finding{}, false
	}
	return finding{
		evidence: []int{end - 1, end},
		summary: fmt.Sprintf("%.0f km from %s to %s in %s (%s, above %.0f km/h)",
			km, placeName(a), placeName(b), dt, speedText(speed), g.maxKmh),
	}, true
}

func placeName(r *record) string {
	if r.vals[0] != "" {
		return r.vals[0]
	}
	return fmt.Sprintf("%.2f,%.2f", r.lat, r.lon)
}

func speedText(kmh float64) string {
	if math.IsInf(kmh, 1) {
		return "at the same instant"
	}
	return fmt.Sprintf("%.0f km/h", kmh)
}

// compact keeps, of the records older than before, only the newest: the
// only one a later event can be consecutive to.
func (g *geoEval) compact(recs []record, before time.Time) []record {
	k := 0
	for k < len(recs) && recs[k].t.Before(before) {
		k++
	}
	if k < 2 {
		return recs
	}
	// Slice past the dropped records rather than move the rest down
	// (a copy of the whole group at nearly every event of a busy one);
	// append moves them when the array is full.
	clear(recs[:k-1])
	return recs[k-1:]
}

const earthRadiusKm = 6371.0088

// haversineKm is the great-circle distance between two points, in km.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	s := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(s)))
}
