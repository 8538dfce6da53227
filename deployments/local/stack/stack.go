// Package stack runs the whole pipeline in one process on embedded
// defaults: the in-process Kafka broker on a real TCP port, the reference
// token API, the detector, the consumer with its audit store (chDB by
// default, or a ClickHouse server), and the analyst API. It is what
// `go run ./deployments/local` starts and what the end-to-end tests drive.
package stack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	conapp "github.com/revoked-dev/revoked/consumer/app"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/lineage"
	consumer "github.com/revoked-dev/revoked/consumer/service"
	tokenapi "github.com/revoked-dev/revoked/deployments/tokenapi/server"
	detapp "github.com/revoked-dev/revoked/detector/app"
	detector "github.com/revoked-dev/revoked/detector/service"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/enrich"
	"github.com/revoked-dev/revoked/internal/guard"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/broker"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/ingest"
	"github.com/revoked-dev/revoked/schemas"
)

// Config configures the local stack.
type Config struct {
	KafkaAddr    string `flag:"kafka-addr" env:"REVOKED_LOCAL_KAFKA_ADDR" usage:"listen address of the embedded Kafka broker"`
	TokenAPIAddr string `flag:"tokenapi-addr" env:"REVOKED_LOCAL_TOKENAPI_ADDR" usage:"listen address of the reference token API"`
	HTTPAddr     string `flag:"http-addr" env:"REVOKED_LOCAL_HTTP_ADDR" usage:"listen address of the analyst API, /metrics, /livez and /readyz"`
	// IngestAddr is where the HTTP ingest endpoint listens, as `producer
	// ingest --listen` serves it (empty: none).
	IngestAddr string `flag:"ingest-addr" env:"REVOKED_LOCAL_INGEST_ADDR" usage:"listen address of the HTTP ingest endpoint, POST /v1/events (empty: none)"`
	// Partitions of audit.events and revoke.commands: by default one per
	// core, at least two (DefaultPartitions).
	Partitions int `flag:"partitions" env:"REVOKED_LOCAL_PARTITIONS" usage:"partitions of audit.events and revoke.commands (default: one per core, at least 2)"`
	// Audit selects the audit store: chDB in DataDir by default.
	Audit backends.Config `flag:"audit" env:"REVOKED_AUDIT"`
	// DryRun makes the detector issue only dry-run commands.
	DryRun bool `flag:"dry-run" env:"REVOKED_LOCAL_DRY_RUN" usage:"detect but do not revoke (every command is dry_run)"`
	// Guard is the detector's guard, as in production: allowlist, kill
	// switch, cross-rule cooldown and budgets (-guard.*). The local run's
	// budgets are off by default: its simulated tenant revokes several
	// hundred tokens a minute (every logout is one), which a production
	// budget of 60 would hold for approval.
	Guard guard.Config `flag:"guard" env:"REVOKED_GUARD"`
	// ConsumerGuard is the consumer's own guard, as in production:
	// allowlist, kill switch and budgets (-consumer-guard.*), and with
	// an admin token its held-command API (the detector's held commands
	// beside its own) and kill switch on the HTTP address. Off by default,
	// as the detector's budgets are.
	ConsumerGuard guard.ConsumerConfig `flag:"consumer-guard" env:"REVOKED_CONSUMER_GUARD"`
	// GeoIP is the detector's address enrichment: -geoip.dir,
	// REVOKED_GEOIP_DIR (run.sh installs the databases and sets it).
	GeoIP enrich.Config `flag:"geoip" env:"REVOKED_GEOIP"`
	// KeyDir keeps the audit checkpoint key (checkpoint.key, and its
	// public half checkpoint.pub for `consumer verify`), made there on
	// first use and read back after, so the trail stays anchored across
	// runs; empty, the key lives in memory only.
	KeyDir string `flag:"-" env:"-"`
}

// DefaultConfig listens on the documented local ports.
func DefaultConfig() Config {
	return Config{
		KafkaAddr:     "127.0.0.1:9092",
		TokenAPIAddr:  "127.0.0.1:8090",
		HTTPAddr:      "127.0.0.1:8080",
		IngestAddr:    "127.0.0.1:8081",
		Partitions:    DefaultPartitions(),
		Audit:         backends.Config{Backend: backends.ChDB},
		GeoIP:         enrich.DefaultConfig(),
		Guard:         localGuard(),
		ConsumerGuard: consumer.DefaultConfig().Guard,
	}
}

