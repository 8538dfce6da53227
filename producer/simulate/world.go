package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"
)

// place is a city with the networks its people come from.
type place struct {
	country  string
	city     string
	lat, lon float64
	asns     []network // residential and hotel ISPs
	tz       int       // UTC offset in hours (standard time)
}

// network is an autonomous system and one of the address blocks it
// announces, from which addresses are drawn. The blocks are real
// allocations of those ASNs (as registered with the RIRs and announced in
// BGP), so an enricher's ASN database agrees with the event's ASN.
type network struct {
	asn  uint32
	base uint32 // first address of the block
	size uint32 // addresses in the block, a multiple of 256
}

// netOf is the network of asn announcing cidr (at most a /24). It panics on
// a malformed literal: the tables below are fixed.
func netOf(asn uint32, cidr string) network {
	p := netip.MustParsePrefix(cidr)
	if !p.Addr().Is4() || p.Bits() > 24 || p.Masked() != p {
		panic("simulate: bad network literal " + cidr)
	}
	a := p.Addr().As4()
	return network{asn: asn, base: uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]), size: 1 << (32 - p.Bits())}
}

// ip draws an address of the network, in its sub-th /24 (modulo the
// block's /24s) when sub >= 0: a household keeps its neighbourhood.
func (n network) ip(rng *rand.Rand, sub int) string {
	subs := int(n.size / 256)
	if sub < 0 {
		sub = rng.IntN(subs)
	}
	a := n.base + uint32(sub%subs)*256 + uint32(1+rng.IntN(254))
	return fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff)
}

// fixedIP is one address of the network picked by a name: the same name
// always gives the same address.
func (n network) fixedIP(name string) string {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	a := n.base + (h>>8)%(n.size/256)*256 + 1 + h%254
	return fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff)
}

// Residential and mobile networks.
var (
	comcast     = netOf(7922, "73.0.0.0/8")      // Comcast Cable
	verizonFios = netOf(701, "71.160.0.0/11")    // Verizon Business (Fios)
	att         = netOf(7018, "99.0.0.0/10")     // AT&T Internet
	bt          = netOf(2856, "86.128.0.0/10")   // British Telecom
	virgin      = netOf(5089, "82.0.0.0/14")     // Virgin Media
	dtag        = netOf(3320, "87.128.0.0/10")   // Deutsche Telekom
	vodafoneDE  = netOf(3209, "94.134.0.0/15")   // Vodafone Germany
	orange      = netOf(3215, "90.0.0.0/9")      // Orange France
	free        = netOf(12322, "82.64.0.0/10")   // Free SAS
	kddi        = netOf(2516, "106.128.0.0/11")  // KDDI
	ntt         = netOf(4713, "153.128.0.0/10")  // NTT OCN
	claro       = netOf(28573, "177.32.0.0/12")  // Claro NXT (Net Virtua)
	act         = netOf(24309, "49.205.0.0/16")  // Atria Convergence (ACT Fibernet)
	jio         = netOf(55836, "49.32.0.0/11")   // Reliance Jio
	telstra     = netOf(1221, "110.140.0.0/14")  // Telstra
	rogers      = netOf(812, "99.224.0.0/11")    // Rogers
	bell        = netOf(577, "184.144.0.0/12")   // Bell Canada
	tmobileUS   = netOf(21928, "172.56.0.0/14")  // T-Mobile USA
	verizonWl   = netOf(22394, "174.192.0.0/10") // Verizon Wireless
	ee          = netOf(12576, "31.94.0.0/16")   // EE
	telefonicaD = netOf(6805, "176.0.0.0/13")    // Telefonica Germany (O2)
	freeMobile  = netOf(51207, "37.164.0.0/14")  // Free Mobile
	docomo      = netOf(9605, "1.72.0.0/13")     // NTT Docomo
	vivo        = netOf(26599, "177.128.0.0/12") // Telefonica Brasil (Vivo)
	airtel      = netOf(45609, "106.192.0.0/11") // Bharti Airtel mobile
	optus       = netOf(4804, "101.160.0.0/13")  // Optus
)

