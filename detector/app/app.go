// Package app assembles a detector as it runs in production: the service
// (reader, engine, state recovery, outbox) with its guard, the writer of the
// held-command topic, and what it adds to the operations server (the kill
// switch and held-command endpoints and its readiness checks). The detector command and the
// all-in-one local deployment both build their detector here, so the local
// run is the production wiring with embedded parts substituted.
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/detector/service"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

// Config is a detector's settings: the service's at the top level
// (-kafka.brokers, REVOKED_KAFKA_BROKERS, kafka.brokers in YAML) and the
// guard's under guard.
type Config struct {
	Detector service.Config `env:"REVOKED"`
	Guard    guard.Config   `flag:"guard" env:"REVOKED_GUARD" yaml:"guard"`
}

// DefaultConfig is the detector's and the guard's defaults.
func DefaultConfig() Config {
	return Config{Detector: service.DefaultConfig(), Guard: guard.DefaultConfig()}
}

// App is an assembled detector.
type App struct {
	cfg     Config
	log     zerolog.Logger
	Service *service.Service
	Guard   *guard.Guard
	held    *kafkax.Writer
	signer  *schemas.Signer
	// closeStore closes the held-command API's writer, when it is served.
	closeStore func() error
}

// New builds the guard, the held-command writer and the service from cfg,
// registering their metrics on reg. opts are added to the service's
// (WithOnDetection, say). It connects to nothing until Run.
func New(cfg Config, signer *schemas.Signer, log zerolog.Logger, reg prometheus.Registerer, opts ...service.Option) (*App, error) {
	// guard.New and service.New each validate the settings they take.
	g, err := guard.New(cfg.Guard, guard.WithRegistry(reg), guard.WithLogger(log.With().Str("component", "guard").Logger()))
	if err != nil {
		return nil, err
	}
	held, err := kafkax.NewWriter(cfg.Detector.HeldWriter(cfg.Guard.HeldTopic), log)
	if err != nil {
		return nil, err
	}
	opts = append([]service.Option{service.WithRegistry(reg), service.WithGuard(g, held)}, opts...)
	svc, err := service.New(cfg.Detector, signer, log, opts...)
	if err != nil {
		return nil, errors.Join(err, held.Close())
	}
	return &App{cfg: cfg, log: log, Service: svc, Guard: g, held: held, signer: signer}, nil
}

// Mount adds the detector's endpoints and readiness checks to srv: the
// kill switch and the held commands (when the guard has an admin token),
// the reader's check and the held topic's (without it the detector cannot
// hold a command and retries the event that built it). Check names begin
// with prefix.
func (a *App) Mount(srv *ops.Server, prefix string) error {
	a.Guard.KillSwitch().Mount(srv, a.cfg.Guard.AdminToken, guard.DetectorKillSwitchMeaning, a.log)
	if a.cfg.Guard.AdminToken.IsSet() && a.closeStore == nil {
		store, closeStore, err := NewHeldStore(a.cfg, "revoked-detector-held", a.log)
		if err != nil {
			return err
		}
		a.closeStore = closeStore
		held.NewAPI(store, a.cfg.Guard.AdminToken, a.log).Register(srv)
	}
	if err := srv.AddCheck(prefix+"kafka-reader", a.Service.Check); err != nil {
		return err
	}
	hw := a.cfg.Detector.HeldWriter(a.cfg.Guard.HeldTopic)
	heldTopic, err := kafkax.NewClient(hw.Brokers, hw.Security, "revoked-detector")
	if err != nil {
		return err
	}
	return srv.AddCheck(prefix+"held-topic", func(ctx context.Context) error { return heldTopic.CheckTopic(ctx, hw.Topic) })
}

// Run logs the configuration, runs the service until ctx ends and closes
// the held-command writer.
func (a *App) Run(ctx context.Context) error {
	a.log.Info().Str("signing_key_id", a.signer.KeyID()).Strs("brokers", a.cfg.Detector.Reader.Brokers).
		Int("budget", a.cfg.Guard.Budget).Int("rule_budget", a.cfg.Guard.RuleBudget).Dur("guard_cooldown", a.cfg.Guard.Cooldown).
		Int("allowlist_entries", a.Guard.Allowlist().Len()).Str("held_topic", a.cfg.Guard.HeldTopic).
		Bool("kill_switch_endpoint", a.cfg.Guard.AdminToken.IsSet()).Msg("detector configured")
	err := a.Service.Run(ctx)
	if cerr := a.held.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing the held-command writer: %w", cerr))
	}
	if a.closeStore != nil {
		if cerr := a.closeStore(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the held-command API's writer: %w", cerr))
		}
	}
	return err
}

// NewHeldStore returns the commands the detector of cfg held, from its
// held and decisions topics, with a writer that publishes approvals to its
// command topic; the function returned closes the writer.
func NewHeldStore(cfg Config, clientID string, log zerolog.Logger) (*held.TopicStore, func() error, error) {
	r := cfg.Detector.Reader
	reader, err := kafkax.NewClient(r.Brokers, r.Security, clientID)
	if err != nil {
		return nil, nil, err
	}
	w := cfg.Detector.HeldWriter("") // every message names its topic
	w.ClientID = clientID
	writer, err := kafkax.NewWriter(w, log)
	if err != nil {
		return nil, nil, err
	}
	return &held.TopicStore{
		Topics:    held.Topics{Held: cfg.Guard.HeldTopic, Decisions: cfg.Guard.DecisionsTopic, Commands: cfg.Detector.Writer.Topic},
		Reader:    reader,
		Publisher: writer,
	}, writer.Close, nil
}
