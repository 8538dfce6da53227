// Package quality measures how well the detector's rules catch the
// simulator's labelled attacks: it runs a simulation on the fast clock in
// process, feeds every event through the wire format (schemas.DecodeEvent)
// into the rule engine, and matches the commands that come out against the
// simulation's ground truth.
//
// A command (a revocation, or a notification for the rules that only
// notify) is a true positive when it targets a user within an attack on that user
// (LabelAttack) or a user a many-user attack tried (LabelAttempt), from a
// minute before the attack's first event to Config.Slack after its last; a
// logout command is also right when it answers a labelled logout
// (LabelUserAction): that revocation is the intended response to the
// user's own action, so it is neither an attack detected nor a false
// positive. Every other command is a false positive, and a user that no
// attack touched and that got a revocation (not a notification) is a
// benign user revoked.
package quality

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/detector/engine"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/producer/simulate"
	"github.com/revoked-dev/revoked/schemas"
)

// Targets on the default profile.
const (
	// TargetRecall is the least share of attacked users detected: revoked,
	// or notified by a rule that only notifies (a brute force that never
	// got in).
	TargetRecall = 0.99
	// TargetBenignRevoked is the largest share of benign users revoked.
	TargetBenignRevoked = 0.001
)

// Config is a benchmark profile.
type Config struct {
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
	// Sim holds the rest of the simulation's settings; Users, Seed,
	// Duration and the rate come from the fields above.
	Sim simulate.Config `flag:"-"`
}

// DefaultConfig is the default profile: 10,000 users for ten simulated
// days and two hours at about 100 events per user and day. The first
// week (and two hours) is free of attacks, so that the rules' baselines
// (new_location_sensitive_action learns a week of places per user) hold
// what a detector running in production would; the attack rates then give
// every scenario a hundred or so instances in the three days left.
func DefaultConfig() Config {
	sim := simulate.DefaultConfig()
	sim.BruteForceProb = 0.0015
	sim.ReplayProb = 0.0008
	sim.AttackProb = 0.006
	sim.AttacksAfter = 7*24*time.Hour + 2*time.Hour
	sim.BatchSize = 1000
	return Config{
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
	p.Check(c.EventsPerUserDay > 0, "events-per-user-day", "must be positive")
	p.Check(c.Slack >= 0, "slack", "must not be negative")
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
	latency time.Duration // decoding and processing the completing event
}

// feeder is the simulation's publisher: it decodes every message as the
// detector would and feeds the engine.
type feeder struct {
	eng    *engine.Engine
	out    []detection
	events int64
	busy   time.Duration
}

func (f *feeder) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		t0 := time.Now()
		ev, err := schemas.DecodeEvent(m.Value)
		if err != nil {
			return fmt.Errorf("simulated event does not decode: %w", err)
		}
		cmds := f.eng.Process(&ev)
		d := time.Since(t0)
		f.busy += d
		f.events++
		for _, c := range cmds {
			f.out = append(f.out, detection{cmd: c, latency: d})
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
	f := &feeder{eng: eng}
	stats, err := sim.Run(ctx, f, simulate.Options{})
	if err != nil {
		return Report{}, fmt.Errorf("simulating: %w", err)
	}
	ids := make([]string, 0, len(rules))
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	r := score(cfg, ids, sim.Labels(), f.out)
	r.Events = stats.Events
	r.SimTime = stats.SimTime.Sub(scfg.Start)
	r.Elapsed = stats.Elapsed
	if f.busy > 0 {
		r.EngineEventsPerSec = float64(f.events) / f.busy.Seconds()
	}
	return r, nil
}

// Report is the outcome of a run.
type Report struct {
	Users    int           `json:"users"`
	Duration time.Duration `json:"duration_ns"`
	Seed     int64         `json:"seed"`
	Events   int64         `json:"events"`
	SimTime  time.Duration `json:"sim_time_ns"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// EngineEventsPerSec is the events decoded and processed per second of
	// the time spent doing so.
	EngineEventsPerSec float64 `json:"engine_events_per_sec"`

	Rules   []RuleReport `json:"rules"`
	Overall Overall      `json:"overall"`
}

// RuleReport is one rule's line: the attacks labelled with it and the
// commands it made.
type RuleReport struct {
	Rule string `json:"rule"`
	// Attacks labelled with the rule (LabelAttack, complete); for logout,
	// the labelled logouts.
	Attacks int `json:"attacks"`
	// DetectedByRule of them were revoked by this rule, DetectedByAny by
	// any rule.
	DetectedByRule int     `json:"detected_by_rule"`
	DetectedByAny  int     `json:"detected_by_any"`
	Recall         float64 `json:"recall"`
	RecallAny      float64 `json:"recall_any"`
	// Commands the rule made (revocations), true and false positives.
	Commands       int     `json:"commands"`
	TruePositives  int     `json:"true_positives"`
	FalsePositives int     `json:"false_positives"`
	Precision      float64 `json:"precision"`
	// TimeToDetect is from the attack's first event to the rule's first
	// revocation of it (event time); Latency from receiving the
	// completing event to the command (wall time: decoding and the
	// engine).
	TimeToDetect Percentiles `json:"time_to_detect"`
	Latency      Percentiles `json:"latency"`
}

// Overall sums up over rules and users.
type Overall struct {
	AttackedUsers     int     `json:"attacked_users"`
	DetectedUsers     int     `json:"detected_users"`
	DetectedUsersRule int     `json:"detected_users_by_expected_rule"`
	Recall            float64 `json:"recall"`
	RecallRule        float64 `json:"recall_by_expected_rule"`
	BenignUsers       int     `json:"benign_users"`
	BenignRevoked     int     `json:"benign_revoked"`
	BenignRevokedRate float64 `json:"benign_revoked_rate"`
	// Commands are all revocations, logouts included; FalsePositives
	// those that matched no label.
	Commands       int     `json:"commands"`
	FalsePositives int     `json:"false_positives"`
	Precision      float64 `json:"precision"`
	// PrecisionDetections leaves out the logout rule's answers to logouts.
	PrecisionDetections float64     `json:"precision_detections"`
	TimeToDetect        Percentiles `json:"time_to_detect"`
	Latency             Percentiles `json:"latency"`
	// BenignRevokedUsers lists (up to 20) benign users revoked, with the
	// rule.
	BenignRevokedUsers []string `json:"benign_revoked_users,omitempty"`
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
	if r.Overall.Recall < TargetRecall {
		out = append(out, fmt.Sprintf("recall of attacked users %.2f%% is below %.0f%%", 100*r.Overall.Recall, 100*TargetRecall))
	}
	if r.Overall.BenignRevokedRate > TargetBenignRevoked {
		out = append(out, fmt.Sprintf("benign users revoked %.3f%% is above %.1f%%", 100*r.Overall.BenignRevokedRate, 100*TargetBenignRevoked))
	}
	if r.Overall.AttackedUsers == 0 {
		out = append(out, "no attacks in the run")
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
	return fmt.Errorf("quality targets missed: %w", errors.Join(errs...))
}
