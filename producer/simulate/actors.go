package simulate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Shape of a session: a user performs between actionsMin and actionsMax
// actions (actionsMean on average) a mean gap apart, then stays offline for
// about offlineGaps mean gaps (longer at night, shorter by day).
const (
	actionsMin  = 4
	actionsMax  = 20
	actionsMean = (actionsMin + actionsMax) / 2
	offlineGaps = 20
)

// Human timing, independent of the configured rate.
const (
	retypeMin, retypeMax         = 3 * time.Second, 15 * time.Second
	tokenDelayMin, tokenDelayMax = 50 * time.Millisecond, 400 * time.Millisecond
	// mondayMistype multiplies the chance of a mistyped password on
	// Monday mornings (local time, 7 to 11), after a weekend away from
	// the keyboard.
	mondayMistype = 3
	// moreMistypes is the chance of each further failure once a user has
	// mistyped: most get it right the second time, a few need four or five
	// tries.
	moreMistypes = 0.3
	// forgotReset is the chance that a user who failed three times or more
	// resets their password (self-service) before logging in.
	forgotReset = 0.4
	// handoffProb is the chance, per action of a session of the handoff
	// class, that the device moves between Wi-Fi and the carrier.
	handoffProb = 0.15
	// popSwitchProb is the chance, per action on the corporate VPN, that
	// its client reconnects through another point of presence.
	popSwitchProb = 0.08
)

func (s *Sim) setup(start time.Time) {
	gap := s.meanGap()
	s.liveScale = 1
	s.users = make([]*user, 0, s.cfg.Users)
	// About 300 users share each campus or carrier-grade NAT address.
	nats := min(len(natSites), max(1, int(math.Round(float64(s.cfg.Users)*s.cfg.SharedNATShare/300))))
	for i := range s.cfg.Users {
		rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(i)+1))
		if rng.Float64() < s.cfg.ServiceShare {
			sa := s.newService(UserID(i), rng)
			s.services = append(s.services, sa)
			s.addClass(sa.id, ClassServiceAccount)
			s.schedule(sa, start.Add(uniform(rng, time.Second, sa.period)))
			continue
		}
		home := pickHome(rng)
		var nat *natSite
		if rng.Float64() < s.cfg.SharedNATShare {
			nat = &natSites[rng.IntN(nats)]
			home = nat.home
		}
		carriers := mobile[home.country]
		u := &user{
			id:        UserID(i),
			rng:       rng,
			home:      home,
			loc:       home,
			isp:       home.asns[rng.IntN(len(home.asns))],
			carrier:   carriers[rng.IntN(len(carriers))],
			nat:       nat,
			office:    nat == nil && rng.Float64() < s.cfg.OfficeShare,
			handoff:   rng.Float64() < s.cfg.HandoffShare,
			traveller: rng.Float64() < s.cfg.TravellerShare,
			weekend:   rng.Float64() < s.cfg.WeekendShare,
			subnet:    rng.IntN(256),
			device:    fmt.Sprintf("dev_%012x", rng.Uint64()&0xffffffffffff),
			agent:     userAgents[rng.IntN(len(userAgents))],
			client:    s.cfg.ClientIDs[rng.IntN(len(s.cfg.ClientIDs))],
			gap:       gap,
		}
		if rng.Float64() < s.cfg.VPNShare {
			pops := vpnPoPs[home.city]
			u.vpn = pops[:min(len(pops), 2+rng.IntN(2))]
		}
		if u.handoff {
			// A phone: the mobile app or the phone's browser.
			u.agent = mobileAgents[rng.IntN(len(mobileAgents))]
			if slices.Contains(s.cfg.ClientIDs, "mobile-app") {
				u.client = "mobile-app"
			}
		}
		for _, c := range []struct {
			in   bool
			name string
		}{
			{u.office, ClassOffice}, {u.nat != nil, ClassSharedNAT}, {u.handoff, ClassHandoff},
			{u.vpn != nil, ClassCorporateVPN}, {u.traveller, ClassTraveller}, {u.weekend, ClassWeekendWorker},
		} {
			if c.in {
				s.addClass(u.id, c.name)
			}
		}
		u.cur = address{u.isp, u.isp.ip(rng, u.subnet), home}
		s.users = append(s.users, u)
		// Spread first logins over half an offline pause, by time of day
		// (in a live run, of the pause at its scaled gap, below).
		if s.cfg.Clock != ClockLive {
			s.schedule(u, u.nextLogin(start, offlineGaps*gap/2))
		}
		if rng.Float64() < s.cfg.SyncShare {
			s.addClass(u.id, ClassSyncNewDevice)
			s.schedule(&syncClient{u: u}, s.newDeviceDay(u, start))
		}
	}
	if s.cfg.OutageRate > 0 {
		s.schedule(&outageActor{}, start.Add(s.outageGap()))
	}
	if s.cfg.Clock == ClockLive {
		s.liveScale = s.liveGapScale(start)
		for _, u := range s.users {
			u.gap = time.Duration(float64(u.gap) * s.liveScale)
			s.schedule(u, u.nextLogin(start, offlineGaps*u.gap/2))
		}
	}
}

