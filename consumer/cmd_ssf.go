package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/consumer/ssf/transmitter"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/internal/ssf"
)

// revocationSink is the consumer's publisher of the revocations it
// carried out, for the Shared Signals transmitter, when -ssf.publish is
// set (nil otherwise), on the brokers the consumer reads from. Close it
// when the consumer is done.
func revocationSink(cfg runConfig, log zerolog.Logger) (service.RevocationSink, func() error, error) {
	if !cfg.SSF.Enabled {
		return nil, func() error { return nil }, nil
	}
	wc := kafkax.DefaultWriterConfig()
	wc.Brokers = cfg.Consumer.Reader.Brokers
	wc.Security = cfg.Consumer.Reader.Security
	wc.ClientID = "revoked-consumer"
	w, err := kafkax.NewWriter(wc, log)
	if err != nil {
		return nil, nil, fmt.Errorf("the revocations writer: %w", err)
	}
	p, err := transmitter.NewPublisher(w, cfg.SSF.Topic)
	if err != nil {
		return nil, nil, errors.Join(err, w.Close())
	}
	log.Info().Str("topic", cfg.SSF.Topic).Msg("recording revocations for the Shared Signals transmitter")
	return p, w.Close, nil
}

// ssfConfig is everything "consumer ssf-transmitter" reads.
type ssfConfig struct {
	// The transmitter's settings sit at the top level: -issuer,
	// -kafka.brokers, REVOKED_SSF_ISSUER, ssf.issuer in YAML.
	SSF transmitter.Config `env:"REVOKED_SSF" yaml:"ssf"`
	// Audit, when a backend is named, records each SET's outcome on the
	// transmitter's chain. chDB is one process per data directory, so a
	// transmitter beside a chDB consumer records nothing there.
	Audit backends.Config `flag:"audit" env:"REVOKED_AUDIT" yaml:"audit"`
	Log   ops.LogConfig   `flag:"log" env:"REVOKED_LOG" yaml:"log"`
	// SigningKey signs the SETs: an RSA key of 2048 bits or more (or
	// ECDSA P-256), PEM.
	SigningKey config.Secret `env:"REVOKED_SSF_SIGNING_KEY" yaml:"-"`
	// ReceiverToken is the bearer token of the one receiver named by
	// -receiver-audience, when there is no receivers file.
	ReceiverToken config.Secret `env:"REVOKED_SSF_RECEIVER_TOKEN" yaml:"-"`
}

func defaultSSFConfig() ssfConfig {
	return ssfConfig{SSF: transmitter.DefaultConfig(), Log: ops.DefaultLogConfig()}
}

// Validate reports every problem at once.
func (c ssfConfig) Validate() error {
	var p config.Problems
	p.Nest("", c.SSF.Validate())
	if c.Audit.Backend != "" {
		p.Nest("audit", c.Audit.Validate())
	}
	p.Nest("log", c.Log.Validate())
	p.Check(c.SigningKey.IsSet(), "signing-key", "set REVOKED_SSF_SIGNING_KEY_FILE (an RSA key of 2048 bits or more, PEM)")
	p.Check(c.SSF.ReceiversFile == "" || !c.ReceiverToken.IsSet(), "receivers-file", "give the receivers one way: a receivers file, or -receiver-audience with REVOKED_SSF_RECEIVER_TOKEN(_FILE)")
	p.Check(c.SSF.ReceiversFile != "" || c.ReceiverToken.IsSet(), "receiver-audience", "the receiver named by -receiver-audience needs REVOKED_SSF_RECEIVER_TOKEN(_FILE)")
	return p.Err()
}

func (c ssfConfig) receivers() ([]transmitter.Receiver, error) {
	if c.SSF.ReceiversFile != "" {
		return transmitter.LoadReceivers(c.SSF.ReceiversFile)
	}
	if len(c.ReceiverToken.Reveal()) < 16 {
		return nil, errors.New("REVOKED_SSF_RECEIVER_TOKEN: shorter than 16 characters")
	}
	return []transmitter.Receiver{{Name: "default", Audience: c.SSF.ReceiverAudience, Token: c.ReceiverToken}}, nil
}

// runSSFTransmitter is "consumer ssf-transmitter": it reads the
// revocations the consumer recorded (-ssf.publish on "consumer run") and
// delivers them to the receivers' streams as Security Event Tokens.
func runSSFTransmitter(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := defaultSSFConfig()
	log, err := cli.Configure(cli.NewFlagSet("consumer ssf-transmitter", stderr), args, &cfg, &cfg.Log, stderr)
	if err != nil {
		return err
	}
	key, err := ssf.ParsePrivateKeyPEM([]byte(cfg.SigningKey.Reveal()))
	if err != nil {
		return fmt.Errorf("REVOKED_SSF_SIGNING_KEY: %w", err)
	}
	signer, err := ssf.NewSigner(key)
	if err != nil {
		return fmt.Errorf("REVOKED_SSF_SIGNING_KEY: %w", err)
	}
	receivers, err := cfg.receivers()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var store audit.Store
	if cfg.Audit.Backend != "" {
		if store, err = backends.Open(ctx, cfg.Audit, log); err != nil {
			return fmt.Errorf("opening the audit store: %w", err)
		}
		defer store.Close()
	} else {
		log.Warn().Msg("no -audit.backend: SET outcomes are logged and counted, not recorded in the audit trail")
	}
	reg := ops.NewRegistry()
	t, err := transmitter.New(ctx, cfg.SSF, transmitter.Deps{Signer: signer, Receivers: receivers, Store: store, Registry: reg}, log)
	if err != nil {
		return err
	}
	srv, err := ops.NewServer(cfg.SSF.HTTP, log, reg)
	if err != nil {
		return err
	}
	if err := t.Mount(srv); err != nil {
		return err
	}
	log.Info().Str("issuer", cfg.SSF.Issuer).Str("http", cfg.SSF.HTTP.Addr).Int("receivers", len(receivers)).
		Str("kid", signer.KeyID()).Str("topic", cfg.SSF.Kafka.Topic).Msg("ssf transmitter configured")
	return cli.RunWithOps(ctx, stop, srv, t.Run)
}
