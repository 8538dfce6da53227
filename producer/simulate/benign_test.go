package simulate_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// benignRun is one attack-free run, shared by the tests of the benign
// classes: 1,000 users for five days from a Thursday (a weekend and a
// Monday morning included) at 35 events per user and day, with classes
// large enough to show.
var benignRun = sync.OnceValues(func() (run, error) {
	cfg := simulate.DefaultConfig()
	cfg.Users = 1000
	cfg.Duration = 5 * 24 * time.Hour
	cfg.Rate = float64(cfg.Users) * 35 / 86400
	cfg.BatchSize = 1000
	cfg.BruteForceProb, cfg.ReplayProb, cfg.AttackProb = 0, 0, 0
	cfg.SharedNATShare = 0.3
	cfg.SyncShare = 0.05
	cfg.TravellerShare, cfg.TravelProb = 0.15, 0.1
	cfg.ServiceShare = 0.02
	cfg.OutageRate = 1.5
	return simulateRun(cfg, nil)
})

func benign(t *testing.T) (run, map[string][]string) {
	t.Helper()
	r, err := benignRun()
	if err != nil {
		t.Fatal(err)
	}
	return r, r.sim.UserClasses()
}

func inClass(classes map[string][]string, user, class string) bool {
	return slices.Contains(classes[user], class)
}

func TestUserClasses(t *testing.T) {
	r, classes := benign(t)
	if len(classes) != 1000 {
		t.Fatalf("classes of %d users, want 1000", len(classes))
	}
	count := map[string]int{}
	for _, cs := range classes {
		if len(cs) == 0 {
			t.Fatal("a user without a class (want plain)")
		}
		for _, c := range cs {
			count[c]++
		}
	}
	for _, c := range simulate.BenignClasses() {
		if count[c] == 0 {
			t.Errorf("nobody in class %s: %v", c, count)
		}
	}
	if n := count[simulate.ClassSharedNAT]; n < 240 || n > 360 {
		t.Errorf("%d of 1000 users behind a shared NAT, want about 300", n)
	}
	if len(r.truth) != countLabel(r.truth, simulate.LabelUserAction) {
		t.Error("attacks in an attack-free run")
	}
}

// TestHandoffKeepsSessionAndToken: a phone's session moves between Wi-Fi
// and the carrier (another ASN and address, the same city) and back, with
// the same session, token, device and user agent.
func TestHandoffKeepsSessionAndToken(t *testing.T) {
	r, classes := benign(t)
	type sess struct {
		asns            map[uint32]bool
		cities          map[string]bool
		tokens, devices map[string]bool
		agents          map[string]bool
		switches        int
		last            uint32
	}
	sessions := map[string]*sess{}
	for _, ev := range r.events {
		if ev.SessionID == "" || !inClass(classes, ev.UserID, simulate.ClassHandoff) || ev.ClientID == "desktop-sync" {
			continue
		}
		s := sessions[ev.SessionID]
		if s == nil {
			s = &sess{asns: map[uint32]bool{}, cities: map[string]bool{}, tokens: map[string]bool{}, devices: map[string]bool{}, agents: map[string]bool{}}
			sessions[ev.SessionID] = s
		}
		if s.last != 0 && s.last != ev.Geo.ASN {
			s.switches++
		}
		s.last = ev.Geo.ASN
		s.asns[ev.Geo.ASN] = true
		s.cities[ev.Geo.City] = true
		s.devices[ev.DeviceID] = true
		s.agents[ev.UserAgent] = true
		if ev.Type == schemas.EventTokenUsed {
			s.tokens[ev.TokenID] = true
		}
	}
	moved, back := 0, 0
	for id, s := range sessions {
		if len(s.devices) != 1 || len(s.agents) != 1 {
			t.Fatalf("session %s changed device or agent: %v %v", id, s.devices, s.agents)
		}
		if len(s.asns) > 1 && len(s.tokens) == 1 && len(s.cities) == 1 {
			moved++
			if s.switches >= 2 {
				back++
			}
		}
	}
	if moved < 100 || back < 30 {
		t.Errorf("%d of %d handoff sessions moved network with one token in one city, %d and back", moved, len(sessions), back)
	}
}

