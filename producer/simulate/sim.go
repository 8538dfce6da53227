// Package simulate generates realistic identity and activity traffic for N
// users, with labelled attacks mixed in, and publishes it as AuditEvents.
//
// Each user has a home city (country, time zone, residential networks), a
// mobile carrier, a device and an OAuth client. Users are active by day in
// their own time zone, quiet at night and, unless they work weekends, at
// weekends. A user logs in (now and then mistyping the password, more
// often on Monday mornings, sometimes several times and then resetting
// it), receives a token, uses it (API calls, file previews, downloads,
// uploads, shares), sometimes exchanges it for a downscoped token bound to
// one file and read-only, and uses that on that file only, then logs out
// and stays away for a while. Now and then a user changes their password
// (the session then gets a new token) or is granted access to a folder.
//
// The benign classes (see the Class* constants, each a share of the users
// in Config) are the traffic that single signals mistake for attacks:
// office workers behind their office's one address; students and
// households behind a campus or carrier-grade NAT address that hundreds
// share; phones whose sessions move between Wi-Fi and the carrier and
// back (same session and token, another ASN); the corporate VPN, whose
// egress alternates between points of presence, some abroad; a new
// laptop's sync client downloading thousands of files from a new device;
// identity-provider outages, in which hundreds of users fail to sign in
// once within minutes and then succeed; travellers who fly (no faster than
// an airliner) and work from hotels and from their phone roaming on its
// home carrier; service accounts run by automation from cloud networks;
// weekend workers. Addresses are drawn from real blocks of the networks'
// real ASNs, and events carry the location and ASN an identity provider
// reports, not the kind of network (the detector's enricher derives it).
//
// Labelled attacks are mixed in and written to a ground-truth file (see
// GroundTruth and the Attack* constants). Every logout is labelled too, as a user action whose
// revocation is intended, not an attack.
//
// The traffic is a discrete-event simulation ordered by simulated time; the
// sequence of events is determined by the seed and the configuration. With
// the fast clock, event times are simulated too (starting at Config.Start),
// so a run is reproducible byte for byte and goes as fast as the publisher
// takes it. With the live clock, simulated time follows the wall clock and
// each event is stamped with the moment it is emitted.
//
// Tokens come from a TokenIssuer when one is given (each is then a real
// token, the events carry its fingerprint, and Sim.Tokens keeps the raw
// values in memory for the caller), or are made up otherwise.
package simulate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Publisher writes messages to Kafka; *kafkax.Writer satisfies it.
//
// WriteMessages blocks until every message is acknowledged (as the writer's
// RequiredAcks say) or returns an error; ctx cancels the wait. Messages name
// their Topic, so a *kafkax.Writer used here must be created without one.
type Publisher = kafkax.Publisher

// Clock says how simulated time relates to the wall clock.
type Clock string

// Clocks.
const (
	// ClockFast simulates event times from Config.Start on and emits as
	// fast as the publisher takes them, for offline runs and backtests.
	ClockFast Clock = "fast"
	// ClockLive paces events on the wall clock and stamps each with the
	// time it is emitted.
	ClockLive Clock = "live"
)

// Source is the source field of every simulated event.
const Source = "simulator"