// homes are where simulated users live, with their weights.
var homes = []struct {
	place
	weight int
}{
	{place{"US", "New York", 40.71, -74.01, []network{comcast, verizonFios}, -5}, 16},
	{place{"US", "San Francisco", 37.77, -122.42, []network{comcast, att}, -8}, 14},
	{place{"GB", "London", 51.51, -0.13, []network{bt, virgin}, 0}, 10},
	{place{"DE", "Berlin", 52.52, 13.40, []network{dtag, vodafoneDE}, 1}, 6},
	{place{"DE", "Munich", 48.14, 11.58, []network{dtag}, 1}, 4},
	{place{"FR", "Paris", 48.86, 2.35, []network{orange, free}, 1}, 8},
	{place{"JP", "Tokyo", 35.68, 139.69, []network{kddi, ntt}, 9}, 8},
	{place{"BR", "Sao Paulo", -23.55, -46.63, []network{claro}, -3}, 6},
	{place{"IN", "Bengaluru", 12.97, 77.59, []network{act}, 5}, 6},
	{place{"IN", "Mumbai", 19.08, 72.88, []network{jio}, 5}, 4},
	{place{"AU", "Sydney", -33.87, 151.21, []network{telstra}, 10}, 5},
	{place{"CA", "Toronto", 43.65, -79.38, []network{rogers, bell}, -5}, 6},
}

// homeIn is the home city named city.
func homeIn(city string) place {
	for _, h := range homes {
		if h.city == city {
			return h.place
		}
	}
	panic("simulate: no home city " + city)
}

// mobile are the mobile carriers of each home country: a phone's address
// changes network (ASN) but not country, and carrier-grade NAT geolocates
// to the user's city. Abroad, a phone roams: its data is routed home, so
// its address stays the home carrier's, in the home country.
var mobile = map[string][]network{
	"US": {tmobileUS, verizonWl},
	"GB": {ee},
	"DE": {vodafoneDE, telefonicaD},
	"FR": {freeMobile},
	"JP": {docomo},
	"BR": {vivo},
	"IN": {airtel, jio},
	"AU": {optus},
	"CA": {bell},
}

// officeNet is the business ISP offices sit behind (Lumen, AS3356); each
// city's office has one NAT address that all of its people share.
var officeNet = netOf(3356, "4.0.0.0/9")

// officeIP is the one shared address of the office in city.
func officeIP(city string) string { return officeNet.fixedIP("office/" + city) }

// natSite is an address that hundreds of people share: a campus network's
// NAT or a broadband provider's carrier-grade NAT.
type natSite struct {
	name string
	home place
	net  network
}

// natSites, in the order a simulation opens them: the more users the
// shared-NAT class has, the more sites (about 300 users each).
var natSites = []natSite{
	{"campus/nyu", homeIn("New York"), netOf(12, "128.122.0.0/16")},          // New York University
	{"cgnat/jio", homeIn("Mumbai"), jio},                                     // Reliance Jio CGNAT
	{"campus/imperial", homeIn("London"), netOf(786, "155.198.0.0/16")},      // Imperial College (Jisc)
	{"campus/utokyo", homeIn("Tokyo"), netOf(2501, "133.11.0.0/16")},         // University of Tokyo (UTnet)
	{"campus/tum", homeIn("Munich"), netOf(12816, "129.187.0.0/16")},         // TU Munich (LRZ)
	{"cgnat/act", homeIn("Bengaluru"), act},                                  // ACT Fibernet CGNAT
	{"campus/utoronto", homeIn("Toronto"), netOf(239, "128.100.0.0/16")},     // University of Toronto
	{"campus/usp", homeIn("Sao Paulo"), netOf(28571, "143.107.0.0/16")},      // Universidade de Sao Paulo
	{"campus/berkeley", homeIn("San Francisco"), netOf(25, "128.32.0.0/16")}, // UC Berkeley
	{"cgnat/claro", homeIn("Sao Paulo"), claro},                              // Claro CGNAT
	{"campus/sorbonne", homeIn("Paris"), netOf(2200, "134.157.0.0/16")},      // Sorbonne (Renater)
	{"campus/unsw", homeIn("Sydney"), netOf(7575, "149.171.0.0/16")},         // UNSW (AARNet)
	{"campus/tu-berlin", homeIn("Berlin"), netOf(680, "130.149.0.0/16")},     // TU Berlin (DFN)
}

// ip is the site's one public address.
func (n natSite) ip() string { return n.net.fixedIP(n.name) }

// zscaler is the company's cloud VPN and proxy (Zscaler, AS53813).
var zscaler = netOf(53813, "165.225.0.0/17")

