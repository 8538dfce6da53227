// Package campaign runs mass revocation campaigns: the security rollout that
// forces every user, one cohort or one client off their existing tokens.
//
// A campaign publishes one signed RevokeCommand per target, built and
// signed by producer/revoke, paced by a token bucket, in batches that Kafka
// must acknowledge before the campaign moves on. A client campaign is one
// client-wide command rather than a fan-out over the client's users.
//
// It is resumable without repeating or skipping anyone. The target list is
// frozen in the state directory when the campaign starts (its hash in the
// checkpoint), and the checkpoint, rewritten atomically after every
// acknowledged batch, records how far it got and the command topic's end
// offsets at that point. A run with the same campaign id continues after
// the checkpoint:
//
//   - stopped (ctx cancelled), the batch in flight is acknowledged and
//     checkpointed first, so nothing is published twice;
//   - killed between an acknowledgement and its checkpoint, the next run
//     reads the topic back from the recorded offsets and skips the
//     campaign's commands it finds there (see WithLog);
//   - and whatever still gets published twice is the same command: ids are
//     a hash of the campaign id and the target, and the consumer executes a
//     command id once.
//
// Campaign commands carry issuer "campaign:<id>", reason.rule_id
// "campaign" and the campaign id as their only evidence. When every target
// is published, a final notify command carries the campaign's report into
// the audit trail as a "notified" step.
package campaign

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/revoke"
	"github.com/revoked-dev/revoked/schemas"
)

// RuleID is the reason.rule_id of every campaign command.
const RuleID = "campaign"

// RuleVersion is the reason.rule_version of campaign commands; it is part
// of their ids.
const RuleVersion = 1

// IssuerPrefix starts the issuer of campaign commands: "campaign:<id>".
const IssuerPrefix = "campaign:"

// Errors of Run.
var (
	// ErrTargets wraps every problem with a target list.
	ErrTargets = errors.New("invalid campaign targets")
	// ErrInputChanged means a resumed campaign was given other targets
	// than it started with, or its frozen target list was altered.
	ErrInputChanged = errors.New("campaign input changed")
	// ErrSettingsChanged means a resumed campaign was asked to issue
	// other commands (action, mode, downscoped, severity, reason,
	// operator) than it started with.
	ErrSettingsChanged = errors.New("campaign settings changed")
	// ErrUnknownCampaign means no state exists for the campaign and no
	// targets were given to start it.
	ErrUnknownCampaign = errors.New("unknown campaign")
)

// Config configures a campaign.
type Config struct {
	// ID names the campaign: its state files, its issuer and its
	// commands' ids. Letters, digits, . _ - only, at most 64.
	ID string `flag:"id" usage:"campaign id: names its state files and its commands (letters, digits, . _ -)"`
	// StateDir holds the campaign's frozen target list and checkpoint.
	StateDir string `flag:"state-dir" env:"STATE_DIR" yaml:"state_dir" usage:"directory for the campaign's target list and checkpoint"`
	// Rate is the most commands published per second; zero or less
	// publishes as fast as Kafka acknowledges.
	Rate float64 `flag:"rate" env:"RATE" yaml:"rate" usage:"commands per second (0: unthrottled)"`
	// BatchSize is the most commands per Kafka write and per checkpoint.
	// Under a rate, a batch is at most a tenth of a second's worth.
	BatchSize int `flag:"batch" env:"BATCH" yaml:"batch" usage:"most commands per Kafka write and checkpoint"`
	// DrainTimeout bounds how long a batch already handed to Kafka may
	// take to be acknowledged after the run is stopped; it is then
	// checkpointed, so a stop repeats nothing.
	DrainTimeout time.Duration `flag:"drain-timeout" env:"DRAIN_TIMEOUT" yaml:"drain_timeout" usage:"how long the batch in flight may finish after a stop"`

	// Operator is who runs the campaign, named in every summary.
	Operator          string           `flag:"-"`
	Action            schemas.Action   `flag:"-"`
	DryRun            bool             `flag:"-"`
	IncludeDownscoped bool             `flag:"-"`
	Severity          schemas.Severity `flag:"-"`
	// Reason says why, for the audit trail.
	Reason string `flag:"-"`
}