// Config configures a simulation.
type Config struct {
	// Users is the number of simulated users.
	Users int `flag:"users" env:"USERS" yaml:"users" usage:"number of simulated users"`
	// Seed determines the whole sequence of events.
	Seed int64 `flag:"seed" env:"SEED" yaml:"seed" usage:"random seed; the same seed and settings give the same events"`
	// Clock is live or fast.
	Clock Clock `flag:"clock" env:"CLOCK" yaml:"clock" usage:"live (paced, event time = now) or fast (simulated time, as fast as possible)"`
	// Rate is the average number of events per second the users produce
	// together: per wall-clock second with the live clock, per simulated
	// second with the fast one.
	Rate float64 `flag:"rate" env:"RATE" yaml:"rate" usage:"average events per second (simulated seconds with --clock fast)"`
	// Duration ends the run after this much (simulated) time; zero means
	// no limit, then Events must be set.
	Duration time.Duration `flag:"duration" env:"DURATION" yaml:"duration" usage:"how long to simulate (0: until --events)"`
	// Events ends the run after this many events; zero means no limit,
	// then Duration must be set.
	Events int64 `flag:"events" env:"EVENTS" yaml:"events" usage:"how many events to emit (0: until --duration)"`
	// Start is the first simulated instant with the fast clock.
	Start time.Time `flag:"-" env:"-" yaml:"-"`
	// Topic receives the events.
	Topic string `flag:"topic" env:"TOPIC" yaml:"topic" usage:"topic for simulated events"`
	// BatchSize is the most events published per WriteMessages call.
	BatchSize int `flag:"batch-size" env:"BATCH_SIZE" yaml:"batch_size" usage:"events published per batch"`
	// FlushInterval bounds how long an event waits for its batch with the
	// live clock, once the batch before it is written: while that write is
	// under way the batch grows instead.
	FlushInterval time.Duration `flag:"flush-interval" env:"FLUSH_INTERVAL" yaml:"flush_interval" usage:"longest time an event waits for its batch while none is being written (live clock)"`
	// BruteForceProb is the chance, per user session, that a brute-force
	// attack on that user starts.
	BruteForceProb float64 `flag:"brute-force-prob" env:"BRUTE_FORCE_PROB" yaml:"brute_force_prob" usage:"chance per session of a brute-force attack on the user"`
	// ReplayProb is the chance, per issued token, that it is replayed.
	ReplayProb float64 `flag:"replay-prob" env:"REPLAY_PROB" yaml:"replay_prob" usage:"chance per issued token that an attacker replays it"`
	// MistypeProb is the chance, per login, of one or two failures first.
	MistypeProb float64 `flag:"mistype-prob" env:"MISTYPE_PROB" yaml:"mistype_prob" usage:"chance per login of one or two mistyped passwords first"`
	// ExchangeProb is the chance, per session, of a downscoped exchange.
	ExchangeProb float64 `flag:"exchange-prob" env:"EXCHANGE_PROB" yaml:"exchange_prob" usage:"chance per session of exchanging the token for a downscoped one"`
	// ClientIDs are the OAuth clients users log in through; each user
	// keeps one.
	ClientIDs []string `flag:"client-ids" env:"CLIENT_IDS" yaml:"client_ids" usage:"OAuth clients users log in through"`
	// Scopes are the scopes of a login token; DownscopedScopes those of an
	// exchanged token, a subset.
	Scopes []string `flag:"scopes" env:"SCOPES" yaml:"scopes" usage:"scopes of login tokens"`
	// AttackTimeScale multiplies attackers' timing (pauses between
	// guesses, delays before a replay, the span and calm around an attack):
	// 1 is realistic; a short demo run uses less so that whole attacks fit.
	AttackTimeScale  float64  `flag:"attack-time-scale" env:"ATTACK_TIME_SCALE" yaml:"attack_time_scale" usage:"multiplies attackers' timing (1: realistic; less fits whole attacks into a short run)"`
	DownscopedScopes []string `flag:"downscoped-scopes" env:"DOWNSCOPED_SCOPES" yaml:"downscoped_scopes" usage:"scopes of exchanged (downscoped) tokens"`
	// AttackProb is the chance, per issued token, that one of the other
	// labelled attacks (every kind but brute force and token replay, in
	// proportion to AttackMix) starts on the user.
	AttackProb float64 `flag:"attack-prob" env:"ATTACK_PROB" yaml:"attack_prob" usage:"chance per issued token of one of the other labelled attacks on the user"`
	// TravelProb is the chance, per logout at home, that a user of the
	// traveller class then flies to another city for a few days.
	TravelProb float64 `flag:"travel-prob" env:"TRAVEL_PROB" yaml:"travel_prob" usage:"chance per logout at home that a traveller flies to another city for a few days"`

	// Benign classes (see the Class* constants): the share of users in
	// each, drawn independently, so a user may be in several; a service
	// account is in no other, and a shared-NAT user works from no office.

	// OfficeShare is the share of users who work from their city's office
	// on weekdays, behind its one shared address (ClassOffice).
	OfficeShare float64 `flag:"office-share" env:"OFFICE_SHARE" yaml:"office_share" usage:"share of users working behind their city office's shared address"`
	// SharedNATShare is the share of users behind a campus or
	// carrier-grade NAT address that hundreds share (ClassSharedNAT).
	SharedNATShare float64 `flag:"shared-nat-share" env:"SHARED_NAT_SHARE" yaml:"shared_nat_share" usage:"share of users behind a campus or carrier-grade NAT address shared by hundreds"`
	// HandoffShare is the share of users on phones whose sessions move
	// between Wi-Fi and the carrier (ClassHandoff).
	HandoffShare float64 `flag:"handoff-share" env:"HANDOFF_SHARE" yaml:"handoff_share" usage:"share of users on phones moving between Wi-Fi and the carrier within sessions"`
	// VPNShare is the share of users on the corporate VPN, whose egress
	// alternates between points of presence (ClassCorporateVPN).
	VPNShare float64 `flag:"vpn-share" env:"VPN_SHARE" yaml:"vpn_share" usage:"share of users on the corporate VPN (egress alternating between points of presence)"`
	// SyncShare is the share of users who set up a new laptop during the
	// run, whose sync client downloads thousands of files
	// (ClassSyncNewDevice).
	SyncShare float64 `flag:"sync-share" env:"SYNC_SHARE" yaml:"sync_share" usage:"share of users whose new laptop's sync client downloads their files during the run"`
	// TravellerShare is the share of users who fly now and then
	// (ClassTraveller), each trip starting with chance TravelProb.
	TravellerShare float64 `flag:"traveller-share" env:"TRAVELLER_SHARE" yaml:"traveller_share" usage:"share of users who travel"`
	// ServiceShare is the share of accounts that are service accounts,
	// driven by automation from cloud networks (ClassServiceAccount).
	ServiceShare float64 `flag:"service-share" env:"SERVICE_SHARE" yaml:"service_share" usage:"share of accounts that are service accounts run from cloud networks"`
	// WeekendShare is the share of users who work weekends as on weekdays
	// (ClassWeekendWorker); the others are mostly quiet then.
	WeekendShare float64 `flag:"weekend-share" env:"WEEKEND_SHARE" yaml:"weekend_share" usage:"share of users who work weekends"`
	// OutageRate is the average number of identity-provider outages per
	// simulated day (ClassIdPOutage): during one, every sign-in fails once.
	OutageRate float64 `flag:"outage-rate" env:"OUTAGE_RATE" yaml:"outage_rate" usage:"identity-provider outages per simulated day"`
	// PasswordChangeProb is the chance, per session, that the user changes
	// their password.
	PasswordChangeProb float64 `flag:"password-change-prob" env:"PASSWORD_CHANGE_PROB" yaml:"password_change_prob" usage:"chance per session of a password change"`
	// AttackMix weighs the kinds of attack AttackProb starts, as
	// "kind=weight" entries; a kind not listed weighs 1, and weight 0
	// leaves it out.
	AttackMix []string `flag:"attack-mix" env:"ATTACK_MIX" yaml:"attack_mix" usage:"relative weights of the attacks attack-prob starts, kind=weight (unlisted kinds weigh 1, 0 leaves a kind out)"`
	// AttacksAfter keeps the first part of a run free of attacks, so that
	// a detector's baselines (places a user comes from, say) learn from
	// benign traffic first.
	AttacksAfter time.Duration `flag:"attacks-after" env:"ATTACKS_AFTER" yaml:"attacks_after" usage:"no attack starts during this first part of the run (simulated time)"`
	// PermissionChangeProb is the chance, per session, that the user is
	// granted access to a folder.
	PermissionChangeProb float64 `flag:"permission-change-prob" env:"PERMISSION_CHANGE_PROB" yaml:"permission_change_prob" usage:"chance per session that the user is granted access to a folder"`
}

