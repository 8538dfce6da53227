// Package quality measures how well the detector catches the simulator's
// labelled attacks without revoking its benign users: it runs a simulation
// on the fast clock in process, feeds every event through the wire format
// (schemas.DecodeEvent) into the engine, and matches the commands that
// come out against the simulation's ground truth, per kind of attack and
// per benign class.
//
// Two sets of profiles: DefaultConfig is the tuning profile, the one rule
// changes are tried on; HeldOut is a family of other profiles (other
// seeds, sizes, mixes of benign classes and of attacks) that tuning never
// looks at, so that a rule fitted to the tuning profile's accidents shows
// up as a miss there.
//
// A user counts as detected when a command targets the user (or a token or
// session of theirs) within one of their labelled attacks, from a minute
// before its first event to Config.Slack after its last: a revocation, of
// any rule and any target kind; for attacks that never got in (a brute
// force that gave up), a notification too. A benign user (no attack and no
// many-user attempt touched them) is revoked when any command other than a
// notification targets them. A logout (LabelUserAction) is honoured when a
// command revokes its session or token.
package quality

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// Targets, on the held-out family (and reported on the default profile).
const (
	// TargetRecall is the least share of attacked users detected.
	TargetRecall = 0.99
	// TargetKindRecall is the least share of attacked users detected in
	// every kind of attack.
	TargetKindRecall = 0.95
	// TargetBenignRevoked is the largest share of benign users revoked.
	TargetBenignRevoked = 0.001
	// TargetClassRevoked is the largest share of benign users revoked in
	// every benign class.
	TargetClassRevoked = 0.005
	// TargetLogouts is the share of logouts that must be honoured: all.
	TargetLogouts = 1.0
)

// Config is a benchmark profile.
type Config struct {
	// Name names the profile in reports.
	Name     string        `flag:"-"`
	Users    int           `flag:"users" usage:"simulated users"`
	Duration time.Duration `flag:"duration" usage:"simulated time"`
	Seed     int64         `flag:"seed" usage:"random seed of the simulation"`
	// EventsPerUserDay is the average activity of a user: events per
	// simulated day.
	EventsPerUserDay float64 `flag:"events-per-user-day" usage:"average events per user and simulated day"`
	// RulesDir adds rules to (or overrides rules of) the default pack.
	RulesDir string `flag:"rules" usage:"directory of rule files added to the default pack"`
	// Slack is how long after an attack's last event a revocation still
	// counts as its detection: a rule may pair the attack's events with
	// the victim's own next ones (impossible_travel looks 12 hours back).
	Slack time.Duration `flag:"slack" usage:"how long after an attack's last event a revocation still counts"`
	// Sim holds the rest of the simulation's settings (the benign
	// classes' shares, the attacks' rates and mix); Users, Seed, Duration
	// and the rate come from the fields above.
	Sim simulate.Config `flag:"-"`
	// Enrich, if set, prepares each decoded event before the engine sees
	// it, as the detector's enricher does (network kind and organisation
	// from the ASN, say). It is timed with the engine.
	Enrich func(*schemas.AuditEvent) `flag:"-"`
	// Progress, if set, is called as the simulation goes on.
	Progress func(simulate.Stats) `flag:"-"`
	// Explain, if set, receives one JSON line per missed attack and per
	// benign user revoked: the user's events around it and the commands
	// that targeted them. It keeps every user's events for the run (about
	// 150 bytes each: some 1.5 GB for the default profile).
	Explain io.Writer `flag:"-"`
}

// DefaultConfig is the default (tuning) profile: 10,000 users for ten
// simulated days and two hours at about 100 events per user and day, with
// the simulator's default benign classes. The first week (and two hours)
// is free of attacks, so that baselines hold what a detector running in
// production would; the attack rates then give every kind of attack some
// fifty victims or more in the three days left, while most users stay
// untouched by any attack.
func DefaultConfig() Config {
	sim := simulate.DefaultConfig()
	sim.BruteForceProb = 0.001
	sim.ReplayProb = 0.0006
	sim.AttackProb = 0.006
	// Spraying and distributed stuffing try dozens of users each: fewer
	// of them keep most users benign.
	sim.AttackMix = []string{simulate.AttackPasswordSpraying + "=0.5", simulate.AttackDistributedStuffing + "=0.3"}
	sim.AttacksAfter = 7*24*time.Hour + 2*time.Hour
	sim.BatchSize = 1000
	return Config{
		Name:             "default",
		Users:            10_000,
		Duration:         sim.AttacksAfter + 3*24*time.Hour,
		Seed:             1,
		EventsPerUserDay: 100,
		Slack:            12 * time.Hour,
		Sim:              sim,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(c.Users > 0, "users", "must be positive")
	p.Check(c.Duration > 0, "duration", "must be positive")
	p.Check(c.EventsPerUserDay > 0 && !math.IsInf(c.EventsPerUserDay, 0), "events-per-user-day", "must be positive")
	p.Check(c.Slack >= 0, "slack", "must not be negative")
	if err := c.simConfig().Validate(); err != nil {
		p.Nest("sim", err)
	}
	return p.Err()
}

// simConfig is the simulation the profile runs.
func (c Config) simConfig() simulate.Config {
	s := c.Sim
	s.Users, s.Seed, s.Duration, s.Events = c.Users, c.Seed, c.Duration, 0
	s.Clock = simulate.ClockFast
	s.Rate = float64(c.Users) * c.EventsPerUserDay / (24 * 3600)
	return s
}

// Rules loads the default pack, merged with the rules of dir if given.
func Rules(dir string) ([]*engine.Rule, error) {
	base, err := engine.DefaultRules()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return base, nil
	}
	extra, err := engine.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	return engine.Merge(base, extra), nil
}

