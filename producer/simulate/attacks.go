package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Ground-truth attack kinds: the attack field of GroundTruth. Several
// kinds happen only now that attackers know what single-signal rules look
// for (low and slow guessing, distributed stuffing, MFA fatigue, an
// adversary in the middle); each names what happened, not a rule.
const (
	AttackBruteForce          = "brute_force"
	AttackBruteForceSuccess   = "brute_force_success"
	AttackCredentialStuffing  = "credential_stuffing"
	AttackPasswordSpraying    = "password_spraying"
	AttackImpossibleTravel    = "impossible_travel"
	AttackTokenReplay         = "token_replay"
	AttackDownscopedMisuse    = "downscoped_misuse"
	AttackMassDownload        = "mass_download"
	AttackNewLocationAction   = "new_location_sensitive_action"
	AttackPrivilegeEscalation = "privilege_escalation"
	AttackTokenAfterPassword  = "token_after_password_change"
	// AttackLowAndSlow guesses one user's password from rotating
	// residential addresses in the user's country, one try every 5 to 15
	// minutes for hours, until it gets in.
	AttackLowAndSlow = "low_and_slow_guessing"
	// AttackDistributedStuffing tries a leaked credential list from
	// hundreds of hosting addresses, one try per account, and gets into a
	// few (labelled attacks; the others tried are attempts).
	AttackDistributedStuffing = "distributed_credential_stuffing"
	// AttackMFAFatigue holds the password and sends push after push until
	// the user accepts one.
	AttackMFAFatigue = "mfa_fatigue"
	// AttackSessionHijack is an adversary in the middle: the session token
	// it phished is used from a hosting network with another browser and
	// device while the victim keeps working.
	AttackSessionHijack = "aitm_session_hijack"
	// AttackPasswordResetTakeover resets the victim's password (through a
	// taken-over mailbox or phone number) and signs in from another
	// country.
	AttackPasswordResetTakeover = "password_reset_takeover"
	// AttackDownscopedMinting mints downscoped tokens in bulk from a
	// stolen token and uses them from elsewhere.
	AttackDownscopedMinting = "downscoped_token_minting"
	// AttackEscalationSharing grants the account admin rights and shares
	// other people's files with anyone who has the link, in bulk.
	AttackEscalationSharing = "privilege_escalation_mass_sharing"
	// RuleLogout names the rule that answers a logout (LabelUserAction).
	RuleLogout = "logout"
)

// Attacks lists the attack kinds.
func Attacks() []string {
	return []string{
		AttackBruteForce, AttackBruteForceSuccess, AttackCredentialStuffing, AttackPasswordSpraying,
		AttackImpossibleTravel, AttackTokenReplay, AttackDownscopedMisuse, AttackMassDownload,
		AttackNewLocationAction, AttackPrivilegeEscalation, AttackTokenAfterPassword,
		AttackLowAndSlow, AttackDistributedStuffing, AttackMFAFatigue, AttackSessionHijack,
		AttackPasswordResetTakeover, AttackDownscopedMinting, AttackEscalationSharing,
	}
}

// otherAttacks are the kinds Config.AttackProb starts, in proportion to
// Config.AttackMix.
var otherAttacks = []string{
	AttackCredentialStuffing, AttackPasswordSpraying, AttackImpossibleTravel, AttackDownscopedMisuse,
	AttackMassDownload, AttackNewLocationAction, AttackPrivilegeEscalation, AttackTokenAfterPassword,
	AttackLowAndSlow, AttackDistributedStuffing, AttackMFAFatigue, AttackSessionHijack,
	AttackPasswordResetTakeover, AttackDownscopedMinting, AttackEscalationSharing,
}

