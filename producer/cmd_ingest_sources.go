package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/enrich"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/producer/ingest/box"
	"github.com/revoked-dev/revoked/producer/ingest/okta"
	"github.com/revoked-dev/revoked/producer/ingest/source"
	"github.com/revoked-dev/revoked/schemas"
)

// topicsConfig is where a vendor source publishes: -topic, -dlq-topic,
// -unmapped-topic, REVOKED_INGEST_TOPIC and so on, as "producer ingest".
type topicsConfig struct {
	Topic         string `flag:"topic" env:"TOPIC" yaml:"topic" usage:"topic for AuditEvents"`
	DLQTopic      string `flag:"dlq-topic" env:"DLQ_TOPIC" yaml:"dlq_topic" usage:"dead-letter topic for records whose mapping failed"`
	UnmappedTopic string `flag:"unmapped-topic" env:"UNMAPPED_TOPIC" yaml:"unmapped_topic" usage:"topic for records without an AuditEvent (unknown event types, anonymous users), as received"`
}

func defaultTopics() topicsConfig {
	return topicsConfig{Topic: schemas.TopicAuditEvents, DLQTopic: schemas.TopicDLQ, UnmappedTopic: schemas.TopicUnmapped}
}

func (t topicsConfig) ingest() ingest.Config {
	c := ingest.DefaultConfig()
	c.Topic, c.DLQTopic, c.UnmappedTopic = t.Topic, t.DLQTopic, t.UnmappedTopic
	return c
}

// sourceConfig is what every vendor source command reads besides its
// vendor's settings.
type sourceConfig struct {
	Common kafkaConfig
	Topics topicsConfig  `env:"REVOKED_INGEST" yaml:"ingest"`
	GeoIP  enrich.Config `flag:"geoip" env:"REVOKED_GEOIP" yaml:"geoip"`
}

func defaultSourceConfig() sourceConfig {
	return sourceConfig{Common: defaultKafkaConfig(), Topics: defaultTopics(), GeoIP: enrich.DefaultConfig()}
}

func (c sourceConfig) validate(p *config.Problems) {
	c.Common.validate(p)
	p.Nest("", c.Topics.ingest().Validate())
}

// pollConfig is a poller's command: the source's settings, the vendor's
// and the poll loop's, and the HTTP server of /livez, /readyz, /metrics.
type pollConfig struct {
	Source   sourceConfig
	Ops      ops.ServerConfig `flag:"http" env:"REVOKED_HTTP" yaml:"http"`
	Progress bool             `flag:"progress" usage:"draw a progress bar of records read on stderr even when it is not a terminal"`
}

// sink opens what a source publishes through: the writer (creating the
// topics if asked), the enricher and the sink. close releases them.
func (c sourceConfig) sink(ctx context.Context, log zerolog.Logger, format, name string) (_ *source.Sink, _ *kafkax.Writer, closeAll func(), err error) {
	t := c.Topics.ingest()
	w, err := c.Common.writer(ctx, log, t.Topic, t.DLQTopic, t.UnmappedTopic)
	if err != nil {
		return nil, nil, nil, err
	}
	enricher, err := enrich.NewLogged(c.GeoIP, log)
	if err != nil {
		return nil, nil, nil, errors.Join(err, w.Close())
	}
	var fn func(*schemas.AuditEvent)
	if enricher != nil {
		fn = enricher.Enrich
	}
	s, err := source.NewSink(t, w, format, name, fn)
	if err != nil {
		return nil, nil, nil, errors.Join(err, w.Close(), enricher.Close())
	}
	return s, w, func() { _ = w.Close(); _ = enricher.Close() }, nil
}

