package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/campaign"
	"github.com/revoked-dev/revoked/producer/revoke"
	"github.com/revoked-dev/revoked/schemas"
)

const campaignUsage = `usage: producer campaign [run] --id ID --operator NAME (--users-file F | --cohort-file F | --from-audit | --client C) [flags]
       producer campaign status --id ID [--state-dir D] [--audit.backend ...]

run (the default) publishes one signed revoke command per target, paced at
--rate commands/s, checkpointing after every batch Kafka acknowledged. Run it
again with the same --id after a crash or a stop to continue where it left
off; the targets were frozen in --state-dir when it started. status prints a
campaign's report, with outcomes from the audit trail when --audit.* names a
store.

The consumer's guard holds revocations beyond its budgets for approval: give
rule "campaign" a budget of at least 60 x --rate per minute (rule-budgets
campaign=N, and the global budget room for it), or lower --rate.
`

// campaignConfig is everything "producer campaign run" reads.
type campaignConfig struct {
	Common kafkaConfig
	// -topic, -operator, -ttl; REVOKED_REVOKE_*.
	Revoke revoke.Config `env:"REVOKED_REVOKE" yaml:"revoke"`
	// -id, -state-dir, -rate, -batch, -drain-timeout; REVOKED_CAMPAIGN_*.
	Campaign campaign.Config `env:"REVOKED_CAMPAIGN" yaml:"campaign"`
	// The audit trail, read only: users for --from-audit, outcomes for
	// the report. Optional otherwise.
	Audit   backends.Config `flag:"audit" env:"REVOKED_AUDIT" yaml:"audit"`
	Signing cli.SigningKey

	// The targets: flags only.
	UsersFile  string `flag:"users-file" usage:"every user to revoke, one id per line (# comments and blank lines skipped, repeats dropped)"`
	CohortFile string `flag:"cohort-file" usage:"a cohort of users to revoke, one id per line, like --users-file"`
	FromAudit  bool   `flag:"from-audit" usage:"revoke every user that appears in the audit trail between --audit-since and --audit-until (needs --audit.*)"`
	Since      string `flag:"audit-since" usage:"start of the --from-audit range: RFC 3339, or a duration before now such as 720h"`
	Until      string `flag:"audit-until" usage:"end of the --from-audit range, exclusive: RFC 3339 (default: the end of the current second)"`
	Client     string `flag:"client" usage:"revoke one OAuth client: a single client-wide command instead of a command per user"`

	Action            string `flag:"action" usage:"revoke or revoke_and_reverify"`
	DryRun            bool   `flag:"dry-run" usage:"audit the commands without executing them"`
	IncludeDownscoped bool   `flag:"include-downscoped" usage:"also revoke tokens exchanged from the targets' tokens"`
	Severity          string `flag:"severity" usage:"low, medium, high or critical"`
	Reason            string `flag:"reason" usage:"why, for the audit trail (kept for the whole campaign)"`
	Progress          bool   `flag:"progress" usage:"draw a progress bar on stderr even when it is not a terminal"`
}

func defaultCampaignConfig() campaignConfig {
	return campaignConfig{
		Common:   defaultKafkaConfig(),
		Revoke:   revoke.DefaultConfig(),
		Campaign: campaign.DefaultConfig(),
		Action:   string(schemas.ActionRevoke),
		Severity: string(schemas.SeverityHigh),
	}
}

func (c *campaignConfig) validate() error {
	var p config.Problems
	c.Common.validate(&p)
	p.Nest("", c.Revoke.Validate())
	p.Nest("", c.Campaign.Validate())
	p.Nest("", c.Signing.Validate())
	if c.Audit.Backend != "" {
		p.Nest("audit", c.Audit.Validate())
	}
	sources := 0
	for _, set := range []bool{c.UsersFile != "", c.CohortFile != "", c.FromAudit, c.Client != ""} {
		if set {
			sources++
		}
	}
	p.Check(sources <= 1, "users-file", "give one of --users-file, --cohort-file, --from-audit and --client")
	p.Check(!c.FromAudit || c.Audit.Backend != "", "from-audit", "needs the audit store: --audit.backend and its settings")
	p.Check(c.FromAudit || c.Since == "" && c.Until == "", "audit-since", "only with --from-audit")
	return p.Err()
}