// Attacker timing, independent of the configured rate so that attacks look
// the same at any volume, and scaled by Config.AttackTimeScale.
const (
	// A brute force tries every 2-20 s.
	guessMin, guessMax = 2 * time.Second, 20 * time.Second
	// An attack starts within minutes of what triggers it.
	bruteStartMax              = 2 * time.Minute
	replayDelayMin             = 30 * time.Second
	replayDelayMax             = 4 * time.Minute
	attackUseMin, attackUseMax = 5 * time.Second, 60 * time.Second
	// Credential stuffing tries a user every 1-4 s; password spraying one
	// every 10-40 s.
	stuffMin, stuffMax = 1 * time.Second, 4 * time.Second
	sprayMin, sprayMax = 10 * time.Second, 40 * time.Second
	// A mass download fetches 600-1200 files, one every 0.2-2 s.
	grabMin, grabMax = 200 * time.Millisecond, 2 * time.Second
	// attackCalm separates two attacks on one user, so that each stands
	// alone in the ground truth.
	attackCalm = 15 * time.Minute
	// impossibleKm is the least distance between a victim and the
	// attacker of an impossible-travel scenario.
	impossibleKm = 3000
)

// attackSpan is more than an attack of the kind lasts, at AttackTimeScale
// 1.
var attackSpan = map[string]time.Duration{
	AttackBruteForce:            12 * time.Minute,
	AttackBruteForceSuccess:     12 * time.Minute,
	AttackCredentialStuffing:    10 * time.Minute,
	AttackPasswordSpraying:      50 * time.Minute,
	AttackImpossibleTravel:      30 * time.Minute,
	AttackTokenReplay:           10 * time.Minute,
	AttackDownscopedMisuse:      12 * time.Minute,
	AttackMassDownload:          50 * time.Minute,
	AttackNewLocationAction:     15 * time.Minute,
	AttackPrivilegeEscalation:   15 * time.Minute,
	AttackTokenAfterPassword:    15 * time.Minute,
	AttackLowAndSlow:            11 * time.Hour,
	AttackDistributedStuffing:   50 * time.Minute,
	AttackMFAFatigue:            2 * time.Hour,
	AttackSessionHijack:         2 * time.Hour,
	AttackPasswordResetTakeover: 40 * time.Minute,
	AttackDownscopedMinting:     80 * time.Minute,
	AttackEscalationSharing:     70 * time.Minute,
}

// mayAttack reports whether an attack of the kind on u may start now: none
// is under way or recently ended, and (with a duration) it can finish in
// time.
func (s *Sim) mayAttack(u *user, kind string) bool {
	if u.attacked || s.simNow.Before(u.calmUntil) || s.simNow.Before(s.attacksFrom) {
		return false
	}
	return s.end.IsZero() || s.simNow.Add(s.attackTime(attackSpan[kind])).Before(s.end)
}

// attackTime scales an attacker's timing by Config.AttackTimeScale, so a
// short live run can hold whole attacks.
func (s *Sim) attackTime(d time.Duration) time.Duration {
	if s.cfg.AttackTimeScale <= 0 || s.cfg.AttackTimeScale == 1 {
		return d
	}
	return time.Duration(float64(d) * s.cfg.AttackTimeScale)
}

