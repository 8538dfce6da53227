package simulate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/deployments/tokenapi/server/servertest"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/testenv"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

type memPublisher struct {
	mu      sync.Mutex
	msgs    []kafkax.Message
	batches int
	max     int
}

func (p *memPublisher) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	p.batches++
	p.max = max(p.max, len(msgs))
	return nil
}

type discard struct{}

func (discard) WriteMessages(context.Context, ...kafkax.Message) error { return nil }

func testConfig() simulate.Config {
	cfg := simulate.DefaultConfig()
	cfg.Users = 50
	cfg.Events = 20_000
	cfg.BruteForceProb = 0.03
	cfg.ReplayProb = 0.03
	cfg.BatchSize = 256
	return cfg
}

type run struct {
	msgs   []kafkax.Message
	events []schemas.AuditEvent
	truth  []simulate.GroundTruth
	raw    []byte // the ground-truth file
	stats  simulate.Stats
	sim    *simulate.Sim
	pub    *memPublisher
}

func runSim(t testing.TB, cfg simulate.Config, issuer simulate.TokenIssuer) run {
	t.Helper()
	r, err := simulateRun(cfg, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// simulateRun runs cfg and decodes what it published: every event, every
// ground-truth line.
func simulateRun(cfg simulate.Config, issuer simulate.TokenIssuer) (run, error) {
	sim, err := simulate.New(cfg, issuer, zerolog.Nop())
	if err != nil {
		return run{}, err
	}
	pub := &memPublisher{}
	var gt bytes.Buffer
	var progress int
	stats, err := sim.Run(context.Background(), pub, simulate.Options{GroundTruth: &gt, Progress: func(simulate.Stats) { progress++ }})
	if err != nil {
		return run{}, err
	}
	if progress == 0 {
		return run{}, errors.New("progress never reported")
	}
	r := run{msgs: pub.msgs, raw: gt.Bytes(), stats: stats, sim: sim, pub: pub}
	for i, m := range pub.msgs {
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			return run{}, fmt.Errorf("event %d does not decode: %w\n%s", i, err, m.Value)
		}
		if m.Topic != cfg.Topic || string(m.Key) != ev.UserID {
			return run{}, fmt.Errorf("event %d: topic %q key %q user %q", i, m.Topic, m.Key, ev.UserID)
		}
		if ev.Geo != nil && (ev.Geo.Network != "" || ev.Geo.Org != "") {
			return run{}, fmt.Errorf("event %d names its network's kind or organisation, the enricher's job: %+v", i, *ev.Geo)
		}
		r.events = append(r.events, ev)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(gt.String()), "\n") {
		if line == "" {
			continue
		}
		var g simulate.GroundTruth
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&g); err != nil {
			return run{}, fmt.Errorf("ground truth line %q: %w", line, err)
		}
		r.truth = append(r.truth, g)
	}
	return r, nil
}

func TestDeterministicForASeed(t *testing.T) {
	cfg := testConfig()
	cfg.Events = 5000
	a, b := runSim(t, cfg, nil), runSim(t, cfg, nil)
	if len(a.msgs) != 5000 || len(b.msgs) != 5000 {
		t.Fatalf("want exactly 5000 events, got %d and %d", len(a.msgs), len(b.msgs))
	}
	for i := range a.msgs {
		if !bytes.Equal(a.msgs[i].Value, b.msgs[i].Value) || !bytes.Equal(a.msgs[i].Key, b.msgs[i].Key) {
			t.Fatalf("runs differ at event %d:\n%s\n%s", i, a.msgs[i].Value, b.msgs[i].Value)
		}
	}
	if !bytes.Equal(a.raw, b.raw) {
		t.Fatal("ground truth differs between runs with the same seed")
	}
	cfg.Seed = 2
	c := runSim(t, cfg, nil)
	if bytes.Equal(a.msgs[100].Value, c.msgs[100].Value) {
		t.Fatal("a different seed should give different events")
	}
}

