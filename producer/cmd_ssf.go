package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/ssf/gtr"
	"github.com/revoked-dev/revoked/producer/ssf/receiver"
	"github.com/revoked-dev/revoked/schemas"
)

const ssfUsage = `usage: producer ssf <push|poll|gtr> [flags]

  push  receive a transmitter's SETs pushed to us (RFC 8935)
  poll  poll a transmitter's stream for SETs (RFC 8936)
  gtr   serve the global token revocation endpoint (Okta Universal Logout)

Run "producer ssf <command> -h" for a command's flags.
`

// runSSF is "producer ssf": the Shared Signals receiver (push or poll)
// and the global token revocation endpoint.
func runSSF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, ssfUsage)
		return errors.New("no ssf command given")
	}
	switch args[0] {
	case "push", "poll":
		return runSSFReceiver(ctx, args[0], args[1:], stderr)
	case "gtr":
		return runGTR(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, ssfUsage)
		return nil
	}
	fmt.Fprint(stderr, ssfUsage)
	return fmt.Errorf("unknown ssf command %q", args[0])
}

// ssfReceiverConfig is what "producer ssf push" and "producer ssf poll"
// read.
type ssfReceiverConfig struct {
	Common kafkaConfig
	// The receiver's settings sit at the top level: -issuer, -audience,
	// REVOKED_SSF_ISSUER.
	Receiver receiver.Config `env:"REVOKED_SSF" yaml:"ssf"`
	// Poll configures "poll": -poll.url and the rest.
	Poll receiver.PollConfig `flag:"poll" env:"REVOKED_SSF_POLL" yaml:"poll"`
	// HTTP is the listener: the push endpoint (push) and /livez,
	// /readyz, /metrics.
	HTTP ops.ServerConfig `flag:"http" env:"REVOKED_SSF_HTTP" yaml:"http"`
	// Path is where pushes are taken.
	Path string `flag:"path" env:"REVOKED_SSF_PATH" yaml:"path" usage:"path of the push endpoint"`
	// PushToken, when set, is required of the transmitter: give it as
	// the stream's authorization_header ("Bearer <token>").
	PushToken config.Secret `env:"REVOKED_SSF_PUSH_TOKEN" yaml:"-"`
	// PollToken is the bearer token sent to the transmitter's poll
	// endpoint.
	PollToken config.Secret `env:"REVOKED_SSF_POLL_TOKEN" yaml:"-"`
	// Signing signs the revoke commands of -commands.
	Signing cli.SigningKey
	mode    string
}

func (c ssfReceiverConfig) Validate() error {
	var p config.Problems
	c.Common.validate(&p)
	p.Nest("", c.Receiver.Validate())
	p.Nest("http", c.HTTP.Validate())
	if len(c.Receiver.Commands) > 0 {
		p.Nest("", c.Signing.Validate())
	}
	if c.mode == "poll" {
		p.Nest("poll", c.Poll.Validate(c.Receiver.AllowHTTP))
		p.Check(c.PollToken.IsSet(), "poll.token", "set REVOKED_SSF_POLL_TOKEN_FILE: the transmitter's poll endpoint needs a bearer token")
	} else {
		p.Check(c.Path != "" && c.Path[0] == '/', "path", "must start with /")
	}
	return p.Err()
}