// runPoller runs a poller beside its ops server until ctx ends or the
// poller stops, and reports what it read.
// loadPollCommand loads cfg, the settings of the poll command name,
// checks the settings every poller shares (run) and the vendor's
// (validate) at once, applies the token id pattern and returns the
// command's logger.
func loadPollCommand(name string, args []string, stderr io.Writer, cfg any, run *pollConfig, validate func(*config.Problems)) (zerolog.Logger, error) {
	if err := cli.Load(cli.NewFlagSet(name, stderr), args, cfg); err != nil {
		return zerolog.Nop(), err
	}
	var p config.Problems
	run.Source.validate(&p)
	validate(&p)
	p.Nest("http", run.Ops.Validate())
	if err := p.Err(); err != nil {
		return zerolog.Nop(), err
	}
	if err := run.Source.Common.TokenIDs.Apply(); err != nil {
		return zerolog.Nop(), err
	}
	return ops.NewLogger(run.Source.Common.Log, stderr)
}

func runPoller(ctx context.Context, cfg pollConfig, name string, log zerolog.Logger, stdout, stderr io.Writer,
	build func(s *source.Sink, opts ...source.PollerOption) (*source.Poller, error), from string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	format := box.FormatEvent
	if name == okta.StreamSourceName {
		format = okta.Format
	}
	sink, _, closeAll, err := cfg.Source.sink(ctx, log, format, name)
	if err != nil {
		return err
	}
	defer closeAll()
	reg := ops.NewRegistry()
	m, err := source.NewMetrics(reg)
	if err != nil {
		return err
	}
	bar := newBar(stderr, cfg.Progress, progress.Config{Label: name, Unit: "records"})
	p, err := build(sink, source.WithMetrics(m), source.WithProgress(func(n int64) { bar.Set(n) }))
	if err != nil {
		return err
	}
	srv, err := ops.NewServer(cfg.Ops, log, reg)
	if err != nil {
		return err
	}
	check, err := kafkax.BrokersCheck(cfg.Source.Common.Kafka)
	if err != nil {
		return err
	}
	if err := srv.AddCheck("kafka", check); err != nil {
		return err
	}
	err = cli.RunWithOps(ctx, stop, srv, func(ctx context.Context) error { return p.Run(ctx, from) })
	bar.Finish()
	fmt.Fprintf(stdout, "%s: %d events published, %d records unmapped, %d dead-lettered, %d duplicates dropped\n", name,
		records(m, name, source.Published.String()), records(m, name, source.Unmapped.String()),
		records(m, name, source.DeadLettered.String()), records(m, name, "duplicate"))
	return err
}

// records reads the count of one outcome of a source's records.
func records(m *source.Metrics, name, outcome string) int64 {
	var d dto.Metric
	if err := m.Records.WithLabelValues(name, outcome).Write(&d); err != nil {
		return 0
	}
	return int64(d.GetCounter().GetValue())
}

// boxEventsConfig is everything "producer ingest box-events" reads.
type boxEventsConfig struct {
	Run pollConfig
	// Box gives -box.client-id, REVOKED_BOX_CLIENT_ID, box.client_id in
	// YAML; the secret comes from REVOKED_BOX_CLIENT_SECRET_FILE.
	Box box.Config `flag:"box" env:"REVOKED_BOX" yaml:"box"`
	// Poll gives -checkpoint, REVOKED_BOX_CHECKPOINT, poll.checkpoint.
	Poll source.PollConfig `env:"REVOKED_BOX" yaml:"poll"`
}

func runBoxEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := ops.DefaultServerConfig()
	o.Addr = ":9096"
	cfg := boxEventsConfig{Run: pollConfig{Source: defaultSourceConfig(), Ops: o}, Box: box.DefaultConfig(), Poll: source.DefaultPollConfig()}
	log, err := loadPollCommand("producer ingest box-events", args, stderr, &cfg, &cfg.Run, func(p *config.Problems) {
		p.Nest("box", cfg.Box.Validate())
		p.Nest("", cfg.Poll.Validate())
	})
	if err != nil {
		return err
	}
	return runPoller(ctx, cfg.Run, box.StreamSourceName, log, stdout, stderr, func(s *source.Sink, opts ...source.PollerOption) (*source.Poller, error) {
		return box.NewPoller(cfg.Box, cfg.Poll, s, log, nil, nil, opts...)
	}, cfg.Box.From)
}

