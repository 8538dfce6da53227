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
// about offlineGaps mean gaps.
const (
	actionsMin  = 4
	actionsMax  = 20
	actionsMean = (actionsMin + actionsMax) / 2
	offlineGaps = 20
)

// Human and attacker timing, independent of the configured rate so that
// attacks look the same at any volume.
const (
	retypeMin, retypeMax         = 3 * time.Second, 15 * time.Second
	mistypeQuiet                 = time.Hour
	tokenDelayMin, tokenDelayMax = 50 * time.Millisecond, 400 * time.Millisecond
	// A brute force tries every 2-20 s, so 6-10 tries take 12-200 s.
	guessMin, guessMax = 2 * time.Second, 20 * time.Second
	// An attack starts within minutes of what triggers it.
	bruteStartMax              = 2 * time.Minute
	replayDelayMin             = 30 * time.Second
	replayDelayMax             = 4 * time.Minute
	attackUseMin, attackUseMax = 5 * time.Second, 60 * time.Second
	// attackSpan is more than any attack lasts; attackCalm separates two
	// attacks on one user, so that each stands alone in the ground truth.
	attackSpan = 10 * time.Minute
	attackCalm = 15 * time.Minute
)

// mayAttack reports whether an attack on u may start now: none is under
// way or recently ended, and (with a duration) it can finish in time.
func (s *Sim) mayAttack(u *user) bool {
	if u.attacked || s.simNow.Before(u.calmUntil) {
		return false
	}
	return s.end.IsZero() || s.simNow.Add(s.attackTime(attackSpan)).Before(s.end)
}

// attackTime scales an attacker's timing by Config.AttackTimeScale, so a
// short live run can hold whole attacks.
func (s *Sim) attackTime(d time.Duration) time.Duration {
	if s.cfg.AttackTimeScale <= 0 || s.cfg.AttackTimeScale == 1 {
		return d
	}
	return time.Duration(float64(d) * s.cfg.AttackTimeScale)
}

// attackEnded lets u be attacked again after attackCalm.
func (s *Sim) attackEnded(u *user, rec *attack) {
	rec.done = true
	s.pending = append(s.pending, rec)
	u.attacked = false
	u.calmUntil = s.simNow.Add(s.attackTime(attackCalm))
}

func (s *Sim) setup(start time.Time) {
	gap := s.meanGap()
	s.users = make([]*user, s.cfg.Users)
	for i := range s.users {
		rng := rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(i)+1))
		home := pickHome(rng)
		net := home.asns[rng.IntN(len(home.asns))]
		u := &user{
			id:     fmt.Sprintf("user-%06d", i+1),
			rng:    rng,
			home:   home,
			net:    net,
			subnet: rng.IntN(256),
			device: fmt.Sprintf("dev_%012x", rng.Uint64()&0xffffffffffff),
			agent:  userAgents[rng.IntN(len(userAgents))],
			client: s.cfg.ClientIDs[rng.IntN(len(s.cfg.ClientIDs))],
			gap:    gap,
		}
		s.users[i] = u
		// Spread first logins over one offline pause.
		s.schedule(u, start.Add(exponential(rng, offlineGaps*gap/2).Truncate(time.Millisecond)))
	}
}

type userState int

const (
	offline userState = iota
	retrying
	issuing
	active
	loggingOut
)

// user is one simulated person with a fixed home, device and client.
type user struct {
	id     string
	rng    *rand.Rand
	home   place
	net    network
	subnet int
	device string
	agent  string
	client string
	gap    time.Duration

	state      userState
	failures   int // mistyped passwords still to come
	session    string
	ip         string
	tok        token
	child      token // downscoped token, if exchanged
	actions    int   // actions left in the session
	exchangeAt int   // actions value at which to exchange; -1 never

	lastMistype time.Time
	attacked    bool      // an attack on the user is under way
	calmUntil   time.Time // no new attack on the user before
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
		Geo:       u.home.geo(u.net.asn),
	}
}

func (p place) geo(asn uint32) *schemas.Geo {
	lat, lon := p.lat, p.lon
	return &schemas.Geo{Country: p.country, City: p.city, Lat: &lat, Lon: &lon, ASN: asn}
}