// attack is one ground-truth line under way: an attack on one user, a
// user tried by a many-user attack, or a user action. It is written once
// it is done and its events are published.
type attack struct {
	kind       string
	label      string
	userID     string
	tokenID    string
	sessionID  string
	attackID   string
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

// attacker is where an attack comes from: rented hosting abroad or in
// the victim's country, a residential proxy in the victim's country (whose
// address can rotate through the country's broadband networks), or a
// compromised machine abroad.
type attacker struct {
	rng     *rand.Rand
	addr    address
	country string // for a residential proxy: the country it rotates in
	agent   string
	device  string
}

// Kinds of origin.
type origin int

const (
	anyOrigin origin = iota
	foreignHosting
	localHosting
	residentialProxy
	foreignMachine
)

// newAttacker is an attacker of victim from the kind of origin o; with
// anyOrigin, one drawn from a mix: hosting abroad (three in ten), hosting
// in the victim's country (a quarter), a residential proxy in the
// victim's country (three in ten), a compromised machine abroad.
func (s *Sim) newAttacker(victim *user, o origin) *attacker {
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	a := &attacker{
		rng:    rng,
		agent:  attackerAgents[rng.IntN(len(attackerAgents))],
		device: fmt.Sprintf("dev_%012x", rng.Uint64()&0xffffffffffff),
	}
	if o == anyOrigin {
		switch r := rng.IntN(100); {
		case r < 30:
			o = foreignHosting
		case r < 55:
			o = localHosting
		case r < 85:
			o = residentialProxy
		default:
			o = foreignMachine
		}
	}
	a.from(victim, o)
	return a
}

// from moves the attacker to a new address of the kind o.
func (a *attacker) from(victim *user, o origin) {
	country := victim.home.country
	switch o {
	case localHosting:
		if local := hostingIn(country); len(local) > 0 {
			r := local[a.rng.IntN(len(local))]
			a.addr = address{r.asns[0], r.asns[0].ip(a.rng, -1), r.place}
			return
		}
		fallthrough
	case foreignHosting:
		var abroad []region
		for _, r := range cloudRegions {
			if r.country != country {
				abroad = append(abroad, r)
			}
		}
		r := abroad[a.rng.IntN(len(abroad))]
		a.addr = address{r.asns[0], r.asns[0].ip(a.rng, -1), r.place}
	case residentialProxy:
		a.country = country
		a.rotate()
	default:
		p := foreignResidential[a.rng.IntN(len(foreignResidential))]
		a.addr = address{p.asns[0], p.asns[0].ip(a.rng, -1), p}
	}
}

// rotate gives a residential proxy its next exit: another household of
// the country, on any of its broadband networks.
func (a *attacker) rotate() {
	cities := citiesIn(a.country)
	p := cities[a.rng.IntN(len(cities))]
	n := p.asns[a.rng.IntN(len(p.asns))]
	a.addr = address{n, n.ip(a.rng, -1), p}
}

// hostAnywhere moves the attacker to a new address of any hosting region:
// one machine of a botnet of rented servers.
func (a *attacker) hostAnywhere() {
	r := cloudRegions[a.rng.IntN(len(cloudRegions))]
	a.addr = address{r.asns[0], r.asns[0].ip(a.rng, -1), r.place}
}

// farFrom moves the attacker to an origin at least impossibleKm from p.
func (a *attacker) farFrom(p place) {
	var far []place
	for _, r := range cloudRegions {
		if distanceKm(r.place, p) >= impossibleKm {
			far = append(far, r.place)
		}
	}
	for _, o := range foreignResidential {
		if distanceKm(o, p) >= impossibleKm {
			far = append(far, o)
		}
	}
	o := far[a.rng.IntN(len(far))]
	n := o.asns[a.rng.IntN(len(o.asns))]
	a.addr = address{n, n.ip(a.rng, -1), o}
}

func (a *attacker) event(typ schemas.EventType, victim *user, session string) *schemas.AuditEvent {
	return a.eventAt(typ, victim, session, a.addr)
}

// eventAt is an event of the attacker's from at.
func (a *attacker) eventAt(typ schemas.EventType, victim *user, session string, at address) *schemas.AuditEvent {
	return &schemas.AuditEvent{
		Type:      typ,
		UserID:    victim.id,
		SessionID: session,
		ClientID:  victim.client,
		IP:        at.ip,
		UserAgent: a.agent,
		DeviceID:  a.device,
		Geo:       at.at.geo(at.net.asn),
	}
}

// script is an attack as a list of steps, each emitting at most one event
// that belongs to the ground-truth lines of the step.
type script struct {
	id     string
	steps  []scriptStep
	i      int
	recs   []*attack
	users  []*user
	victim *user
}

type scriptStep struct {
	wait time.Duration // after the previous step, already scaled
	rec  *attack       // the line the event belongs to; nil for none
	do   func(ctx context.Context, s *Sim) (*schemas.AuditEvent, error)
}

func (sc *script) add(wait time.Duration, rec *attack, do func(ctx context.Context, s *Sim) (*schemas.AuditEvent, error)) {
	sc.steps = append(sc.steps, scriptStep{wait: wait, rec: rec, do: do})
}

// emitStep is a step that emits a ready event.
func emitStep(ev *schemas.AuditEvent) func(context.Context, *Sim) (*schemas.AuditEvent, error) {
	return func(context.Context, *Sim) (*schemas.AuditEvent, error) { return ev, nil }
}

// start marks the script's users attacked and schedules its first step.
func (s *Sim) start(sc *script) {
	for _, u := range sc.users {
		u.attacked = true
	}
	s.attacks = append(s.attacks, sc.recs...)
	s.schedule(sc, s.after(sc.steps[0].wait))
}

func (sc *script) step(ctx context.Context, s *Sim) (time.Time, bool, error) {
	st := sc.steps[sc.i]
	ev, err := st.do(ctx, s)
	if err != nil {
		return time.Time{}, false, err
	}
	if ev != nil {
		at := s.emit(ev)
		if st.rec != nil {
			st.rec.saw(at)
		}
	}
	sc.i++
	if sc.i < len(sc.steps) {
		return s.after(sc.steps[sc.i].wait), false, nil
	}
	for _, r := range sc.recs {
		r.done = true
		if r.events > 0 {
			s.pending = append(s.pending, r)
		}
	}
	for _, u := range sc.users {
		u.attacked = false
		u.calmUntil = s.simNow.Add(s.attackTime(attackCalm))
	}
	return time.Time{}, true, nil
}

func (s *Sim) newScript(victims ...*user) *script {
	return &script{id: "atk_" + s.hexID(), users: victims, victim: victims[0]}
}

func (sc *script) label(kind, label string, u *user) *attack {
	return sc.labelID(kind, label, u.id)
}

func (sc *script) labelID(kind, label, userID string) *attack {
	r := &attack{kind: kind, label: label, userID: userID, attackID: sc.id}
	sc.recs = append(sc.recs, r)
	return r
}

// loginAndUse appends what an attacker does with a password that worked:
// a successful login, a token, and n uses of it, all from the address the
// attacker has at the login.
func (s *Sim) loginAndUse(sc *script, a *attacker, victim *user, rec *attack, wait time.Duration, n int) {
	session := "ses_" + s.hexID()
	var tok token
	var at address
	sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
		at = a.addr
		return a.eventAt(schemas.EventLoginSuccess, victim, session, at), nil
	})
	sc.add(uniform(a.rng, tokenDelayMin, tokenDelayMax), rec, func(ctx context.Context, s *Sim) (*schemas.AuditEvent, error) {
		t, err := s.issue(ctx, asAttacker, victim.id, victim.client, session, s.cfg.Scopes)
		if errors.Is(err, errNoToken) {
			// The identity provider asks for the second factor, which
			// the attacker does not have: no token, nothing to use.
			return a.eventAt(schemas.EventMFAFailure, victim, session, at), nil
		}
		if err != nil {
			return nil, err
		}
		tok, rec.tokenID = t, t.id
		ev := a.eventAt(schemas.EventTokenIssued, victim, session, at)
		ev.TokenID, ev.Scopes = t.id, s.cfg.Scopes
		return ev, nil
	})
	rec.sessionID = session
	for range n {
		sc.add(s.attackTime(uniform(a.rng, attackUseMin, attackUseMax)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			if tok.id == "" {
				return nil, nil // refused a token
			}
			ev := a.eventAt(schemas.EventFileDownload, victim, session, at)
			ev.TokenID = tok.id
			ev.Resource = &schemas.Resource{Type: "file", ID: victim.file(a.rng)}
			ev.Bytes = fileSize(a.rng)
			return ev, nil
		})
	}
}