// pop is a point of presence of the corporate VPN: where its users'
// traffic leaves it, and where their addresses geolocate.
type pop struct {
	place
	sub int // the PoP's /24 of zscaler
}

var (
	popNewYork   = pop{place{"US", "New York", 40.71, -74.01, nil, -5}, 0}
	popWashDC    = pop{place{"US", "Washington", 38.91, -77.04, nil, -5}, 1}
	popChicago   = pop{place{"US", "Chicago", 41.88, -87.63, nil, -6}, 2}
	popSanJose   = pop{place{"US", "San Jose", 37.34, -121.89, nil, -8}, 3}
	popToronto   = pop{place{"CA", "Toronto", 43.65, -79.38, nil, -5}, 4}
	popLondon    = pop{place{"GB", "London", 51.51, -0.13, nil, 0}, 5}
	popAmsterdam = pop{place{"NL", "Amsterdam", 52.37, 4.90, nil, 1}, 6}
	popFrankfurt = pop{place{"DE", "Frankfurt", 50.11, 8.68, nil, 1}, 7}
	popParis     = pop{place{"FR", "Paris", 48.86, 2.35, nil, 1}, 8}
	popZurich    = pop{place{"CH", "Zurich", 47.38, 8.54, nil, 1}, 9}
	popTokyo     = pop{place{"JP", "Tokyo", 35.68, 139.69, nil, 9}, 10}
	popOsaka     = pop{place{"JP", "Osaka", 34.69, 135.50, nil, 9}, 11}
	popSingapore = pop{place{"SG", "Singapore", 1.35, 103.82, nil, 8}, 12}
	popMumbai    = pop{place{"IN", "Mumbai", 19.08, 72.88, nil, 5}, 13}
	popChennai   = pop{place{"IN", "Chennai", 13.08, 80.27, nil, 5}, 14}
	popSaoPaulo  = pop{place{"BR", "Sao Paulo", -23.55, -46.63, nil, -3}, 15}
	popMiami     = pop{place{"US", "Miami", 25.76, -80.19, nil, -5}, 16}
	popSydney    = pop{place{"AU", "Sydney", -33.87, 151.21, nil, 10}, 17}
	popMelbourne = pop{place{"AU", "Melbourne", -37.81, 144.96, nil, 10}, 18}
	popAuckland  = pop{place{"NZ", "Auckland", -36.85, 174.76, nil, 12}, 19}
)

// vpnPoPs are the points of presence a user's VPN client may exit from,
// by the user's city, nearest first: the client picks by latency and load,
// so the egress alternates between them, some in another country.
var vpnPoPs = map[string][]pop{
	"New York":      {popNewYork, popWashDC, popChicago, popToronto},
	"San Francisco": {popSanJose, popChicago, popToronto},
	"London":        {popLondon, popAmsterdam, popFrankfurt},
	"Berlin":        {popFrankfurt, popAmsterdam, popZurich},
	"Munich":        {popFrankfurt, popZurich, popAmsterdam},
	"Paris":         {popParis, popLondon, popFrankfurt},
	"Tokyo":         {popTokyo, popOsaka, popSingapore},
	"Sao Paulo":     {popSaoPaulo, popMiami},
	"Bengaluru":     {popChennai, popMumbai, popSingapore},
	"Mumbai":        {popMumbai, popChennai, popSingapore},
	"Sydney":        {popSydney, popMelbourne, popAuckland},
	"Toronto":       {popToronto, popNewYork, popChicago},
}

// region is a cloud or hosting provider's data centre.
type region struct {
	place
	provider string
}

func hosting(provider, country, city string, lat, lon float64, tz int, n network) region {
	return region{place{country, city, lat, lon, []network{n}, tz}, provider}
}

