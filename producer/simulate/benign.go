package simulate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Benign classes: kinds of legitimate traffic that look like attacks to a
// single signal. Each is a share of the users (Config's *Share fields) or,
// for identity-provider outages, a rate; Sim.UserClasses says which users
// belong to which.
const (
	// ClassOffice: works from the city office on working days, behind the
	// office's one NAT address, which all of the city's office workers
	// share.
	ClassOffice = "office"
	// ClassSharedNAT: lives behind a campus NAT or a broadband provider's
	// carrier-grade NAT, one address shared by hundreds of people, whose
	// mistyped passwords cluster on Monday mornings like everyone's.
	ClassSharedNAT = "shared_nat"
	// ClassHandoff: a phone whose sessions move between Wi-Fi and the
	// carrier network and back, keeping their session and token (same
	// device and user agent, same city; another ASN and address).
	ClassHandoff = "wifi_cellular_handoff"
	// ClassCorporateVPN: works through the corporate VPN, whose egress
	// alternates between points of presence, some in another country,
	// also within a session.
	ClassCorporateVPN = "corporate_vpn"
	// ClassSyncNewDevice: sets up a new laptop during the run, whose
	// desktop sync client downloads thousands of the user's files from a
	// device never seen before.
	ClassSyncNewDevice = "sync_new_device"
	// ClassIdPOutage: failed to sign in once during an outage of the
	// identity provider (hundreds of users within minutes), then signed
	// in. Users join the class when it happens to them.
	ClassIdPOutage = "idp_outage"
	// ClassTraveller: flies now and then (arriving no sooner than an
	// airliner could bring them) and works from hotel networks and, abroad,
	// from the phone roaming on its home carrier (an address at home while
	// the hotel's is abroad).
	ClassTraveller = "traveller"
	// ClassServiceAccount: an integration's account, driven by automation
	// from cloud hosting networks around the clock with a client library's
	// user agent and client-credentials tokens.
	ClassServiceAccount = "service_account"
	// ClassWeekendWorker: works weekends as on weekdays; everyone else is
	// mostly quiet on Saturdays and Sundays.
	ClassWeekendWorker = "weekend_worker"
	// ClassPlain: none of the others.
	ClassPlain = "plain"
)

// BenignClasses lists the benign classes, ClassPlain last.
func BenignClasses() []string {
	return []string{
		ClassOffice, ClassSharedNAT, ClassHandoff, ClassCorporateVPN, ClassSyncNewDevice,
		ClassIdPOutage, ClassTraveller, ClassServiceAccount, ClassWeekendWorker, ClassPlain,
	}
}

// UserClasses returns the benign classes of every user of the run so far,
// by user id, in BenignClasses order; a user in none is in ClassPlain.
// Outages add their users as they happen.
func (s *Sim) UserClasses() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	order := BenignClasses()
	out := make(map[string][]string, s.cfg.Users)
	for i := range s.cfg.Users {
		id := UserID(i)
		cs := slices.Clone(s.classes[id])
		if len(cs) == 0 {
			cs = []string{ClassPlain}
		}
		slices.SortFunc(cs, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
		out[id] = cs
	}
	return out
}

func (s *Sim) addClass(userID, class string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.classes[userID], class) {
		s.classes[userID] = append(s.classes[userID], class)
	}
}

// Identity-provider outages.
const (
	outageMin, outageMax = 5 * time.Minute, 20 * time.Minute
	// outageDrop is the chance that an outage drops a session under way
	// (its token refresh fails and the user is asked to sign in again).
	outageDrop = 0.5
)

// idpOutage is the state of the identity provider.
type idpOutage struct {
	id     int       // the current or last outage, from 1
	until  time.Time // when it ends
	reason string    // what its failed logins say
}

func (o idpOutage) activeAt(t time.Time) bool { return o.id > 0 && t.Before(o.until) }

// outageGap draws the time to the next outage.
func (s *Sim) outageGap() time.Duration {
	return exponential(s.rng, time.Duration(float64(24*time.Hour)/s.cfg.OutageRate))
}