func TestEventsAreRealistic(t *testing.T) {
	cfg := testConfig()
	r := runSim(t, cfg, nil)
	if r.stats.Events != cfg.Events || r.pub.max > cfg.BatchSize {
		t.Fatalf("stats %+v, largest batch %d", r.stats, r.pub.max)
	}
	types := map[schemas.EventType]int{}
	ids := map[string]bool{}
	var last time.Time
	for _, ev := range r.events {
		types[ev.Type]++
		if ids[ev.ID] {
			t.Fatalf("duplicate event id %s", ev.ID)
		}
		ids[ev.ID] = true
		if ev.Time.Before(last) {
			t.Fatalf("event time went backwards: %s after %s", ev.Time, last)
		}
		last = ev.Time
		if ev.Source != simulate.Source || ev.Geo == nil || ev.Geo.Country == "" || ev.Geo.ASN == 0 || ev.IP == "" {
			t.Fatalf("event lacks context: %+v", ev)
		}
		if !strings.HasPrefix(ev.TokenID, schemas.FingerprintPrefix) && ev.TokenID != "" {
			t.Fatalf("token id %q is not a fingerprint", ev.TokenID)
		}
	}
	for _, typ := range []schemas.EventType{
		schemas.EventLoginSuccess, schemas.EventLoginFailure, schemas.EventTokenIssued, schemas.EventTokenUsed,
		schemas.EventFilePreview, schemas.EventFileDownload, schemas.EventTokenExchanged, schemas.EventLogout,
	} {
		if types[typ] == 0 {
			t.Errorf("no %s events in %v", typ, types)
		}
	}
	// The average rate is close to the configured one (in simulated time).
	span := r.events[len(r.events)-1].Time.Sub(r.events[0].Time).Seconds()
	if rate := float64(len(r.events)) / span; rate < cfg.Rate/2 || rate > cfg.Rate*2 {
		t.Errorf("rate %.1f events/s, want about %.0f", rate, cfg.Rate)
	}
	// Every exchanged token names a parent issued to the same user.
	issued := map[string]string{}
	for _, ev := range r.events {
		if ev.Type == schemas.EventTokenIssued {
			issued[ev.TokenID] = ev.UserID
		}
		if ev.Type == schemas.EventTokenExchanged && issued[ev.ParentTokenID] != ev.UserID {
			t.Errorf("exchange of unknown parent: %+v", ev)
		}
	}
}

// carrierASNs are the mobile carriers' networks; zscalerASN is the
// corporate VPN's.
var carrierASNs = map[uint32]bool{21928: true, 22394: true, 12576: true, 3209: true, 6805: true, 51207: true, 9605: true, 26599: true, 45609: true, 55836: true, 4804: true, 577: true}

const zscalerASN = 53813

func countLabel(gs []simulate.GroundTruth, label string) int {
	n := 0
	for _, g := range gs {
		if g.Label == label {
			n++
		}
	}
	return n
}

// TestMistypesAreHuman: people mistype when they mistype. Most get it
// right the second time, some need several tries or reset the password
// they forgot, and Monday mornings bring more of it than other mornings.
func TestMistypesAreHuman(t *testing.T) {
	cfg := testConfig()
	cfg.Users = 300
	cfg.Events = 0
	cfg.Duration = 7 * 24 * time.Hour
	cfg.Rate = float64(cfg.Users) * 40 / 86400
	cfg.MistypeProb = 0.1
	cfg.BruteForceProb, cfg.ReplayProb, cfg.AttackProb, cfg.OutageRate = 0, 0, 0, 0
	cfg.WeekendShare = 1 // every day counts the same
	r := runSim(t, cfg, nil)
	if countLabel(r.truth, simulate.LabelAttack)+countLabel(r.truth, simulate.LabelAttempt) != 0 {
		t.Fatalf("no attacks configured, got %d lines", len(r.truth))
	}
	// Failures before each success, and by local morning.
	run := map[string]int{}
	var runs [10]int
	var resets int
	var monday, otherMornings, mondayLogins, otherLogins int
	for _, ev := range r.events {
		local := ev.Time.Add(time.Duration(*ev.Geo.Lon/15) * time.Hour)
		morning := local.Hour() >= 7 && local.Hour() < 11
		switch ev.Type {
		case schemas.EventLoginFailure:
			run[ev.UserID]++
			if morning && local.Weekday() == time.Monday {
				monday++
			} else if morning {
				otherMornings++
			}
		case schemas.EventPasswordReset:
			resets++
			if run[ev.UserID] < 3 {
				t.Errorf("%s reset the password after %d failures", ev.UserID, run[ev.UserID])
			}
		case schemas.EventLoginSuccess:
			runs[min(run[ev.UserID], 9)]++
			run[ev.UserID] = 0
			if morning && local.Weekday() == time.Monday {
				mondayLogins++
			} else if morning {
				otherLogins++
			}
		}
	}
	if runs[1] == 0 || runs[2] == 0 || runs[3]+runs[4]+runs[5] == 0 || resets == 0 {
		t.Errorf("logins by failures before them %v, %d resets: want ones, twos, a few more and some resets", runs, resets)
	}
	if runs[1] < runs[2] || runs[2] < runs[3] {
		t.Errorf("failures before a login %v: fewer should be more common", runs)
	}
	mon, other := float64(monday)/float64(mondayLogins), float64(otherMornings)/float64(otherLogins)
	if mon < 2*other {
		t.Errorf("failures per login on Monday mornings %.3f, other mornings %.3f: want Mondays clearly worse", mon, other)
	}
}

