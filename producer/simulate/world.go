package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
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

// network is an autonomous system and the /16 its addresses are drawn from.
type network struct {
	asn    uint32
	prefix [2]byte
}

// homes are where simulated users live, with their weights.
var homes = []struct {
	place
	weight int
}{
	{place{"US", "New York", 40.71, -74.01, []network{{7922, [2]byte{73, 12}}, {701, [2]byte{71, 161}}}, -5}, 16},
	{place{"US", "San Francisco", 37.77, -122.42, []network{{7922, [2]byte{73, 93}}, {7018, [2]byte{99, 18}}}, -8}, 14},
	{place{"GB", "London", 51.51, -0.13, []network{{2856, [2]byte{86, 128}}, {5089, [2]byte{82, 13}}}, 0}, 10},
	{place{"DE", "Berlin", 52.52, 13.40, []network{{3320, [2]byte{87, 160}}, {3209, [2]byte{94, 134}}}, 1}, 6},
	{place{"DE", "Munich", 48.14, 11.58, []network{{3320, [2]byte{87, 161}}}, 1}, 4},
	{place{"FR", "Paris", 48.86, 2.35, []network{{3215, [2]byte{90, 84}}, {12322, [2]byte{82, 64}}}, 1}, 8},
	{place{"JP", "Tokyo", 35.68, 139.69, []network{{2516, [2]byte{106, 128}}, {4713, [2]byte{153, 156}}}, 9}, 8},
	{place{"BR", "Sao Paulo", -23.55, -46.63, []network{{28573, [2]byte{177, 32}}}, -3}, 6},
	{place{"IN", "Bengaluru", 12.97, 77.59, []network{{24560, [2]byte{122, 171}}}, 5}, 6},
	{place{"IN", "Mumbai", 19.08, 72.88, []network{{55836, [2]byte{49, 36}}}, 5}, 4},
	{place{"AU", "Sydney", -33.87, 151.21, []network{{1221, [2]byte{110, 174}}}, 10}, 5},
	{place{"CA", "Toronto", 43.65, -79.38, []network{{812, [2]byte{99, 224}}}, -5}, 6},
}

// mobile are the mobile carriers of each home country: a phone's address
// changes network (ASN) but not country, and carrier-grade NAT geolocates
// to the user's city.
var mobile = map[string][]network{
	"US": {{21928, [2]byte{172, 56}}, {22394, [2]byte{174, 192}}},
	"GB": {{12576, [2]byte{31, 94}}},
	"DE": {{3209, [2]byte{109, 40}}, {6805, [2]byte{176, 0}}},
	"FR": {{51207, [2]byte{37, 164}}},
	"JP": {{17676, [2]byte{126, 152}}},
	"BR": {{26599, [2]byte{187, 26}}},
	"IN": {{45609, [2]byte{106, 204}}},
	"AU": {{4804, [2]byte{101, 160}}},
	"CA": {{577, [2]byte{184, 144}}},
}

// corporateVPN is the company's VPN provider: users on the VPN come out of
// its point of presence in their own city, on its network.
var corporateVPN = network{53813, [2]byte{165, 225}}

// officeNet is the business ISP offices sit behind; each city's office has
// one NAT address that all of its people share.
var officeNet = network{3356, [2]byte{198, 51}}

// attackerOrigins are hosting networks attacks come from. None shares a
// country with a home, so an attack always comes from a foreign country
// and network.
var attackerOrigins = []place{
	{"NL", "Amsterdam", 52.37, 4.90, []network{{60781, [2]byte{185, 107}}}, 1},
	{"RU", "Moscow", 55.76, 37.62, []network{{49505, [2]byte{91, 243}}}, 3},
	{"RO", "Bucharest", 44.43, 26.10, []network{{9009, [2]byte{146, 70}}}, 2},
	{"SG", "Singapore", 1.35, 103.82, []network{{14061, [2]byte{128, 199}}}, 8},
	{"NG", "Lagos", 6.52, 3.38, []network{{37148, [2]byte{105, 112}}}, 1},
	{"VN", "Hanoi", 21.03, 105.85, []network{{7552, [2]byte{113, 161}}}, 7},
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
	"SyncClient/4.12 (Windows 11)",
}

var attackerAgents = []string{
	"python-requests/2.32.3",
	"curl/8.11.0",
	"Go-http-client/1.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
}

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

// ip draws an address in the network's /16, in the given /24 when sub >= 0.
func (n network) ip(rng *rand.Rand, sub int) string {
	if sub < 0 {
		sub = rng.IntN(256)
	}
	return fmt.Sprintf("%d.%d.%d.%d", n.prefix[0], n.prefix[1], sub, 1+rng.IntN(254))
}

// officeIP is the one shared address of the office in city.
func officeIP(city string) string {
	h := uint32(2166136261)
	for i := 0; i < len(city); i++ {
		h = (h ^ uint32(city[i])) * 16777619
	}
	return fmt.Sprintf("%d.%d.%d.%d", officeNet.prefix[0], officeNet.prefix[1], h%256, 1+(h>>8)%254)
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