func runSSFReceiver(ctx context.Context, mode string, args []string, stderr io.Writer) error {
	h := ops.DefaultServerConfig()
	h.Addr = ":8087"
	cfg := ssfReceiverConfig{Common: defaultKafkaConfig(), Receiver: receiver.DefaultConfig(), Poll: receiver.DefaultPollConfig(),
		HTTP: h, Path: receiver.PushPath, mode: mode}
	if err := cli.Load(cli.NewFlagSet("producer ssf "+mode, stderr), args, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := cfg.Common.TokenIDs.Apply(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Common.Log, stderr)
	if err != nil {
		return err
	}
	var signer *schemas.Signer
	if len(cfg.Receiver.Commands) > 0 {
		if signer, err = cfg.Signing.Signer(); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	topics := []string{cfg.Receiver.EventsTopic}
	if len(cfg.Receiver.Commands) > 0 {
		topics = append(topics, cfg.Receiver.CommandsTopic)
	}
	w, err := cfg.Common.writer(ctx, log, topics...)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	reg := ops.NewRegistry()
	r, err := receiver.New(cfg.Receiver, receiver.Deps{Publisher: w, Signer: signer, Registry: reg}, log)
	if err != nil {
		return err
	}
	srv, err := opsServer(cfg.HTTP, cfg.Common.Kafka, log, reg)
	if err != nil {
		return err
	}
	if mode == "push" {
		if !cfg.PushToken.IsSet() {
			log.Warn().Msg("the push endpoint takes SETs from anyone who can reach it (their signatures are still verified): set REVOKED_SSF_PUSH_TOKEN_FILE and give it to the transmitter as the stream's authorization_header")
		}
		srv.Handle(cfg.Path, r.PushHandler(cfg.PushToken))
		log.Info().Str("issuer", cfg.Receiver.Issuer).Str("http", cfg.HTTP.Addr).Str("path", cfg.Path).Msg("ssf push receiver configured")
		return cli.RunWithOps(ctx, stop, srv, func(ctx context.Context) error { <-ctx.Done(); return nil })
	}
	p, err := r.NewPoller(cfg.Poll, cfg.PollToken, &http.Client{})
	if err != nil {
		return err
	}
	log.Info().Str("issuer", cfg.Receiver.Issuer).Str("poll_url", cfg.Poll.URL).Msg("ssf poll receiver configured")
	return cli.RunWithOps(ctx, stop, srv, p.Run)
}

// opsServer is the listener with /livez, /readyz (Kafka reachable) and
// /metrics.
func opsServer(c ops.ServerConfig, kc kafkax.WriterConfig, log zerolog.Logger, reg *prometheus.Registry) (*ops.Server, error) {
	srv, err := ops.NewServer(c, log, reg)
	if err != nil {
		return nil, err
	}
	check, err := kafkax.BrokersCheck(kc)
	if err != nil {
		return nil, err
	}
	if err := srv.AddCheck("kafka", check); err != nil {
		return nil, err
	}
	return srv, nil
}

// gtrConfig is what "producer ssf gtr" reads.
type gtrConfig struct {
	Common kafkaConfig
	// The endpoint's settings sit at the top level: -endpoint,
	// -clients-file, REVOKED_GTR_ENDPOINT.
	GTR     gtr.Config       `env:"REVOKED_GTR" yaml:"gtr"`
	HTTP    ops.ServerConfig `flag:"http" env:"REVOKED_GTR_HTTP" yaml:"http"`
	Signing cli.SigningKey
}

func (c gtrConfig) Validate() error {
	var p config.Problems
	c.Common.validate(&p)
	p.Nest("", c.GTR.Validate())
	p.Nest("http", c.HTTP.Validate())
	p.Nest("", c.Signing.Validate())
	return p.Err()
}

func runGTR(ctx context.Context, args []string, stderr io.Writer) error {
	h := ops.DefaultServerConfig()
	h.Addr = ":8086"
	cfg := gtrConfig{Common: defaultKafkaConfig(), GTR: gtr.DefaultConfig(), HTTP: h}
	if err := cli.Load(cli.NewFlagSet("producer ssf gtr", stderr), args, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := cfg.Common.TokenIDs.Apply(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Common.Log, stderr)
	if err != nil {
		return err
	}
	signer, err := cfg.Signing.Signer()
	if err != nil {
		return err
	}
	clients, err := gtr.LoadClients(cfg.GTR.ClientsFile, cfg.GTR.AllowHTTP, &http.Client{}, nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := cfg.Common.writer(ctx, log, cfg.GTR.CommandsTopic)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	reg := ops.NewRegistry()
	ep, err := gtr.New(cfg.GTR, gtr.Deps{Clients: clients, Signer: signer, Publisher: w, Registry: reg}, log)
	if err != nil {
		return err
	}
	srv, err := opsServer(cfg.HTTP, cfg.Common.Kafka, log, reg)
	if err != nil {
		return err
	}
	ep.Mount(srv)
	log.Info().Str("endpoint", cfg.GTR.Endpoint).Str("http", cfg.HTTP.Addr).Int("clients", len(clients)).Msg("global token revocation endpoint configured")
	return cli.RunWithOps(ctx, stop, srv, func(ctx context.Context) error { <-ctx.Done(); return nil })
}
