package simulate

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	mistypeQuiet                 = time.Hour
	tokenDelayMin, tokenDelayMax = 50 * time.Millisecond, 400 * time.Millisecond
	// officeMistypeQuiet spaces mistyped passwords behind one office
	// address: at any realistic rate they are further apart anyway, and a
	// compressed demo run must not make an office look like credential
	// stuffing.
	officeMistypeQuiet = 5 * time.Minute
)

func (s *Sim) setup(start time.Time) {
	gap := s.meanGap()
	s.users = make([]*user, s.cfg.Users)
	s.officeMistype = map[string]time.Time{}
	for i := range s.users {
		rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(i)+1))
		home := pickHome(rng)
		carriers := mobile[home.country]
		u := &user{
			id:      UserID(i),
			rng:     rng,
			home:    home,
			loc:     home,
			isp:     home.asns[rng.IntN(len(home.asns))],
			carrier: carriers[rng.IntN(len(carriers))],
			office:  rng.Float64() < s.cfg.OfficeShare,
			subnet:  rng.IntN(256),
			device:  fmt.Sprintf("dev_%012x", rng.Uint64()&0xffffffffffff),
			agent:   userAgents[rng.IntN(len(userAgents))],
			client:  s.cfg.ClientIDs[rng.IntN(len(s.cfg.ClientIDs))],
			gap:     gap,
		}
		u.net, u.ip = u.isp, u.isp.ip(rng, u.subnet)
		s.users[i] = u
		// Spread first logins over half an offline pause, by time of day.
		s.schedule(u, u.nextLogin(start, offlineGaps*gap/2))
	}
}

type userState int

const (
	offline userState = iota
	retrying
	issuing
	active
	loggingOut
	revoking
)

// user is one simulated person with a fixed home, device and client.
type user struct {
	id      string
	rng     *rand.Rand
	home    place
	loc     place   // where the user is: home, or a trip's destination
	isp     network // the home's residential network
	carrier network
	office  bool // works from the city office on weekdays
	subnet  int
	device  string
	agent   string
	client  string
	gap     time.Duration

	state      userState
	failures   int // mistyped passwords still to come
	session    string
	net        network // the session's network
	ip         string  // the session's address
	tok        token
	child      token  // downscoped token, if exchanged
	childFile  string // the file the child is bound to
	actions    int    // actions left in the session
	exchangeAt int    // actions value at which to exchange; -1 never
	passwordAt int    // actions value at which to change the password; -1 never
	grantAt    int    // actions value at which access is granted; -1 never
	reissue    bool   // the password changed: the session gets a new token
	revoked    token  // the logged-out session's token, to revoke

	away        bool      // on a trip
	returnAfter time.Time // when a trip's stay is over

	lastMistype time.Time
	attacked    bool      // an attack on the user is under way
	calmUntil   time.Time // no new attack on the user before
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
		IP:        u.ip,
		UserAgent: u.agent,
		DeviceID:  u.device,
		Geo:       u.loc.geo(u.net.asn),
	}
}

func (p place) geo(asn uint32) *schemas.Geo {
	lat, lon := p.lat, p.lon
	return &schemas.Geo{Country: p.country, City: p.city, Lat: &lat, Lon: &lon, ASN: asn}
}

// localTime is t in the time zone of where the user is.
func (u *user) localTime(t time.Time) time.Time {
	return t.UTC().Add(time.Duration(u.loc.tz) * time.Hour)
}

// nextLogin draws when the user comes back after from, for a mean pause
// of mean at an average hour: a Poisson process whose intensity follows
// the local time of day (drawn by thinning), so users are busy by day and
// quiet at night, and the long-run rate stays that of mean.
func (u *user) nextLogin(from time.Time, mean time.Duration) time.Time {
	t := from
	for range 10_000 {
		t = t.Add(exponential(u.rng, time.Duration(float64(mean)/activityMax)))
		if u.rng.Float64()*activityMax < activity(u.localTime(t).Hour()) {
			break
		}
	}
	return t.Truncate(time.Millisecond)
}

