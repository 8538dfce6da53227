package simulate

import (
	"fmt"
	"math/rand/v2"
)

// place is a city with the networks its people come from.
type place struct {
	country  string
	city     string
	lat, lon float64
	asns     []network
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
	{place{"US", "New York", 40.71, -74.01, []network{{7922, [2]byte{73, 12}}, {701, [2]byte{71, 161}}}}, 16},
	{place{"US", "San Francisco", 37.77, -122.42, []network{{7922, [2]byte{73, 93}}, {7018, [2]byte{99, 18}}}}, 14},
	{place{"GB", "London", 51.51, -0.13, []network{{2856, [2]byte{86, 128}}, {5089, [2]byte{82, 13}}}}, 10},
	{place{"DE", "Berlin", 52.52, 13.40, []network{{3320, [2]byte{87, 160}}, {3209, [2]byte{94, 134}}}}, 6},
	{place{"DE", "Munich", 48.14, 11.58, []network{{3320, [2]byte{87, 161}}}}, 4},
	{place{"FR", "Paris", 48.86, 2.35, []network{{3215, [2]byte{90, 84}}, {12322, [2]byte{82, 64}}}}, 8},
	{place{"JP", "Tokyo", 35.68, 139.69, []network{{2516, [2]byte{106, 128}}, {4713, [2]byte{153, 156}}}}, 8},
	{place{"BR", "Sao Paulo", -23.55, -46.63, []network{{28573, [2]byte{177, 32}}}}, 6},
	{place{"IN", "Bengaluru", 12.97, 77.59, []network{{24560, [2]byte{122, 171}}}}, 6},
	{place{"IN", "Mumbai", 19.08, 72.88, []network{{55836, [2]byte{49, 36}}}}, 4},
	{place{"AU", "Sydney", -33.87, 151.21, []network{{1221, [2]byte{110, 174}}}}, 5},
	{place{"CA", "Toronto", 43.65, -79.38, []network{{812, [2]byte{99, 224}}}}, 6},
}

// attackerOrigins are hosting networks attacks come from. None shares a
// country with a home, so an attack always comes from a foreign country
// and network.
var attackerOrigins = []place{
	{"NL", "Amsterdam", 52.37, 4.90, []network{{60781, [2]byte{185, 107}}}},
	{"RU", "Moscow", 55.76, 37.62, []network{{49505, [2]byte{91, 243}}}},
	{"RO", "Bucharest", 44.43, 26.10, []network{{9009, [2]byte{146, 70}}}},
	{"SG", "Singapore", 1.35, 103.82, []network{{14061, [2]byte{128, 199}}}},
	{"NG", "Lagos", 6.52, 3.38, []network{{37148, [2]byte{105, 112}}}},
	{"VN", "Hanoi", 21.03, 105.85, []network{{7552, [2]byte{113, 161}}}},
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
