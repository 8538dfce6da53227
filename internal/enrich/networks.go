package enrich

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/schemas"
)

// curatedNetworks is the curated list of ASNs and their kinds of network.
//
//go:embed networks.yaml
var curatedNetworks []byte

// kindUnknown in a networks file marks an AS or a range as deliberately
// unclassified: the event's network stays "" and no guess from the
// organisation's name is made.
const kindUnknown = "unknown"

// NetworkFile is the shape of the curated list (networks.yaml) and of a
// deployment's own file:
//
//	asns:
//	  - {asn: 64500, kind: business, note: "head office transit"}
//	cidrs:
//	  - {cidr: 203.0.113.0/24, kind: business, note: "office egress"}
//	  - {cidr: 10.8.0.0/16, kind: vpn, note: "our VPN's pool"}
//
// Kinds are the schemas.Network* values or "unknown".
type NetworkFile struct {
	ASNs  []ASNEntry  `yaml:"asns"`
	CIDRs []CIDREntry `yaml:"cidrs"`
}

// ASNEntry gives an autonomous system's kind of network.
type ASNEntry struct {
	ASN  uint32 `yaml:"asn"`
	Kind string `yaml:"kind"`
	// Org is the organisation the pinned ASN database names; the tests
	// check it against the database.
	Org  string `yaml:"org"`
	Note string `yaml:"note"`
}

// CIDREntry gives an address range's kind of network.
type CIDREntry struct {
	CIDR string `yaml:"cidr"`
	Kind string `yaml:"kind"`
	Note string `yaml:"note"`
}

// parseNetworkFile decodes a networks file strictly (unknown keys are
// errors) and checks every entry.
func parseNetworkFile(data []byte) (NetworkFile, error) {
	var f NetworkFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return f, err
	}
	var errs []error
	for i, e := range f.ASNs {
		if e.ASN == 0 {
			errs = append(errs, fmt.Errorf("asns[%d]: asn is required", i))
		}
		if !validKind(e.Kind) {
			errs = append(errs, fmt.Errorf("asns[%d] (AS%d): kind %q, want one of %v or %s", i, e.ASN, e.Kind, schemas.Networks, kindUnknown))
		}
	}
	for i, e := range f.CIDRs {
		if _, err := netip.ParsePrefix(e.CIDR); err != nil {
			errs = append(errs, fmt.Errorf("cidrs[%d]: %w", i, err))
		}
		if !validKind(e.Kind) {
			errs = append(errs, fmt.Errorf("cidrs[%d] (%s): kind %q, want one of %v or %s", i, e.CIDR, e.Kind, schemas.Networks, kindUnknown))
		}
	}
	return f, errors.Join(errs...)
}

func validKind(k string) bool { return k == kindUnknown || slices.Contains(schemas.Networks, k) }

// networks classifies addresses and autonomous systems.
type networks struct {
	// byASN maps an AS to its kind; "" is a deliberate unknown.
	byASN map[uint32]string
	// byPrefix maps masked ranges to their kinds; bits4 and bits6 are
	// the prefix lengths present, longest first, so the most specific
	// range wins.
	byPrefix     map[netip.Prefix]string
	bits4, bits6 []int
}

// newNetworks merges the curated list (when curated) and the files, each
// replacing what came before for the same AS or range.
func newNetworks(curated bool, files ...NetworkFile) (*networks, error) {
	n := &networks{byASN: map[uint32]string{}, byPrefix: map[netip.Prefix]string{}}
	if curated {
		f, err := parseNetworkFile(curatedNetworks)
		if err != nil {
			return nil, fmt.Errorf("the curated networks list: %w", err)
		}
		files = append([]NetworkFile{f}, files...)
	}
	for _, f := range files {
		for _, e := range f.ASNs {
			n.byASN[e.ASN] = kindOf(e.Kind)
		}
		for _, e := range f.CIDRs {
			p, err := netip.ParsePrefix(e.CIDR)
			if err != nil {
				return nil, err
			}
			p = p.Masked()
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			n.byPrefix[p] = kindOf(e.Kind)
			bits := &n.bits6
			if p.Addr().Is4() {
				bits = &n.bits4
			}
			if !slices.Contains(*bits, p.Bits()) {
				*bits = append(*bits, p.Bits())
			}
		}
	}
	for _, b := range [][]int{n.bits4, n.bits6} {
		slices.SortFunc(b, func(x, y int) int { return y - x })
	}
	return n, nil
}

