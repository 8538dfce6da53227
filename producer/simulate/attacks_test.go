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

// attackRun is one run with attacks of every kind, shared by the tests of
// the attacks: 300 users for 14 hours (the slowest attack takes up to 11)
// with attacks in one token of twenty.
var attackRun = sync.OnceValues(func() (run, error) {
	cfg := simulate.DefaultConfig()
	cfg.Users = 300
	cfg.Duration = 14 * time.Hour
	cfg.Rate = 2.5
	cfg.BatchSize = 1000
	cfg.BruteForceProb, cfg.ReplayProb, cfg.AttackProb = 0.02, 0.02, 0.05
	return simulateRun(cfg, nil)
})

func attacks(t *testing.T) run {
	t.Helper()
	r, err := attackRun()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// window is the events of a user within a label.
func window(r run, g simulate.GroundTruth) []schemas.AuditEvent {
	evs := byUser(r)[g.UserID]
	lo, _ := slices.BinarySearchFunc(evs, g.Start, func(ev schemas.AuditEvent, t time.Time) int { return ev.Time.Compare(t) })
	hi, found := slices.BinarySearchFunc(evs, g.End, func(ev schemas.AuditEvent, t time.Time) int { return ev.Time.Compare(t) })
	for found && hi < len(evs) && evs[hi].Time.Equal(g.End) {
		hi++
	}
	return evs[lo:hi]
}

var (
	indexOnce sync.Once
	index     map[string][]schemas.AuditEvent
)

// byUser is the events of the attack run by user, in time order.
func byUser(r run) map[string][]schemas.AuditEvent {
	indexOnce.Do(func() {
		index = map[string][]schemas.AuditEvent{}
		for _, ev := range r.events {
			index[ev.UserID] = append(index[ev.UserID], ev)
		}
	})
	return index
}

// ownDevices are the devices each user has outside every attack on them:
// an attacker's device shows up within the attack only.
func ownDevices(r run) map[string]map[string]bool {
	labels := r.sim.Labels()
	windows := map[string][]simulate.GroundTruth{}
	for _, g := range labels {
		if g.Label != simulate.LabelUserAction {
			windows[g.UserID] = append(windows[g.UserID], g)
		}
	}
	own := map[string]map[string]bool{}
	for _, ev := range r.events {
		in := false
		for _, g := range windows[ev.UserID] {
			in = in || !ev.Time.Before(g.Start) && !ev.Time.After(g.End)
		}
		if !in {
			if own[ev.UserID] == nil {
				own[ev.UserID] = map[string]bool{}
			}
			own[ev.UserID][ev.DeviceID] = true
		}
	}
	return own
}

// homeCountry is the country each user's own logins come from most.
func homeCountry(r run, own map[string]map[string]bool) map[string]string {
	count := map[string]map[string]int{}
	for _, ev := range r.events {
		if ev.Type == schemas.EventLoginSuccess && own[ev.UserID][ev.DeviceID] && ev.Geo.ASN != zscalerASN {
			if count[ev.UserID] == nil {
				count[ev.UserID] = map[string]int{}
			}
			count[ev.UserID][ev.Geo.Country]++
		}
	}
	out := map[string]string{}
	for u, cs := range count {
		for c, n := range cs {
			if n > cs[out[u]] {
				out[u] = c
			}
		}
	}
	return out
}

func TestGroundTruthListsEveryAttack(t *testing.T) {
	r := attacks(t)
	labels := r.sim.Labels()
	kinds := map[string]int{}
	for _, g := range labels {
		kinds[g.Label+"/"+g.Attack]++
		if g.End.Before(g.Start) || g.End.Sub(g.Start) > 12*time.Hour {
			t.Errorf("window %s..%s of %+v is too long", g.Start, g.End, g)
		}
	}
	for _, a := range simulate.Attacks() {
		if kinds[simulate.LabelAttack+"/"+a] == 0 {
			t.Errorf("no %s attack in %v", a, kinds)
		}
	}
	for _, a := range []string{simulate.AttackCredentialStuffing, simulate.AttackDistributedStuffing, simulate.AttackPasswordSpraying} {
		if kinds[simulate.LabelAttempt+"/"+a] < 10 {
			t.Errorf("no %s attempts labelled: %v", a, kinds)
		}
	}
	if kinds[simulate.LabelUserAction+"/"+simulate.RuleLogout] == 0 {
		t.Errorf("no logouts labelled: %v", kinds)
	}
	if len(labels) != len(strings.Split(strings.TrimSpace(string(r.raw)), "\n")) || r.stats.Labels != len(labels) {
		t.Errorf("the file, the stats and Labels disagree")
	}
	if r.stats.Attacks != len(r.sim.GroundTruth()) || r.stats.Attacks != countLabel(labels, simulate.LabelAttack) {
		t.Errorf("stats count %d attacks, GroundTruth has %d", r.stats.Attacks, len(r.sim.GroundTruth()))
	}
	// Every logout is labelled with its session and token.
	logouts := map[string]bool{}
	for _, g := range labels {
		if g.Label == simulate.LabelUserAction {
			logouts[g.SessionID+"/"+g.TokenID] = true
		}
	}
	for _, ev := range r.events {
		if ev.Type == schemas.EventLogout && !logouts[ev.SessionID+"/"+ev.TokenID] {
			t.Fatalf("logout not labelled: %+v", ev)
		}
	}
}

// TestAttackersComeFromEverywhere: attackers use hosting networks and
// residential addresses, abroad and in the victim's own country.
func TestAttackersComeFromEverywhere(t *testing.T) {
	r := attacks(t)
	own := ownDevices(r)
	home := homeCountry(r, own)
	var cloudHome, cloudAbroad, resHome, resAbroad int
	for _, g := range r.sim.GroundTruth() {
		for _, ev := range window(r, g) {
			if own[ev.UserID][ev.DeviceID] || home[ev.UserID] == "" {
				continue
			}
			switch cloud, at := cloudASNs[ev.Geo.ASN], ev.Geo.Country == home[ev.UserID]; {
			case cloud && at:
				cloudHome++
			case cloud:
				cloudAbroad++
			case at:
				resHome++
			default:
				resAbroad++
			}
		}
	}
	if cloudHome == 0 || cloudAbroad == 0 || resHome == 0 || resAbroad == 0 {
		t.Errorf("attackers' events: %d hosting at home, %d hosting abroad, %d residential at home, %d residential abroad",
			cloudHome, cloudAbroad, resHome, resAbroad)
	}
}

// TestEachAttackHasItsSignature checks each attack's events against what
// its kind does.
func TestEachAttackHasItsSignature(t *testing.T) {
	r := attacks(t)
	own := ownDevices(r)
	home := homeCountry(r, own)
	victimAgent := map[string]string{}
	for _, ev := range r.events {
		if own[ev.UserID][ev.DeviceID] && ev.Type == schemas.EventLoginSuccess {
			victimAgent[ev.UserID] = ev.UserAgent
		}
	}
	attempts := map[string]int{}
	winners := map[string]int{}
	for _, g := range r.sim.Labels() {
		switch g.Label {
		case simulate.LabelAttempt:
			attempts[g.AttackID]++
		case simulate.LabelAttack:
			winners[g.AttackID]++
		}
	}
	hijackedWhileWorking := 0
	for _, g := range r.sim.GroundTruth() {
		if g.Partial {
			continue
		}
		var (
			fails, success, uses, downloads, grants, shares, pw, resets, pushes int
			ownUses, mints                                                      int
			ips                                                                 = map[string]bool{}
			childIPs                                                            = map[string]bool{}
			children                                                            = map[string]bool{}
			lastFail                                                            time.Time
			slowGaps, residential, atHome, abroad, cloud, otherAgent            = true, true, true, false, true, true
		)
		for _, ev := range window(r, g) {
			mine := own[g.UserID][ev.DeviceID]
			if ev.Type == schemas.EventPermissionChanged && ev.Attrs["role"] == "admin" {
				grants++
			}
			if ev.Type == schemas.EventShareCreated {
				shares++
			}
			if ev.Type == schemas.EventFileDownload {
				downloads++
			}
			if ev.Type == schemas.EventPasswordChanged {
				pw++
			}
			if mine {
				if g.TokenID != "" && ev.TokenID == g.TokenID {
					ownUses++
				}
				continue
			}
			ips[ev.IP] = true
			residential = residential && !cloudASNs[ev.Geo.ASN]
			cloud = cloud && cloudASNs[ev.Geo.ASN]
			atHome = atHome && ev.Geo.Country == home[g.UserID]
			otherAgent = otherAgent && ev.UserAgent != victimAgent[g.UserID]
			switch ev.Type {
			case schemas.EventLoginFailure:
				if !lastFail.IsZero() && ev.Time.Sub(lastFail) < 5*time.Minute-time.Second {
					slowGaps = false
				}
				fails, lastFail = fails+1, ev.Time
			case schemas.EventLoginSuccess:
				success++
				abroad = abroad || ev.Geo.Country != home[g.UserID]
			case schemas.EventPasswordReset:
				resets++
			case schemas.EventMFAFailure:
				if ev.Attrs["method"] == "push" && (ev.Attrs["reason"] == "rejected" || ev.Attrs["reason"] == "timeout") {
					pushes++
				}
			case schemas.EventTokenExchanged:
				if ev.ParentTokenID == g.TokenID {
					mints++
					children[ev.TokenID] = true
				}
			}
			if children[ev.TokenID] && ev.Type == schemas.EventFileDownload {
				childIPs[ev.IP] = true
			}
			if g.TokenID != "" && ev.TokenID == g.TokenID {
				uses++
			}
		}
		got := func(ok bool) {
			if !ok {
				t.Errorf("%s %+v: %d failures (slow %v), %d successes, %d attacker's uses, %d own uses, %d downloads, %d grants, %d shares, %d password changes, %d resets, %d pushes, %d mints, %d child addresses, %d addresses; residential %v, at home %v, abroad %v, cloud %v",
					g.Attack, g, fails, slowGaps, success, uses, ownUses, downloads, grants, shares, pw, resets, pushes, mints, len(childIPs), len(ips), residential, atHome, abroad, cloud)
			}
		}
		switch g.Attack {
		case simulate.AttackBruteForce:
			got(fails >= 12)
		case simulate.AttackBruteForceSuccess:
			got(fails >= 6 && success > 0 && uses > 0)
		case simulate.AttackCredentialStuffing, simulate.AttackPasswordSpraying:
			got(success > 0 && uses > 0 && attempts[g.AttackID] >= 10)
		case simulate.AttackImpossibleTravel:
			got(success > 0 && uses > 0)
		case simulate.AttackTokenReplay, simulate.AttackDownscopedMisuse:
			got(uses > 0)
		case simulate.AttackMassDownload:
			got(downloads >= 600)
		case simulate.AttackNewLocationAction:
			got(shares > 0 && pw > 0)
		case simulate.AttackPrivilegeEscalation:
			got(grants == 1 && downloads+shares >= 10)
		case simulate.AttackTokenAfterPassword:
			got(pw > 0 && uses >= 2)
		case simulate.AttackLowAndSlow:
			got(fails >= 15 && slowGaps && len(ips) >= 10 && residential && atHome && success == 1 && uses > 0)
		case simulate.AttackDistributedStuffing:
			got(fails == 0 && success == 1 && uses > 0 && cloud && attempts[g.AttackID]+winners[g.AttackID] >= 150 &&
				winners[g.AttackID] >= 2 && winners[g.AttackID] <= 5)
		case simulate.AttackMFAFatigue:
			got(pushes >= 5 && success == 1 && uses >= 2)
		case simulate.AttackSessionHijack:
			got(uses >= 5 && cloud && otherAgent && success == 0)
			if ownUses > 0 {
				hijackedWhileWorking++
			}
		case simulate.AttackPasswordResetTakeover:
			got(resets == 1 && success == 1 && abroad && uses >= 2)
		case simulate.AttackDownscopedMinting:
			got(mints >= 20 && len(childIPs) >= 10)
		case simulate.AttackEscalationSharing:
			got(grants == 1 && shares >= 50)
		}
	}
	if hijackedWhileWorking == 0 {
		t.Error("no hijacked victim went on working in the session")
	}
	// Each user the distributed stuffing tried failed once.
	for _, g := range r.sim.Labels() {
		if g.Attack != simulate.AttackDistributedStuffing || g.Label != simulate.LabelAttempt || !strings.HasPrefix(g.UserID, "user-") {
			continue
		}
		n := 0
		for _, ev := range window(r, g) {
			if ev.Type == schemas.EventLoginFailure && cloudASNs[ev.Geo.ASN] {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s tried %d times by a distributed stuffing", g.UserID, n)
		}
	}
}

func TestAttackMix(t *testing.T) {
	cfg := simulate.DefaultConfig()
	cfg.AttackMix = []string{"mfa_fatigue=3", "mass_download=0", "nonsense=1", "aitm_session_hijack=x"}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "nonsense") || !strings.Contains(err.Error(), "aitm_session_hijack=x") {
		t.Fatalf("want the bad entries reported, got %v", err)
	}
	cfg = simulate.DefaultConfig()
	cfg.Users = 200
	cfg.Duration = 6 * time.Hour
	cfg.Rate = 4
	cfg.BruteForceProb, cfg.ReplayProb, cfg.AttackProb = 0, 0, 0.05
	cfg.AttackMix = []string{"mfa_fatigue=4", "mass_download=0"}
	r := runSim(t, cfg, nil)
	// Attacks (not victims) by kind, among those that started while
	// every kind could still finish.
	kinds := map[string]int{}
	seen := map[string]bool{}
	for _, g := range r.sim.GroundTruth() {
		if !seen[g.AttackID] && g.Start.Before(cfg.Start.Add(cfg.Duration-2*time.Hour)) {
			kinds[g.Attack]++
			seen[g.AttackID] = true
		}
	}
	if kinds[simulate.AttackMassDownload] != 0 || kinds[simulate.AttackPrivilegeEscalation] == 0 ||
		kinds[simulate.AttackMFAFatigue] < 3*kinds[simulate.AttackPrivilegeEscalation] {
		t.Errorf("attacks by kind %v: want no mass download and mfa fatigue four times as common as any other", kinds)
	}
}