// liveGapScale is what a live run multiplies its users' mean gap by so
// that they produce Config.Rate events a second at start, the hour and
// day they run at, rather than on average over a week: on a Sunday evening
// (UTC) the simulated users are at about half their weekly average, and a
// local run asked for 10,000 events/s made 5,700. A user's session
// rate at intensity i is proportional to 1/(actionsMean + offlineGaps/i)
// (the pause between sessions stretches as activity falls); the scale
// brings the mean over users of that rate to its value at i = 1. A run
// that lasts hours still follows the day's rhythm from there.
func (s *Sim) liveGapScale(start time.Time) float64 {
	if len(s.users) == 0 {
		return 1
	}
	var sum float64
	for _, u := range s.users {
		sum += 1 / (actionsMean + offlineGaps/u.intensity(start))
	}
	return float64(actionsMean+offlineGaps) * sum / float64(len(s.users))
}

type userState int

const (
	offline userState = iota
	retrying
	issuing
	active
	loggingOut
	revoking
	reauthing
)

// address is where a user's traffic comes from: a network, an address of
// it, and the place it geolocates to (not always where the user is: a VPN
// exits at its point of presence, a roaming phone at home).
type address struct {
	net network
	ip  string
	at  place
}

// user is one simulated person with a fixed home, device and client.
type user struct {
	id      string
	rng     *rand.Rand
	home    place
	loc     place   // where the user is: home, or a trip's destination
	isp     network // the home's residential network
	carrier network
	subnet  int
	device  string
	agent   string
	client  string
	gap     time.Duration

	// Benign classes.
	office    bool     // works from the city office on weekdays
	nat       *natSite // lives behind a campus or carrier-grade NAT
	handoff   bool     // a phone that moves between Wi-Fi and the carrier
	vpn       []pop    // the corporate VPN's points of presence, nearest first
	traveller bool     // flies now and then
	weekend   bool     // works weekends too

	state      userState
	failures   int  // mistyped passwords still to come
	resetting  bool // the user forgot the password and resets it
	session    string
	cur        address // the session's current address
	wifi       address // the session's Wi-Fi (or wired) address
	onCarrier  bool    // cur is the phone's carrier
	onVPN      bool    // cur is the corporate VPN
	tok        token
	child      token     // downscoped token, if exchanged
	childFile  string    // the file the child is bound to
	actions    int       // actions left in the session
	exchangeAt int       // actions value at which to exchange; -1 never
	passwordAt int       // actions value at which to change the password; -1 never
	grantAt    int       // actions value at which access is granted; -1 never
	reissue    bool      // the password changed: the session gets a new token
	revoked    token     // the logged-out session's token, to revoke
	reauth     bool      // an outage dropped the session: sign in again
	reauthAt   time.Time // not before
	outageSeen int       // the last outage the user failed a login in
	nextDevice string    // a new computer, used from the next session on

	away        bool      // on a trip
	returnAfter time.Time // when a trip's stay is over

	attacked  bool      // an attack on the user is under way
	calmUntil time.Time // no new attack on the user before
	// misuseAtLogout starts a downscoped-token misuse once the session's
	// parent token is revoked at logout.
	misuseAtLogout bool
}