func kindOf(k string) string {
	if k == kindUnknown {
		return ""
	}
	return k
}

// readNetworkFile reads a deployment's networks file.
func readNetworkFile(path string) (NetworkFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return NetworkFile{}, fmt.Errorf("reading the networks file: %w", err)
	}
	f, err := parseNetworkFile(data)
	if err != nil {
		return NetworkFile{}, fmt.Errorf("networks file %s: %w", path, err)
	}
	return f, nil
}

// byAddr returns the kind of the most specific listed range holding a.
func (n *networks) byAddr(a netip.Addr) (string, bool) {
	if len(n.byPrefix) == 0 || !a.IsValid() {
		return "", false
	}
	bits := n.bits6
	if a.Is4() {
		bits = n.bits4
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if k, ok := n.byPrefix[p]; ok {
			return k, true
		}
	}
	return "", false
}

// orgHint is a word in an organisation's name that suggests its kind of
// network.
type orgHint struct {
	word string
	kind string
	// wordStart: the word must begin a word of the name (follow a
	// non-letter, non-digit or the start), not merely appear in it.
	wordStart bool
}

// orgHints are tried in order and the first that matches wins. They were
// chosen against the 91,000 organisations of the pinned ASN database,
// whose counts are given below.
var orgHints = []orgHint{
	// Campuses first: "University Cloud Services" is a university.
	// "universit" also finds Universität, Université, Universidad and
	// Interuniversitair (1,812 names, all academic in a sample).
	{"universit", schemas.NetworkBusiness, false},
	{"college", schemas.NetworkBusiness, false},
	{"hochschule", schemas.NetworkBusiness, false},
	// At a word start only: PowerSchool is a software vendor.
	{"school", schemas.NetworkBusiness, true},
	// IVPN, 10VPN, IPLOCKVPN: VPN providers name themselves so.
	{"vpn", schemas.NetworkVPN, false},
	// At a word start only: HAProxy Technologies is a software vendor.
	{"proxy", schemas.NetworkVPN, true},
	// Hosting names are often glued into one word (FREAKHOSTING,
	// REDSEACLOUD, Megaservers, BlueVPS), so they match anywhere; the
	// few false hits (ECHOSTREAM) are businesses without people either.
	// "host" covers "hosting".
	{"host", schemas.NetworkHosting, false},
	{"cloud", schemas.NetworkHosting, false},
	{"server", schemas.NetworkHosting, false},
	{"vps", schemas.NetworkHosting, false},
	{"datacenter", schemas.NetworkHosting, false},
	{"data center", schemas.NetworkHosting, false},
	{"data centre", schemas.NetworkHosting, false},
	{"colocation", schemas.NetworkHosting, false},
	// Not "dedicated" alone: Dedicated Freight Corridor Corporation.
	{"dedicated server", schemas.NetworkHosting, false},
	// At a word start only: "Automobile Club", "Automovilista".
	// Not "wireless": most of the 373 "... Wireless" organisations in
	// the database are fixed-wireless rural ISPs, not mobile carriers
	// (the big carriers are in the curated list). Not "lte" or "gsm":
	// they hit Altera, Beltelecom and small fixed ISPs.
	{"mobile", schemas.NetworkCellular, true},
	{"mobility", schemas.NetworkCellular, true},
	{"cellular", schemas.NetworkCellular, true},
	{"celular", schemas.NetworkCellular, true},
	{"movil", schemas.NetworkCellular, true},
	// Cable-TV operators and "... Broadband" ISPs sell to homes.
	{"cable", schemas.NetworkResidential, true},
	{"broadband", schemas.NetworkResidential, true},
}

// guessNetwork returns the kind of network an organisation's name
// suggests, or "" (see orgHints). It does not allocate for names up to
// schemas.MaxIDLen bytes.
func guessNetwork(org string) string {
	if org == "" {
		return ""
	}
	var buf [schemas.MaxIDLen]byte
	lower := buf[:0]
	for i := 0; i < len(org) && i < len(buf); i++ {
		c := org[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	for _, h := range orgHints {
		if containsWord(lower, h.word, h.wordStart) {
			return h.kind
		}
	}
	return ""
}

func containsWord(s []byte, word string, wordStart bool) bool {
	for off := 0; ; {
		i := bytes.Index(s[off:], []byte(word))
		if i < 0 {
			return false
		}
		i += off
		if !wordStart || i == 0 || !isAlnum(s[i-1]) {
			return true
		}
		off = i + 1
	}
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c >= 0x80
}
