// Package app assembles a consumer as it runs in production: the audit
// store it writes (behind the spool when there is one) and the read-only
// store its analysts' API reads, the lineage follower, the service (reader,
// verification, guard, token API calls, audit writer), the token API's
// readiness check, and what it adds to the operations server (checks, the
// analysts' API and UI, the held-command and kill-switch endpoints). The
// consumer command and the all-in-one local deployment both build their
// consumer here, so the local run is the production wiring with embedded
// parts substituted.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/audit/spool"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/lineage"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/held"
	"github.com/revoked-dev/revoked/internal/killswitch"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

// startTry bounds the consumer's first try of the audit store when it has
// a spool and so need not wait for it.
const startTry = 10 * time.Second

// Config is what the assembly reads beyond the secrets in Deps.
type Config struct {
	Consumer service.Config
	Audit    backends.Config
	Lineage  lineage.Config
	// IdPCheckInterval is how often the token API's readiness is checked
	// (0: not checked).
	IdPCheckInterval time.Duration
	// APIToken is the analysts' API bearer token (unset: open, which the
	// caller allows only on loopback).
	APIToken config.Secret
}

// Deps are what the caller builds: keys, the token API client and the
// metrics registry.
type Deps struct {
	TokenAPI         *idp.Client
	Keyring          *schemas.Keyring
	Seal             *schemas.SealKey
	CheckpointSigner *schemas.Signer
	Registry         prometheus.Registerer
	// Observe, when set, sees every audit row once it is durable.
	Observe func(schemas.AuditRow)
	// Revocations, when set, hears of every revocation carried out (the
	// Shared Signals transmitter's publisher).
	Revocations service.RevocationSink
}

// App is an assembled consumer.
type App struct {
	cfg     Config
	log     zerolog.Logger
	Service *service.Service
	// Store is the store the consumer writes (the spool, when there is
	// one); Reader is the read-only store the analysts' API reads.
	Store, Reader audit.Store
	closeReader   func() error
	// closeHeld closes what the held-command endpoints opened, once
	// mounted.
	closeHeld func() error
	follower  *lineage.Follower
	readiness *idp.Readiness
}

// New opens the stores, builds the lineage follower (when enabled) and the
// service. It connects to Kafka and the token API only when Run runs. The
// caller closes the App when done.
func New(ctx context.Context, cfg Config, deps Deps, log zerolog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log, closeReader: func() error { return nil }}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.Close())
		}
	}()
	// With a spool directory the consumer writes through the spool, which
	// owns the store from then on, and starts while the store is down.
	if a.Store, err = openWriter(ctx, cfg.Audit, deps.Registry, log); err != nil {
		return nil, err
	}
	if a.Reader, a.closeReader, err = openReader(ctx, cfg.Audit, a.Store, log); err != nil {
		return nil, err
	}
	sdeps := service.Deps{
		Store: a.Store, TokenAPI: deps.TokenAPI, Keyring: deps.Keyring, Seal: deps.Seal, Registry: deps.Registry,
		CheckpointSigner: deps.CheckpointSigner, Observe: deps.Observe, Revocations: deps.Revocations,
	}
	if cfg.Lineage.Enabled {
		index := lineage.NewIndex(cfg.Lineage.Retention, cfg.Lineage.MaxEntries, nil)
		if a.follower, err = lineage.NewFollower(cfg.Consumer.Reader.Brokers, cfg.Consumer.Reader.Security, cfg.Lineage, index, log); err != nil {
			return nil, err
		}
		sdeps.Lineage = index
	}
	if a.Service, err = service.New(ctx, cfg.Consumer, sdeps, log); err != nil {
		return nil, err
	}
	if cfg.IdPCheckInterval > 0 {
		a.readiness = idp.NewReadiness(deps.TokenAPI, cfg.IdPCheckInterval, log)
	}
	return a, nil
}

// openWriter opens the store the consumer writes to. With a spool
// directory, the store is tried once at start and, if it does not answer,
// opened (and migrated) when it does (backends.OpenDeferred), behind the
// spool, which takes the rows meanwhile. Without one, an unreachable store
// fails the start.
func openWriter(ctx context.Context, cfg backends.Config, reg prometheus.Registerer, log zerolog.Logger) (audit.Store, error) {
	if cfg.SpoolDir == "" {
		store, err := backends.Open(ctx, cfg, log)
		if err != nil {
			return nil, fmt.Errorf("opening the audit store: %w (without -audit.spool-dir the consumer needs the audit store to start; with one it starts, spools and writes the rows once the store answers)", err)
		}
		return store, nil
	}
	store, err := backends.OpenDeferred(ctx, cfg, startTry, log)
	if err != nil {
		return nil, fmt.Errorf("opening the audit store: %w", err)
	}
	sp, err := spool.Open(cfg.SpoolDir, store, spool.Options{Registerer: reg}, log)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening the audit spool: %w", err), store.Close())
	}
	return sp, nil
}

