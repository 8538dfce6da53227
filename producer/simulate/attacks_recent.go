package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// The attacks of today, made to slip under single-signal thresholds.
// Their timing is independent of the configured rate and scaled by
// Config.AttackTimeScale like the others'.
const (
	// Low and slow: 15-40 guesses, one every 5-15 minutes, from a new
	// residential address each time.
	slowTriesMin, slowTriesMax = 15, 40
	slowGapMin, slowGapMax     = 5 * time.Minute, 15 * time.Minute
	// Distributed stuffing: 150-400 accounts, one try each, 0.5-6 s
	// apart, each from another hosting address; 2-5 of them let in.
	stuffAccountsMin, stuffAccountsMax = 150, 400
	stuffWinsMin, stuffWinsMax         = 2, 5
	dstuffGapMin, dstuffGapMax         = 500 * time.Millisecond, 6 * time.Second
	// MFA fatigue: 5-25 pushes, 20 s to 4 minutes apart.
	pushesMin, pushesMax   = 5, 25
	pushGapMin, pushGapMax = 20 * time.Second, 4 * time.Minute
	// An adversary in the middle uses the session 5-30 times, 20 s to 3
	// minutes apart.
	hijackUsesMin, hijackUsesMax = 5, 30
	hijackGapMin, hijackGapMax   = 20 * time.Second, 3 * time.Minute
	// Minting: 20-100 downscoped tokens, 0.5-5 s apart, then each used
	// 2-30 s apart.
	mintMin, mintMax       = 20, 100
	mintGapMin, mintGapMax = 500 * time.Millisecond, 5 * time.Second
	// Mass sharing: 50-300 open links, 1-10 s apart.
	sharesMin, sharesMax = 50, 300
)

// startLowAndSlow guesses the victim's password through a residential
// proxy service: every guess leaves from another household of the
// victim's country, one every 5 to 15 minutes for hours, until one is
// right; the attacker then takes a token and uses it.
func (s *Sim) startLowAndSlow(victim *user) {
	a := s.newAttacker(victim, residentialProxy)
	a.agent = browserAgents[a.rng.IntN(len(browserAgents))]
	sc := s.newScript(victim)
	rec := sc.label(AttackLowAndSlow, LabelAttack, victim)
	wait := s.attackTime(uniform(a.rng, time.Minute, slowGapMax))
	for range slowTriesMin + a.rng.IntN(slowTriesMax-slowTriesMin+1) {
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			a.rotate()
			return failure(a, victim), nil
		})
		wait = s.attackTime(uniform(a.rng, slowGapMin, slowGapMax))
	}
	sc.add(0, nil, func(context.Context, *Sim) (*schemas.AuditEvent, error) { a.rotate(); return nil, nil })
	s.loginAndUse(sc, a, victim, rec, wait, 1+a.rng.IntN(3))
	s.start(sc)
}

