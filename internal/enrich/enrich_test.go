package enrich

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

// The tests in this file read the real databases that
// deployments/local/install-geoip.sh installs, from REVOKED_GEOIP_DIR.
// Without them they skip, or fail when REVOKED_TEST_REQUIRE names geoip
// (as .ci/test.sh does). The facts they check hold for the pinned
// versions (@ip-location-db/asn and geolite2-city-mmdb 2.3.2026061719).

var shared struct {
	once sync.Once
	e    *Enricher
	err  error
}

// realEnricher opens the databases once for the whole test binary.
func realEnricher(t testing.TB) *Enricher {
	t.Helper()
	dir := testenv.GeoIPDir(t, Files...)
	shared.once.Do(func() { shared.e, shared.err = Open(dir) })
	if shared.err != nil {
		t.Fatalf("opening the databases in %s: %v", dir, shared.err)
	}
	return shared.e
}

func ptr(f float64) *float64 { return &f }

func TestEnrichRealDatabases(t *testing.T) {
	e := realEnricher(t)
	if !e.HasDatabases() {
		t.Fatal("HasDatabases() = false")
	}
	for _, tc := range []struct {
		name string
		ip   string
		geo  *schemas.Geo // what the event carries before
		want *schemas.Geo // nil: nothing added
	}{
		// Google Public DNS: GeoLite2 knows only the country, so no
		// city and no coordinates (its country-centre point is not a
		// place).
		{name: "google dns", ip: "8.8.8.8",
			want: &schemas.Geo{Country: "US", ASN: 15169, Org: "Google LLC", Network: schemas.NetworkHosting}},
		{name: "aws", ip: "52.94.1.1",
			want: &schemas.Geo{Country: "US", City: "Ashburn", Lat: ptr(39.0469), Lon: ptr(-77.4903), ASN: 16509, Org: "Amazon.com, Inc.", Network: schemas.NetworkHosting}},
		{name: "aws us-east-1", ip: "23.21.0.1",
			want: &schemas.Geo{Country: "US", City: "Ashburn", Lat: ptr(39.0469), Lon: ptr(-77.4903), ASN: 14618, Org: "Amazon.com, Inc.", Network: schemas.NetworkHosting}},
		{name: "hetzner", ip: "95.216.1.1",
			want: &schemas.Geo{Country: "FI", City: "Helsinki", Lat: ptr(60.1719), Lon: ptr(24.9347), ASN: 24940, Org: "Hetzner Online GmbH", Network: schemas.NetworkHosting}},
		{name: "t-mobile us", ip: "172.56.0.1",
			want: &schemas.Geo{Country: "US", City: "Fort Myers", Lat: ptr(26.6462), Lon: ptr(-81.8455), ASN: 21928, Org: "T-Mobile USA, Inc.", Network: schemas.NetworkCellular}},
		{name: "zscaler", ip: "165.225.0.1",
			want: &schemas.Geo{Country: "US", City: "Chicago", Lat: ptr(41.8483), Lon: ptr(-87.6517), ASN: 22616, Org: "ZSCALER, INC.", Network: schemas.NetworkVPN}},
		// Not in the curated list, and nothing in the name.
		{name: "small isp", ip: "81.2.69.142",
			want: &schemas.Geo{Country: "GB", City: "Bracknell", Lat: ptr(51.4036), Lon: ptr(-0.7618), ASN: 20712, Org: "Andrews & Arnold Ltd"}},
		// Cloudflare's anycast: no location in GeoLite2.
		{name: "cloudflare", ip: "1.1.1.1",
			want: &schemas.Geo{ASN: 13335, Org: "Cloudflare, Inc.", Network: schemas.NetworkVPN}},
		{name: "ipv6 google", ip: "2a00:1450:4001::1",
			want: &schemas.Geo{Country: "DE", City: "Frankfurt am Main", Lat: ptr(50.1169), Lon: ptr(8.6837), ASN: 15169, Org: "Google LLC", Network: schemas.NetworkHosting}},
		{name: "ipv6 t-mobile", ip: "2607:fb90::1",
			want: &schemas.Geo{Country: "US", City: "Detroit", Lat: ptr(42.3318), Lon: ptr(-83.0465), ASN: 21928, Org: "T-Mobile USA, Inc.", Network: schemas.NetworkCellular}},
		// AT&T's AS mixes consumers and businesses: listed as unknown.
		{name: "ipv6 mixed carrier", ip: "2600:1700::1",
			want: &schemas.Geo{Country: "US", City: "Detroit", Lat: ptr(42.3775), Lon: ptr(-82.9512), ASN: 7018, Org: "AT&T Enterprises, LLC"}},
		{name: "ipv4-mapped ipv6", ip: "::ffff:8.8.8.8",
			want: &schemas.Geo{Country: "US", ASN: 15169, Org: "Google LLC", Network: schemas.NetworkHosting}},

		// Events that carry geo keep every field they have.
		{name: "source country disagrees", ip: "81.2.69.142",
			geo:  &schemas.Geo{Country: "FR", City: "Paris"},
			want: &schemas.Geo{Country: "FR", City: "Paris", ASN: 20712, Org: "Andrews & Arnold Ltd"}},
		{name: "source country only, disagreeing", ip: "81.2.69.142",
			geo:  &schemas.Geo{Country: "FR"},
			want: &schemas.Geo{Country: "FR", ASN: 20712, Org: "Andrews & Arnold Ltd"}},
		{name: "source country agrees", ip: "81.2.69.142",
			geo:  &schemas.Geo{Country: "GB"},
			want: &schemas.Geo{Country: "GB", City: "Bracknell", Lat: ptr(51.4036), Lon: ptr(-0.7618), ASN: 20712, Org: "Andrews & Arnold Ltd"}},
		{name: "source city in other case", ip: "81.2.69.142",
			geo:  &schemas.Geo{City: "BRACKNELL"},
			want: &schemas.Geo{Country: "GB", City: "BRACKNELL", Lat: ptr(51.4036), Lon: ptr(-0.7618), ASN: 20712, Org: "Andrews & Arnold Ltd"}},
		{name: "source city disagrees", ip: "81.2.69.142",
			geo:  &schemas.Geo{City: "Reading"},
			want: &schemas.Geo{City: "Reading", ASN: 20712, Org: "Andrews & Arnold Ltd"}},
		// The database knows only the country of 8.8.8.8: it cannot
		// confirm the source's city.
		{name: "source city unconfirmed", ip: "8.8.8.8",
			geo:  &schemas.Geo{City: "Paris"},
			want: &schemas.Geo{City: "Paris", ASN: 15169, Org: "Google LLC", Network: schemas.NetworkHosting}},
		{name: "source coordinates kept", ip: "81.2.69.142",
			geo:  &schemas.Geo{Lat: ptr(51.5), Lon: ptr(-0.12)},
			want: &schemas.Geo{Country: "GB", City: "Bracknell", Lat: ptr(51.5), Lon: ptr(-0.12), ASN: 20712, Org: "Andrews & Arnold Ltd"}},
		{name: "source asn kept, its org named", ip: "8.8.8.8",
			geo:  &schemas.Geo{ASN: 16509},
			want: &schemas.Geo{Country: "US", ASN: 16509, Org: "Amazon.com, Inc.", Network: schemas.NetworkHosting}},
		{name: "source asn unknown to the database", ip: "8.8.8.8",
			geo:  &schemas.Geo{ASN: 64512},
			want: &schemas.Geo{Country: "US", ASN: 64512}},
		{name: "source org and network kept", ip: "172.56.0.1",
			geo:  &schemas.Geo{Org: "T-Mobile", Network: schemas.NetworkBusiness},
			want: &schemas.Geo{Country: "US", City: "Fort Myers", Lat: ptr(26.6462), Lon: ptr(-81.8455), ASN: 21928, Org: "T-Mobile", Network: schemas.NetworkBusiness}},
		{name: "no address, asn only", ip: "",
			geo:  &schemas.Geo{ASN: 21928},
			want: &schemas.Geo{ASN: 21928, Org: "T-Mobile USA, Inc.", Network: schemas.NetworkCellular}},
		{name: "everything given", ip: "8.8.8.8",
			geo:  &schemas.Geo{Country: "DE", City: "Berlin", Lat: ptr(52.52), Lon: ptr(13.4), ASN: 3320, Org: "DTAG", Network: schemas.NetworkResidential},
			want: &schemas.Geo{Country: "DE", City: "Berlin", Lat: ptr(52.52), Lon: ptr(13.4), ASN: 3320, Org: "DTAG", Network: schemas.NetworkResidential}},

		// Nothing for addresses the databases cannot know.
		{name: "private", ip: "10.0.0.1"},
		{name: "private 192.168", ip: "192.168.1.1"},
		{name: "carrier-grade nat", ip: "100.64.0.1"},
		{name: "loopback", ip: "127.0.0.1"},
		{name: "ipv6 loopback", ip: "::1"},
		{name: "ipv6 link-local with zone", ip: "fe80::1%eth0"},
		{name: "documentation range", ip: "2001:db8::1"},
		{name: "unspecified", ip: "0.0.0.0"},
		{name: "not an address", ip: "not-an-ip"},
		{name: "no address", ip: ""},
		{name: "private keeps what it has", ip: "10.0.0.1",
			geo:  &schemas.Geo{Country: "US"},
			want: &schemas.Geo{Country: "US"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := schemas.AuditEvent{ID: "e1", Type: schemas.EventLoginSuccess, UserID: "u1", IP: tc.ip, Geo: tc.geo}
			ev.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			e.Enrich(&ev)
			if d := diffGeo(ev.Geo, tc.want); d != "" {
				t.Errorf("Enrich(%s): %s", tc.ip, d)
			}
			if _, err := netip.ParseAddr(tc.ip); err == nil || tc.ip == "" {
				if err := ev.Validate(); err != nil {
					t.Errorf("enriched event does not validate: %v", err)
				}
			}
		})
	}
	if n := e.LookupErrors(); n != 0 {
		t.Errorf("%d lookup errors", n)
	}
}

