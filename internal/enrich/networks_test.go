package enrich

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/schemas"
)

func TestCuratedListIsWellFormed(t *testing.T) {
	f, err := parseNetworkFile(curatedNetworks)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.CIDRs) != 0 {
		t.Errorf("the curated list names %d address ranges; ranges belong in a deployment's file", len(f.CIDRs))
	}
	seen := map[uint32]bool{}
	kinds := map[string]int{}
	for _, e := range f.ASNs {
		if seen[e.ASN] {
			t.Errorf("AS%d is listed twice", e.ASN)
		}
		seen[e.ASN] = true
		kinds[e.Kind]++
		if e.Org == "" && e.Note == "" {
			t.Errorf("AS%d has neither the database's org nor a note saying why not", e.ASN)
		}
	}
	for _, k := range append([]string{kindUnknown}, schemas.Networks...) {
		if k != schemas.NetworkResidential && k != schemas.NetworkBusiness && kinds[k] < 5 ||
			kinds[k] == 0 {
			t.Errorf("only %d ASes of kind %s", kinds[k], k)
		}
	}
}

// TestCuratedASNsMatchDatabase checks every curated AS against the real
// ASN database: a mistyped number names another organisation.
func TestCuratedASNsMatchDatabase(t *testing.T) {
	dir := testenv.GeoIPDir(t, asnIPv4File, asnIPv6File)
	table, err := loadASN(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseNetworkFile(curatedNetworks)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.ASNs {
		as := table.number(e.ASN)
		switch {
		case e.Org == "" && as != nil:
			t.Errorf("AS%d: the database names it %q; put that in org", e.ASN, as.org)
		case e.Org == "":
		case as == nil:
			t.Errorf("AS%d (%s): not in the database", e.ASN, e.Org)
		case as.org != e.Org:
			t.Errorf("AS%d: the database names it %q, the list %q", e.ASN, as.org, e.Org)
		}
	}
}

func TestGuessNetwork(t *testing.T) {
	// Names from the pinned ASN database.
	for org, want := range map[string]string{
		"Hetzner Online GmbH":                    "",
		"FREAKHOSTING LTD":                       schemas.NetworkHosting,
		"REDSEACLOUD LLC":                        schemas.NetworkHosting,
		"Andreas Fahl trading as Megaservers.de": schemas.NetworkHosting,
		"BlueVPS OU":                             schemas.NetworkHosting,
		"Omega Datacenters, LLC":                 schemas.NetworkHosting,
		"Docklands Data Centre Ltd":              schemas.NetworkHosting,
		"UK Dedicated Servers Limited":           schemas.NetworkHosting,
		"Dedicated Freight Corridor Corporation of India Limited": "",
		"T-Mobile USA, Inc.":                     schemas.NetworkCellular,
		"Libyana Mobile Phone Company JSC":       schemas.NetworkCellular,
		"Automobile Club of Southern California": "",
		"Exxon Mobil Corporation":                "",
		"Pioneer Cellular":                       schemas.NetworkCellular,
		"Telemovil El Salvador S.A.":             "",
		"Winchester Wireless":                    "",
		"Altera Corporation":                     "",
		"University of Maryland":                 schemas.NetworkBusiness,
		"Montanuniversitaet Leoben":              schemas.NetworkBusiness,
		"Flathead Valley Community College":      schemas.NetworkBusiness,
		"Anchorage School District":              schemas.NetworkBusiness,
		"PowerSchool":                            "",
		"Hochschule RheinMain":                   schemas.NetworkBusiness,
		"IVPN Limited":                           schemas.NetworkVPN,
		"HAProxy Technologies, Inc.":             "",
		"Comcast Cable Communications, LLC":      schemas.NetworkResidential,
		"Treehouse Broadband, LLC":               schemas.NetworkResidential,
		"Broadband Hosting B.V.":                 schemas.NetworkHosting,
		"":                                       "",
		strings.Repeat("x", 300) + " hosting":    "",
	} {
		if got := guessNetwork(org); got != want {
			t.Errorf("guessNetwork(%q) = %q, want %q", org, got, want)
		}
	}
}

func TestGuessNetworkDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = guessNetwork("Treehouse Broadband, LLC") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// writeFile writes a file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWithoutDatabases(t *testing.T) {
	e, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.HasDatabases() {
		t.Error("HasDatabases() = true without a directory")
	}
	for _, tc := range []struct {
		name string
		ip   string
		geo  *schemas.Geo
		want *schemas.Geo
	}{
		{"curated hosting", "8.8.8.8", &schemas.Geo{ASN: 16509}, &schemas.Geo{ASN: 16509, Network: schemas.NetworkHosting}},
		{"curated cellular", "", &schemas.Geo{ASN: 21928, Country: "US"}, &schemas.Geo{ASN: 21928, Country: "US", Network: schemas.NetworkCellular}},
		{"curated vpn", "", &schemas.Geo{ASN: 53813}, &schemas.Geo{ASN: 53813, Network: schemas.NetworkVPN}},
		{"curated business", "", &schemas.Geo{ASN: 3356}, &schemas.Geo{ASN: 3356, Network: schemas.NetworkBusiness}},
		{"curated residential", "", &schemas.Geo{ASN: 7922}, &schemas.Geo{ASN: 7922, Network: schemas.NetworkResidential}},
		// Listed as unknown: the name's "Mobile" is not taken.
		{"curated unknown beats the name", "", &schemas.Geo{ASN: 3209, Org: "Vodafone Mobile"}, &schemas.Geo{ASN: 3209, Org: "Vodafone Mobile"}},
		{"name", "", &schemas.Geo{ASN: 64496, Org: "Example Hosting Ltd"}, &schemas.Geo{ASN: 64496, Org: "Example Hosting Ltd", Network: schemas.NetworkHosting}},
		{"name without asn", "", &schemas.Geo{Org: "State University"}, &schemas.Geo{Org: "State University", Network: schemas.NetworkBusiness}},
		{"nothing known", "", &schemas.Geo{ASN: 64496}, &schemas.Geo{ASN: 64496}},
		{"network kept", "", &schemas.Geo{ASN: 16509, Network: schemas.NetworkBusiness}, &schemas.Geo{ASN: 16509, Network: schemas.NetworkBusiness}},
		{"address only", "8.8.8.8", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := schemas.AuditEvent{IP: tc.ip, Geo: tc.geo}
			e.Enrich(&ev)
			if g, w := geoString(ev.Geo), geoString(tc.want); g != w {
				t.Errorf("got  %s\n\twant %s", g, w)
			}
		})
	}
}