func (u *user) event(typ schemas.EventType) *schemas.AuditEvent {
	return &schemas.AuditEvent{
		Type:      typ,
		UserID:    u.id,
		SessionID: u.session,
		ClientID:  u.client,
		IP:        u.cur.ip,
		UserAgent: u.agent,
		DeviceID:  u.device,
		Geo:       u.cur.at.geo(u.cur.net.asn),
	}
}

// geo is what an identity provider reports for an address of asn in p:
// location and ASN. The organisation and kind of network are left to the
// detector's enricher.
func (p place) geo(asn uint32) *schemas.Geo {
	lat, lon := p.lat, p.lon
	return &schemas.Geo{Country: p.country, City: p.city, Lat: &lat, Lon: &lon, ASN: asn}
}

// localTime is t in the time zone of where the user is.
func (u *user) localTime(t time.Time) time.Time {
	return t.UTC().Add(time.Duration(u.loc.tz) * time.Hour)
}

// worksOn reports whether the user works on the local day of t.
func (u *user) worksOn(local time.Time) bool {
	return u.weekend || local.Weekday() != time.Saturday && local.Weekday() != time.Sunday
}

// nextLogin draws when the user comes back after from, for a mean pause
// of mean at an average hour: a Poisson process whose intensity follows
// the local time of day and, for those who do not work weekends, the day
// of the week (drawn by thinning), so users are busy by day and quiet at
// night and at weekends.
func (u *user) nextLogin(from time.Time, mean time.Duration) time.Time {
	t := from
	top := activityMax
	if !u.weekend {
		top *= weekdayActivity
	}
	for range 10_000 {
		t = t.Add(exponential(u.rng, time.Duration(float64(mean)/top)))
		if u.rng.Float64()*top < u.intensity(t) {
			break
		}
	}
	return t.Truncate(time.Millisecond)
}

// intensity is how active the user is at t relative to their weekly
// average: by the local hour and, for those who do not work weekends, the
// day.
func (u *user) intensity(t time.Time) float64 {
	local := u.localTime(t)
	a := activity(local.Hour())
	switch {
	case u.weekend:
	case u.worksOn(local):
		a *= weekdayActivity
	default:
		a *= weekendActivity
	}
	return a
}

// carrierAddr is an address of the phone's carrier: in the user's city at
// home or on a domestic trip; abroad, the phone roams and its traffic is
// routed home, so the address is the home carrier's and geolocates home.
func (u *user) carrierAddr() address {
	at := u.loc
	if u.loc.country != u.home.country {
		at = u.home
	}
	return address{u.carrier, u.carrier.ip(u.rng, -1), at}
}

// vpnAddr is the corporate VPN's egress at one of the user's points of
// presence: the nearest most of the time.
func (u *user) vpnAddr() address {
	p := u.vpn[0]
	if u.rng.Float64() >= 0.6 {
		p = u.vpn[1+u.rng.IntN(len(u.vpn)-1)]
	}
	return address{zscaler, zscaler.ip(u.rng, p.sub), p.place}
}

// habitualAddr is where the user's laptop is online at now when nothing
// else decides: the hotel on a trip, the office in office hours, the
// shared NAT or home otherwise.
func (u *user) habitualAddr(now time.Time) address {
	local := u.localTime(now)
	switch {
	case u.away:
		n := u.loc.asns[u.rng.IntN(len(u.loc.asns))]
		return address{n, n.ip(u.rng, -1), u.loc}
	case u.office && u.worksOn(local) && local.Hour() >= 8 && local.Hour() < 18:
		return address{officeNet, officeIP(u.home.city), u.home}
	case u.nat != nil:
		return address{u.nat.net, u.nat.ip(), u.home}
	}
	return address{u.isp, u.isp.ip(u.rng, u.subnet), u.home}
}