// detection is one command and what it took to make it.
type detection struct {
	cmd     schemas.RevokeCommand
	user    string        // the user targeted, directly or through a token or session
	latency time.Duration // decoding and processing the completing event
}

// feeder is the simulation's publisher: it decodes every message as the
// detector would and feeds the engine. It remembers whose each token and
// session is, to attribute commands that target one.
type feeder struct {
	eng    *engine.Engine
	enrich func(*schemas.AuditEvent)
	out    []detection
	events int64
	busy   time.Duration
	owner  map[string]string // token or session id → user
	// kept holds each user's events, for Config.Explain.
	kept map[string][]seenEvent
}

var _ simulate.Publisher = (*feeder)(nil)

func (f *feeder) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	for _, m := range msgs {
		t0 := time.Now()
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			return fmt.Errorf("simulated event does not decode: %w", err)
		}
		if f.enrich != nil {
			f.enrich(&ev)
		}
		cmds := f.eng.Process(&ev)
		d := time.Since(t0)
		if f.kept != nil {
			f.kept[ev.UserID] = append(f.kept[ev.UserID], keep(&ev))
		}
		f.busy += d
		f.events++
		if ev.TokenID != "" {
			f.owner[ev.TokenID] = ev.UserID
		}
		if ev.SessionID != "" {
			f.owner[ev.SessionID] = ev.UserID
		}
		for _, c := range cmds {
			// Scoring reads neither the evidence nor the summary: drop
			// them, a long run holds hundreds of thousands of commands.
			c.Reason.Evidence, c.Reason.Summary = nil, ""
			user := c.Target.UserID
			if user == "" {
				user = f.owner[c.Target.TokenID]
			}
			if user == "" {
				user = f.owner[c.Target.SessionID]
			}
			f.out = append(f.out, detection{cmd: c, user: user, latency: d})
		}
	}
	return nil
}

// Run runs the profile and reports on it.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	rules, err := Rules(cfg.RulesDir)
	if err != nil {
		return Report{}, err
	}
	eng, err := engine.New(engine.DefaultConfig(), rules)
	if err != nil {
		return Report{}, err
	}
	scfg := cfg.simConfig()
	sim, err := simulate.New(scfg, nil, log)
	if err != nil {
		return Report{}, err
	}
	f := &feeder{eng: eng, enrich: cfg.Enrich, owner: map[string]string{}}
	if cfg.Explain != nil {
		f.kept = map[string][]seenEvent{}
	}
	stats, err := sim.Run(ctx, f, simulate.Options{Progress: cfg.Progress})
	if err != nil {
		return Report{}, fmt.Errorf("simulating profile %s: %w", cfg.Name, err)
	}
	ids := make([]string, 0, len(rules))
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	r := score(cfg, ids, sim.Labels(), sim.UserClasses(), f.out)
	r.Events = stats.Events
	r.SimTime = stats.SimTime.Sub(scfg.Start)
	r.Elapsed = stats.Elapsed
	r.engineEvents, r.engineBusy = f.events, f.busy
	if f.busy > 0 {
		r.EngineEventsPerSec = float64(f.events) / f.busy.Seconds()
	}
	if cfg.Explain != nil {
		if err := explain(cfg.Explain, cfg, &r, f.kept, f.out); err != nil {
			return r, fmt.Errorf("explaining profile %s: %w", cfg.Name, err)
		}
	}
	return r, nil
}