// diffGeo describes how got differs from want, or returns "".
func diffGeo(got, want *schemas.Geo) string {
	if g, w := geoString(got), geoString(want); g != w {
		return "got  " + g + "\n\twant " + w
	}
	return ""
}

func geoString(g *schemas.Geo) string {
	if g == nil {
		return "nil"
	}
	coord := func(f *float64) string {
		if f == nil {
			return "nil"
		}
		return fmt.Sprint(*f)
	}
	return fmt.Sprintf("{country=%q city=%q lat=%s lon=%s asn=%d org=%q network=%q}",
		g.Country, g.City, coord(g.Lat), coord(g.Lon), g.ASN, g.Org, g.Network)
}

// TestEnrichConcurrent enriches from several goroutines at once, as the
// detector does with one per partition: the cache must give each the
// answer the databases give (run it with -race).
func TestEnrichConcurrent(t *testing.T) {
	e := realEnricher(t)
	addrs := benchAddrs(t, e, 2000)
	fresh, err := Open(testenv.GeoIPDir(t, Files...))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	want := make([]string, len(addrs))
	for i, a := range addrs {
		ev := schemas.AuditEvent{IP: a}
		fresh.Enrich(&ev)
		want[i] = geoString(ev.Geo)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for round := range 3 {
				for i := range addrs {
					j := (i*7 + w*131 + round) % len(addrs)
					ev := schemas.AuditEvent{IP: addrs[j]}
					e.Enrich(&ev)
					if got := geoString(ev.Geo); got != want[j] {
						t.Errorf("%s: got %s, want %s", addrs[j], got, want[j])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