// cloudRegions are where service accounts' automation runs and where much
// of attackers' infrastructure is rented: the big clouds' regions and the
// cheap VPS providers' data centres.
var cloudRegions = []region{
	hosting("aws", "US", "Ashburn", 39.04, -77.49, -5, netOf(14618, "3.80.0.0/12")),          // AWS us-east-1
	hosting("aws", "US", "Boardman", 45.84, -119.70, -8, netOf(16509, "34.208.0.0/12")),      // AWS us-west-2
	hosting("aws", "IE", "Dublin", 53.35, -6.26, 0, netOf(16509, "52.16.0.0/15")),            // AWS eu-west-1
	hosting("aws", "DE", "Frankfurt", 50.11, 8.68, 1, netOf(16509, "18.184.0.0/15")),         // AWS eu-central-1
	hosting("aws", "GB", "London", 51.51, -0.13, 0, netOf(16509, "18.130.0.0/16")),           // AWS eu-west-2
	hosting("aws", "FR", "Paris", 48.86, 2.35, 1, netOf(16509, "15.236.0.0/15")),             // AWS eu-west-3
	hosting("aws", "JP", "Tokyo", 35.68, 139.69, 9, netOf(16509, "13.112.0.0/14")),           // AWS ap-northeast-1
	hosting("aws", "SG", "Singapore", 1.35, 103.82, 8, netOf(16509, "13.228.0.0/15")),        // AWS ap-southeast-1
	hosting("aws", "IN", "Mumbai", 19.08, 72.88, 5, netOf(16509, "13.232.0.0/14")),           // AWS ap-south-1
	hosting("aws", "AU", "Sydney", -33.87, 151.21, 10, netOf(16509, "13.236.0.0/14")),        // AWS ap-southeast-2
	hosting("aws", "BR", "Sao Paulo", -23.55, -46.63, -3, netOf(16509, "18.228.0.0/16")),     // AWS sa-east-1
	hosting("aws", "CA", "Montreal", 45.50, -73.57, -5, netOf(16509, "35.182.0.0/15")),       // AWS ca-central-1
	hosting("gcp", "US", "Council Bluffs", 41.26, -95.86, -6, netOf(396982, "34.16.0.0/12")), // Google Cloud us-central1
	hosting("azure", "US", "Boydton", 36.67, -78.39, -5, netOf(8075, "20.36.0.0/14")),        // Microsoft Azure East US 2
	hosting("azure", "NL", "Amsterdam", 52.37, 4.90, 1, netOf(8075, "20.50.0.0/16")),         // Microsoft Azure West Europe
	hosting("digitalocean", "US", "New York", 40.71, -74.01, -5, netOf(14061, "104.131.0.0/16")),
	hosting("digitalocean", "NL", "Amsterdam", 52.37, 4.90, 1, netOf(14061, "188.166.0.0/16")),
	hosting("digitalocean", "SG", "Singapore", 1.35, 103.82, 8, netOf(14061, "128.199.0.0/16")),
	hosting("digitalocean", "DE", "Frankfurt", 50.11, 8.68, 1, netOf(14061, "164.90.192.0/18")),
	hosting("digitalocean", "IN", "Bengaluru", 12.97, 77.59, 5, netOf(14061, "139.59.0.0/18")),
	hosting("hetzner", "DE", "Falkenstein", 50.48, 12.37, 1, netOf(24940, "88.198.0.0/16")),
	hosting("hetzner", "FI", "Helsinki", 60.17, 24.94, 2, netOf(24940, "95.216.0.0/16")),
	hosting("ovh", "FR", "Roubaix", 50.69, 3.17, 1, netOf(16276, "51.75.0.0/16")),
	hosting("ovh", "CA", "Beauharnois", 45.31, -73.87, -5, netOf(16276, "144.217.0.0/16")),
	hosting("vultr", "US", "Piscataway", 40.55, -74.46, -5, netOf(20473, "45.76.0.0/15")),
	hosting("vultr", "JP", "Tokyo", 35.68, 139.69, 9, netOf(20473, "45.32.0.0/16")),
	hosting("linode", "US", "Newark", 40.74, -74.17, -5, netOf(63949, "172.104.0.0/15")),
	hosting("m247", "RO", "Bucharest", 44.43, 26.10, 2, netOf(9009, "146.70.0.0/16")),
	hosting("selectel", "RU", "Moscow", 55.76, 37.62, 3, netOf(49505, "92.53.64.0/18")),
}

// hostingIn lists the hosting regions in country.
func hostingIn(country string) []region {
	var out []region
	for _, r := range cloudRegions {
		if r.country == country {
			out = append(out, r)
		}
	}
	return out
}