// TestSharedNATAddress: hundreds of users behind one address, and their
// mistyped passwords cluster on Monday mornings.
func TestSharedNATAddress(t *testing.T) {
	r, classes := benign(t)
	users := map[string]map[string]bool{}
	for _, ev := range r.events {
		if inClass(classes, ev.UserID, simulate.ClassSharedNAT) {
			if users[ev.IP] == nil {
				users[ev.IP] = map[string]bool{}
			}
			users[ev.IP][ev.UserID] = true
		}
	}
	var nat string
	for ip, us := range users {
		if len(us) >= 100 {
			nat = ip
		}
	}
	if nat == "" {
		t.Fatal("no address shared by 100 users or more")
	}
	// Failures from the address, by hour: the busiest hour is on Monday
	// morning and holds several users.
	byHour := map[time.Time]map[string]bool{}
	for _, ev := range r.events {
		if ev.IP == nat && ev.Type == schemas.EventLoginFailure {
			h := ev.Time.Truncate(time.Hour)
			if byHour[h] == nil {
				byHour[h] = map[string]bool{}
			}
			byHour[h][ev.UserID] = true
		}
	}
	var top time.Time
	for h, us := range byHour {
		if len(us) > len(byHour[top]) {
			top = h
		}
	}
	if len(byHour[top]) < 3 {
		t.Errorf("at most %d users failed in one hour behind %s (%d users)", len(byHour[top]), nat, len(users[nat]))
	}
	t.Logf("%s: %d users; most failing in an hour: %d at %s UTC", nat, len(users[nat]), len(byHour[top]), top.Format(time.RFC1123))
}

// TestCorporateVPNAlternates: the VPN's egress moves between points of
// presence, some in another country, within one session and token.
func TestCorporateVPNAlternates(t *testing.T) {
	r, classes := benign(t)
	countries := map[string]map[string]bool{}
	for _, ev := range r.events {
		if ev.Geo.ASN != zscalerASN || ev.TokenID == "" {
			continue
		}
		if !inClass(classes, ev.UserID, simulate.ClassCorporateVPN) {
			t.Fatalf("%s is on the VPN without being in its class", ev.UserID)
		}
		if countries[ev.TokenID] == nil {
			countries[ev.TokenID] = map[string]bool{}
		}
		countries[ev.TokenID][ev.Geo.Country] = true
	}
	abroad := 0
	for _, cs := range countries {
		if len(cs) > 1 {
			abroad++
		}
	}
	if len(countries) < 100 || abroad < 5 {
		t.Errorf("%d tokens used through the VPN, %d of them from two countries", len(countries), abroad)
	}
}

// TestSyncClientDownloadsFromNewDevice: a device new to the user downloads
// a thousand files or more.
func TestSyncClientDownloadsFromNewDevice(t *testing.T) {
	r, classes := benign(t)
	first := map[string]time.Time{} // user/device → first seen
	downloads := map[string]int{}
	start := r.events[0].Time
	for _, ev := range r.events {
		k := ev.UserID + "/" + ev.DeviceID
		if _, ok := first[k]; !ok {
			first[k] = ev.Time
		}
		if ev.Type == schemas.EventFileDownload {
			downloads[k]++
		}
	}
	syncs := 0
	for k, n := range downloads {
		user := k[:strings.Index(k, "/")]
		if n >= 1000 && first[k].Sub(start) >= 24*time.Hour {
			syncs++
			if !inClass(classes, user, simulate.ClassSyncNewDevice) {
				t.Errorf("%s downloaded %d files without being in the sync class", user, n)
			}
		}
	}
	if syncs < 10 {
		t.Errorf("%d new devices downloaded 1000 files or more", syncs)
	}
}

// TestIdPOutage: hundreds of users fail once within minutes, then log in.
func TestIdPOutage(t *testing.T) {
	r, classes := benign(t)
	// The 20 minutes from one failure on in which most users failed.
	var fails []schemas.AuditEvent
	for _, ev := range r.events {
		if ev.Type == schemas.EventLoginFailure {
			fails = append(fails, ev)
		}
	}
	var top time.Time
	failed := map[string]int{}
	for i, f := range fails {
		users := map[string]int{}
		for _, g := range fails[i:] {
			if g.Time.Sub(f.Time) > 20*time.Minute {
				break
			}
			users[g.UserID]++
		}
		if len(users) > len(failed) {
			top, failed = f.Time, users
		}
	}
	if len(failed) < 100 {
		t.Fatalf("at most %d users failed within 20 minutes", len(failed))
	}
	once, recovered, labelled := 0, 0, 0
	ok := map[string]bool{}
	for _, ev := range r.events {
		if ev.Type == schemas.EventLoginSuccess && failed[ev.UserID] > 0 && !ev.Time.Before(top) && ev.Time.Before(top.Add(time.Hour)) {
			ok[ev.UserID] = true
		}
	}
	for u, n := range failed {
		if n == 1 {
			once++
		}
		if ok[u] {
			recovered++
		}
		if inClass(classes, u, simulate.ClassIdPOutage) {
			labelled++
		}
	}
	if once < len(failed)*8/10 || recovered < len(failed)*9/10 || labelled < len(failed)*9/10 {
		t.Errorf("%d users failed in the outage: %d once, %d then logged in, %d labelled", len(failed), once, recovered, labelled)
	}
}