// outageActor starts outages of the identity provider, Config.OutageRate
// a day on average: for 5 to 20 minutes every sign-in fails once (the
// users then sign in again after it), and half the sessions under way are
// dropped and ask their users to sign in. Some identity providers log the
// failures as invalid credentials (a directory agent that cannot be
// reached fails the password check), others as the upstream error.
type outageActor struct{}

func (*outageActor) step(_ context.Context, s *Sim) (time.Time, bool, error) {
	s.outage.id++
	s.outage.until = s.after(uniform(s.rng, outageMin, outageMax))
	s.outage.reason = "invalid_password"
	if s.rng.IntN(2) == 0 {
		s.outage.reason = "directory_unavailable"
	}
	for _, u := range s.users {
		if u.state == active && !u.reauth && s.rng.Float64() < outageDrop {
			s.schedule(&dropped{u: u, session: u.session, outage: s.outage.id}, s.after(uniform(s.rng, time.Millisecond, s.outage.until.Sub(s.simNow))))
		}
	}
	return s.outage.until.Add(s.outageGap()), false, nil
}

// dropped is a session that an outage dropped: at some moment of the
// outage the application's token refresh fails and it signs the user in
// again, which fails too. The user's next action waits for the identity
// provider to come back and starts with a sign-in.
type dropped struct {
	u       *user
	session string
	outage  int
}

func (d *dropped) step(_ context.Context, s *Sim) (time.Time, bool, error) {
	u := d.u
	if u.session != d.session || u.state != active || u.outageSeen == d.outage || !s.outage.activeAt(s.simNow) {
		return time.Time{}, true, nil
	}
	s.emit(u.outageFailure(s))
	u.reauth = true
	u.reauthAt = s.outage.until.Add(uniform(u.rng, 30*time.Second, 10*time.Minute)).Truncate(time.Millisecond)
	return time.Time{}, true, nil
}

// Desktop sync clients.
const (
	syncFilesMin, syncFilesMax = 1000, 5000
	syncGapMin, syncGapMax     = 20 * time.Millisecond, time.Second
	syncPollMin, syncPollMax   = 30 * time.Minute, 90 * time.Minute
)

// newDeviceDay is when u sets up a new laptop: a working-day morning,
// a day and a half or more into the run and, with a duration, six hours or
// more before its end (in a short run, somewhere in its middle).
func (s *Sim) newDeviceDay(u *user, start time.Time) time.Time {
	hi := 8 * 24 * time.Hour
	if s.cfg.Duration > 0 {
		hi = s.cfg.Duration - min(6*time.Hour, s.cfg.Duration/4)
	}
	lo := min(36*time.Hour, hi/2)
	if hi <= lo {
		return start
	}
	t := start.Add(uniform(u.rng, lo, hi))
	local := u.localTime(t)
	for !u.worksOn(local) {
		local = local.AddDate(0, 0, 1)
	}
	morning := time.Date(local.Year(), local.Month(), local.Day(), 8, 0, 0, 0, time.UTC).Add(uniform(u.rng, 0, 3*time.Hour))
	at := morning.Add(-time.Duration(u.loc.tz) * time.Hour)
	if s.cfg.Duration > 0 && !at.Before(start.Add(s.cfg.Duration)) || at.Before(start) {
		return t.Truncate(time.Millisecond)
	}
	return at.Truncate(time.Millisecond)
}

// syncClient is the desktop sync client of a user's new laptop: it signs
// in from a device the user never used, downloads the user's whole
// library (thousands of files) within the hour, and then keeps polling
// for changes, uploading and downloading now and then, for the rest of
// the run. The laptop replaces the user's old one.
type syncClient struct {
	u       *user
	phase   int
	left    int
	device  string
	agent   string
	session string
	addr    address
	tok     token
}