func failure(a *attacker, victim *user) *schemas.AuditEvent {
	return failureAs(a, victim, victim.id)
}

// failureAs is a failed login as userID, which may name no user of the
// organisation (credential lists hold many accounts from elsewhere).
func failureAs(a *attacker, victim *user, userID string) *schemas.AuditEvent {
	ev := a.event(schemas.EventLoginFailure, victim, "")
	ev.UserID = userID
	ev.Attrs = map[string]string{"reason": "invalid_password"}
	return ev
}

// startBruteForce guesses a user's password from one address: 12-25
// times without success, or 6-10 times and then right, after which the
// attacker takes a token and uses it.
func (s *Sim) startBruteForce(victim *user, success bool) {
	a := s.newAttacker(victim, anyOrigin)
	sc := s.newScript(victim)
	kind, guesses := AttackBruteForce, 12+a.rng.IntN(14)
	if success {
		kind, guesses = AttackBruteForceSuccess, 6+a.rng.IntN(5)
	}
	rec := sc.label(kind, LabelAttack, victim)
	wait := s.attackTime(uniform(a.rng, time.Second, bruteStartMax))
	for range guesses {
		sc.add(wait, rec, emitStep(failure(a, victim)))
		wait = s.attackTime(uniform(a.rng, guessMin, guessMax))
	}
	if success {
		s.loginAndUse(sc, a, victim, rec, wait, 1+a.rng.IntN(3))
	}
	s.start(sc)
}