func (u *user) step(ctx context.Context, s *Sim) (time.Time, bool, error) {
	switch u.state {
	case offline:
		u.session = "ses_" + s.hexID()
		u.ip = u.net.ip(u.rng, u.subnet)
		if u.rng.Float64() < s.cfg.BruteForceProb && s.mayAttack(u) {
			s.startBruteForce(u)
		}
		// At most one or two mistyped passwords per mistypeQuiet, so a
		// user alone never comes near a brute-force threshold, however
		// often the configured rate makes them log in.
		if u.rng.Float64() < s.cfg.MistypeProb && (u.lastMistype.IsZero() || s.simNow.Sub(u.lastMistype) >= mistypeQuiet) {
			u.failures = 1 + u.rng.IntN(2)
			u.lastMistype = s.simNow
		}
		return u.login(s)
	case retrying:
		return u.login(s)
	case issuing:
		t, err := s.issue(ctx, u.id, u.client, u.session, s.cfg.Scopes)
		if err != nil {
			return time.Time{}, false, err
		}
		u.tok, u.child = t, token{}
		ev := u.event(schemas.EventTokenIssued)
		ev.TokenID, ev.Scopes = t.id, s.cfg.Scopes
		s.emit(ev)
		if u.rng.Float64() < s.cfg.ReplayProb && s.mayAttack(u) {
			s.startReplay(u)
		}
		u.actions = actionsMin + u.rng.IntN(actionsMax-actionsMin+1)
		u.exchangeAt = -1
		if u.rng.Float64() < s.cfg.ExchangeProb {
			u.exchangeAt = 1 + u.rng.IntN(u.actions-1)
		}
		u.state = active
		return s.after(exponential(u.rng, u.gap)), false, nil
	case active:
		if u.actions == u.exchangeAt {
			child, err := s.exchange(ctx, u.id, u.client, u.session, u.tok, s.cfg.DownscopedScopes)
			if err != nil {
				return time.Time{}, false, err
			}
			u.child = child
			ev := u.event(schemas.EventTokenExchanged)
			ev.TokenID, ev.ParentTokenID, ev.Scopes = child.id, u.tok.id, s.cfg.DownscopedScopes
			ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
			s.emit(ev)
		} else {
			s.emit(u.activity())
		}
		u.actions--
		if u.actions == 0 {
			u.state = loggingOut
		}
		return s.after(exponential(u.rng, u.gap)), false, nil
	case loggingOut:
		ev := u.event(schemas.EventLogout)
		ev.TokenID = u.tok.id
		s.emit(ev)
		u.state, u.session, u.tok, u.child = offline, "", token{}, token{}
		return s.after(exponential(u.rng, offlineGaps*u.gap)), false, nil
	}
	return time.Time{}, false, fmt.Errorf("simulate: user %s in unknown state %d", u.id, u.state)
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

// activity is one use of the session's token (or its downscoped child).
func (u *user) activity() *schemas.AuditEvent {
	tok := u.tok
	r := u.rng.IntN(100)
	var ev *schemas.AuditEvent
	switch {
	case r < 40:
		ev = u.event(schemas.EventTokenUsed)
		ev.Attrs = map[string]string{"endpoint": endpoints[u.rng.IntN(len(endpoints))]}
	case r < 65:
		ev = u.event(schemas.EventFilePreview)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
		if u.child.id != "" && u.rng.IntN(2) == 0 {
			tok = u.child
		}
	case r < 85:
		ev = u.event(schemas.EventFileDownload)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
		ev.Bytes = fileSize(u.rng)
		if u.child.id != "" && u.rng.IntN(2) == 0 {
			tok = u.child
		}
	case r < 95:
		ev = u.event(schemas.EventFileUpload)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
		ev.Bytes = fileSize(u.rng)
	default:
		ev = u.event(schemas.EventShareCreated)
		ev.Resource = &schemas.Resource{Type: "file", ID: u.file(u.rng)}
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

// attack is a labelled attack under way; its ground truth is written once
// it is done and its events are published.
type attack struct {
	kind       string
	userID     string
	tokenID    string
	start, end time.Time
	events     int
	done       bool
	partial    bool
}

func (a *attack) saw(t time.Time) {
	if a.events == 0 {
		a.start = t
	}
	a.end = t
	a.events++
}

// attacker is where an attack comes from: a foreign hosting network.
type attacker struct {
	rng    *rand.Rand
	origin place
	net    network
	ip     string
	agent  string
	device string
}

func (s *Sim) newAttacker() attacker {
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	origin := attackerOrigins[rng.IntN(len(attackerOrigins))]
	net := origin.asns[rng.IntN(len(origin.asns))]
	return attacker{
		rng:    rng,
		origin: origin,
		net:    net,
		ip:     net.ip(rng, -1),
		agent:  attackerAgents[rng.IntN(len(attackerAgents))],
		device: fmt.Sprintf("dev_%012x", rng.Uint64()&0xffffffffffff),
	}
}

func (a *attacker) event(typ schemas.EventType, victim *user, session string) *schemas.AuditEvent {
	return &schemas.AuditEvent{
		Type:      typ,
		UserID:    victim.id,
		SessionID: session,
		ClientID:  victim.client,
		IP:        a.ip,
		UserAgent: a.agent,
		DeviceID:  a.device,
		Geo:       a.origin.geo(a.net.asn),
	}
}

// bruteForce guesses a user's password 6-10 times, gets in, takes a token
// and uses it.
type bruteForce struct {
	attacker
	victim  *user
	rec     *attack
	guesses int
	session string
	tok     token
	uses    int
	phase   int
}

func (s *Sim) startBruteForce(victim *user) {
	b := &bruteForce{attacker: s.newAttacker(), victim: victim, rec: &attack{kind: AttackBruteForce, userID: victim.id}}
	b.guesses = 6 + b.rng.IntN(5)
	b.uses = 1 + b.rng.IntN(3)
	victim.attacked = true
	s.attacks = append(s.attacks, b.rec)
	s.schedule(b, s.after(s.attackTime(uniform(b.rng, time.Second, bruteStartMax))))
}

func (b *bruteForce) step(ctx context.Context, s *Sim) (time.Time, bool, error) {
	switch {
	case b.phase == 0 && b.guesses > 0:
		b.guesses--
		ev := b.event(schemas.EventLoginFailure, b.victim, "")
		ev.Attrs = map[string]string{"reason": "invalid_password"}
		b.rec.saw(s.emit(ev))
		return s.after(s.attackTime(uniform(b.rng, guessMin, guessMax))), false, nil
	case b.phase == 0:
		b.session = "ses_" + s.hexID()
		b.rec.saw(s.emit(b.event(schemas.EventLoginSuccess, b.victim, b.session)))
		b.phase = 1
		return s.after(uniform(b.rng, tokenDelayMin, tokenDelayMax)), false, nil
	case b.phase == 1:
		t, err := s.issue(ctx, b.victim.id, b.victim.client, b.session, s.cfg.Scopes)
		if err != nil {
			return time.Time{}, false, err
		}
		b.tok, b.rec.tokenID = t, t.id
		ev := b.event(schemas.EventTokenIssued, b.victim, b.session)
		ev.TokenID, ev.Scopes = t.id, s.cfg.Scopes
		b.rec.saw(s.emit(ev))
		b.phase = 2
		return s.after(s.attackTime(uniform(b.rng, attackUseMin, attackUseMax))), false, nil
	default:
		ev := b.event(schemas.EventFileDownload, b.victim, b.session)
		ev.TokenID = b.tok.id
		ev.Resource = &schemas.Resource{Type: "file", ID: b.victim.file(b.rng)}
		ev.Bytes = fileSize(b.rng)
		b.rec.saw(s.emit(ev))
		b.uses--
		if b.uses > 0 {
			return s.after(s.attackTime(uniform(b.rng, attackUseMin, attackUseMax))), false, nil
		}
		s.attackEnded(b.victim, b.rec)
		return time.Time{}, true, nil
	}
}

// replay uses a stolen token of a user from abroad, 1-3 times.
type replay struct {
	attacker
	victim  *user
	rec     *attack
	tok     token
	session string
	uses    int
}

func (s *Sim) startReplay(victim *user) {
	r := &replay{attacker: s.newAttacker(), victim: victim, tok: victim.tok, session: victim.session,
		rec: &attack{kind: AttackTokenReplay, userID: victim.id, tokenID: victim.tok.id}}
	r.uses = 1 + r.rng.IntN(3)
	victim.attacked = true
	s.attacks = append(s.attacks, r.rec)
	s.schedule(r, s.after(s.attackTime(uniform(r.rng, replayDelayMin, replayDelayMax))))
}

func (r *replay) step(_ context.Context, s *Sim) (time.Time, bool, error) {
	var ev *schemas.AuditEvent
	if r.rng.IntN(2) == 0 {
		ev = r.event(schemas.EventTokenUsed, r.victim, r.session)
		ev.Attrs = map[string]string{"endpoint": endpoints[r.rng.IntN(len(endpoints))]}
	} else {
		ev = r.event(schemas.EventFileDownload, r.victim, r.session)
		ev.Resource = &schemas.Resource{Type: "file", ID: r.victim.file(r.rng)}
		ev.Bytes = fileSize(r.rng)
	}
	ev.TokenID = r.tok.id
	r.rec.saw(s.emit(ev))
	r.uses--
	if r.uses > 0 {
		return s.after(s.attackTime(uniform(r.rng, attackUseMin, attackUseMax))), false, nil
	}
	s.attackEnded(r.victim, r.rec)
	return time.Time{}, true, nil
}