// TestServiceAccounts: automation from cloud networks, around the clock,
// with client libraries' user agents and no interactive login.
func TestServiceAccounts(t *testing.T) {
	r, classes := benign(t)
	hours := map[int]bool{}
	n := 0
	for _, ev := range r.events {
		if !inClass(classes, ev.UserID, simulate.ClassServiceAccount) {
			continue
		}
		n++
		if !cloudASNs[ev.Geo.ASN] {
			t.Fatalf("service account outside the clouds: %+v", ev)
		}
		if ev.Type == schemas.EventLoginSuccess || ev.Type == schemas.EventLoginFailure || ev.DeviceID != "" {
			t.Fatalf("service account with an interactive login or a device: %+v", ev)
		}
		if strings.HasPrefix(ev.UserAgent, "Mozilla/") {
			t.Fatalf("service account with a browser: %+v", ev)
		}
		hours[ev.Time.Hour()] = true
	}
	if n < 1000 || len(hours) < 24 {
		t.Errorf("%d service account events in %d hours of the day", n, len(hours))
	}
}

var cloudASNs = map[uint32]bool{14618: true, 16509: true, 396982: true, 8075: true, 14061: true, 24940: true, 16276: true, 20473: true, 63949: true, 9009: true, 49505: true}

// TestTravellersRoam: abroad, a traveller's phone roams on the home
// carrier (an address at home) while the hotel's network is abroad.
func TestTravellersRoam(t *testing.T) {
	r, classes := benign(t)
	abroad := map[string]string{} // user → country of the hotel seen last
	home := map[string]string{}
	roaming := 0
	for _, ev := range r.events {
		if !inClass(classes, ev.UserID, simulate.ClassTraveller) || inClass(classes, ev.UserID, simulate.ClassCorporateVPN) {
			continue
		}
		if home[ev.UserID] == "" {
			home[ev.UserID] = ev.Geo.Country
		}
		switch {
		case !carrierASNs[ev.Geo.ASN] && ev.Geo.Country != home[ev.UserID]:
			abroad[ev.UserID] = ev.Geo.Country
		case !carrierASNs[ev.Geo.ASN]:
			abroad[ev.UserID] = ""
		case abroad[ev.UserID] != "" && ev.Geo.Country == home[ev.UserID]:
			roaming++
		}
	}
	if roaming == 0 {
		t.Error("no traveller roamed abroad")
	}
	for u := range abroad {
		if !inClass(classes, u, simulate.ClassTraveller) {
			t.Errorf("%s travelled without being a traveller", u)
		}
	}
}

// TestWeekends: most people are quiet at weekends; weekend workers are
// not.
func TestWeekends(t *testing.T) {
	r, classes := benign(t)
	var days [2][7]int // [weekend worker][weekday] logins
	for _, ev := range r.events {
		if ev.Type != schemas.EventLoginSuccess || ev.ClientID == "desktop-sync" {
			continue
		}
		local := ev.Time.Add(time.Duration(*ev.Geo.Lon/15) * time.Hour)
		w := 0
		if inClass(classes, ev.UserID, simulate.ClassWeekendWorker) {
			w = 1
		}
		days[w][local.Weekday()]++
	}
	// The run covers Thursday to Tuesday: compare Saturday with Friday.
	if sat, fri := days[0][time.Saturday], days[0][time.Friday]; sat*2 > fri {
		t.Errorf("others: %d logins on Saturday, %d on Friday", sat, fri)
	}
	if sat, fri := days[1][time.Saturday], days[1][time.Friday]; sat*2 < fri {
		t.Errorf("weekend workers: %d logins on Saturday, %d on Friday", sat, fri)
	}
}