// auditRange parses --audit-since and --audit-until.
func (c *campaignConfig) auditRange(now time.Time) (from, to time.Time, err error) {
	var p config.Problems
	// The store compares whole seconds: end after the current one so that
	// rows written this second count.
	to = now.UTC().Truncate(time.Second).Add(time.Second)
	if c.Until != "" {
		if to, err = time.Parse(time.RFC3339, c.Until); err != nil {
			p.Addf("audit-until", "want RFC 3339, got %q", c.Until)
		}
	}
	switch d, derr := time.ParseDuration(c.Since); {
	case c.Since == "":
	case derr == nil && d > 0:
		from = now.UTC().Add(-d)
	default:
		if from, err = time.Parse(time.RFC3339, c.Since); err != nil {
			p.Addf("audit-since", "want RFC 3339 or a positive duration, got %q", c.Since)
		}
	}
	p.Check(from.IsZero() || from.Before(to), "audit-since", "must be before --audit-until")
	return from, to, p.Err()
}

func runCampaign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args := cli.Subcommand(args, "run")
	switch sub {
	case "run":
		return runCampaignRun(ctx, args, stdout, stderr)
	case "status":
		return runCampaignStatus(ctx, args, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, campaignUsage)
		return nil
	}
	fmt.Fprint(stderr, campaignUsage)
	return fmt.Errorf("unknown campaign command %q", sub)
}

func runCampaignRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultCampaignConfig()
	if err := cli.Load(cli.NewFlagSet("producer campaign run", stderr), args, &cfg); err != nil {
		return err
	}
	// A campaign that has started defaults to the settings it started
	// with, so continuing it takes only its id; settings given that differ
	// are refused by the campaign.
	var st *campaign.State
	stateErr := fs.ErrNotExist
	if campaign.ValidID(cfg.Campaign.ID) {
		st, stateErr = campaign.LoadState(cfg.Campaign.StateDir, cfg.Campaign.ID)
	}
	exists := stateErr == nil
	switch {
	case exists:
		cfg = defaultCampaignConfig()
		cfg.Revoke.Operator = st.Operator
		cfg.Action = string(st.Action)
		cfg.DryRun = st.Mode == schemas.ModeDryRun
		cfg.IncludeDownscoped = st.IncludeDownscoped
		cfg.Severity = string(st.Severity)
		cfg.Reason = st.Reason
		if err := cli.Load(cli.NewFlagSet("producer campaign run", stderr), args, &cfg); err != nil {
			return err
		}
	case !errors.Is(stateErr, fs.ErrNotExist):
		return stateErr
	}
	cfg.Campaign.Operator = cfg.Revoke.Operator
	cfg.Campaign.Action = schemas.Action(cfg.Action)
	cfg.Campaign.DryRun = cfg.DryRun
	cfg.Campaign.IncludeDownscoped = cfg.IncludeDownscoped
	cfg.Campaign.Severity = schemas.Severity(cfg.Severity)
	cfg.Campaign.Reason = cfg.Reason
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := cfg.Common.TokenIDs.Apply(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Common.Log, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var store audit.Store
	if cfg.Audit.Backend != "" {
		if store, err = openAuditReadOnly(ctx, cfg.Audit, log); err != nil {
			return err
		}
		defer func() { _ = store.Close() }()
	}
	targets, err := cfg.targets(ctx, store, exists, stdout)
	if err != nil {
		return err
	}

	signer, err := cfg.Signing.Signer()
	if err != nil {
		return err
	}
	w, err := cfg.Common.writer(ctx, log, cfg.Revoke.Topic)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	rev, err := revoke.New(cfg.Revoke, signer, w, log)
	if err != nil {
		return err
	}
	bar := newBar(stderr, cfg.Progress, progress.Config{Label: "campaign " + cfg.Campaign.ID, Unit: "commands"})
	client, err := kafkax.NewClient(cfg.Common.Kafka.Brokers, cfg.Common.Kafka.Security, cfg.Common.Kafka.ClientID)
	if err != nil {
		return err
	}
	defer client.Close()
	opts := []campaign.Option{
		campaign.WithProgress(bar),
		campaign.WithLog(campaign.NewKafkaLog(client), cfg.Revoke.Topic),
	}
	if store != nil {
		opts = append(opts, campaign.WithAudit(store))
	}
	r, err := campaign.New(cfg.Campaign, rev, w, log, opts...)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := r.Run(ctx, targets)
	if rep.CampaignID == "" {
		return err
	}
	fmt.Fprint(stdout, rep.String())
	if el := time.Since(start); err == nil && el > 0 {
		fmt.Fprintf(stdout, "  this run:  %s\n", el.Round(time.Millisecond))
	}
	if err != nil {
		return fmt.Errorf("campaign %s stopped after %d of %d targets (run it again with --id %s to continue): %w",
			rep.CampaignID, rep.Published, rep.Targeted, rep.CampaignID, err)
	}
	return nil
}