// openReader returns the store the analysts' API reads through, and how to
// close it: a connection of its own as the read-only user when
// -audit.read-dsn is set, otherwise the writer's store with its writes
// refused (chDB is one store per process, and a second pool as the same
// user would buy nothing).
func openReader(ctx context.Context, cfg backends.Config, writer audit.Store, log zerolog.Logger) (audit.Store, func() error, error) {
	if cfg.ReadDSN == "" {
		return backends.ReadOnly(writer), func() error { return nil }, nil
	}
	open := func(ctx context.Context) (audit.Store, error) { return OpenReadOnly(ctx, cfg, log) }
	if cfg.SpoolDir != "" {
		// The consumer starts while the store is down; so does its API.
		store := backends.Deferred(open, log)
		return backends.ReadOnly(store), store.Close, nil
	}
	store, err := open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return store, store.Close, nil
}

// OpenReadOnly opens the store of the read path (backends.OpenReader): as
// the read-only user of -audit.read-dsn when one is set, never migrated;
// its writes are refused either way. The caller closes it.
func OpenReadOnly(ctx context.Context, cfg backends.Config, log zerolog.Logger) (audit.Store, error) {
	store, err := backends.OpenReader(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("opening the audit store for reading: %w", err)
	}
	return store, nil
}

// Mount adds the consumer's readiness checks (named with prefix), the
// analysts' API and UI (behind the API token) and, with a guard admin
// token, the held-command and kill-switch endpoints to srv.
func (a *App) Mount(srv *ops.Server, prefix string) error {
	check := a.Service.Check
	if sp, ok := a.Store.(*spool.Store); ok {
		// Spooling is degraded service, not unreadiness.
		check = sp.Check
	}
	if err := srv.AddCheck(prefix+"audit-store", check); err != nil {
		return err
	}
	if err := srv.AddCheck(prefix+"kafka-reader", a.Service.ReaderCheck); err != nil {
		return err
	}
	if a.readiness != nil {
		// The consumer starts whatever the token API says; /readyz tells
		// why it cannot authenticate there.
		if err := srv.AddCheck(prefix+"idp", a.readiness.Check); err != nil {
			return err
		}
	}
	MountAPI(srv, a.Reader, a.cfg.APIToken, a.log)
	if a.cfg.Consumer.Guard.AdminToken.IsSet() && a.closeHeld == nil {
		src, closeHeld, err := service.HeldSources(a.cfg.Consumer, a.Service.Approvals(), a.log)
		if err != nil {
			return err
		}
		a.closeHeld = closeHeld
		MountGuards(srv, src, a.Service.KillSwitch(), a.cfg.Consumer.Guard.AdminToken, a.log)
		return nil
	}
	MountGuards(srv, nil, a.Service.KillSwitch(), a.cfg.Consumer.Guard.AdminToken, a.log)
	return nil
}

// MountAPI serves the analysts' API and web UI beside /livez, /readyz and
// /metrics; the API's data is behind the bearer token when one is set, the
// UI's static files (which hold no data) are not.
func MountAPI(srv *ops.Server, store audit.Store, token config.Secret, log zerolog.Logger) {
	api.New(store, log).Mount(srv, token)
}

// MountGuards serves the held commands (every component's: see
// service.HeldSources) and the kill switch, behind the guard admin token;
// without one, neither is served.
func MountGuards(srv *ops.Server, src held.Source, kill *guard.KillSwitch, token config.Secret, log zerolog.Logger) {
	if !token.IsSet() {
		log.Warn().Msg("no guard admin token: the held-command and kill-switch endpoints are not served")
		return
	}
	held.NewAPI(src, token, log).Register(srv)
	kill.Mount(srv, token, guard.ConsumerKillSwitchMeaning, log)
	// The consumer's earlier kill-switch path says where the one shape of
	// both components is served now.
	srv.Handle("/api/v1/killswitch", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ops.WriteJSON(w, http.StatusGone, map[string]string{"error": "the kill switch is at " + killswitch.Path + " (GET; POST {\"engaged\": bool, \"by\": \"name\"})"})
	}))
}

// Run runs the service until ctx ends, with the token API's readiness
// check and the lineage follower beside it; they stop when it returns.
// The result joins every error.
func (a *App) Run(ctx context.Context) error {
	var tasks []func(context.Context) error
	if a.readiness != nil {
		tasks = append(tasks, a.readiness.Run)
	}
	if a.follower != nil {
		tasks = append(tasks, a.follower.Run)
	}
	return alongside(a.Service.Run, tasks...)(ctx)
}

// alongside runs tasks (the IdP readiness check, the lineage follower)
// beside run and stops them when run returns; the result joins every
// error.
func alongside(run func(context.Context) error, tasks ...func(context.Context) error) func(context.Context) error {
	if len(tasks) == 0 {
		return run
	}
	return func(ctx context.Context) error {
		tctx, cancel := context.WithCancel(ctx)
		done := make(chan error, len(tasks))
		for _, task := range tasks {
			go func() { done <- task(tctx) }()
		}
		err := run(ctx)
		cancel()
		errs := []error{err}
		for range tasks {
			errs = append(errs, <-done)
		}
		return errors.Join(errs...)
	}
}

// LineageStats is what the lineage follower has read, and false when it
// is off.
func (a *App) LineageStats() (lineage.Stats, bool) {
	if a.follower == nil {
		return lineage.Stats{}, false
	}
	return a.follower.Stats(), true
}

// Close closes the stores, and the held-command endpoints' writer.
func (a *App) Close() error {
	var errs []error
	if a.closeHeld != nil {
		errs = append(errs, a.closeHeld())
	}
	if a.closeReader != nil {
		errs = append(errs, a.closeReader())
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	return errors.Join(errs...)
}