// startDistributedStuffing replays a leaked credential list through a
// botnet of rented servers: hundreds of accounts (most of them no user
// here), each tried once from another hosting address, and a few of the
// organisation's users whose leaked password still works are let in. The
// attacker takes a token for each and uses it.
func (s *Sim) startDistributedStuffing(victim *user) {
	n := stuffAccountsMin + s.rng.IntN(stuffAccountsMax-stuffAccountsMin+1)
	wins := stuffWinsMin + s.rng.IntN(stuffWinsMax-stuffWinsMin+1)
	// About one in ten of the list's accounts are users here.
	var others []*user
	for _, i := range s.rng.Perm(len(s.users)) {
		if len(others) == n/10 {
			break
		}
		if u := s.users[i]; u != victim && s.mayAttack(u, AttackDistributedStuffing) {
			others = append(others, u)
		}
	}
	wins = min(wins, len(others)+1)
	victims := append([]*user{victim}, others[:wins-1]...)
	tried := others[wins-1:]
	a := s.newAttacker(victim, foreignHosting)
	sc := s.newScript(append(victims, tried...)...)
	// The list in its order: victims, users tried and strangers shuffled,
	// the victims in its second half (the attacker began elsewhere).
	type entry struct {
		u    *user
		name string
		win  bool
	}
	list := make([]entry, 0, n)
	for _, u := range tried {
		list = append(list, entry{u: u})
	}
	for len(list) < n-len(victims) {
		list = append(list, entry{name: fmt.Sprintf("ext-%08x", a.rng.Uint32())})
	}
	a.rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	for _, v := range victims {
		at := len(list)/2 + a.rng.IntN(len(list)/2+1)
		list = append(list[:at], append([]entry{{u: v, win: true}}, list[at:]...)...)
	}
	wait := s.attackTime(uniform(a.rng, time.Second, bruteStartMax))
	for _, e := range list {
		switch {
		case e.win:
			rec := sc.label(AttackDistributedStuffing, LabelAttack, e.u)
			sc.add(0, nil, func(context.Context, *Sim) (*schemas.AuditEvent, error) { a.hostAnywhere(); return nil, nil })
			s.loginAndUse(sc, a, e.u, rec, wait, 1+a.rng.IntN(3))
		case e.u != nil:
			u := e.u
			sc.add(wait, sc.label(AttackDistributedStuffing, LabelAttempt, u), func(context.Context, *Sim) (*schemas.AuditEvent, error) {
				a.hostAnywhere()
				return failure(a, u), nil
			})
		default:
			name := e.name
			sc.add(wait, sc.labelID(AttackDistributedStuffing, LabelAttempt, name), func(context.Context, *Sim) (*schemas.AuditEvent, error) {
				a.hostAnywhere()
				return failureAs(a, victim, name), nil
			})
		}
		wait = s.attackTime(uniform(a.rng, dstuffGapMin, dstuffGapMax))
	}
	s.start(sc)
}

// startMFAFatigue: the attacker holds the victim's password and signs in
// again and again, each time sending a push the victim rejects (or lets
// time out), until the victim accepts one to make it stop; the attacker
// then takes a token and uses it.
func (s *Sim) startMFAFatigue(victim *user) {
	a := s.newAttacker(victim, anyOrigin)
	a.agent = browserAgents[a.rng.IntN(len(browserAgents))]
	sc := s.newScript(victim)
	rec := sc.label(AttackMFAFatigue, LabelAttack, victim)
	wait := s.attackTime(uniform(a.rng, time.Minute, 10*time.Minute))
	for range pushesMin + a.rng.IntN(pushesMax-pushesMin+1) {
		reason := "rejected"
		if a.rng.IntN(5) == 0 {
			reason = "timeout"
		}
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			ev := a.event(schemas.EventMFAFailure, victim, "")
			ev.Attrs = map[string]string{"method": "push", "reason": reason}
			return ev, nil
		})
		wait = s.attackTime(uniform(a.rng, pushGapMin, pushGapMax))
	}
	s.loginAndUse(sc, a, victim, rec, wait, 2+a.rng.IntN(4))
	s.start(sc)
}

// startSessionHijack: an adversary-in-the-middle proxy phished the
// victim's session; the attacker replays its token from a server with
// another browser and device, reading, downloading and sharing, while the
// victim goes on working in the same session.
func (s *Sim) startSessionHijack(victim *user) {
	o := foreignHosting
	if s.rng.IntN(2) == 0 {
		o = localHosting
	}
	a := s.newAttacker(victim, o)
	for a.agent = browserAgents[a.rng.IntN(len(browserAgents))]; a.agent == victim.agent; {
		a.agent = browserAgents[a.rng.IntN(len(browserAgents))]
	}
	sc := s.newScript(victim)
	rec := sc.label(AttackSessionHijack, LabelAttack, victim)
	tok, session := victim.tok, victim.session
	rec.tokenID, rec.sessionID = tok.id, session
	wait := s.attackTime(uniform(a.rng, time.Minute, 10*time.Minute))
	for range hijackUsesMin + a.rng.IntN(hijackUsesMax-hijackUsesMin+1) {
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			if a.rng.IntN(10) == 0 {
				ev := a.event(schemas.EventShareCreated, victim, session)
				ev.TokenID = tok.id
				ev.Resource = &schemas.Resource{Type: "file", ID: victim.file(a.rng)}
				ev.Attrs = map[string]string{"access": "open"}
				return ev, nil
			}
			return a.use(victim, session, tok), nil
		})
		wait = s.attackTime(uniform(a.rng, hijackGapMin, hijackGapMax))
	}
	s.start(sc)
}