func (c *syncClient) event(typ schemas.EventType) *schemas.AuditEvent {
	return &schemas.AuditEvent{
		Type:      typ,
		UserID:    c.u.id,
		SessionID: c.session,
		ClientID:  "desktop-sync",
		IP:        c.addr.ip,
		UserAgent: c.agent,
		DeviceID:  c.device,
		Geo:       c.addr.at.geo(c.addr.net.asn),
		TokenID:   c.tok.id,
	}
}

func (c *syncClient) step(ctx context.Context, s *Sim) (time.Time, bool, error) {
	u := c.u
	switch c.phase {
	case 0:
		c.device = fmt.Sprintf("dev_%012x", u.rng.Uint64()&0xffffffffffff)
		c.agent = syncAgents[u.rng.IntN(len(syncAgents))]
		c.session = "ses_" + s.hexID()
		c.addr = u.habitualAddr(s.simNow)
		if u.state != offline && !u.onCarrier && !u.onVPN {
			c.addr = u.cur // on the desk beside the session under way
		}
		s.emit(c.event(schemas.EventLoginSuccess))
		c.phase++
		return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
	case 1:
		t, err := s.issue(ctx, asUser, u.id, "desktop-sync", c.session, s.cfg.Scopes)
		if err != nil {
			return time.Time{}, false, err
		}
		c.tok = t
		ev := c.event(schemas.EventTokenIssued)
		ev.Scopes = s.cfg.Scopes
		s.emit(ev)
		c.left = syncFilesMin + u.rng.IntN(syncFilesMax-syncFilesMin+1)
		c.phase++
		return s.after(uniform(u.rng, time.Second, 10*time.Second)), false, nil
	case 2:
		ev := c.event(schemas.EventFileDownload)
		ev.Resource = &schemas.Resource{Type: "file", ID: fmt.Sprintf("file_%s_%05d", u.id[len("user-"):], c.left)}
		ev.Bytes = fileSize(u.rng)
		s.emit(ev)
		c.left--
		if c.left > 0 {
			return s.after(uniform(u.rng, syncGapMin, syncGapMax)), false, nil
		}
		// The new laptop is the user's computer from its next session on
		// (a phone user keeps the phone).
		if !u.handoff {
			u.nextDevice = c.device
		}
		c.phase++
		return s.after(uniform(u.rng, syncPollMin, syncPollMax)), false, nil
	default:
		// Follow the laptop: wherever the user works from.
		local := u.localTime(s.simNow)
		if local.Hour() < 7 || local.Hour() >= 20 || !u.worksOn(local) {
			// Asleep with the laptop's lid closed.
			return s.after(uniform(u.rng, 2*time.Hour, 4*time.Hour)), false, nil
		}
		if u.state != offline && !u.onCarrier {
			c.addr = u.cur
		} else {
			c.addr = u.habitualAddr(s.simNow)
		}
		var ev *schemas.AuditEvent
		switch r := u.rng.IntN(10); {
		case r < 7:
			ev = c.event(schemas.EventTokenUsed)
			ev.Attrs = map[string]string{"endpoint": "/2.0/events"}
		case r < 9:
			ev = c.event(schemas.EventFileUpload)
			ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
			ev.Bytes = fileSize(u.rng)
		default:
			ev = c.event(schemas.EventFileDownload)
			ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
			ev.Bytes = fileSize(u.rng)
		}
		s.emit(ev)
		return s.after(uniform(u.rng, syncPollMin, syncPollMax)), false, nil
	}
}

// service is a service account: an integration's jobs, run by a
// scheduler in one or two cloud regions (then alternately), each job
// taking a client-credentials token when the last one is about to expire
// and making a burst of API calls, uploads and downloads. Its instances'
// addresses change as the platform scales them.
type service struct {
	id        string
	rng       *rand.Rand
	regions   []region
	instances [][]string // addresses per region
	agent     string
	client    string
	period    time.Duration

	job       int // jobs run
	left      int // calls left in the job under way
	region    int
	ip        string
	tok       token
	tokRegion int
	tokAt     time.Time
}

// Service account timing.
const (
	serviceTokenTTL = time.Hour
	// serviceRescale is the chance, per job, that one of the region's
	// instances is replaced (with a new address).
	serviceRescale = 0.02
)