// oktaLogsConfig is everything "producer ingest okta-logs" reads.
type oktaLogsConfig struct {
	Run pollConfig
	// Okta gives -okta.org-url, REVOKED_OKTA_ORG_URL; the token comes
	// from REVOKED_OKTA_API_TOKEN_FILE or REVOKED_OKTA_ACCESS_TOKEN_FILE.
	Okta okta.Config `flag:"okta" env:"REVOKED_OKTA" yaml:"okta"`
	// Poll gives -checkpoint, REVOKED_OKTA_CHECKPOINT, poll.checkpoint.
	Poll source.PollConfig `env:"REVOKED_OKTA" yaml:"poll"`
}

func runOktaLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := ops.DefaultServerConfig()
	o.Addr = ":9097"
	cfg := oktaLogsConfig{Run: pollConfig{Source: defaultSourceConfig(), Ops: o}, Okta: okta.DefaultConfig(), Poll: source.DefaultPollConfig()}
	log, err := loadPollCommand("producer ingest okta-logs", args, stderr, &cfg, &cfg.Run, func(p *config.Problems) {
		p.Nest("okta", cfg.Okta.Validate())
		p.Nest("", cfg.Poll.Validate())
	})
	if err != nil {
		return err
	}
	var copts []okta.ClientOption
	if path := os.Getenv("REVOKED_OKTA_ACCESS_TOKEN_FILE"); path != "" {
		// A token kept in a file is read again when Okta refuses it, so
		// whatever renews the file renews the poller's token.
		copts = append(copts, okta.WithTokenRenewal(func() (config.Secret, error) {
			tok, err := readSecretFile(path, nil)
			if err != nil {
				return config.Secret{}, fmt.Errorf("%s: %w", path, err)
			}
			return config.NewSecret(tok), nil
		}))
	}
	return runPoller(ctx, cfg.Run, okta.StreamSourceName, log, stdout, stderr, func(s *source.Sink, opts ...source.PollerOption) (*source.Poller, error) {
		return okta.NewPoller(cfg.Okta, cfg.Poll, s, log, nil, nil, copts, opts...)
	}, cfg.Okta.From)
}

// boxWebhookConfig is everything "producer ingest box-webhook" reads.
type boxWebhookConfig struct {
	Source sourceConfig
	// Webhook gives -listen, -path, REVOKED_BOX_WEBHOOK_PRIMARY_KEY_FILE.
	Webhook box.WebhookConfig `env:"REVOKED_BOX_WEBHOOK" yaml:"webhook"`
}

func runBoxWebhook(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := boxWebhookConfig{Source: defaultSourceConfig(), Webhook: box.DefaultWebhookConfig()}
	if err := cli.Load(cli.NewFlagSet("producer ingest box-webhook", stderr), args, &cfg); err != nil {
		return err
	}
	var p config.Problems
	cfg.Source.validate(&p)
	p.Nest("", cfg.Webhook.Validate())
	if err := p.Err(); err != nil {
		return err
	}
	if err := cfg.Source.Common.TokenIDs.Apply(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Source.Common.Log, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sink, _, closeAll, err := cfg.Source.sink(ctx, log, box.FormatWebhook, box.WebhookSourceName)
	if err != nil {
		return err
	}
	defer closeAll()
	reg := ops.NewRegistry()
	rc, err := box.NewReceiver(cfg.Webhook, sink, log, reg, nil)
	if err != nil {
		return err
	}
	ocfg := ops.DefaultServerConfig()
	ocfg.Addr = cfg.Webhook.Addr
	srv, err := ops.NewServer(ocfg, log, reg)
	if err != nil {
		return err
	}
	check, err := kafkax.BrokersCheck(cfg.Source.Common.Kafka)
	if err != nil {
		return err
	}
	if err := srv.AddCheck("kafka", check); err != nil {
		return err
	}
	srv.Handle(cfg.Webhook.Path, rc)
	log.Info().Str("addr", cfg.Webhook.Addr).Str("path", cfg.Webhook.Path).Msg("receiving Box webhooks")
	return srv.Run(ctx)
}