// startResetTakeover: the attacker took over the victim's mailbox or phone
// number, resets the password from abroad, signs in from there minutes
// later and helps themselves.
func (s *Sim) startResetTakeover(victim *user) {
	o := foreignHosting
	if s.rng.IntN(2) == 0 {
		o = foreignMachine
	}
	a := s.newAttacker(victim, o)
	sc := s.newScript(victim)
	rec := sc.label(AttackPasswordResetTakeover, LabelAttack, victim)
	method := "email_link"
	if a.rng.IntN(3) == 0 {
		method = "sms"
	}
	sc.add(s.attackTime(uniform(a.rng, time.Minute, 10*time.Minute)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
		ev := a.event(schemas.EventPasswordReset, victim, "")
		ev.Attrs = map[string]string{"method": method, "initiator": "user"}
		return ev, nil
	})
	s.loginAndUse(sc, a, victim, rec, s.attackTime(uniform(a.rng, time.Minute, 10*time.Minute)), 2+a.rng.IntN(5))
	s.start(sc)
}

// startMinting: with a stolen token of the victim's, the attacker mints
// downscoped tokens in bulk, each bound to one of the victim's files, and
// hands them to other machines that use them from elsewhere.
func (s *Sim) startMinting(victim *user) {
	a := s.newAttacker(victim, anyOrigin)
	sc := s.newScript(victim)
	rec := sc.label(AttackDownscopedMinting, LabelAttack, victim)
	parent, session := victim.tok, victim.session
	rec.tokenID, rec.sessionID = parent.id, session
	n := mintMin + a.rng.IntN(mintMax-mintMin+1)
	children := make([]token, n)
	files := make([]string, n)
	wait := s.attackTime(uniform(a.rng, time.Minute, 10*time.Minute))
	for i := range n {
		sc.add(wait, rec, func(ctx context.Context, s *Sim) (*schemas.AuditEvent, error) {
			c, err := s.exchange(ctx, asAttacker, victim.id, victim.client, session, parent, s.cfg.DownscopedScopes)
			if errors.Is(err, errNoToken) {
				// The parent is revoked and signing in again needs the
				// second factor: no child to hand on.
				return a.event(schemas.EventMFAFailure, victim, session), nil
			}
			if err != nil {
				return nil, err
			}
			children[i], files[i] = c, victim.file(a.rng)
			ev := a.event(schemas.EventTokenExchanged, victim, session)
			ev.TokenID, ev.ParentTokenID, ev.Scopes = c.id, parent.id, s.cfg.DownscopedScopes
			ev.Resource = &schemas.Resource{Type: "file", ID: files[i]}
			return ev, nil
		})
		wait = s.attackTime(uniform(a.rng, mintGapMin, mintGapMax))
	}
	mule := &attacker{rng: rand.New(rand.NewPCG(a.rng.Uint64(), 1)), device: a.device}
	for i := range n {
		sc.add(s.attackTime(uniform(a.rng, 2*time.Second, 30*time.Second)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			mule.hostAnywhere()
			mule.agent = attackerAgents[mule.rng.IntN(len(attackerAgents))]
			if children[i].id == "" {
				return nil, nil // no child was minted
			}
			ev := mule.event(schemas.EventFileDownload, victim, session)
			ev.TokenID = children[i].id
			ev.Resource = &schemas.Resource{Type: "file", ID: files[i]}
			ev.Bytes = fileSize(mule.rng)
			return ev, nil
		})
	}
	s.start(sc)
}

// startEscalationSharing: in the victim's session (an insider, or malware
// on the victim's machine), the account is made an admin and then shares
// other people's files with anyone who has the link, by the hundred.
func (s *Sim) startEscalationSharing(victim *user) {
	sc, rng, rec, tmpl := s.adminGrant(victim, AttackEscalationSharing, 5*time.Minute)
	for range sharesMin + rng.IntN(sharesMax-sharesMin+1) {
		sc.add(s.attackTime(uniform(rng, time.Second, 10*time.Second)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			ev := *tmpl
			other := s.users[rng.IntN(len(s.users))]
			ev.Type = schemas.EventShareCreated
			ev.Resource = &schemas.Resource{Type: "file", ID: other.file(rng)}
			ev.Attrs = map[string]string{"access": "open"}
			return &ev, nil
		})
	}
	s.start(sc)
}