func TestDeploymentNetworksFile(t *testing.T) {
	path := writeFile(t, "networks.yaml", `
asns:
  - {asn: 13335, kind: business, note: "we use Cloudflare Zero Trust"}
  - {asn: 16509, kind: unknown}
  - {asn: 64500, kind: residential}
cidrs:
  - {cidr: 203.0.113.0/24, kind: business, note: "office egress"}
  - {cidr: 203.0.113.128/25, kind: hosting, note: "build servers"}
  - {cidr: 10.8.0.0/16, kind: vpn}
  - {cidr: "2001:db8:100::/40", kind: business}
  - {cidr: "::ffff:198.51.100.0/120", kind: business}
`)
	cfg := DefaultConfig()
	cfg.Networks = path
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip   string
		asn  uint32
		want string
	}{
		{"", 13335, schemas.NetworkBusiness},        // replaces the curated vpn
		{"", 16509, ""},                             // the curated hosting withdrawn
		{"", 64500, schemas.NetworkResidential},     // added
		{"", 21928, schemas.NetworkCellular},        // the curated list still applies
		{"203.0.113.7", 0, schemas.NetworkBusiness}, // a range without any database
		{"203.0.113.7", 16509, schemas.NetworkBusiness},
		{"203.0.113.200", 0, schemas.NetworkHosting}, // the longest prefix wins
		{"10.8.3.4", 0, schemas.NetworkVPN},          // private ranges too
		{"10.9.3.4", 0, ""},
		{"2001:db8:1ff::1", 0, schemas.NetworkBusiness},
		{"2001:db8:200::1", 0, ""},
		{"198.51.100.9", 0, schemas.NetworkBusiness}, // an IPv4-mapped range is an IPv4 one
		{"::ffff:198.51.100.9", 0, schemas.NetworkBusiness},
	} {
		ev := schemas.AuditEvent{IP: tc.ip}
		if tc.asn != 0 {
			ev.Geo = &schemas.Geo{ASN: tc.asn}
		}
		e.Enrich(&ev)
		got := ""
		if ev.Geo != nil {
			got = ev.Geo.Network
		}
		if got != tc.want {
			t.Errorf("ip %q asn %d: network %q, want %q", tc.ip, tc.asn, got, tc.want)
		}
	}

	cfg.CuratedNetworks = false
	e, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.AuditEvent{Geo: &schemas.Geo{ASN: 21928}}
	if e.Enrich(&ev); ev.Geo.Network != "" {
		t.Errorf("without the curated list, AS21928 is %q", ev.Geo.Network)
	}
}