// DefaultConfig simulates 100 users at 100 events per second with the fast
// clock from 2026-01-01T00:00:00Z, with attacks in about 1% of sessions.
func DefaultConfig() Config {
	return Config{
		Users:            100,
		Seed:             1,
		Clock:            ClockFast,
		Rate:             100,
		AttackTimeScale:  1,
		Start:            time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Topic:            schemas.TopicAuditEvents,
		BatchSize:        500,
		FlushInterval:    50 * time.Millisecond,
		BruteForceProb:   0.01,
		ReplayProb:       0.01,
		MistypeProb:      0.05,
		ExchangeProb:     0.15,
		ClientIDs:        []string{"web-app", "desktop-sync", "mobile-app"},
		Scopes:           []string{"files.read", "files.write", "profile"},
		DownscopedScopes: []string{"files.read"},

		AttackProb:           0.01,
		TravelProb:           0.03,
		OfficeShare:          0.45,
		SharedNATShare:       0.08,
		HandoffShare:         0.25,
		VPNShare:             0.15,
		SyncShare:            0.03,
		TravellerShare:       0.06,
		ServiceShare:         0.01,
		WeekendShare:         0.1,
		OutageRate:           0.2,
		PasswordChangeProb:   0.005,
		PermissionChangeProb: 0.01,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(c.Users > 0 && c.Users <= 10_000_000, "users", "must be between 1 and 10000000")
	p.Check(c.Clock == ClockFast || c.Clock == ClockLive, "clock", "want fast or live, got %q", c.Clock)
	p.Check(c.Rate > 0 && !math.IsInf(c.Rate, 0), "rate", "must be positive")
	p.Check(c.Duration >= 0, "duration", "must not be negative")
	p.Check(c.Events >= 0, "events", "must not be negative")
	p.Check(c.Duration > 0 || c.Events > 0, "duration", "set a duration or a number of events (or both)")
	p.Check(c.Clock != ClockFast || !c.Start.IsZero(), "start", "required with the fast clock")
	p.Check(c.Topic != "", "topic", "required")
	p.Check(c.BatchSize > 0, "batch-size", "must be positive")
	p.Check(c.AttackTimeScale > 0 && c.AttackTimeScale <= 1, "attack-time-scale", "must be in (0, 1]")
	p.Check(c.FlushInterval > 0, "flush-interval", "must be positive")
	p.Check(c.AttacksAfter >= 0, "attacks-after", "must not be negative")
	for name, v := range map[string]float64{
		"brute-force-prob": c.BruteForceProb, "replay-prob": c.ReplayProb,
		"mistype-prob": c.MistypeProb, "exchange-prob": c.ExchangeProb,
		"attack-prob": c.AttackProb, "travel-prob": c.TravelProb, "office-share": c.OfficeShare,
		"password-change-prob": c.PasswordChangeProb, "permission-change-prob": c.PermissionChangeProb,
		"shared-nat-share": c.SharedNATShare, "handoff-share": c.HandoffShare, "vpn-share": c.VPNShare,
		"sync-share": c.SyncShare, "traveller-share": c.TravellerShare, "service-share": c.ServiceShare,
		"weekend-share": c.WeekendShare,
	} {
		p.Check(v >= 0 && v <= 1, name, "must be between 0 and 1")
	}
	p.Check(c.OutageRate >= 0 && c.OutageRate <= 100, "outage-rate", "must be between 0 and 100 a day")
	if _, err := parseMix(c.AttackMix); err != nil {
		p.Addf("attack-mix", "%v", err)
	}
	p.Check(len(c.ClientIDs) > 0, "client-ids", "at least one")
	p.Check(len(c.Scopes) > 0, "scopes", "at least one")
	p.Check(len(c.DownscopedScopes) > 0, "downscoped-scopes", "at least one")
	for _, s := range c.DownscopedScopes {
		found := false
		for _, t := range c.Scopes {
			found = found || s == t
		}
		p.Check(found, "downscoped-scopes", "%q is not among scopes", s)
	}
	return p.Err()
}

// TokenIssuer issues real tokens for the simulated users. Issue blocks
// until the token exists or fails; ctx cancels it. tokenID is the issuer's
// id for the token; events always carry schemas.Fingerprint(raw).
type TokenIssuer interface {
	Issue(ctx context.Context, userID, clientID, sessionID string, scopes []string) (raw, tokenID string, err error)
}

// TokenExchanger is implemented by TokenIssuers that can also exchange a
// token for a downscoped one (RFC 8693), so the token API knows the lineage.
// CanExchange reports whether tokens of clientID can be exchanged; when it
// does not, the simulator issues the downscoped token with Issue instead.
type TokenExchanger interface {
	CanExchange(clientID string) bool
	Exchange(ctx context.Context, clientID, parentRaw string, scopes []string) (raw, tokenID string, err error)
}

// Reverifier is implemented by TokenIssuers whose token API can refuse a
// user's tokens until the user verifies again (ErrReverificationRequired
// from Issue). Reverify records that the user passed the extra
// verification (a second factor at the identity provider's login page);
// it blocks until the token API has it, and ctx cancels it. A simulated
// user who is refused verifies again and asks once more; an attacker,
// who holds the password but not the second factor, cannot and gets no
// token.
type Reverifier interface {
	Reverify(ctx context.Context, userID string) error
}

// Kinds of ground-truth line.
const (
	// LabelAttack: the user was attacked; their tokens should be revoked.
	LabelAttack = "attack"
	// LabelAttempt: the user was tried by a many-user attack (credential
	// stuffing, distributed or not, password spraying) that failed against
	// them. Nothing of
	// theirs needs revoking, but a revocation is no false alarm either.
	LabelAttempt = "attempt"
	// LabelUserAction: the user's own action (a logout) that the rule named
	// in Attack answers with a revocation by design. Not an attack, and its
	// revocation is intended, not a false positive.
	LabelUserAction = "user_action"
)

// GroundTruth is one labelled attack or user action, one line of the
// ground-truth file.
type GroundTruth struct {
	UserID string `json:"user_id"`
	// Attack names the kind of attack (one of the Attack* constants), or
	// for a user action the rule that answers it (RuleLogout). It names
	// what happened, not the rule expected to catch it: any detection of
	// the user counts.
	Attack string `json:"attack"`
	// Label is LabelAttack, LabelAttempt or LabelUserAction.
	Label string `json:"label"`
	// TokenID is the fingerprint of the token concerned, where there is
	// one: the attacker's token after a guessed or stuffed password
	// (empty if the attacker got none), the stolen or misused token, the
	// logged-out session's token.
	TokenID string `json:"token_id,omitempty"`
	// SessionID is the session concerned, where there is one.
	SessionID string `json:"session_id,omitempty"`
	// AttackID is shared by the lines of one attack: the victim and the
	// users a many-user attack tried.
	AttackID string    `json:"attack_id,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// Partial is set when the run ended before the attack did: the line
	// covers the attack's events that were published. With a duration, no
	// attack starts too late to finish, so only runs bounded by a number of
	// events (or cancelled) have partial attacks.
	Partial bool `json:"partial,omitempty"`
}

// Stats describes a run so far.
type Stats struct {
	// Events is the number of events published.
	Events int64
	// Attacks is the number of attacks written to the ground truth
	// (lines labelled LabelAttack).
	Attacks int
	// Labels is the number of ground-truth lines written, of every label.
	Labels int
	// SimTime is the simulated time reached.
	SimTime time.Time
	// Elapsed is the wall-clock time since Run started.
	Elapsed time.Duration
}

// Options are the per-run outputs of Run.
type Options struct {
	// GroundTruth receives one JSON line per attack, per user an attack
	// tried, and per logout, written after the line's last event was
	// published. May be nil.
	GroundTruth io.Writer
	// Progress is called after each published batch. May be nil.
	Progress func(Stats)
}

// Sim is one simulation. Create it with New and call Run once.
type Sim struct {
	cfg    Config
	issuer TokenIssuer
	exch   TokenExchanger
	reverf Reverifier
	log    zerolog.Logger
	wall   func() time.Time

	rng    *rand.Rand // ids and attack parameters
	users  []*user
	queue  actorQueue
	seq    uint64
	tokenN uint64
	simNow time.Time
	end    time.Time // zero without a duration
	// attacksFrom is the first instant an attack may start.
	attacksFrom time.Time
	batch       []kafkax.Message
	batchAt     time.Time
	stats       Stats
	ran         bool

	attacks []*attack
	pending []*attack // finished, waiting for their events to be published
	// liveScale multiplies the users' mean gap in a live run (see
	// liveGapScale); 1 with the fast clock.
	liveScale float64
	truth     []GroundTruth
	labels    []GroundTruth
	// mix weighs otherAttacks (Config.AttackMix); credit is each kind's
	// standing in the weighted round robin that picks the next.
	mix      map[string]float64
	credit   map[string]float64
	services []*service
	outage   idpOutage

	mu      sync.Mutex
	tokens  map[string][]string
	classes map[string][]string // benign classes by user id
}

// New returns a simulation. issuer may be nil: tokens are then made up.
func New(cfg Config, issuer TokenIssuer, log zerolog.Logger) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:     cfg,
		issuer:  issuer,
		log:     log.With().Str("component", "simulate").Logger(),
		wall:    time.Now,
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed_a77ac)),
		tokens:  map[string][]string{},
		classes: map[string][]string{},
	}
	s.mix, _ = parseMix(cfg.AttackMix)
	s.credit = map[string]float64{}
	if ex, ok := issuer.(TokenExchanger); ok {
		s.exch = ex
	}
	if rv, ok := issuer.(Reverifier); ok {
		s.reverf = rv
	}
	return s, nil
}

// Tokens returns the raw tokens issued through the TokenIssuer during Run,
// by user id (an attacker's token under its victim), in issue order. They
// are kept in memory only, never logged or written, for a caller to check
// afterwards (say, that the attacked ones were revoked). Empty without an
// issuer.
func (s *Sim) Tokens() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.tokens))
	for u, ts := range s.tokens {
		out[u] = append([]string(nil), ts...)
	}
	return out
}

// GroundTruth returns every attack written so far: the lines labelled
// LabelAttack.
func (s *Sim) GroundTruth() []GroundTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]GroundTruth(nil), s.truth...)
}

// Labels returns every ground-truth line written so far, of every label,
// as written to Options.GroundTruth.
func (s *Sim) Labels() []GroundTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]GroundTruth(nil), s.labels...)
}

// meanGap is the mean pause between two actions of a user in a session,
// chosen so that all users together average Config.Rate events per second.
// A session has about sessionEvents events and lasts actionsMean gaps,
// followed by an offline pause of offlineGaps gaps.
func (s *Sim) meanGap() time.Duration {
	const sessionEvents = 4 + actionsMean + 0.1 // login, token, logout, revocation, actions, extras
	cycle := float64(actionsMean + offlineGaps)
	perUser := s.cfg.Rate / float64(s.cfg.Users)
	return time.Duration(sessionEvents / perUser / cycle * float64(time.Second))
}

// Run simulates until Config.Duration or Config.Events is reached, or ctx
// is cancelled, publishing events in batches through pub and writing the
// ground truth as attacks complete. On cancellation it publishes what is
// pending (for a few seconds at most), writes the ground truth of attacks
// whose events were published, and returns ctx's error. It returns the
// first publishing, issuing or writing error otherwise.
func (s *Sim) Run(ctx context.Context, pub Publisher, opts Options) (Stats, error) {
	if s.ran {
		return s.stats, errors.New("simulate: Run called twice")
	}
	s.ran = true
	wallStart := s.wall()
	start := s.cfg.Start
	if s.cfg.Clock == ClockLive {
		start = wallStart
	}
	s.simNow = start
	if s.cfg.Duration > 0 {
		s.end = start.Add(s.cfg.Duration)
	}
	end := s.end
	s.attacksFrom = start.Add(s.cfg.AttacksAfter)
	s.setup(start)
	log := s.log.With().Int64("seed", s.cfg.Seed).Str("clock", string(s.cfg.Clock)).Logger()
	log.Info().Int("users", s.cfg.Users).Float64("rate", s.cfg.Rate).Dur("mean_gap", s.meanGap()).
		Float64("live_gap_scale", s.liveScale).Msg("simulation started")

	// One batch is on the wire while the next is generated: a live run
	// that waited for each write (a Kafka round trip, 1 to 2 ms) before
	// generating more fell behind its clock beyond about 6,000 events/s
	// with the pipeline in the same process. The attacks completed by a
	// batch's events are recorded once that batch is acknowledged.
	var (
		inflight       chan error // nil once the write's result is in inflightErr
		inflightErr    error
		inflightEvents int
		inflightTruth  []*attack
	)
	// writing reports whether the batch on the wire is still being
	// written, without waiting for it.
	writing := func() bool {
		if inflight == nil {
			return false
		}
		select {
		case inflightErr = <-inflight:
			inflight = nil
			return false
		default:
			return true
		}
	}
	// settle waits for the batch on the wire and records what it held.
	settle := func() error {
		if inflight != nil {
			inflightErr = <-inflight
			inflight = nil
		}
		events, truth, err := inflightEvents, inflightTruth, inflightErr
		inflightEvents, inflightTruth, inflightErr = 0, nil, nil
		if err != nil {
			return fmt.Errorf("publishing %d simulated events: %w", events, err)
		}
		s.stats.Events += int64(events)
		return s.writeTruth(opts.GroundTruth, truth)
	}
	flush := func(ctx context.Context) error {
		if err := settle(); err != nil {
			return err
		}
		if len(s.batch) > 0 || len(s.pending) > 0 {
			result, batch := make(chan error, 1), s.batch
			// The write outlives a cancelled ctx, so that a run stopped
			// early publishes what it generated (the writer's own timeout
			// bounds it).
			wctx := context.WithoutCancel(ctx)
			go func() { result <- pub.WriteMessages(wctx, batch...) }()
			inflight, inflightEvents, inflightTruth = result, len(batch), s.pending
			s.batch = make([]kafkax.Message, 0, cap(batch))
			s.pending = nil
		}
		s.attacks = slices.DeleteFunc(s.attacks, func(a *attack) bool { return a.done })
		s.stats.SimTime = s.simNow
		s.stats.Elapsed = s.wall().Sub(wallStart)
		if opts.Progress != nil {
			opts.Progress(s.stats)
		}
		return nil
	}
	// finish publishes what is pending and records the attacks still under
	// way (cut short by the end of the run) with the events they had.
	finish := func(ctx context.Context) error {
		for _, a := range s.attacks {
			if !a.done && a.events > 0 {
				a.done, a.partial = true, true
				s.pending = append(s.pending, a)
			}
		}
		if err := flush(ctx); err != nil {
			return err
		}
		if err := settle(); err != nil {
			return err
		}
		s.stats.Elapsed = s.wall().Sub(wallStart)
		if opts.Progress != nil {
			opts.Progress(s.stats)
		}
		return nil
	}
	shutdown := func(cause error) (Stats, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := finish(fctx); err != nil {
			return s.stats, errors.Join(cause, err)
		}
		return s.stats, cause
	}

	emitted := int64(0)
	for s.queue.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return shutdown(fmt.Errorf("simulation stopped: %w", err))
		}
		if s.cfg.Events > 0 && emitted >= s.cfg.Events {
			break
		}
		next := s.queue[0]
		if !end.IsZero() && next.at.After(end) {
			break
		}
		if s.cfg.Clock == ClockLive {
			if err := s.waitUntil(ctx, next.at, flush, writing); err != nil {
				if ctx.Err() != nil {
					return shutdown(fmt.Errorf("simulation stopped: %w", ctx.Err()))
				}
				return shutdown(err)
			}
		}
		s.queue.pop()
		s.simNow = next.at
		before := len(s.batch)
		at, done, err := next.actor.step(ctx, s)
		if err != nil {
			return shutdown(err)
		}
		emitted += int64(len(s.batch) - before)
		if !done {
			s.schedule(next.actor, at)
		}
		if len(s.batch) >= s.cfg.BatchSize {
			if err := flush(ctx); err != nil {
				return shutdown(err)
			}
		}
	}
	if s.cfg.Clock == ClockLive && !end.IsZero() && (s.cfg.Events == 0 || emitted < s.cfg.Events) {
		// A live run lasts its duration even when its users fall quiet.
		if err := s.waitUntil(ctx, end, flush, writing); err != nil {
			return shutdown(fmt.Errorf("simulation stopped: %w", err))
		}
	}
	if err := finish(ctx); err != nil {
		return s.stats, err
	}
	log.Info().Int64("events", s.stats.Events).Int("attacks", s.stats.Attacks).Dur("elapsed", s.stats.Elapsed).Msg("simulation finished")
	return s.stats, nil
}

// waitUntil sleeps until the wall clock reaches the simulated instant at,
// publishing the pending batch first when the wait exceeds FlushInterval,
// or when the batch is older than that and the previous one is written
// (writing reports false). While the previous batch is still on the wire
// the batch keeps growing instead: waiting for that write before
// generating more (2.7 ms a write on average, with the pipeline busy in
// the same process) held a run asked for 10,000 events/s to 5,150.
func (s *Sim) waitUntil(ctx context.Context, at time.Time, flush func(context.Context) error, writing func() bool) error {
	now := s.wall()
	wait := at.Sub(now)
	if len(s.batch) > 0 && (wait >= s.cfg.FlushInterval || now.Sub(s.batchAt) >= s.cfg.FlushInterval && !writing()) {
		if err := flush(ctx); err != nil {
			return err
		}
		wait = at.Sub(s.wall())
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *Sim) writeTruth(w io.Writer, done []*attack) error {
	for _, a := range done {
		gt := GroundTruth{UserID: a.userID, Attack: a.kind, Label: a.label, TokenID: a.tokenID, SessionID: a.sessionID, AttackID: a.attackID,
			Start: a.start.UTC(), End: a.end.UTC(), Partial: a.partial}
		if w != nil {
			line, err := json.Marshal(gt)
			if err != nil {
				return fmt.Errorf("encoding ground truth: %w", err)
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return fmt.Errorf("writing ground truth: %w", err)
			}
		}
		s.mu.Lock()
		s.labels = append(s.labels, gt)
		if gt.Label == LabelAttack {
			s.truth = append(s.truth, gt)
			s.stats.Attacks++
		}
		s.mu.Unlock()
		s.stats.Labels++
	}
	return nil
}

// emit stamps ev (id, time, source) and adds it to the batch. It returns
// the event's time.
func (s *Sim) emit(ev *schemas.AuditEvent) time.Time {
	ev.ID = "evt_" + s.hexID()
	if s.cfg.Clock == ClockLive {
		ev.Time = s.wall().UTC()
	} else {
		ev.Time = s.simNow.UTC()
	}
	ev.Source = Source
	value, err := ev.AppendJSON(make([]byte, 0, 640))
	if err != nil {
		// Coordinates come from fixed tables: they are finite.
		panic(fmt.Sprintf("encoding simulated event: %v", err))
	}
	if len(s.batch) == 0 {
		s.batchAt = s.wall()
	}
	s.batch = append(s.batch, kafkax.Message{
		Topic:   s.cfg.Topic,
		Key:     ev.Key(),
		Value:   value,
		Headers: []kafkax.Header{{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaAuditEventV1)}},
	})
	return ev.Time
}

// hexID is 96 bits from the simulation's generator, in hex.
func (s *Sim) hexID() string {
	var b [12]byte
	x, y := s.rng.Uint64(), s.rng.Uint32()
	for i := range 8 {
		b[i] = byte(x >> (8 * i))
	}
	for i := range 4 {
		b[8+i] = byte(y >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// token is one issued token. raw is empty for made-up tokens.
type token struct {
	id  string
	raw string
}

// holder says who asks for a token, which decides what a refusal for
// re-verification means.
type holder int

const (
	// asUser is the user (or their sync client, their automation): a
	// refusal for re-verification sends them through the extra
	// verification, after which they ask again.
	asUser holder = iota
	// asAttacker holds the password or a stolen token but not the second
	// factor: a refusal for re-verification leaves them without a token
	// (errNoToken).
	asAttacker
)

// errNoToken is an attacker's refusal: the token API wants the user to
// verify again, which the attacker cannot.
var errNoToken = errors.New("refused until the user verifies again")

// issue gets a token for userID: from the issuer when there is one, made
// up (a fingerprint of a synthetic value) otherwise.
func (s *Sim) issue(ctx context.Context, by holder, userID, clientID, sessionID string, scopes []string) (token, error) {
	if s.issuer == nil {
		s.tokenN++
		return token{id: schemas.Fingerprint(fmt.Sprintf("simulated-token/%d/%d", s.cfg.Seed, s.tokenN))}, nil
	}
	raw, _, err := s.issuer.Issue(ctx, userID, clientID, sessionID, scopes)
	if errors.Is(err, ErrReverificationRequired) {
		if by == asAttacker {
			return token{}, errNoToken
		}
		if s.reverf != nil {
			if err := s.reverf.Reverify(ctx, userID); err != nil {
				return token{}, err
			}
			raw, _, err = s.issuer.Issue(ctx, userID, clientID, sessionID, scopes)
		}
	}
	if err != nil {
		return token{}, fmt.Errorf("issuing a token for %s: %w", userID, err)
	}
	s.keep(userID, raw)
	return token{id: schemas.Fingerprint(raw), raw: raw}, nil
}

// exchange gets a downscoped token for parent: through the issuer's token
// exchange when it can, issued directly otherwise.
func (s *Sim) exchange(ctx context.Context, by holder, userID, clientID, sessionID string, parent token, scopes []string) (token, error) {
	if s.issuer == nil || parent.raw == "" || s.exch == nil || !s.exch.CanExchange(clientID) {
		return s.issue(ctx, by, userID, clientID, sessionID, scopes)
	}
	raw, _, err := s.exch.Exchange(ctx, clientID, parent.raw, scopes)
	if errors.Is(err, ErrRefused) {
		// The parent was revoked meanwhile (by the pipeline under test,
		// say): the application signs the user in again instead.
		return s.issue(ctx, by, userID, clientID, sessionID, scopes)
	}
	if err != nil {
		return token{}, fmt.Errorf("exchanging a token of %s: %w", userID, err)
	}
	s.keep(userID, raw)
	return token{id: schemas.Fingerprint(raw), raw: raw}, nil
}

func (s *Sim) keep(userID, raw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[userID] = append(s.tokens[userID], raw)
}

// schedule queues a to step at the simulated instant at.
func (s *Sim) schedule(a actor, at time.Time) {
	s.seq++
	s.queue.push(item{at: at, key: at.UnixNano(), seq: s.seq, actor: a})
}

// after is d from now in simulated time, whole milliseconds.
func (s *Sim) after(d time.Duration) time.Time {
	return s.simNow.Add(d.Truncate(time.Millisecond))
}

// uniform draws a duration in [lo, hi).
func uniform(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// exponential draws a duration with the given mean, at least 1ms.
func exponential(rng *rand.Rand, mean time.Duration) time.Duration {
	d := time.Duration(rng.ExpFloat64() * float64(mean))
	return max(d, time.Millisecond)
}

// actor is a participant of the simulation: a user or an attacker. step
// emits exactly one event at the current simulated time and says when to
// step next, or that the actor is done.
type actor interface {
	step(ctx context.Context, s *Sim) (next time.Time, done bool, err error)
}

type item struct {
	at time.Time
	// key is at in Unix nanoseconds, compared instead of at.
	key   int64
	seq   uint64
	actor actor
}

// actorQueue is a binary min-heap of actors by their next step, ties
// broken by scheduling order so that runs are deterministic. It holds the
// items themselves, not pointers to them, and compares their keys in
// place: with container/heap over pointers, comparing (a cache miss per
// item dereferenced) took 1.9 s of CPU in a minute's run at 10,000
// events/s with 10,000 users.
type actorQueue []item

func (q actorQueue) Len() int { return len(q) }

func (q actorQueue) less(i, j int) bool {
	a, b := &q[i], &q[j]
	if a.key != b.key {
		return a.key < b.key
	}
	return a.seq < b.seq
}

func (q *actorQueue) push(it item) {
	*q = append(*q, it)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

// pop removes the first item.
func (q *actorQueue) pop() {
	h := *q
	n := len(h) - 1
	h[0] = h[n]
	h[n] = item{}
	h = h[:n]
	*q = h
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// parseMix reads Config.AttackMix: a weight for every kind of otherAttacks.
func parseMix(entries []string) (map[string]float64, error) {
	mix := make(map[string]float64, len(otherAttacks))
	for _, k := range otherAttacks {
		mix[k] = 1
	}
	var errs []error
	for _, e := range entries {
		kind, w, ok := strings.Cut(e, "=")
		f, err := strconv.ParseFloat(w, 64)
		switch {
		case !ok || err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f):
			errs = append(errs, fmt.Errorf("want kind=weight with a weight of 0 or more, got %q", e))
		case !slices.Contains(otherAttacks, kind):
			errs = append(errs, fmt.Errorf("%q is not one of %s", kind, strings.Join(otherAttacks, ", ")))
		default:
			mix[kind] = f
		}
	}
	return mix, errors.Join(errs...)
}