// startReplay uses a stolen token of a user from the attacker's address,
// 1-3 times.
func (s *Sim) startReplay(victim *user) {
	a := s.newAttacker(victim, anyOrigin)
	sc := s.newScript(victim)
	rec := sc.label(AttackTokenReplay, LabelAttack, victim)
	tok, session := victim.tok, victim.session
	rec.tokenID, rec.sessionID = tok.id, session
	wait := s.attackTime(uniform(a.rng, replayDelayMin, replayDelayMax))
	for range 1 + a.rng.IntN(3) {
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) { return a.use(victim, session, tok), nil })
		wait = s.attackTime(uniform(a.rng, attackUseMin, attackUseMax))
	}
	s.start(sc)
}

// use is an attacker's use of a token: an API call or a download.
func (a *attacker) use(victim *user, session string, tok token) *schemas.AuditEvent {
	var ev *schemas.AuditEvent
	if a.rng.IntN(2) == 0 {
		ev = a.event(schemas.EventTokenUsed, victim, session)
		ev.Attrs = map[string]string{"endpoint": endpoints[a.rng.IntN(len(endpoints))]}
	} else {
		ev = a.event(schemas.EventFileDownload, victim, session)
		ev.Resource = &schemas.Resource{Type: "file", ID: victim.file(a.rng)}
		ev.Bytes = fileSize(a.rng)
	}
	ev.TokenID = tok.id
	return ev
}

// startOther starts one of otherAttacks on victim, whose session has just
// been given a token: the kind whose share of the attacks so far lags
// most behind its weight in Config.AttackMix (a smooth weighted round
// robin, so a run holds every kind in proportion), among those that can
// finish before the run ends.
func (s *Sim) startOther(ctx context.Context, victim *user) {
	var fit []string
	total := 0.0
	for _, k := range otherAttacks {
		if w := s.mix[k]; w > 0 && s.mayAttack(victim, k) {
			fit = append(fit, k)
			total += w
		}
	}
	if len(fit) == 0 {
		return
	}
	kind := fit[0]
	for _, k := range fit {
		s.credit[k] += s.mix[k]
		if s.credit[k] > s.credit[kind] {
			kind = k
		}
	}
	s.credit[kind] -= total
	switch kind {
	case AttackCredentialStuffing:
		s.startManyUsers(victim, kind, 20+s.rng.IntN(21), 0.8, stuffMin, stuffMax)
	case AttackPasswordSpraying:
		s.startManyUsers(victim, kind, 30+s.rng.IntN(31), 0.3, sprayMin, sprayMax)
	case AttackImpossibleTravel:
		s.startImpossibleTravel(victim)
	case AttackDownscopedMisuse:
		if s.rng.IntN(2) == 0 {
			s.startDownscopedMisuse(victim)
		} else {
			// The session exchanges its token at its first action; once
			// the user logs out, the child is used anyway.
			victim.attacked = true
			victim.misuseAtLogout = true
			victim.exchangeAt = victim.actions
		}
	case AttackMassDownload:
		s.startMassDownload(victim)
	case AttackNewLocationAction:
		s.startNewLocation(victim)
	case AttackPrivilegeEscalation:
		s.startPrivilegeEscalation(victim)
	case AttackTokenAfterPassword:
		s.startTokenAfterPassword(victim)
	case AttackLowAndSlow:
		s.startLowAndSlow(victim)
	case AttackDistributedStuffing:
		s.startDistributedStuffing(victim)
	case AttackMFAFatigue:
		s.startMFAFatigue(victim)
	case AttackSessionHijack:
		s.startSessionHijack(victim)
	case AttackPasswordResetTakeover:
		s.startResetTakeover(victim)
	case AttackDownscopedMinting:
		s.startMinting(victim)
	case AttackEscalationSharing:
		s.startEscalationSharing(victim)
	}
}