// DefaultConfig publishes 100 commands per second in batches of up to 1000.
func DefaultConfig() Config {
	return Config{
		StateDir:     "campaigns",
		Rate:         100,
		BatchSize:    1000,
		DrainTimeout: 30 * time.Second,
		Action:       schemas.ActionRevoke,
		Severity:     schemas.SeverityHigh,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(ValidID(c.ID), "id", "required: letters, digits and . _ - only, at most 64, not starting with a dot")
	p.Check(c.StateDir != "", "state-dir", "required")
	p.Check(c.BatchSize > 0 && c.BatchSize <= 100000, "batch", "must be between 1 and 100000")
	p.Check(c.DrainTimeout > 0, "drain-timeout", "must be positive")
	p.Check(c.Operator != "", "operator", "required: who runs the campaign")
	p.Check(c.Action == schemas.ActionRevoke || c.Action == schemas.ActionRevokeAndReverify, "action", "revoke or revoke_and_reverify")
	switch c.Severity {
	case schemas.SeverityLow, schemas.SeverityMedium, schemas.SeverityHigh, schemas.SeverityCritical:
	default:
		p.Addf("severity", "low, medium, high or critical, got %q", c.Severity)
	}
	return p.Err()
}

// ValidID reports whether id can name a campaign.
func ValidID(id string) bool {
	if id == "" || len(id) > 64 || id[0] == '.' {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// CommandID is the deterministic id of campaign's command for target.
func CommandID(campaign string, target schemas.Target) string {
	return schemas.DetectionCommandID(RuleID, RuleVersion, target, []string{campaign})
}

// Runner runs one campaign.
type Runner struct {
	cfg      Config
	rev      *revoke.Revoker
	pub      revoke.Publisher
	audit    HistoryReader
	kafkaLog Log
	topic    string
	bar      *progress.Bar
	log      zerolog.Logger
	clock    clockwork.Clock
	now      func() time.Time // clock.Now
}

// Option configures a Runner.
type Option func(*Runner)

// WithAudit lets the report count outcomes from the audit trail.
func WithAudit(h HistoryReader) Option { return func(r *Runner) { r.audit = h } }

// WithLog lets the campaign read back topic, where its commands go: it
// records the topic's end offsets in every checkpoint and, when resumed,
// skips the commands a crashed run published after its checkpoint, so a
// hard crash repeats nothing either. Without it such commands are
// published again, as the same commands, which the consumer executes
// once.
func WithLog(l Log, topic string) Option { return func(r *Runner) { r.kafkaLog, r.topic = l, topic } }

// WithProgress draws progress on bar (nil: none).
func WithProgress(bar *progress.Bar) Option { return func(r *Runner) { r.bar = bar } }

// WithClock replaces the real clock, which paces the campaign and dates
// its state. For tests: a clockwork.FakeClock moves only when told.
func WithClock(clk clockwork.Clock) Option { return func(r *Runner) { r.clock, r.now = clk, clk.Now } }

// New returns a Runner for cfg. rev builds and signs the commands (its
// topic is where they go); pub publishes them, and must be the publisher
// rev was made with or one writing to the same cluster.
func New(cfg Config, rev *revoke.Revoker, pub revoke.Publisher, log zerolog.Logger, opts ...Option) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rev == nil || pub == nil {
		return nil, errors.New("campaign: nil revoker or publisher")
	}
	r := &Runner{cfg: cfg, rev: rev, pub: pub, log: log.With().Str("component", "campaign").Str("campaign", cfg.ID).Logger(), clock: clockwork.NewRealClock(), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

func (r *Runner) mode() schemas.Mode {
	if r.cfg.DryRun {
		return schemas.ModeDryRun
	}
	return schemas.ModeEnforce
}

func (r *Runner) summary() string {
	s := "campaign " + r.cfg.ID + " by " + r.cfg.Operator
	if r.cfg.Reason != "" {
		s += ": " + r.cfg.Reason
	}
	return s
}

// open loads the campaign's state, or starts the campaign with targets
// when it has none. It checks that a resumed campaign gets the same input
// (when targets is given) and the same settings.
func (r *Runner) open(targets *Targets) (*State, []string, error) {
	dir, id := r.cfg.StateDir, r.cfg.ID
	st, err := LoadState(dir, id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if targets == nil {
			return nil, nil, fmt.Errorf("%w %q: no state in %s, and no targets given to start it", ErrUnknownCampaign, id, dir)
		}
		return r.start(targets)
	case err != nil:
		return nil, nil, err
	}
	if targets != nil {
		if h := HashTargets(targets.Kind, targets.IDs); h != st.InputHash {
			return nil, nil, fmt.Errorf("%w: campaign %s started on %d %s targets hashing to %s; this input has %d hashing to %s (use a new campaign id for a new input)",
				ErrInputChanged, id, st.Total, st.Kind, st.InputHash, len(targets.IDs), h)
		}
	}
	var p config.Problems
	p.Check(st.Action == r.cfg.Action, "action", "campaign started with %s", st.Action)
	p.Check(st.Mode == r.mode(), "mode", "campaign started with %s", st.Mode)
	p.Check(st.IncludeDownscoped == r.cfg.IncludeDownscoped, "include-downscoped", "campaign started with %t", st.IncludeDownscoped)
	p.Check(st.Severity == r.cfg.Severity, "severity", "campaign started with %s", st.Severity)
	p.Check(st.Summary == r.summary(), "reason", "campaign started with summary %q", st.Summary)
	if err := p.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrSettingsChanged, err)
	}
	ids, err := loadTargets(dir, st)
	if err != nil {
		return nil, nil, err
	}
	return st, ids, nil
}

func (r *Runner) start(t *Targets) (*State, []string, error) {
	var p config.Problems
	p.Check(t.Kind == schemas.TargetUser || t.Kind == schemas.TargetClient, "kind", "user or client, got %q", t.Kind)
	p.Check(len(t.IDs) > 0, "targets", "none given")
	seen := make(map[string]struct{}, len(t.IDs))
	for i, id := range t.IDs {
		if err := checkTargetID(id); err != nil {
			p.Addf(fmt.Sprintf("targets[%d]", i), "%v", err)
		}
		if _, dup := seen[id]; dup {
			p.Addf(fmt.Sprintf("targets[%d]", i), "%q repeats", id)
		}
		seen[id] = struct{}{}
		if p.Len() > 20 {
			break
		}
	}
	if err := p.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTargets, err)
	}
	if err := os.MkdirAll(r.cfg.StateDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating the state directory: %w", err)
	}
	now := r.now().UTC()
	st := &State{
		CampaignID: r.cfg.ID, Kind: t.Kind, InputHash: HashTargets(t.Kind, t.IDs), Total: len(t.IDs),
		Action: r.cfg.Action, Mode: r.mode(), IncludeDownscoped: r.cfg.IncludeDownscoped, Severity: r.cfg.Severity,
		Summary: r.summary(), Reason: r.cfg.Reason, Operator: r.cfg.Operator, StartedAt: now, UpdatedAt: now,
	}
	// The list first: a state file always has its list beside it.
	if err := saveTargets(r.cfg.StateDir, r.cfg.ID, t.IDs); err != nil {
		return nil, nil, err
	}
	if err := saveState(r.cfg.StateDir, st); err != nil {
		return nil, nil, err
	}
	r.log.Info().Int("targets", st.Total).Str("kind", string(st.Kind)).Str("input_hash", st.InputHash).Msg("campaign started")
	return st, t.IDs, nil
}