func distanceKm(a, b *schemas.Geo) float64 {
	rad := math.Pi / 180
	dlat, dlon := (*b.Lat-*a.Lat)*rad, (*b.Lon-*a.Lon)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(*a.Lat*rad)*math.Cos(*b.Lat*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * 6371 * math.Asin(math.Min(1, math.Sqrt(h)))
}

// TestBenignTrafficIsPlausible runs a realistic profile (a few events per
// user and hour, for days) without attacks and checks the benign
// look-alikes: travel at airliner speeds, ASN changes within a country,
// shared office addresses, downscoped tokens used within their grant,
// activity by day.
func TestBenignTrafficIsPlausible(t *testing.T) {
	cfg := testConfig()
	cfg.Users = 200
	cfg.Events = 0
	cfg.Duration = 3 * 24 * time.Hour
	cfg.Rate = float64(cfg.Users) * 100 / 86400
	cfg.BruteForceProb, cfg.ReplayProb, cfg.AttackProb = 0, 0, 0
	cfg.TravelProb = 0.03
	cfg.PasswordChangeProb, cfg.PermissionChangeProb = 0.05, 0.05
	cfg.VPNShare = 0 // a VPN's egress is no place the user is
	r := runSim(t, cfg, nil)
	classes := r.sim.UserClasses()

	type seen struct {
		geo *schemas.Geo
		at  time.Time
	}
	last := map[string]seen{}
	asns := map[string]map[uint32]bool{}
	countries := map[string]map[string]bool{}
	officeUsers := map[string]map[string]bool{}
	grants := map[string]string{} // child token → its file
	var trips, hourly [24]int
	types := map[schemas.EventType]int{}
	for _, ev := range r.events {
		types[ev.Type]++
		if slices.Contains(classes[ev.UserID], simulate.ClassServiceAccount) {
			continue
		}
		// A phone roaming abroad has an address at home: only fixed
		// networks say where the user is.
		if p, ok := last[ev.UserID]; ok && p.geo.City != ev.Geo.City && !carrierASNs[ev.Geo.ASN] {
			trips[0]++
			hours := ev.Time.Sub(p.at).Hours()
			if d := distanceKm(p.geo, ev.Geo); d > 300 && (hours == 0 || d/hours > 800) {
				t.Fatalf("%s moved %.0f km in %.1f h: %+v", ev.UserID, d, hours, ev)
			}
		}
		if !carrierASNs[ev.Geo.ASN] {
			last[ev.UserID] = seen{ev.Geo, ev.Time}
		}
		if asns[ev.UserID] == nil {
			asns[ev.UserID], countries[ev.UserID] = map[uint32]bool{}, map[string]bool{}
		}
		asns[ev.UserID][ev.Geo.ASN] = true
		countries[ev.UserID][ev.Geo.Country] = true
		if officeUsers[ev.IP] == nil {
			officeUsers[ev.IP] = map[string]bool{}
		}
		officeUsers[ev.IP][ev.UserID] = true
		switch {
		case ev.Type == schemas.EventTokenExchanged:
			grants[ev.TokenID] = ev.Resource.ID
		case grants[ev.TokenID] != "":
			if ev.Resource == nil || ev.Resource.ID != grants[ev.TokenID] ||
				(ev.Type != schemas.EventFilePreview && ev.Type != schemas.EventFileDownload) {
				t.Fatalf("downscoped token used beyond its grant %s: %+v", grants[ev.TokenID], ev)
			}
		}
	}
	// Activity follows the users' local time of day.
	for _, ev := range r.events {
		if ev.Type == schemas.EventLoginSuccess && ev.Geo.Lon != nil {
			local := ev.Time.Add(time.Duration(*ev.Geo.Lon/15) * time.Hour)
			hourly[local.Hour()]++
		}
	}
	night, day := hourly[2]+hourly[3]+hourly[4], hourly[10]+hourly[11]+hourly[12]
	if night*3 > day {
		t.Errorf("logins by local hour %v: nights are not quieter than days", hourly)
	}
	if trips[0] == 0 {
		t.Error("nobody travelled")
	}
	churn, shared := 0, 0
	for u, a := range asns {
		if len(a) > 1 && len(countries[u]) <= 2 {
			churn++
		}
	}
	for _, users := range officeUsers {
		if len(users) >= 10 {
			shared++
		}
	}
	if churn < cfg.Users/2 || shared == 0 {
		t.Errorf("%d users changed networks at home, %d addresses shared by ten or more users", churn, shared)
	}
	for _, typ := range []schemas.EventType{schemas.EventPasswordChanged, schemas.EventPermissionChanged, schemas.EventTokenExchanged, schemas.EventTokenRevoked} {
		if types[typ] == 0 {
			t.Errorf("no %s events", typ)
		}
	}
}

func TestDurationBoundsSimulatedTime(t *testing.T) {
	cfg := testConfig()
	cfg.Users = 20
	cfg.Rate = 10
	cfg.Events = 0
	cfg.Duration = 30 * time.Minute
	r := runSim(t, cfg, nil)
	if len(r.truth) == 0 {
		t.Fatal("no attacks in 30 simulated minutes")
	}
	for _, g := range r.truth {
		if g.Partial || g.End.After(cfg.Start.Add(cfg.Duration)) {
			t.Errorf("with a duration every attack finishes in time: %+v", g)
		}
	}
	end := cfg.Start.Add(cfg.Duration)
	for _, ev := range r.events {
		if ev.Time.Before(cfg.Start) || ev.Time.After(end) {
			t.Fatalf("event at %s outside %s..%s", ev.Time, cfg.Start, end)
		}
	}
	if n, want := float64(len(r.events)), cfg.Rate*cfg.Duration.Seconds(); n < want/2 || n > want*2 {
		t.Errorf("%d events in %s at %.0f/s", len(r.events), cfg.Duration, cfg.Rate)
	}
}

func TestLiveClock(t *testing.T) {
	cfg := testConfig()
	cfg.Clock = simulate.ClockLive
	cfg.Events = 0
	cfg.Duration = 1500 * time.Millisecond
	cfg.Rate = 200
	cfg.WeekendShare = 1 // the same rate whatever the day the test runs
	before := time.Now()
	r := runSim(t, cfg, nil)
	after := time.Now()
	if n := len(r.events); n < 100 || n > 1200 {
		t.Errorf("%d events in 1.5 s at 200/s", n)
	}
	// Each event is stamped with the wall clock when it is made: paced,
	// the events of the run are made across it, and its last ones in its
	// second half. (Made as fast as possible, they would all be stamped
	// within its first moments.)
	var latest time.Time
	for _, ev := range r.events {
		if ev.Time.Before(before.Add(-time.Second)) || ev.Time.After(after) {
			t.Fatalf("live event time %s outside the run %s..%s", ev.Time, before, after)
		}
		if ev.Time.After(latest) {
			latest = ev.Time
		}
	}
	if half := before.Add(cfg.Duration / 2); latest.Before(half) {
		t.Errorf("the last event is stamped %s, before the second half of the run (from %s): the events were not paced", latest, half)
	}
	if r.pub.batches < 3 {
		t.Errorf("live events should be published as they come, got %d batches", r.pub.batches)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	cfg := testConfig()
	cfg.Clock = simulate.ClockLive
	cfg.Events = 0
	cfg.Duration = time.Hour
	sim, err := simulate.New(cfg, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	pub := &memPublisher{}
	type result struct {
		stats simulate.Stats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		stats, err := sim.Run(ctx, pub, simulate.Options{})
		done <- result{stats, err}
	}()
	// The run is an hour long: it ends here only because its context did.
	var res result
	select {
	case res = <-done:
	case <-time.After(testenv.WaitTimeout):
		t.Fatal("Run did not return after its context ended")
	}
	stats, err := res.stats, res.err
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("want the context's error, got %v", err)
	}
	if stats.Events != int64(len(pub.msgs)) {
		t.Errorf("stats count %d events, published %d", stats.Events, len(pub.msgs))
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := simulate.Config{Clock: "slow", ReplayProb: 2, DownscopedScopes: []string{"x"}}
	err := cfg.Validate()
	for _, f := range []string{"users", "clock", "rate", "duration", "replay-prob", "client-ids", "downscoped-scopes"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error lacks %q: %v", f, err)
		}
	}
}

func TestRealTokensFromTokenAPI(t *testing.T) {
	env := servertest.Start(t)
	icfg := simulate.DefaultHTTPIssuerConfig()
	icfg.URL = env.URL
	icfg.AdminToken = config.NewSecret(servertest.AdminToken)
	icfg.ExchangeClientID = servertest.AppID
	icfg.ExchangeClientSecret = config.NewSecret(servertest.AppSecret)
	issuer, err := simulate.NewHTTPIssuer(icfg, env.HTTP.Client())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Users = 10
	cfg.Events = 1500
	cfg.ExchangeProb = 0.5
	cfg.ClientIDs = []string{servertest.AppID, "web-app"}
	cfg.Scopes = servertest.AppScopes
	cfg.DownscopedScopes = []string{"files.read"}
	r := runSim(t, cfg, issuer)

	tokens := r.sim.Tokens()
	if len(tokens) == 0 {
		t.Fatal("no real tokens kept")
	}
	byID := map[string]string{}
	for user, raws := range tokens {
		for _, raw := range raws {
			byID[schemas.Fingerprint(raw)] = user
		}
	}
	var issued, exchanged int
	for i, ev := range r.events {
		if ev.Type == schemas.EventTokenIssued || ev.Type == schemas.EventTokenExchanged {
			if byID[ev.TokenID] != ev.UserID {
				t.Fatalf("event token %s is not a real token of %s", ev.TokenID, ev.UserID)
			}
			if ev.Type == schemas.EventTokenIssued {
				issued++
			} else {
				exchanged++
			}
		}
		for _, raws := range tokens {
			for _, raw := range raws {
				if bytes.Contains(r.msgs[i].Value, []byte(raw)) {
					t.Fatal("a raw token was published")
				}
			}
		}
	}
	if issued == 0 || exchanged == 0 {
		t.Fatalf("issued %d, exchanged %d", issued, exchanged)
	}
	// An exchanged token of the exchange client is the token API's child of
	// its parent: revoking the parent there revokes the child.
	for _, ev := range r.events {
		if ev.Type != schemas.EventTokenExchanged || ev.ClientID != servertest.AppID {
			continue
		}
		var out struct {
			Revoked int `json:"revoked"`
		}
		env.Admin(t, http.MethodPost, "/admin/tokens/"+ev.ParentTokenID+"/revoke", nil, &out)
		if out.Revoked < 1 {
			t.Fatalf("revoking parent %s revoked %d tokens", ev.ParentTokenID, out.Revoked)
		}
		return
	}
	t.Fatal("no exchange by the exchange client")
}

func TestHTTPIssuerErrors(t *testing.T) {
	env := servertest.Start(t)
	icfg := simulate.DefaultHTTPIssuerConfig()
	icfg.URL = env.URL
	icfg.AdminToken = config.NewSecret("wrong-admin-token")
	issuer, err := simulate.NewHTTPIssuer(icfg, env.HTTP.Client())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = issuer.Issue(t.Context(), "u1", "app", "s1", []string{"files.read"})
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-admin-token") {
		t.Fatalf("want a 401 without the token, got %v", err)
	}
	if err := (simulate.HTTPIssuerConfig{URL: "ftp://x"}).Validate(); err == nil {
		t.Fatal("bad issuer config validated")
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := simulate.DefaultConfig()
	cfg.Users = 1000
	cfg.Events = int64(b.N)
	sim, err := simulate.New(cfg, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := sim.Run(context.Background(), discard{}, simulate.Options{}); err != nil {
		b.Fatal(err)
	}
}