// startManyUsers is credential stuffing or password spraying: one address
// tries a password for n accounts in turn, a pause of lo-hi apart, a share
// unknown of them names of no user of the organisation; all fail but the
// victim's, the last, with which the attacker logs in.
func (s *Sim) startManyUsers(victim *user, kind string, n int, unknown float64, lo, hi time.Duration) {
	var others []*user
	known := n - 1 - int(unknown*float64(n-1))
	for _, i := range s.rng.Perm(len(s.users)) {
		if len(others) == known {
			break
		}
		if u := s.users[i]; u != victim && s.mayAttack(u, kind) {
			others = append(others, u)
		}
	}
	o := foreignHosting
	if s.rng.IntN(2) == 0 {
		o = localHosting
	}
	a := s.newAttacker(victim, o)
	sc := s.newScript(append([]*user{victim}, others...)...)
	rec := sc.label(kind, LabelAttack, victim)
	wait := s.attackTime(uniform(a.rng, time.Second, bruteStartMax))
	tried := 0
	for k := range n - 1 {
		if tried < len(others) && a.rng.IntN(n-1-k) < len(others)-tried {
			u := others[tried]
			tried++
			sc.add(wait, sc.label(kind, LabelAttempt, u), emitStep(failure(a, u)))
		} else {
			name := fmt.Sprintf("ext-%08x", a.rng.Uint32())
			sc.add(wait, sc.labelID(kind, LabelAttempt, name), emitStep(failureAs(a, victim, name)))
		}
		wait = s.attackTime(uniform(a.rng, lo, hi))
	}
	s.loginAndUse(sc, a, victim, rec, wait, 1+a.rng.IntN(3))
	s.start(sc)
}

// UserID is the id of the simulation's i-th user, from 0.
func UserID(i int) string { return fmt.Sprintf("user-%06d", i+1) }

// startImpossibleTravel logs in as the victim (with a phished password)
// from at least impossibleKm away, minutes after the victim's own activity.
func (s *Sim) startImpossibleTravel(victim *user) {
	a := s.newAttacker(victim, anyOrigin)
	a.farFrom(victim.loc)
	sc := s.newScript(victim)
	rec := sc.label(AttackImpossibleTravel, LabelAttack, victim)
	s.loginAndUse(sc, a, victim, rec, s.attackTime(uniform(a.rng, 2*time.Minute, 20*time.Minute)), 2+a.rng.IntN(3))
	s.start(sc)
}

// startDownscopedMisuse steals the victim's next downscoped token (read
// only, bound to one file) and uses it beyond its grant: other files, an
// upload, a folder listing.
func (s *Sim) startDownscopedMisuse(victim *user) {
	a := s.newAttacker(victim, anyOrigin)
	sc := s.newScript(victim)
	rec := sc.label(AttackDownscopedMisuse, LabelAttack, victim)
	var child token
	session, parent := victim.session, victim.tok
	sc.add(s.attackTime(uniform(a.rng, 5*time.Second, time.Minute)), nil, func(ctx context.Context, s *Sim) (*schemas.AuditEvent, error) {
		// The victim's application exchanges; the attacker steals the child.
		c, err := s.exchange(ctx, asUser, victim.id, victim.client, session, parent, s.cfg.DownscopedScopes)
		if err != nil {
			return nil, err
		}
		child, rec.tokenID, rec.sessionID = c, c.id, session
		ev := victim.event(schemas.EventTokenExchanged)
		ev.SessionID = session
		ev.TokenID, ev.ParentTokenID, ev.Scopes = c.id, parent.id, s.cfg.DownscopedScopes
		ev.Resource = &schemas.Resource{Type: "file", ID: victim.file(a.rng)}
		return ev, nil
	})
	wait := s.attackTime(uniform(a.rng, replayDelayMin, replayDelayMax))
	for i := range 2 + a.rng.IntN(3) {
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			return a.overreach(victim, session, child, i), nil
		})
		wait = s.attackTime(uniform(a.rng, attackUseMin, attackUseMax))
	}
	s.start(sc)
}