// command returns the campaign's command for one target, built by the
// Revoker and given the campaign's deterministic id, issuer and rule.
func (r *Runner) command(st *State, kind schemas.TargetKind, id string, action schemas.Action, summary string) (schemas.RevokeCommand, error) {
	req := revoke.Request{
		Kind: kind, Action: action, DryRun: st.Mode == schemas.ModeDryRun, IncludeDownscoped: st.IncludeDownscoped,
		Severity: st.Severity, Summary: summary,
	}
	switch kind {
	case schemas.TargetClient:
		req.ClientID = id
	default:
		req.UserID = id
	}
	cmd, err := r.rev.Build(req)
	if err != nil {
		return cmd, err
	}
	cmd.Issuer = IssuerPrefix + r.cfg.ID
	cmd.Reason.RuleID = RuleID
	cmd.Reason.RuleVersion = RuleVersion
	cmd.Reason.Evidence = []string{r.cfg.ID}
	cmd.CommandID = CommandID(r.cfg.ID, cmd.Target)
	return cmd, cmd.Validate()
}

// Run publishes the campaign's commands from its checkpoint on, then its
// report, and returns the report.
//
// targets starts the campaign when it has no state yet; for a campaign
// that has, targets may be nil (continue with the frozen list) or must be
// the same input (else ErrInputChanged).
//
// Run blocks until every command is published or ctx ends. When ctx ends
// it stops pacing, lets the batch already handed to Kafka be acknowledged
// (within DrainTimeout), checkpoints it, and returns the report so far with
// ctx's error. Any other failure returns after checkpointing what Kafka
// acknowledged; running again continues from there.
func (r *Runner) Run(ctx context.Context, targets *Targets) (Report, error) {
	st, ids, err := r.open(targets)
	if err != nil {
		return Report{}, err
	}
	if st.Complete() {
		r.log.Info().Msg("campaign already complete; nothing to publish")
		rep := newReport(st)
		rep.Audit, rep.AuditErr = r.countAudit(ctx, st)
		return rep, nil
	}
	batch := r.cfg.BatchSize
	if r.cfg.Rate > 0 {
		batch = max(1, min(batch, int(r.cfg.Rate/10)))
	}
	bucket := newBucket(r.cfg.Rate, batch, r.clock)
	r.bar.SetTotal(int64(st.Total))
	r.bar.Set(int64(st.Next))
	defer r.bar.Finish()

	resumed := st.Next
	if st.Next < st.Total {
		st.Runs++
		if resumed > 0 {
			r.log.Info().Int("next", resumed).Int("total", st.Total).Msg("campaign resumed after its checkpoint")
		}
	}
	published, err := r.publishedSince(ctx, st)
	if err != nil {
		// Publishing them again is harmless: same ids, executed once.
		r.log.Warn().Err(err).Msg("cannot tell which commands raced the last stop; they will be published again")
	}
	if len(published) > 0 {
		r.log.Info().Int("commands", len(published)).Msg("commands published after the checkpoint by the previous run are skipped")
	}
	r.mark(ctx, st)
	if err := saveState(r.cfg.StateDir, st); err != nil {
		return newReport(st), err
	}
	b := newBuilder(r, st, batch, published)
	defer b.stop()
	for st.Next < st.Total {
		if err := bucket.take(ctx, min(batch, st.Total-st.Next)); err != nil {
			return r.stopped(st, err)
		}
		msgs, covered, err := b.next(ids, st.Next)
		if err != nil {
			return r.stopped(st, err)
		}
		if len(msgs) > 0 {
			// The write outlives a stop by up to DrainTimeout, so a
			// stop leaves nothing published but unrecorded.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.DrainTimeout)
			err = r.pub.WriteMessages(wctx, msgs...)
			cancel()
			if err != nil {
				return r.stopped(st, fmt.Errorf("publishing the commands of targets %d to %d: %w", st.Next, st.Next+covered-1, err))
			}
		}
		st.Next += covered
		st.UpdatedAt = r.now().UTC()
		r.mark(ctx, st)
		if err := saveState(r.cfg.StateDir, st); err != nil {
			return newReport(st), fmt.Errorf("checkpointing after target %d (published, so the next run repeats this batch as the same commands): %w", st.Next, err)
		}
		r.bar.Add(int64(covered))
		if ctx.Err() != nil {
			return r.stopped(st, ctx.Err())
		}
	}
	r.bar.Finish()
	r.log.Info().Int("published", st.Total-resumed).Int("total", st.Total).Msg("every target's command published")
	return r.finish(ctx, st, ids, published)
}