func TestBadNetworksFile(t *testing.T) {
	path := writeFile(t, "networks.yaml", `
asns:
  - {asn: 0, kind: hosting}
  - {asn: 64500, kind: office}
cidrs:
  - {cidr: 203.0.113.0/33, kind: business}
  - {cidr: 203.0.113.0/24, kind: ""}
`)
	cfg := DefaultConfig()
	cfg.Networks = path
	_, err := New(cfg)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{path, "asns[0]: asn is required", `asns[1] (AS64500): kind "office"`, "cidrs[0]", `cidrs[1] (203.0.113.0/24): kind ""`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	cfg.Networks = writeFile(t, "typo.yaml", "asn:\n  - {asn: 1, kind: hosting}\n")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "field asn not found") {
		t.Errorf("an unknown key: %v", err)
	}
	cfg.Networks = filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := New(cfg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	cfg.Networks = writeFile(t, "empty.yaml", "")
	if _, err := New(cfg); err != nil {
		t.Errorf("an empty file: %v", err)
	}
}

func TestMissingDatabases(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, asnIPv4File), []byte("1.0.0.0,1.0.0.255,13335,x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("err = %v, want ErrNoDatabase", err)
	}
	for _, want := range []string{dir, asnIPv6File, cityIPv4File, cityIPv6File, "install-geoip.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "missing ["+asnIPv4File) {
		t.Errorf("error %q names a file that is there", err)
	}
}

func TestBadDatabases(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		asnIPv4File:  "1.0.0.0,1.0.0.255,13335,x\n1.0.4.0,1.0.7.255,38803,Gtelecom\n",
		asnIPv6File:  "2001::,2001::ffff,6939,Hurricane Electric LLC\n",
		cityIPv4File: "not an mmdb",
		cityIPv6File: "not an mmdb",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "city database") {
		t.Errorf("a corrupt city database: %v", err)
	}
	for content, want := range map[string]string{
		"1.0.4.0,1.0.7.255,38803,G\n1.0.0.0,1.0.0.255,13335,x\n": "line 2: range 1.0.0.0-1.0.0.255 precedes",
		"1.0.0.0,1.0.0.255\n":                    "line 1: want 4 fields",
		"1.0.0.0,1.0.0.255,AS13335,x\n":          "line 1",
		"1.0.0.9,1.0.0.1,13335,x\n":              "bad range",
		"2001::,2001::ffff,13335,x\n":            "bad range",
		"1.0.0.0,1.0.0.255,13335,\"Cloud, Inc\"": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, asnIPv4File), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadASN(dir)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", content, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one saying %q", content, err, want)
		}
	}
}

func TestASNRows(t *testing.T) {
	tab := &asnTable{byNumber: map[uint32]int32{}}
	rows := `1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."
1.0.4.0,1.0.7.255,201907,"LLC ""SPUTNIK"""
1.0.6.0,1.0.9.255,3,overlaps the row before
1.0.8.0,1.0.8.255,4,inside the row before
2.0.0.0,2.0.0.255,13335,a second name is ignored
`
	if err := tab.parse([]byte(rows), false); err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{
		"0.255.255.255":   "",
		"1.0.0.0":         "AS13335 Cloudflare, Inc.",
		"1.0.0.255":       "AS13335 Cloudflare, Inc.",
		"1.0.1.0":         "",
		"1.0.6.1":         `AS201907 LLC "SPUTNIK"`,
		"1.0.8.1":         "AS3 overlaps the row before",
		"1.0.10.0":        "",
		"2.0.0.1":         "AS13335 Cloudflare, Inc.",
		"255.255.255.255": "",
	} {
		got := ""
		if as := tab.lookup(mustAddr(t, ip)); as != nil {
			got = "AS" + itoa(as.number) + " " + as.org
		}
		if got != want {
			t.Errorf("%s: %q, want %q", ip, got, want)
		}
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