// overreach is a use of a downscoped token beyond its grant.
func (a *attacker) overreach(victim *user, session string, child token, i int) *schemas.AuditEvent {
	var ev *schemas.AuditEvent
	switch i % 3 {
	case 0:
		ev = a.event(schemas.EventFileDownload, victim, session)
		ev.Resource = &schemas.Resource{Type: "file", ID: victim.file(a.rng)}
		ev.Bytes = fileSize(a.rng)
	case 1:
		ev = a.event(schemas.EventFileUpload, victim, session)
		ev.Resource = &schemas.Resource{Type: "file", ID: victim.file(a.rng)}
		ev.Bytes = fileSize(a.rng)
	default:
		ev = a.event(schemas.EventTokenUsed, victim, session)
		ev.Resource = &schemas.Resource{Type: "folder", ID: "folder_0"}
		ev.Attrs = map[string]string{"endpoint": "/2.0/folders/0/items"}
	}
	ev.TokenID, ev.ParentTokenID = child.id, ""
	return ev
}

// startMisuseAfterRevoke uses a session's downscoped token after the
// session logged out and its parent token was revoked.
func (s *Sim) startMisuseAfterRevoke(victim *user, child token) {
	a := s.newAttacker(victim, anyOrigin)
	sc := s.newScript(victim)
	rec := sc.label(AttackDownscopedMisuse, LabelAttack, victim)
	rec.tokenID, rec.sessionID = child.id, victim.session
	session := victim.session
	wait := s.attackTime(uniform(a.rng, 30*time.Second, 5*time.Minute))
	for range 2 + a.rng.IntN(3) {
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) { return a.use(victim, session, child), nil })
		wait = s.attackTime(uniform(a.rng, attackUseMin, attackUseMax))
	}
	s.start(sc)
}

// startMassDownload is malware (or an insider) on the victim's own device
// and session downloading 600-1200 files in a row, within minutes.
func (s *Sim) startMassDownload(victim *user) {
	sc := s.newScript(victim)
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	rec := sc.label(AttackMassDownload, LabelAttack, victim)
	tmpl := victim.event(schemas.EventFileDownload)
	tmpl.TokenID = victim.tok.id
	rec.tokenID, rec.sessionID = victim.tok.id, victim.session
	wait := s.attackTime(uniform(rng, time.Minute, 5*time.Minute))
	for i := range 600 + rng.IntN(601) {
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			ev := *tmpl
			ev.Resource = &schemas.Resource{Type: "file", ID: fmt.Sprintf("file_%s_%04d", victim.id[len("user-"):], i)}
			ev.Bytes = fileSize(rng)
			return &ev, nil
		})
		wait = s.attackTime(uniform(rng, grabMin, grabMax))
	}
	s.start(sc)
}

// startNewLocation signs in as the victim from a country and network the
// victim never used, and promptly does sensitive things: opens files to
// anyone with the link and changes the password.
func (s *Sim) startNewLocation(victim *user) {
	a := s.newAttacker(victim, anyOrigin)
	sc := s.newScript(victim)
	rec := sc.label(AttackNewLocationAction, LabelAttack, victim)
	s.loginAndUse(sc, a, victim, rec, s.attackTime(uniform(a.rng, time.Minute, 10*time.Minute)), 1)
	session := rec.sessionID
	for range 1 + a.rng.IntN(2) {
		sc.add(s.attackTime(uniform(a.rng, attackUseMin, attackUseMax)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			ev := a.event(schemas.EventShareCreated, victim, session)
			ev.TokenID = rec.tokenID
			ev.Resource = &schemas.Resource{Type: "file", ID: victim.file(a.rng)}
			ev.Attrs = map[string]string{"access": "open"}
			return ev, nil
		})
	}
	sc.add(s.attackTime(uniform(a.rng, attackUseMin, attackUseMax)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
		ev := a.event(schemas.EventPasswordChanged, victim, session)
		ev.TokenID = rec.tokenID
		ev.Attrs = map[string]string{"method": "self_service"}
		return ev, nil
	})
	s.start(sc)
}