// foreignResidential are consumer networks abroad that compromised
// machines and residential proxies sit on, in countries none of the users
// live in.
var foreignResidential = []place{
	{"VN", "Hanoi", 21.03, 105.85, []network{netOf(7552, "113.160.0.0/11")}, 7},    // Viettel
	{"NG", "Lagos", 6.52, 3.38, []network{netOf(29465, "105.112.0.0/12")}, 1},      // MTN Nigeria
	{"RU", "Moscow", 55.76, 37.62, []network{netOf(8402, "95.24.0.0/13")}, 3},      // Beeline (Vimpelcom)
	{"ID", "Jakarta", -6.21, 106.85, []network{netOf(7713, "36.64.0.0/11")}, 7},    // Telkom Indonesia
	{"UA", "Kyiv", 50.45, 30.52, []network{netOf(15895, "46.211.0.0/16")}, 2},      // Kyivstar
	{"TR", "Istanbul", 41.01, 28.98, []network{netOf(9121, "88.224.0.0/11")}, 3},   // Turk Telekom
	{"CN", "Shanghai", 31.23, 121.47, []network{netOf(4812, "180.152.0.0/13")}, 8}, // China Telecom
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
	"SyncClient/4.12 (Windows 11)",
}

// mobileAgents are the user agents of phones and of the mobile app.
var mobileAgents = []string{
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
	"BoxMobile/5.8 (iPhone; iOS 18.1)",
	"BoxMobile/5.8 (Android 15; SM-S921B)",
}

// syncAgents are desktop sync clients.
var syncAgents = []string{
	"BoxDrive/2.44.209 (Windows 11; x64)",
	"BoxDrive/2.44.209 (macOS 15.1; arm64)",
}

// automationAgents are what service accounts' jobs send.
var automationAgents = []string{
	"python-requests/2.32.3",
	"Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#5.10 lang/python#3.12.7",
	"Go-http-client/2.0",
	"okhttp/4.12.0",
	"box-java-sdk/4.11.1 (Java 21.0.5)",
	"Apache-HttpClient/5.3.1 (Java/17.0.13)",
}

// attackerAgents are what attackers' tooling sends: scripts, headless
// browsers and browsers that copy a common desktop one.
var attackerAgents = []string{
	"python-requests/2.32.3",
	"curl/8.11.0",
	"Go-http-client/1.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
}

// browserAgents are attackers' desktop browsers (an adversary in the
// middle replays a stolen cookie from one).
var browserAgents = attackerAgents[3:]

func pickHome(rng *rand.Rand) place {
	total := 0
	for _, h := range homes {
		total += h.weight
	}
	n := rng.IntN(total)
	for _, h := range homes {
		if n < h.weight {
			return h.place
		}
		n -= h.weight
	}
	return homes[0].place
}

// citiesIn lists the home cities of country.
func citiesIn(country string) []place {
	var out []place
	for _, h := range homes {
		if h.country == country {
			out = append(out, h.place)
		}
	}
	return out
}

// distanceKm is the great-circle distance between two places.
func distanceKm(a, b place) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dlat, dlon := (b.lat-a.lat)*rad, (b.lon-a.lon)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(a.lat*rad)*math.Cos(b.lat*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Travel between cities: door to door, a trip takes the time to and from
// the airports plus the flight at cruising speed, so a traveller's events
// never imply more than cruising speed.
const (
	cruiseKmh   = 800
	airportTime = 2 * time.Hour
	tripStayMin = 18 * time.Hour
	tripStayMax = 4 * 24 * time.Hour
)

// travelTime is how long the trip from a to b takes door to door.
func travelTime(a, b place) time.Duration {
	return airportTime + time.Duration(distanceKm(a, b)/cruiseKmh*float64(time.Hour))
}

// activity is the relative rate at which people act at a local hour of the
// day: little at night, most during working hours. Its mean over a day is 1.
func activity(localHour int) float64 {
	return activityWeights[((localHour%24)+24)%24] / activityMean
}

var activityWeights = [24]float64{
	0.10, 0.06, 0.05, 0.05, 0.06, 0.10, 0.25, 0.55, 1.20, 1.70, 1.80, 1.75,
	1.40, 1.60, 1.75, 1.70, 1.50, 1.10, 0.75, 0.60, 0.55, 0.45, 0.30, 0.18,
}

var activityMean, activityMax = func() (float64, float64) {
	var sum, top float64
	for _, w := range activityWeights {
		sum += w
		top = math.Max(top, w)
	}
	return sum / 24, top / (sum / 24)
}()

// weekendActivity is how much of their weekday activity people who do not
// work weekends show on Saturdays and Sundays; weekdayActivity makes up
// for it on weekdays, so that a week averages what the configured rate
// says.
const (
	weekendActivity = 0.2 * weekdayActivity
	weekdayActivity = 7 / (5 + 2*0.2)
)