// pickNetwork chooses the session's network by the user's habits: office
// workers sit behind the office's address on working days during working
// hours; students and carrier-NAT households behind their shared address;
// VPN users mostly on the VPN on working days; everyone otherwise at home
// or on the phone. Away, the user is on the hotel's network or the phone
// (roaming abroad). A session of the handoff class starts on Wi-Fi or the
// carrier and moves between them as it goes on.
func (u *user) pickNetwork(now time.Time) {
	local := u.localTime(now)
	work := u.worksOn(local)
	r := u.rng.Float64()
	u.onCarrier, u.onVPN = false, false
	u.wifi = u.habitualAddr(now)
	phone := 0.15 // sessions on the carrier
	if u.handoff {
		phone = 0.4
	}
	switch {
	case u.away && r < phone+0.2:
		u.onCarrier = true
	case u.away:
	case u.vpn != nil && work && r < 0.8:
		u.onVPN = true
	case r < phone:
		u.onCarrier = true
	}
	switch {
	case u.onCarrier:
		u.cur = u.carrierAddr()
	case u.onVPN:
		u.cur = u.vpnAddr()
	default:
		u.cur = u.wifi
	}
}

func (u *user) step(ctx context.Context, s *Sim) (time.Time, bool, error) {
	switch u.state {
	case offline:
		u.session = "ses_" + s.hexID()
		if u.nextDevice != "" {
			u.device, u.nextDevice = u.nextDevice, ""
		}
		u.pickNetwork(s.simNow)
		if u.rng.Float64() < s.cfg.BruteForceProb && s.mayAttack(u, AttackBruteForce) {
			s.startBruteForce(u, u.rng.IntN(2) == 0)
		}
		p := s.cfg.MistypeProb
		if local := u.localTime(s.simNow); local.Weekday() == time.Monday && local.Hour() >= 7 && local.Hour() < 11 {
			p *= mondayMistype
		}
		if u.rng.Float64() < p {
			u.failures = 1
			for u.failures < 8 && u.rng.Float64() < moreMistypes {
				u.failures++
			}
			u.resetting = u.failures >= 3 && u.rng.Float64() < forgotReset
		}
		return u.login(s)
	case retrying:
		return u.login(s)
	case issuing:
		if err := u.newToken(ctx, s); err != nil {
			return time.Time{}, false, err
		}
		u.actions = actionsMin + u.rng.IntN(actionsMax-actionsMin+1)
		u.exchangeAt, u.passwordAt, u.grantAt = -1, -1, -1
		if u.rng.Float64() < s.cfg.ExchangeProb {
			u.exchangeAt = 1 + u.rng.IntN(u.actions-1)
		}
		if u.rng.Float64() < s.cfg.PasswordChangeProb {
			u.passwordAt = 1 + u.rng.IntN(u.actions-1)
		}
		if u.rng.Float64() < s.cfg.PermissionChangeProb {
			u.grantAt = 1 + u.rng.IntN(u.actions-1)
		}
		u.state = active
		if u.rng.Float64() < s.cfg.ReplayProb && s.mayAttack(u, AttackTokenReplay) {
			s.startReplay(u)
		} else if u.rng.Float64() < s.cfg.AttackProb {
			s.startOther(ctx, u)
		}
		return s.after(exponential(u.rng, u.gap)), false, nil
	case reauthing:
		// The identity provider is back: the user signs the session in
		// again and the application gets a new token.
		s.emit(u.event(schemas.EventLoginSuccess))
		u.state, u.reissue = active, true
		return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
	case active:
		switch {
		case u.reissue:
			// The password changed, or the user signed in again: the
			// application drops the old token and its downscoped child.
			u.reissue = false
			if err := u.newToken(ctx, s); err != nil {
				return time.Time{}, false, err
			}
			return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
		case u.reauth:
			// An outage dropped the session: sign in again once the
			// identity provider is back.
			u.reauth = false
			u.state = reauthing
			if u.reauthAt.After(s.simNow) {
				return u.reauthAt, false, nil
			}
			return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
		}
		u.roam()
		switch {
		case u.actions == u.exchangeAt && u.child.id == "":
			if err := u.exchange(ctx, s); err != nil {
				return time.Time{}, false, err
			}
		case u.actions == u.passwordAt:
			ev := u.event(schemas.EventPasswordChanged)
			ev.Attrs = map[string]string{"method": "self_service"}
			s.emit(ev)
			u.reissue = true
			u.actions--
			return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
		case u.actions == u.grantAt:
			ev := u.event(schemas.EventPermissionChanged)
			ev.Resource = &schemas.Resource{Type: "folder", ID: fmt.Sprintf("folder_%03d", u.rng.IntN(200))}
			ev.Attrs = map[string]string{"change": "collaborator_added", "role": "editor"}
			s.emit(ev)
		default:
			s.emit(u.activity())
		}
		u.actions--
		if u.actions <= 0 {
			u.state = loggingOut
		}
		return s.after(exponential(u.rng, u.gap)), false, nil
	case loggingOut:
		ev := u.event(schemas.EventLogout)
		ev.TokenID = u.tok.id
		at := s.emit(ev)
		rec := &attack{kind: RuleLogout, label: LabelUserAction, userID: u.id, tokenID: u.tok.id, sessionID: u.session}
		rec.saw(at)
		rec.done = true
		s.pending = append(s.pending, rec)
		u.revoked = u.tok
		u.state = revoking
		return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
	case revoking:
		// The identity provider logs the revocation of the session's
		// token that the logout made.
		ev := u.event(schemas.EventTokenRevoked)
		ev.TokenID = u.revoked.id
		ev.Attrs = map[string]string{"reason": "logout"}
		s.emit(ev)
		if u.misuseAtLogout {
			u.misuseAtLogout = false
			u.attacked = false
			if u.child.id != "" && s.mayAttack(u, AttackDownscopedMisuse) {
				s.startMisuseAfterRevoke(u, u.child)
			}
		}
		u.state, u.session, u.tok, u.child, u.revoked, u.reauth = offline, "", token{}, token{}, token{}, false
		from := s.simNow
		switch {
		case u.traveller && !u.away && u.rng.Float64() < s.cfg.TravelProb:
			dest := u.destination()
			from = from.Add(travelTime(u.loc, dest))
			u.loc, u.away = dest, true
			u.returnAfter = from.Add(uniform(u.rng, tripStayMin, tripStayMax))
		case u.away && !s.simNow.Before(u.returnAfter):
			from = from.Add(travelTime(u.loc, u.home))
			u.loc, u.away = u.home, false
		}
		return u.nextLogin(from, offlineGaps*u.gap), false, nil
	}
	return time.Time{}, false, fmt.Errorf("simulate: user %s in unknown state %d", u.id, u.state)
}