// DefaultPartitions is the local stack's partition count: one per core
// the process may use, at least two. Every partition costs its own fetch
// and produce requests, and in one process they compete with the work for
// the same cores: on 2 cores at 10,000 events/s (`--simulate 20s --rate
// 10000 --users 10000`, three runs each) 2 partitions took 10% less CPU
// than 8 (32.6 to 33.5 s against 37.1 to 38.2 s), with event → revoked p50
// 16 ms against 24 to 29 ms and p99 79 to 110 ms against 104 to 167 ms.
// The detector's partitions are also what run its decoding in parallel,
// so a larger machine gets more of them.
func DefaultPartitions() int { return max(2, runtime.GOMAXPROCS(0)) }

// localGuard is the guard's defaults without budgets.
func localGuard() guard.Config {
	g := guard.DefaultConfig()
	g.Budget, g.RuleBudget = 0, 0
	return g
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var p config.Problems
	for name, addr := range map[string]string{"kafka-addr": c.KafkaAddr, "tokenapi-addr": c.TokenAPIAddr, "http-addr": c.HTTPAddr, "ingest-addr": c.IngestAddr} {
		if addr == "" && name == "ingest-addr" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			p.Addf(name, "not host:port: %v", err)
		}
	}
	p.Check(c.Partitions > 0 && c.Partitions <= 256, "partitions", "must be in [1, 256]")
	p.Nest("audit", c.Audit.Validate())
	p.Nest("guard", c.Guard.Validate())
	p.Nest("consumer-guard", c.ConsumerGuard.Validate())
	// One HTTP address serves the local run's endpoints: one kill switch
	// and one held-command API (the consumer's lists the detector's held
	// commands too).
	p.Check(!c.Guard.AdminToken.IsSet() || !c.ConsumerGuard.AdminToken.IsSet(), "consumer-guard",
		"give the admin token to one guard: both serve /admin/kill-switch and /api/v1/held on the one HTTP address")
	return p.Err()
}

// Observer sees what happens in the stack; its callbacks must not block.
type Observer struct {
	// Detection is called for every command the detector published.
	Detection func(schemas.RevokeCommand)
	// AuditRow is called for every audit row the consumer wrote.
	AuditRow func(schemas.AuditRow)
}

// Stack is a running pipeline.
type Stack struct {
	// Brokers is the embedded broker's address.
	Brokers []string
	// TokenAPIURL is the reference token API's base URL (its issuer).
	TokenAPIURL string
	// HTTPURL is the analyst API's base URL.
	HTTPURL string
	// AdminToken protects the token API's admin calls.
	AdminToken config.Secret
	// Signer signs commands; producers of manual commands use it too.
	Signer *schemas.Signer
	// CheckpointSigner signs the audit chain's checkpoints.
	CheckpointSigner *schemas.Signer
	// Seal is the consumer's sealing key pair.
	Seal *schemas.SealKey
	// IngestURL is the HTTP ingest endpoint's base URL ("" when off).
	IngestURL string
	// Store is the audit store the consumer writes (through its spool).
	Store    audit.Store
	consumer *conapp.App
	// IdP is a privileged client of the token API.
	IdP *idp.Client
	// Registry holds every component's metrics.
	Registry *prometheus.Registry

	appSecret config.Secret
	tally     *tally

	log zerolog.Logger
	// Components (detector, consumer, HTTP) stop first, under cancel and
	// wg; the infrastructure they use (broker, token API) after them.
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	infraCancel context.CancelFunc
	infraWG     sync.WaitGroup
	mu          sync.Mutex
	errs        []error
	closed      bool
	broker      *broker.Broker
}