var servicePeriods = []time.Duration{5 * time.Minute, 15 * time.Minute, 15 * time.Minute, time.Hour, time.Hour, time.Hour, 6 * time.Hour}

func (s *Sim) newService(id string, rng *rand.Rand) *service {
	sa := &service{
		id:     id,
		rng:    rng,
		agent:  automationAgents[rng.IntN(len(automationAgents))],
		client: fmt.Sprintf("integration-%02d", rng.IntN(40)),
		period: servicePeriods[rng.IntN(len(servicePeriods))],
	}
	n := 1
	if rng.IntN(10) < 3 {
		n = 2 // active-active in two regions, often two countries
	}
	for _, i := range rng.Perm(len(cloudRegions))[:n] {
		r := cloudRegions[i]
		sa.regions = append(sa.regions, r)
		var ips []string
		for range 1 + rng.IntN(4) {
			ips = append(ips, r.asns[0].ip(rng, -1))
		}
		sa.instances = append(sa.instances, ips)
	}
	return sa
}

func (sa *service) event(typ schemas.EventType) *schemas.AuditEvent {
	r := sa.regions[sa.region]
	return &schemas.AuditEvent{
		Type:      typ,
		UserID:    sa.id,
		ClientID:  sa.client,
		IP:        sa.ip,
		UserAgent: sa.agent,
		Geo:       r.geo(r.asns[0].asn),
		TokenID:   sa.tok.id,
	}
}

func (sa *service) step(ctx context.Context, s *Sim) (time.Time, bool, error) {
	if sa.left == 0 {
		// A new job.
		sa.job++
		sa.region = sa.job % len(sa.regions)
		ips := sa.instances[sa.region]
		if sa.rng.Float64() < serviceRescale {
			ips[sa.rng.IntN(len(ips))] = sa.regions[sa.region].asns[0].ip(sa.rng, -1)
		}
		sa.ip = ips[sa.rng.IntN(len(ips))]
		sa.left = 2 + sa.rng.IntN(19)
		if sa.tok.id == "" || sa.tokRegion != sa.region || s.simNow.Sub(sa.tokAt) > serviceTokenTTL-5*time.Minute {
			t, err := s.issue(ctx, asUser, sa.id, sa.client, "", s.cfg.Scopes)
			if err != nil {
				return time.Time{}, false, err
			}
			sa.tok, sa.tokRegion, sa.tokAt = t, sa.region, s.simNow
			ev := sa.event(schemas.EventTokenIssued)
			ev.Scopes = s.cfg.Scopes
			ev.Attrs = map[string]string{"grant_type": "client_credentials"}
			s.emit(ev)
			return s.after(uniform(sa.rng, tokenDelayMin, tokenDelayMax)), false, nil
		}
	}
	var ev *schemas.AuditEvent
	switch r := sa.rng.IntN(10); {
	case r < 5:
		ev = sa.event(schemas.EventTokenUsed)
		ev.Attrs = map[string]string{"endpoint": endpoints[sa.rng.IntN(len(endpoints))]}
	case r < 8:
		ev = sa.event(schemas.EventFileUpload)
		ev.Resource = &schemas.Resource{Type: "file", ID: fmt.Sprintf("file_%s_%03d", sa.id[len("user-"):], sa.rng.IntN(500))}
		ev.Bytes = fileSize(sa.rng)
	default:
		ev = sa.event(schemas.EventFileDownload)
		ev.Resource = &schemas.Resource{Type: "file", ID: fmt.Sprintf("file_%s_%03d", sa.id[len("user-"):], sa.rng.IntN(500))}
		ev.Bytes = fileSize(sa.rng)
	}
	s.emit(ev)
	sa.left--
	if sa.left > 0 {
		return s.after(uniform(sa.rng, 100*time.Millisecond, 3*time.Second)), false, nil
	}
	jitter := time.Duration(float64(sa.period) * 0.1 * (sa.rng.Float64()*2 - 1))
	return s.after(sa.period + jitter), false, nil
}