// roam moves a session between networks as devices do, keeping its
// session and token: a phone of the handoff class between Wi-Fi and its
// carrier (a new carrier address each time), a VPN client to another
// point of presence.
func (u *user) roam() {
	switch {
	case u.onVPN:
		if u.rng.Float64() < popSwitchProb {
			u.cur = u.vpnAddr()
		}
	case u.handoff && u.rng.Float64() < handoffProb:
		if u.onCarrier {
			u.cur = u.wifi
		} else {
			u.cur = u.carrierAddr()
		}
		u.onCarrier = !u.onCarrier
	}
}

// outageFailure records that the user failed to sign in during the
// current outage, and is the failed login.
func (u *user) outageFailure(s *Sim) *schemas.AuditEvent {
	u.outageSeen = s.outage.id
	s.addClass(u.id, ClassIdPOutage)
	ev := u.event(schemas.EventLoginFailure)
	ev.Attrs = map[string]string{"reason": s.outage.reason}
	return ev
}

// destination is where a trip goes: another city of the user's country
// for two trips in three where there is one, abroad otherwise.
func (u *user) destination() place {
	var domestic []place
	for _, h := range homes {
		if h.country == u.home.country && h.city != u.home.city {
			domestic = append(domestic, h.place)
		}
	}
	if len(domestic) > 0 && u.rng.IntN(3) < 2 {
		return domestic[u.rng.IntN(len(domestic))]
	}
	dest := u.home
	for dest.city == u.home.city {
		dest = pickHome(u.rng)
	}
	return dest
}

// newToken issues the session's token and emits token.issued.
func (u *user) newToken(ctx context.Context, s *Sim) error {
	t, err := s.issue(ctx, asUser, u.id, u.client, u.session, s.cfg.Scopes)
	if err != nil {
		return err
	}
	u.tok, u.child, u.childFile = t, token{}, ""
	ev := u.event(schemas.EventTokenIssued)
	ev.TokenID, ev.Scopes = t.id, s.cfg.Scopes
	s.emit(ev)
	return nil
}