// Start brings the pipeline up and returns once every component runs. Stop
// it with Close; cancelling ctx stops it too.
func Start(ctx context.Context, cfg Config, obs Observer, log zerolog.Logger) (_ *Stack, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	infraCtx, infraCancel := context.WithCancel(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancel(ctx)
	s := &Stack{log: log, cancel: cancel, infraCancel: infraCancel, Registry: ops.NewRegistry()}
	defer func() {
		// A failed start releases what it had started.
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()

	// Keys live only in memory for the life of the stack.
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	s.Signer = schemas.NewSigner(priv)
	cpriv, err := checkpointKey(cfg.KeyDir)
	if err != nil {
		return nil, err
	}
	s.CheckpointSigner = schemas.NewSigner(cpriv)
	if s.Seal, err = schemas.GenerateSealKey(); err != nil {
		return nil, err
	}
	s.AdminToken = config.NewSecret(randomSecret())
	revokerSecret := config.NewSecret(randomSecret())
	appSecret := config.NewSecret(randomSecret())
	s.appSecret = appSecret
	s.tally = newTally()
	obs = s.tally.wrap(obs)

	// Kafka.
	bcfg := broker.DefaultConfig()
	bcfg.Addr = cfg.KafkaAddr
	bcfg.Topics = map[string]int{
		schemas.TopicAuditEvents: cfg.Partitions, schemas.TopicRevokeCommands: cfg.Partitions, schemas.TopicDLQ: 1,
		cfg.Guard.HeldTopic: 1, cfg.Guard.DecisionsTopic: 1,
	}
	bcfg.Logger = log.With().Str("component", "kafka").Logger()
	if s.broker, err = broker.Start(infraCtx, bcfg); err != nil {
		return nil, fmt.Errorf("starting the embedded broker: %w", err)
	}
	s.Brokers = []string{s.broker.Addr()}

	// The reference token API.
	ln, err := net.Listen("tcp", cfg.TokenAPIAddr)
	if err != nil {
		return nil, fmt.Errorf("token API: %w", err)
	}
	s.TokenAPIURL = "http://" + ln.Addr().String()
	api, err := tokenapi.New(tokenapi.Config{
		Issuer: s.TokenAPIURL,
		Clients: []tokenapi.ClientConfig{
			{ID: "revoker", Secret: revokerSecret, Grants: []string{tokenapi.GrantClientCredentials}, RevokeAny: true, IntrospectAny: true},
			{ID: "web-app", Secret: appSecret, Grants: []string{tokenapi.GrantClientCredentials, tokenapi.GrantTokenExchange}, Scopes: []string{"files.read", "files.write", "profile"}},
			{ID: "desktop-sync", Secret: appSecret, Grants: []string{tokenapi.GrantClientCredentials}, Scopes: []string{"files.read", "files.write", "profile"}},
			{ID: "mobile-app", Secret: appSecret, Grants: []string{tokenapi.GrantClientCredentials}, Scopes: []string{"files.read", "files.write", "profile"}},
		},
		AdminToken: s.AdminToken,
	}, log.With().Str("component", "tokenapi").Logger())
	if err == nil {
		err = api.RegisterMetrics(s.Registry)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.goRunInfra("tokenapi", func() error { return api.Serve(infraCtx, ln) })

	ccfg := consumer.DefaultConfig()
	// The token API client keeps an idle connection for every command the
	// consumer can have in flight, as the consumer command's does: with
	// Go's default of two, the run at 10,000 events/s spent 2.7 s of CPU
	// a minute dialling the token API again.
	s.IdP, err = idp.New(idp.Config{
		Issuer: s.TokenAPIURL, ClientID: "revoker", ClientSecret: revokerSecret,
		AuthMethod: idp.AuthClientSecretBasic, Timeout: 10 * time.Second,
		Admin: idp.ReferencePreset(s.TokenAPIURL, s.AdminToken),
	}, consumer.NewHTTPClient(ccfg.Reader.Concurrency), log.With().Str("component", "idp").Logger(), idp.WithRegisterer(s.Registry))
	if err != nil {
		return nil, err
	}

	// The detector, assembled as the detector command assembles it.
	dcfg := detapp.DefaultConfig()
	dcfg.Detector.Reader.Brokers = s.Brokers
	dcfg.Detector.Reader.StartOffset = kafkax.StartFirst
	dcfg.Detector.Writer.Brokers = s.Brokers
	dcfg.Detector.Engine.Issuer = "detector"
	dcfg.Detector.Engine.DryRun = cfg.DryRun
	dcfg.Detector.GeoIP = cfg.GeoIP
	dcfg.Guard = cfg.Guard
	var dopts []detector.Option
	if obs.Detection != nil {
		dopts = append(dopts, detector.WithOnDetection(obs.Detection))
	}
	det, err := detapp.New(dcfg, s.Signer, log.With().Str("component", "detector").Logger(), s.Registry, dopts...)
	if err != nil {
		return nil, err
	}
	s.goRun("detector", func() error { return det.Run(ctx) })

	// The consumer, assembled as the consumer command assembles it: the
	// audit store behind a spool (in -audit.spool-dir, else beside chDB's
	// data), the analysts' API on the read-only store, the lineage
	// follower and the token API's readiness check.
	acfg := cfg.Audit
	if acfg.SpoolDir == "" && acfg.ChDBPath != "" {
		acfg.SpoolDir = filepath.Join(acfg.ChDBPath, "spool")
	}
	ccfg.Reader.Brokers = s.Brokers
	ccfg.Reader.StartOffset = kafkax.StartFirst
	ccfg.Actor = "consumer-local"
	ccfg.Guard = cfg.ConsumerGuard
	lcfg := lineage.DefaultConfig()
	con, err := conapp.New(ctx, conapp.Config{Consumer: ccfg, Audit: acfg, Lineage: lcfg, IdPCheckInterval: idp.DefaultCheckInterval}, conapp.Deps{
		TokenAPI: s.IdP, Keyring: schemas.NewKeyring(s.Signer.Public()), Seal: s.Seal,
		Registry: s.Registry, Observe: obs.AuditRow, CheckpointSigner: s.CheckpointSigner,
	}, log.With().Str("component", "consumer").Logger())
	if err != nil {
		return nil, err
	}
	s.consumer, s.Store = con, con.Store
	s.goRun("consumer", func() error { return con.Run(ctx) })

	// The analyst API and operations endpoints.
	ocfg := ops.DefaultServerConfig()
	ocfg.Addr = cfg.HTTPAddr
	srv, err := ops.NewServer(ocfg, log.With().Str("component", "http").Logger(), s.Registry)
	if err != nil {
		return nil, err
	}
	if err := det.Mount(srv, "detector-"); err != nil {
		return nil, err
	}
	if err := con.Mount(srv, "consumer-"); err != nil {
		return nil, err
	}
	addr, err := srv.Listen()
	if err != nil {
		return nil, fmt.Errorf("analyst API: %w", err)
	}
	s.HTTPURL = "http://" + addr.String()
	s.goRun("http", func() error { return srv.Run(ctx) })

	// The ingest endpoint, assembled as the producer's ingest command
	// assembles it, publishing to audit.events.
	if cfg.IngestAddr != "" {
		if err := s.startIngest(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startIngest starts the HTTP ingest endpoint on cfg.IngestAddr.
func (s *Stack) startIngest(ctx context.Context, cfg Config, log zerolog.Logger) error {
	wcfg := kafkax.DefaultWriterConfig()
	wcfg.Brokers = s.Brokers
	wcfg.ClientID = "revoked-local-ingest"
	w, err := kafkax.NewWriter(wcfg, log.With().Str("component", "ingest").Logger())
	if err != nil {
		return err
	}
	icfg := ingest.EndpointConfig{Ingest: ingest.DefaultConfig(), HTTP: ingest.DefaultHTTPConfig(), GeoIP: cfg.GeoIP, Kafka: wcfg}
	icfg.HTTP.Addr = cfg.IngestAddr
	// The detector in this process enriches every event it reads; a second
	// copy of the address databases here would cost about 200 ms and 16 MB
	// at start for nothing.
	icfg.GeoIP.Enabled = false
	ep, err := ingest.NewEndpoint(icfg, w, log.With().Str("component", "ingest").Logger(), ops.NewRegistry())
	if err != nil {
		return errors.Join(err, w.Close())
	}
	ln, err := net.Listen("tcp", cfg.IngestAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("ingest endpoint: %w", err), w.Close())
	}
	s.IngestURL = "http://" + ln.Addr().String()
	s.goRun("ingest", func() error { return errors.Join(ep.Serve(ctx, ln), w.Close()) })
	return nil
}

// LineageStats is what the consumer's lineage follower has read, and
// false when it is off.
func (s *Stack) LineageStats() (lineage.Stats, bool) { return s.consumer.LineageStats() }

func (s *Stack) goRun(name string, fn func() error) { s.run(&s.wg, name, fn) }

func (s *Stack) goRunInfra(name string, fn func() error) { s.run(&s.infraWG, name, fn) }

func (s *Stack) run(wg *sync.WaitGroup, name string, fn func() error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
			s.log.Error().Err(err).Str("component", name).Msg("component stopped")
		}
	}()
}

// Err returns the errors of components that stopped on their own.
func (s *Stack) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Close stops every component in order (intake first: each component's
// Run drains its in-flight work) and releases the store and the broker.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	var errs []error
	if s.consumer != nil {
		errs = append(errs, s.consumer.Close())
	}
	s.infraCancel()
	s.infraWG.Wait()
	if s.broker != nil {
		s.broker.Close()
	}
	errs = append(errs, s.Err())
	return errors.Join(errs...)
}

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Checkpoint key files in Config.KeyDir.
const (
	CheckpointKeyFile       = "checkpoint.key"
	CheckpointPublicKeyFile = "checkpoint.pub"
)

// checkpointKey reads the checkpoint signing key from dir, making it (and
// its public half) there when absent; with no dir, a new key in memory.
func checkpointKey(dir string) (ed25519.PrivateKey, error) {
	if dir == "" {
		return schemas.GenerateSigningKey()
	}
	path := filepath.Join(dir, CheckpointKeyFile)
	if priv, err := schemas.LoadPrivateKeyFile(path); err == nil {
		return priv, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	privPEM, err := schemas.MarshalPrivateKeyPEM(priv)
	if err != nil {
		return nil, err
	}
	pubPEM, err := schemas.MarshalPublicKeyPEM(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, CheckpointPublicKeyFile), pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	if err := os.WriteFile(path, privPEM, 0o600); err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	return priv, nil
}