// startPrivilegeEscalation grants the victim's account admin rights and
// then uses them at once: other people's files downloaded and shared, the
// admin API called, within minutes.
func (s *Sim) startPrivilegeEscalation(victim *user) {
	sc, rng, rec, tmpl := s.adminGrant(victim, AttackPrivilegeEscalation, 3*time.Minute)
	for i := range 20 + rng.IntN(21) {
		sc.add(s.attackTime(uniform(rng, 2*time.Second, 15*time.Second)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
			ev := *tmpl
			other := s.users[rng.IntN(len(s.users))]
			switch i % 4 {
			case 0, 1:
				ev.Type = schemas.EventFileDownload
				ev.Resource = &schemas.Resource{Type: "file", ID: other.file(rng)}
				ev.Bytes = fileSize(rng)
			case 2:
				ev.Type = schemas.EventShareCreated
				ev.Resource = &schemas.Resource{Type: "file", ID: other.file(rng)}
				ev.Attrs = map[string]string{"access": "open"}
			default:
				ev.Type = schemas.EventTokenUsed
				ev.Attrs = map[string]string{"endpoint": "/2.0/users"}
			}
			return &ev, nil
		})
	}
	s.start(sc)
}

// startTokenAfterPassword: an attacker holds a stolen token of the
// victim's; the victim changes the password (their session gets a new
// token), and the attacker keeps using the old one.
func (s *Sim) startTokenAfterPassword(victim *user) {
	a := s.newAttacker(victim, anyOrigin)
	sc := s.newScript(victim)
	rec := sc.label(AttackTokenAfterPassword, LabelAttack, victim)
	tok, session := victim.tok, victim.session
	rec.tokenID, rec.sessionID = tok.id, session
	sc.add(s.attackTime(uniform(a.rng, 30*time.Second, 3*time.Minute)), rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) {
		ev := victim.event(schemas.EventPasswordChanged)
		ev.Attrs = map[string]string{"method": "self_service"}
		if victim.state == active && victim.tok.id == tok.id {
			victim.reissue = true
		}
		return ev, nil
	})
	wait := s.attackTime(uniform(a.rng, replayDelayMin, replayDelayMax))
	for range 2 + a.rng.IntN(3) {
		sc.add(wait, rec, func(context.Context, *Sim) (*schemas.AuditEvent, error) { return a.use(victim, session, tok), nil })
		wait = s.attackTime(uniform(a.rng, attackUseMin, attackUseMax))
	}
	s.start(sc)
}

// adminGrant starts a script of the kind in the victim's own session: the
// account is made an enterprise admin within 30 s to maxDelay. It returns
// the script, its random source, the victim's ground-truth line and the
// session's permission.changed event as a template for what follows.
func (s *Sim) adminGrant(victim *user, kind string, maxDelay time.Duration) (*script, *rand.Rand, *attack, *schemas.AuditEvent) {
	sc := s.newScript(victim)
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	rec := sc.label(kind, LabelAttack, victim)
	tmpl := victim.event(schemas.EventPermissionChanged)
	tmpl.TokenID = victim.tok.id
	rec.tokenID, rec.sessionID = victim.tok.id, victim.session
	grant := *tmpl
	grant.Resource = &schemas.Resource{Type: "enterprise", ID: "enterprise_1"}
	grant.Attrs = map[string]string{"change": "role_changed", "role": "admin", "previous_role": "user"}
	sc.add(s.attackTime(uniform(rng, 30*time.Second, maxDelay)), rec, emitStep(&grant))
	return sc, rng, rec, tmpl
}