// Report is the outcome of a run, or of a family of runs aggregated.
type Report struct {
	Profile  string        `json:"profile"`
	Users    int           `json:"users"`
	Duration time.Duration `json:"duration_ns"`
	Seed     int64         `json:"seed"`
	// Start is the first simulated instant (zero for an aggregate).
	Start   time.Time     `json:"start,omitzero"`
	Events  int64         `json:"events"`
	SimTime time.Duration `json:"sim_time_ns"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// EngineEventsPerSec is the events decoded and processed per second of
	// the time spent doing so.
	EngineEventsPerSec float64 `json:"engine_events_per_sec"`
	// Profiles are the runs an aggregate sums up; empty for one run.
	Profiles []string `json:"profiles,omitempty"`

	Kinds   []KindReport  `json:"kinds"`
	Classes []ClassReport `json:"classes"`
	Rules   []RuleReport  `json:"rules"`
	Overall Overall       `json:"overall"`

	engineEvents int64
	engineBusy   time.Duration
	// missed and benign are the cases Config.Explain writes out.
	missed []simulate.GroundTruth
	benign []benignCase
}

// KindReport is one kind of attack: its victims and how many were
// detected, how soon.
type KindReport struct {
	Kind string `json:"kind"`
	// Attacks counts attacked users (complete LabelAttack lines).
	Attacks  int     `json:"attacks"`
	Detected int     `json:"detected"`
	Recall   float64 `json:"recall"`
	// TimeToDetect is from the attack's first event (of any of its lines)
	// to the first detection of the user (event time).
	TimeToDetect Percentiles `json:"time_to_detect"`
	ttd          []time.Duration
}

// ClassReport is one benign class: its benign users and how many were
// revoked.
type ClassReport struct {
	Class   string  `json:"class"`
	Users   int     `json:"users"`
	Revoked int     `json:"revoked"`
	Rate    float64 `json:"rate"`
	// Examples names up to five users revoked, with the rule.
	Examples []string `json:"examples,omitempty"`
}

// RuleReport is one rule's commands: how many matched a label and how
// many benign users it revoked.
type RuleReport struct {
	Rule           string      `json:"rule"`
	Commands       int         `json:"commands"`
	TruePositives  int         `json:"true_positives"`
	FalsePositives int         `json:"false_positives"`
	BenignRevoked  int         `json:"benign_revoked"`
	Latency        Percentiles `json:"latency"`
	lat            []time.Duration
}

// Overall sums up over kinds, classes and rules.
type Overall struct {
	AttackedUsers     int     `json:"attacked_users"`
	DetectedUsers     int     `json:"detected_users"`
	Recall            float64 `json:"recall"`
	BenignUsers       int     `json:"benign_users"`
	BenignRevoked     int     `json:"benign_revoked"`
	BenignRevokedRate float64 `json:"benign_revoked_rate"`
	Logouts           int     `json:"logouts"`
	LogoutsHonoured   int     `json:"logouts_honoured"`
	LogoutRate        float64 `json:"logout_rate"`
	// Commands are all commands, logouts' included; FalsePositives those
	// that matched no label.
	Commands       int `json:"commands"`
	FalsePositives int `json:"false_positives"`
	// LogoutCommands are the commands that honoured a logout.
	LogoutCommands int `json:"logout_commands"`
	// PrecisionDetections is the share of commands other than logouts'
	// that matched an attack or attempt.
	PrecisionDetections float64     `json:"precision_detections"`
	TimeToDetect        Percentiles `json:"time_to_detect"`
	Latency             Percentiles `json:"latency"`
	// BenignRevokedUsers lists (up to 20) benign users revoked, with the
	// rule and classes.
	BenignRevokedUsers []string `json:"benign_revoked_users,omitempty"`
	// MissedAttacks lists (up to 20) attacks no command answered, with
	// the notifications their users got.
	MissedAttacks []string `json:"missed_attacks,omitempty"`
	ttd, lat      []time.Duration
}

// Percentiles of a sample of durations.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Percentiles{N: len(s), P50: at(0.50), P95: at(0.95)}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// Failures lists the targets r misses; empty when it meets them all.
func (r Report) Failures() []string {
	var out []string
	o := r.Overall
	if o.AttackedUsers == 0 {
		out = append(out, "no attacks in the run")
	}
	if o.Recall < TargetRecall {
		out = append(out, fmt.Sprintf("recall of attacked users %.2f%% is below %.0f%%", 100*o.Recall, 100*TargetRecall))
	}
	for _, k := range r.Kinds {
		if k.Attacks > 0 && k.Recall < TargetKindRecall {
			out = append(out, fmt.Sprintf("recall of %s %.1f%% (%d of %d) is below %.0f%%", k.Kind, 100*k.Recall, k.Detected, k.Attacks, 100*TargetKindRecall))
		}
	}
	if o.BenignRevokedRate > TargetBenignRevoked {
		out = append(out, fmt.Sprintf("benign users revoked %.3f%% is above %.1f%%", 100*o.BenignRevokedRate, 100*TargetBenignRevoked))
	}
	for _, c := range r.Classes {
		if c.Users > 0 && c.Rate > TargetClassRevoked {
			out = append(out, fmt.Sprintf("benign users revoked in class %s %.2f%% (%d of %d) is above %.1f%%", c.Class, 100*c.Rate, c.Revoked, c.Users, 100*TargetClassRevoked))
		}
	}
	if o.LogoutRate < TargetLogouts {
		out = append(out, fmt.Sprintf("logouts honoured %d of %d", o.LogoutsHonoured, o.Logouts))
	}
	return out
}

// Err is nil when r meets the targets.
func (r Report) Err() error {
	f := r.Failures()
	if len(f) == 0 {
		return nil
	}
	errs := make([]error, len(f))
	for i, s := range f {
		errs[i] = errors.New(s)
	}
	return fmt.Errorf("quality targets missed on %s: %w", r.Profile, errors.Join(errs...))
}