// mark records the command topic's end offsets in st, or clears them when
// they cannot be read, so that a resumed run never trusts stale marks.
func (r *Runner) mark(ctx context.Context, st *State) {
	if r.kafkaLog == nil {
		st.Marks = nil
		return
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.DrainTimeout)
	defer cancel()
	ends, err := r.kafkaLog.Ends(mctx, r.topic)
	if err != nil {
		r.log.Warn().Err(err).Msg("cannot read the command topic's end offsets; a crash before the next checkpoint would repeat a batch")
		st.Marks = nil
		return
	}
	st.Marks = ends
}

func (r *Runner) stopped(st *State, err error) (Report, error) {
	r.log.Warn().Err(err).Int("next", st.Next).Int("total", st.Total).Msg("campaign stopped; run it again to continue")
	return newReport(st), err
}

// finish publishes the report command once and records it.
func (r *Runner) finish(ctx context.Context, st *State, ids []string, published map[string]bool) (Report, error) {
	rep := newReport(st)
	rep.Audit, rep.AuditErr = r.countAudit(ctx, st)
	st.FinishedAt = r.now().UTC()
	rep.FinishedAt = st.FinishedAt
	target := reportTarget(st, ids)
	cmd, err := r.command(st, target.Kind, target.ID(), schemas.ActionNotify, truncateSummary(rep.Summary()))
	if err != nil {
		return rep, fmt.Errorf("building the report command: %w", err)
	}
	// The report has its own id (its evidence names the report), the
	// same on every attempt, so a repeat after a crash is a replay the
	// consumer only audits.
	cmd.Reason.Evidence = []string{r.cfg.ID, "report"}
	cmd.CommandID = schemas.DetectionCommandID(RuleID, RuleVersion, cmd.Target, cmd.Reason.Evidence)
	if !published[cmd.CommandID] {
		msg, err := r.rev.Message(cmd)
		if err != nil {
			return rep, err
		}
		if err := r.pub.WriteMessages(ctx, msg); err != nil {
			return rep, fmt.Errorf("publishing the report command: %w", err)
		}
	}
	st.ReportCommandID = cmd.CommandID
	st.UpdatedAt = st.FinishedAt
	if err := saveState(r.cfg.StateDir, st); err != nil {
		return rep, err
	}
	rep.ReportCommandID = cmd.CommandID
	rep.Complete = true
	r.log.Info().Str("command_id", cmd.CommandID).Str("summary", cmd.Reason.Summary).Msg("campaign report published")
	return rep, nil
}

// reportTarget is what the report command names: the client of a client
// campaign, and for user campaigns the pseudo-user "campaign:<id>", since
// the command contract has no campaign target.
func reportTarget(st *State, ids []string) schemas.Target {
	if st.Kind == schemas.TargetClient && len(ids) == 1 {
		return schemas.Target{Kind: schemas.TargetClient, ClientID: ids[0]}
	}
	return schemas.Target{Kind: schemas.TargetUser, UserID: IssuerPrefix + st.CampaignID}
}

func truncateSummary(s string) string {
	if len(s) > 500 {
		return s[:500]
	}
	return s
}