// targets reads the target list the flags name. A campaign that exists
// already continues on its frozen list: a file given again is checked
// against it, the audit trail is not queried again (it has moved on).
func (c *campaignConfig) targets(ctx context.Context, store audit.Store, exists bool, stdout io.Writer) (*campaign.Targets, error) {
	switch {
	case c.UsersFile != "" || c.CohortFile != "":
		path := c.UsersFile
		if path == "" {
			path = c.CohortFile
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening the target list: %w", err)
		}
		defer func() { _ = f.Close() }()
		t, err := campaign.ReadIDs(f, schemas.TargetUser)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if t.Skipped > 0 {
			fmt.Fprintf(stdout, "%s: %d users, %d lines skipped (blank, comments, repeats)\n", path, len(t.IDs), t.Skipped)
		}
		return &t, nil
	case c.Client != "":
		return &campaign.Targets{Kind: schemas.TargetClient, IDs: []string{c.Client}}, nil
	case c.FromAudit && !exists:
		from, to, err := c.auditRange(time.Now())
		if err != nil {
			return nil, err
		}
		t, err := campaign.UsersFromAudit(ctx, store, from, to)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "audit trail %s to %s: %d distinct users\n", from.Format(time.RFC3339), to.Format(time.RFC3339), len(t.IDs))
		return &t, nil
	case exists:
		return nil, nil
	}
	return nil, errors.New("name the targets: --users-file, --cohort-file, --from-audit or --client (or the --id of a campaign to continue)")
}

// openAuditReadOnly opens the audit store without creating anything in it.
func openAuditReadOnly(ctx context.Context, cfg backends.Config, log zerolog.Logger) (audit.Store, error) {
	cfg.SkipMigrate = true
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := backends.Open(octx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("opening the audit store: %w", err)
	}
	return s, nil
}

// campaignStatusConfig is what "producer campaign status" reads.
type campaignStatusConfig struct {
	ID       string          `flag:"id" usage:"campaign id"`
	StateDir string          `flag:"state-dir" env:"REVOKED_CAMPAIGN_STATE_DIR" yaml:"state_dir" usage:"directory of the campaign's target list and checkpoint"`
	Audit    backends.Config `flag:"audit" env:"REVOKED_AUDIT" yaml:"audit"`
	Log      ops.LogConfig   `flag:"log" env:"REVOKED_LOG" yaml:"log"`
}

func runCampaignStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := campaignStatusConfig{StateDir: campaign.DefaultConfig().StateDir, Log: ops.DefaultLogConfig()}
	if err := cli.Load(cli.NewFlagSet("producer campaign status", stderr), args, &cfg); err != nil {
		return err
	}
	var p config.Problems
	p.Check(campaign.ValidID(cfg.ID), "id", "required: letters, digits and . _ - only")
	p.Check(cfg.StateDir != "", "state-dir", "required")
	if cfg.Audit.Backend != "" {
		p.Nest("audit", cfg.Audit.Validate())
	}
	p.Nest("log", cfg.Log.Validate())
	if err := p.Err(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	var h campaign.HistoryReader
	if cfg.Audit.Backend != "" {
		store, err := openAuditReadOnly(ctx, cfg.Audit, log)
		if err != nil {
			return err
		}
		defer func() { _ = store.Close() }()
		h = store
	}
	rep, err := campaign.Status(ctx, cfg.StateDir, cfg.ID, h)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.String())
	return nil
}