// pickNetwork chooses the session's network by the user's habits: office
// workers sit behind the office's address on weekdays during working
// hours, and otherwise use home or the phone; others work from home, the
// phone or the corporate VPN, each often enough to be a habit. Away, the
// user is on the hotel's network or, in their own country, the phone.
func (u *user) pickNetwork(now time.Time) {
	local := u.localTime(now)
	workday := local.Weekday() != time.Saturday && local.Weekday() != time.Sunday
	r := u.rng.Float64()
	switch {
	case u.away && u.loc.country == u.home.country && r < 0.5:
		u.net, u.ip = u.carrier, u.carrier.ip(u.rng, -1)
	case u.away:
		u.net = u.loc.asns[u.rng.IntN(len(u.loc.asns))]
		u.ip = u.net.ip(u.rng, -1)
	case u.office && workday && local.Hour() >= 8 && local.Hour() < 18 && r < 0.85:
		u.net, u.ip = officeNet, officeIP(u.home.city)
	case u.office && r < 0.75 || !u.office && r < 0.6:
		u.net, u.ip = u.isp, u.isp.ip(u.rng, u.subnet)
	case u.office || r < 0.85:
		u.net, u.ip = u.carrier, u.carrier.ip(u.rng, -1)
	default:
		u.net, u.ip = corporateVPN, corporateVPN.ip(u.rng, -1)
	}
}

func (u *user) atOffice() bool { return u.net == officeNet }

func (u *user) step(ctx context.Context, s *Sim) (time.Time, bool, error) {
	switch u.state {
	case offline:
		u.session = "ses_" + s.hexID()
		u.pickNetwork(s.simNow)
		if u.rng.Float64() < s.cfg.BruteForceProb && s.mayAttack(u, AttackBruteForce) {
			s.startBruteForce(u, u.rng.IntN(2) == 0)
		}
		// At most one or two mistyped passwords per mistypeQuiet, so a
		// user alone never comes near a brute-force threshold, however
		// often the configured rate makes them log in.
		if u.rng.Float64() < s.cfg.MistypeProb && (u.lastMistype.IsZero() || s.simNow.Sub(u.lastMistype) >= mistypeQuiet) {
			office := u.atOffice()
			if last, ok := s.officeMistype[u.ip]; !office || !ok || s.simNow.Sub(last) >= officeMistypeQuiet {
				u.failures = 1 + u.rng.IntN(2)
				u.lastMistype = s.simNow
				if office {
					s.officeMistype[u.ip] = s.simNow
				}
			}
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
	case active:
		switch {
		case u.reissue:
			// The password changed: the application signs the session in
			// again and drops the old token and its downscoped child.
			u.reissue = false
			if err := u.newToken(ctx, s); err != nil {
				return time.Time{}, false, err
			}
			return s.after(uniform(u.rng, tokenDelayMin, tokenDelayMax)), false, nil
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
		u.state, u.session, u.tok, u.child, u.revoked = offline, "", token{}, token{}, token{}
		from := s.simNow
		switch {
		case !u.away && u.rng.Float64() < s.cfg.TravelProb:
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
	t, err := s.issue(ctx, u.id, u.client, u.session, s.cfg.Scopes)
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
	child, err := s.exchange(ctx, u.id, u.client, u.session, u.tok, s.cfg.DownscopedScopes)
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

// login emits a mistyped attempt while any are due, then the success.
func (u *user) login(s *Sim) (time.Time, bool, error) {
	if u.failures > 0 {
		u.failures--
		ev := u.event(schemas.EventLoginFailure)
		ev.Attrs = map[string]string{"reason": "invalid_password"}
		s.emit(ev)
		u.state = retrying
		return s.after(uniform(u.rng, retypeMin, retypeMax)), false, nil
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