// exchange gets the session a downscoped, read-only token bound to one of
// the user's files, and emits token.exchanged.
func (u *user) exchange(ctx context.Context, s *Sim) error {
	child, err := s.exchange(ctx, asUser, u.id, u.client, u.session, u.tok, s.cfg.DownscopedScopes)
	if err != nil {
		return err
	}
	u.child, u.childFile = child, u.file(u.rng)
	ev := u.event(schemas.EventTokenExchanged)
	ev.TokenID, ev.ParentTokenID, ev.Scopes = child.id, u.tok.id, s.cfg.DownscopedScopes
	ev.Resource = &schemas.Resource{Type: "file", ID: u.childFile}
	s.emit(ev)
	return nil
}

// login emits a failure while any are due (an outage of the identity
// provider, mistyped passwords), a self-service reset when the user gave
// up on remembering, then the success.
func (u *user) login(s *Sim) (time.Time, bool, error) {
	if s.outage.activeAt(s.simNow) && u.outageSeen != s.outage.id {
		s.emit(u.outageFailure(s))
		u.state = retrying
		return s.outage.until.Add(uniform(u.rng, 30*time.Second, 10*time.Minute)).Truncate(time.Millisecond), false, nil
	}
	if u.failures > 0 {
		u.failures--
		ev := u.event(schemas.EventLoginFailure)
		ev.Attrs = map[string]string{"reason": "invalid_password"}
		s.emit(ev)
		u.state = retrying
		return s.after(uniform(u.rng, retypeMin, retypeMax)), false, nil
	}
	if u.resetting {
		u.resetting = false
		ev := u.event(schemas.EventPasswordReset)
		ev.Attrs = map[string]string{"method": "email_link", "initiator": "user"}
		s.emit(ev)
		u.state = retrying
		return s.after(uniform(u.rng, time.Minute, 5*time.Minute)), false, nil
	}
	s.emit(u.event(schemas.EventLoginSuccess))
	u.state = issuing
	return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
}

// activity is one use of the session's token, or of its downscoped child:
// a preview or download of the one file the child is bound to, which is
// all its read-only scope and resource allow.
func (u *user) activity() *schemas.AuditEvent {
	tok := u.tok
	r := u.rng.IntN(100)
	var ev *schemas.AuditEvent
	switch {
	case u.child.id != "" && r < 20:
		typ := schemas.EventFilePreview
		if r < 8 {
			typ = schemas.EventFileDownload
		}
		ev = u.event(typ)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.childFile}
		if typ == schemas.EventFileDownload {
			ev.Bytes = fileSize(u.rng)
		}
		tok = u.child
	case r < 40:
		ev = u.event(schemas.EventTokenUsed)
		ev.Attrs = map[string]string{"endpoint": endpoints[u.rng.IntN(len(endpoints))]}
	case r < 65:
		ev = u.event(schemas.EventFilePreview)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
	case r < 85:
		ev = u.event(schemas.EventFileDownload)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
		ev.Bytes = fileSize(u.rng)
	case r < 98:
		ev = u.event(schemas.EventFileUpload)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
		ev.Bytes = fileSize(u.rng)
	default:
		ev = u.event(schemas.EventShareCreated)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
		ev.Attrs = map[string]string{"access": "collaborators"}
	}
	ev.TokenID = tok.id
	return ev
}

var endpoints = []string{"/2.0/users/me", "/2.0/folders/0/items", "/2.0/search", "/2.0/events", "/2.0/collaborations"}

// file is one of the user's own 500 files, drawn with rng.
func (u *user) file(rng *rand.Rand) string {
	return fmt.Sprintf("file_%s_%03d", u.id[len("user-"):], rng.IntN(500))
}

// fileSize is roughly log-uniform between 1 KiB and 64 MiB.
func fileSize(rng *rand.Rand) int64 {
	return int64(1024+rng.IntN(1024)) << rng.IntN(16)
}
