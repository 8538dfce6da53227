package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/progress"
	"github.com/revoked-dev/revoked/producer/simulate"
)

// simulateConfig is everything "producer simulate" reads.
type simulateConfig struct {
	Common kafkaConfig
	// The simulation's settings sit at the top level: -users, -rate,
	// REVOKED_SIM_USERS and so on.
	Sim simulate.Config `env:"REVOKED_SIM" yaml:"simulate"`
	// TokenAPI gives -tokenapi and REVOKED_TOKENAPI_URL; the admin token
	// comes from REVOKED_TOKENAPI_ADMIN_TOKEN(_FILE) or
	// -tokenapi-admin-token-file, the exchange client's secret from
	// REVOKED_TOKENAPI_CLIENT_SECRET(_FILE) or -tokenapi-client-secret-file.
	TokenAPI         simulate.HTTPIssuerConfig `env:"REVOKED" yaml:"tokenapi"`
	AdminTokenFile   string                    `flag:"tokenapi-admin-token-file" yaml:"tokenapi_admin_token_file" usage:"file holding the token API's admin token"`
	ClientSecretFile string                    `flag:"tokenapi-client-secret-file" yaml:"tokenapi_client_secret_file" usage:"file holding the exchange client's secret"`
	Start            string                    `flag:"start" env:"REVOKED_SIM_START" yaml:"start" usage:"first simulated instant with --clock fast: RFC 3339 or now"`
	Out              string                    `flag:"out" env:"REVOKED_SIM_OUT" yaml:"out" usage:"write the events to this JSONL file (- for stdout) instead of Kafka, e.g. for backtests"`
	GroundTruth      string                    `flag:"ground-truth" env:"REVOKED_SIM_GROUND_TRUTH" yaml:"ground_truth" usage:"file to write the ground truth to, one JSON line per label (attack, attempt, user action)"`
	Progress         bool                      `flag:"progress" usage:"draw a progress bar on stderr even when it is not a terminal"`
}

func defaultSimulateConfig() simulateConfig {
	sim := simulate.DefaultConfig()
	// From the command line the simulator usually feeds a running
	// pipeline; --clock fast is for offline runs.
	sim.Clock = simulate.ClockLive
	return simulateConfig{
		Common:   defaultKafkaConfig(),
		Sim:      sim,
		TokenAPI: simulate.DefaultHTTPIssuerConfig(),
		Start:    sim.Start.Format(time.RFC3339),
	}
}

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultSimulateConfig()
	if err := cli.Load(cli.NewFlagSet("producer simulate", stderr), args, &cfg); err != nil {
		return err
	}
	var p config.Problems
	if cfg.Start == "now" {
		cfg.Sim.Start = time.Now().UTC().Truncate(time.Second)
	} else if t, err := time.Parse(time.RFC3339, cfg.Start); err == nil {
		cfg.Sim.Start = t
	} else {
		p.Addf("start", "want RFC 3339 or now, got %q", cfg.Start)
	}
	for _, s := range []struct {
		file   string
		secret *config.Secret
		name   string
	}{
		{cfg.AdminTokenFile, &cfg.TokenAPI.AdminToken, "tokenapi-admin-token-file"},
		{cfg.ClientSecretFile, &cfg.TokenAPI.ExchangeClientSecret, "tokenapi-client-secret-file"},
	} {
		if s.file == "" {
			continue
		}
		v, err := readSecretFile(s.file, nil)
		if err != nil {
			p.Addf(s.name, "%v", err)
			continue
		}
		*s.secret = config.NewSecret(v)
	}
	cfg.Common.validate(&p)
	p.Nest("", cfg.Sim.Validate())
	p.Nest("", cfg.TokenAPI.Validate())
	if err := p.Err(); err != nil {
		return err
	}
	if err := cfg.Common.TokenIDs.Apply(); err != nil {
		return err
	}

	log, err := ops.NewLogger(cfg.Common.Log, stderr)
	if err != nil {
		return err
	}
	var issuer simulate.TokenIssuer
	if cfg.TokenAPI.URL != "" {
		h, err := simulate.NewHTTPIssuer(cfg.TokenAPI, nil)
		if err != nil {
			return err
		}
		issuer = h
	}
	sim, err := simulate.New(cfg.Sim, issuer, log)
	if err != nil {
		return err
	}
	var truth *os.File
	if cfg.GroundTruth != "" {
		truth, err = os.OpenFile(cfg.GroundTruth, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("opening ground truth file: %w", err)
		}
		defer func() { _ = truth.Close() }()
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var pub simulate.Publisher
	var sink *jsonlSink
	switch cfg.Out {
	case "":
		w, err := cfg.Common.writer(ctx, log, cfg.Sim.Topic)
		if err != nil {
			return err
		}
		defer func() { _ = w.Close() }()
		pub = w
	case "-":
		sink = newJSONLSink(stdout)
		pub = sink
		// The summary goes to stderr so stdout holds only events.
		stdout = stderr
	default:
		f, err := os.OpenFile(cfg.Out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("opening events file: %w", err)
		}
		defer func() { _ = f.Close() }()
		sink = newJSONLSink(f)
		pub = sink
	}

	opts := simulate.Options{}
	if truth != nil {
		opts.GroundTruth = truth
	}
	var bar *progress.Bar
	if cfg.Sim.Events > 0 {
		bar = newBar(stderr, cfg.Progress, progress.Config{Label: "simulate", Total: cfg.Sim.Events, Unit: "events"})
		opts.Progress = func(s simulate.Stats) { bar.Set(s.Events) }
	} else {
		// Bounded by a duration: measure simulated seconds.
		bar = newBar(stderr, cfg.Progress, progress.Config{Label: "simulate", Total: int64(cfg.Sim.Duration / time.Second), Unit: "sim-s"})
		start := cfg.Sim.Start
		opts.Progress = func(s simulate.Stats) {
			if cfg.Sim.Clock == simulate.ClockLive {
				bar.Set(int64(s.Elapsed / time.Second))
			} else {
				bar.Set(int64(s.SimTime.Sub(start) / time.Second))
			}
		}
	}
	stats, err := sim.Run(ctx, pub, opts)
	bar.Finish()
	if sink != nil {
		if ferr := sink.flush(); ferr != nil && err == nil {
			err = ferr
		}
	}
	if truth != nil {
		if cerr := truth.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing ground truth file: %w", cerr)
		}
	}
	fmt.Fprintf(stdout, "published %d events with %d labelled attacks in %s\n", stats.Events, stats.Attacks, stats.Elapsed.Round(time.Millisecond))
	if err != nil && stopped(err) {
		return nil
	}
	if err != nil {
		return errors.Join(err, fmt.Errorf("stopped after %d events", stats.Events))
	}
	return nil
}

// jsonlSink writes event values as lines instead of publishing them.
type jsonlSink struct {
	w *bufio.Writer
}

var _ simulate.Publisher = (*jsonlSink)(nil)

func newJSONLSink(w io.Writer) *jsonlSink { return &jsonlSink{w: bufio.NewWriterSize(w, 1<<20)} }

// WriteMessages writes each message's value and a newline. The values go
// out buffered: a message counts as written once flush returned nil.
func (s *jsonlSink) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	for _, m := range msgs {
		if _, err := s.w.Write(m.Value); err != nil {
			return fmt.Errorf("writing events: %w", err)
		}
		if err := s.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("writing events: %w", err)
		}
	}
	return nil
}

func (s *jsonlSink) flush() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing events: %w", err)
	}
	return nil
}
