// Command consumer carries out signed revoke commands against the token API
// and keeps the audit trail in ClickHouse.
//
//	consumer [run] [flags]          read revoke.commands, revoke, audit (default)
//	consumer history [flags]        print a user's revocation history as a table
//	consumer held list [-all]       list commands held for approval
//	consumer held approve -id ID [-approver NAME]
//	consumer held reject -id ID [-approver NAME] [-reason TEXT]
//	consumer ssf-transmitter [flags] deliver the revocations as Shared Signals SETs
//
// Held commands (over the revocation budget, or under the kill switch) are
// also listed, approved and rejected over HTTP, beside the kill switch:
// GET /api/v1/held, POST /api/v1/held/{command_id}/approve|reject and
// GET|POST /api/v1/killswitch, each with "Authorization: Bearer" and the
// guard admin token (REVOKED_GUARD_ADMIN_TOKEN(_FILE)); without it those
// endpoints are not served.
//
// Settings come from flags, REVOKED_* environment variables and an
// optional YAML file (-config or REVOKED_CONFIG), in that order of
// precedence; run "consumer run -h" for the list. Secrets come only from
// the environment or files: the token API client secret
// (REVOKED_IDP_CLIENT_SECRET or REVOKED_IDP_CLIENT_SECRET_FILE), its admin
// token (REVOKED_IDP_ADMIN_AUTH_TOKEN(_FILE)), the sealing key
// (REVOKED_SEAL_KEY(_FILE)), and the trusted command-signing public keys
// (files named by -verify-key-files or REVOKED_VERIFY_KEY_FILES).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/app"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/lineage"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/consumer/ssf/transmitter"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/held"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

func main() {
	cli.Exit("consumer", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args := cli.Subcommand(args, "run")
	switch cmd {
	case "run":
		return runConsumer(ctx, args, stderr)
	case "history":
		return history(ctx, args, stdout, stderr)
	case "verify":
		return verifyTrail(ctx, args, stdout, stderr)
	case "export", "verify-export":
		return exportCommand(ctx, cmd, args, stdout, stderr)
	case "held":
		return runHeld(ctx, args, stdout, stderr)
	case "ssf-transmitter":
		return runSSFTransmitter(ctx, args, stderr)
	}
	return fmt.Errorf("unknown command %q (want run, history, held, verify, export, verify-export or ssf-transmitter)", cmd)
}

// storeConfig is the audit store's part of every subcommand.
type storeConfig struct {
	Audit backends.Config `flag:"audit" env:"REVOKED_AUDIT" yaml:"audit"`
	Log   ops.LogConfig   `flag:"log" env:"REVOKED_LOG" yaml:"log"`
}

// runConfig is everything "consumer run" reads.
type runConfig struct {
	Consumer service.Config   `env:"REVOKED"`
	Store    storeConfig      `yaml:"-"`
	IdP      idp.Config       `flag:"idp" env:"REVOKED_IDP" yaml:"idp"`
	Ops      ops.ServerConfig `flag:"http" env:"REVOKED_HTTP" yaml:"http"`
	// Lineage follows token.exchanged events on the reader's brokers, so
	// include_downscoped commands also revoke descendants the token API
	// does not know of.
	Lineage lineage.Config `flag:"lineage" env:"REVOKED_LINEAGE" yaml:"lineage"`
	// VerifyKeyFiles name the PEM files of the Ed25519 public keys whose
	// signatures the consumer trusts.
	VerifyKeyFiles []string `flag:"verify-key-files" env:"REVOKED_VERIFY_KEY_FILES" yaml:"verify_key_files" usage:"files holding the trusted command-signing public keys (PKIX PEM), comma-separated"`
	// SealKey opens sealed raw tokens (base64 X25519 private key).
	SealKey config.Secret `env:"REVOKED_SEAL_KEY" yaml:"-"`
	// CheckpointKey signs checkpoints of the audit chain (an Ed25519 key,
	// PKCS #8 PEM or base64 seed), which `consumer verify` checks against
	// REVOKED_CHECKPOINT_VERIFY_KEY_FILES. Unset: no checkpoints.
	CheckpointKey config.Secret `env:"REVOKED_CHECKPOINT_SIGNING_KEY" yaml:"-"`
	// APIToken is the bearer token the analyst API asks for. It is required
	// when the HTTP address is not a loopback one.
	APIToken config.Secret `env:"REVOKED_API_TOKEN" yaml:"-"`
	// TokenIDs gives -token-id-pattern and REVOKED_TOKEN_ID_PATTERN.
	TokenIDs cli.TokenIDs
	// SSF records every revocation carried out for the Shared Signals
	// transmitter (-ssf.publish, -ssf.topic).
	SSF transmitter.PublishConfig `flag:"ssf" env:"REVOKED_SSF" yaml:"ssf"`
}

func defaultStoreConfig() storeConfig {
	return storeConfig{Audit: backends.Config{Backend: backends.ChDB}, Log: ops.DefaultLogConfig()}
}

// open opens the audit store; the caller closes it.
func (c storeConfig) open(ctx context.Context, log zerolog.Logger) (audit.Store, error) {
	store, err := backends.Open(ctx, c.Audit, log)
	if err != nil {
		return nil, fmt.Errorf("opening the audit store: %w", err)
	}
	return store, nil
}

// session is what a one-shot read command (history, verify, export) works
// with: a context ended by SIGINT or SIGTERM and the audit store opened for
// reading (app.OpenReadOnly), with a logger from the store's log settings. Close
// it when done.
type session struct {
	ctx   context.Context
	store audit.Store
	stop  context.CancelFunc
}

func (c storeConfig) session(ctx context.Context, stderr io.Writer) (*session, error) {
	log, err := ops.NewLogger(c.Log, stderr)
	if err != nil {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	store, err := app.OpenReadOnly(ctx, c.Audit, log)
	if err != nil {
		stop()
		return nil, err
	}
	return &session{ctx: ctx, store: store, stop: stop}, nil
}

// Close closes the store and stops listening for signals.
func (s *session) Close() error {
	defer s.stop()
	return s.store.Close()
}

func defaultRunConfig() runConfig {
	o := ops.DefaultServerConfig()
	o.Addr = "127.0.0.1:8080"
	return runConfig{
		Consumer: service.DefaultConfig(),
		Store:    defaultStoreConfig(),
		IdP:      idp.Config{AuthMethod: idp.AuthClientSecretBasic, CheckInterval: idp.DefaultCheckInterval},
		Ops:      o,
		Lineage:  lineage.DefaultConfig(),
		SSF:      transmitter.DefaultPublishConfig(),
	}
}

// Validate reports every problem at once.
func (c runConfig) Validate() error {
	var p config.Problems
	p.Nest("", c.Consumer.Validate())
	p.Nest("audit", c.Store.Audit.Validate())
	p.Nest("log", c.Store.Log.Validate())
	p.Nest("idp", c.IdP.Validate())
	p.Nest("http", c.Ops.Validate())
	p.Nest("lineage", c.Lineage.Validate())
	p.Nest("ssf", c.SSF.Validate())
	p.Nest("", c.TokenIDs.Validate())
	p.Check(len(c.VerifyKeyFiles) > 0, "verify-key-files", "at least one trusted signing key is required")
	p.Check(c.APIToken.IsSet() || loopback(c.Ops.Addr), "http.addr",
		"the analyst API listens beyond loopback on %q: set REVOKED_API_TOKEN or REVOKED_API_TOKEN_FILE", c.Ops.Addr)
	return p.Err()
}

// loopback reports whether addr (host:port) listens on a loopback address
// only; an empty host (every interface) is not loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkpointSigner is the audit checkpoint key, or nil when none is set.
func (c runConfig) checkpointSigner() (*schemas.Signer, error) {
	if !c.CheckpointKey.IsSet() {
		return nil, nil
	}
	priv, err := schemas.ParsePrivateKey([]byte(c.CheckpointKey.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("REVOKED_CHECKPOINT_SIGNING_KEY: %w", err)
	}
	return schemas.NewSigner(priv), nil
}

func runConsumer(ctx context.Context, args []string, stderr io.Writer) error {
	// The guard's budgets were -guard.budget-per-minute and
	// -guard.budget-per-rule; they are named as the detector's now.
	if err := cli.RefuseRenamed(args, os.Environ(),
		cli.Renamed{Flag: "guard.budget-per-minute", NowFlag: "guard.budget", Env: "REVOKED_GUARD_BUDGET_PER_MINUTE", NowEnv: "REVOKED_GUARD_BUDGET"},
		cli.Renamed{Flag: "guard.budget-per-rule", NowFlag: "guard.rule-budgets", Env: "REVOKED_GUARD_BUDGET_PER_RULE", NowEnv: "REVOKED_GUARD_RULE_BUDGETS"},
	); err != nil {
		return err
	}
	cfg := defaultRunConfig()
	log, err := cli.Configure(cli.NewFlagSet("consumer run", stderr), args, &cfg, &cfg.Store.Log, stderr)
	if err != nil {
		return err
	}
	if err := cfg.TokenIDs.Apply(); err != nil {
		return err
	}
	keyring, err := schemas.LoadPublicKeyFiles(cfg.VerifyKeyFiles...)
	if err != nil {
		return err
	}
	var seal *schemas.SealKey
	if cfg.SealKey.IsSet() {
		if seal, err = schemas.ParseSealKey([]byte(cfg.SealKey.Reveal())); err != nil {
			return fmt.Errorf("REVOKED_SEAL_KEY: %w", err)
		}
	}
	reg := ops.NewRegistry()
	client, err := idp.New(cfg.IdP, service.NewHTTPClient(cfg.Consumer.Reader.Concurrency), log, idp.WithRegisterer(reg))
	if err != nil {
		return err
	}
	proves := log.Info()
	for kind, how := range service.Proves(client) {
		proves = proves.Str(string(kind), how)
	}
	proves.Msg("how each target's revocation is proved")

	checkpoints, err := cfg.checkpointSigner()
	if err != nil {
		return err
	}
	if checkpoints == nil {
		log.Warn().Msg("no REVOKED_CHECKPOINT_SIGNING_KEY(_FILE): the audit chain gets no signed checkpoints")
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sink, closeSink, err := revocationSink(cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = closeSink() }()
	a, err := app.New(ctx, app.Config{
		Consumer: cfg.Consumer, Audit: cfg.Store.Audit, Lineage: cfg.Lineage,
		IdPCheckInterval: cfg.IdP.CheckInterval, APIToken: cfg.APIToken,
	}, app.Deps{TokenAPI: client, Keyring: keyring, Seal: seal, CheckpointSigner: checkpoints, Registry: reg, Revocations: sink}, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.Close(); err != nil {
			log.Warn().Err(err).Msg("closing the audit stores")
		}
	}()
	srv, err := ops.NewServer(cfg.Ops, log, reg)
	if err != nil {
		return err
	}
	if err := a.Mount(srv, ""); err != nil {
		return err
	}
	log.Info().Int("trusted_keys", keyring.Len()).Bool("sealing_key", seal != nil).
		Str("audit_backend", cfg.Store.Audit.Backend).Bool("audit_read_only_user", cfg.Store.Audit.ReadDSN != "").
		Str("http", cfg.Ops.Addr).Msg("consumer configured")

	return cli.RunWithOps(ctx, stop, srv, a.Run)
}

// historyConfig is what "consumer history" reads.
type historyConfig struct {
	Store   storeConfig `yaml:"-"`
	User    string      `flag:"user" usage:"user id whose history to print"`
	Token   string      `flag:"token" usage:"token id (fingerprint) whose history to print"`
	Rule    string      `flag:"rule" usage:"only commands of this rule"`
	Outcome string      `flag:"outcome" usage:"only rows of these steps, comma-separated (revoked, verified, held, dead_lettered, ...)"`
	From    string      `flag:"from" usage:"only rows from this time on (RFC 3339)"`
	To      string      `flag:"to" usage:"only rows before this time (RFC 3339)"`
	Limit   int         `flag:"limit" usage:"most rows to print"`
	AsJSON  bool        `flag:"json" usage:"print JSON lines instead of a table"`
}

func history(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := historyConfig{Store: defaultStoreConfig(), Limit: 100}
	fs := cli.NewFlagSet("consumer history", stderr)
	if err := config.Load(fs, args, &cfg, config.WithFileFlag("config", "REVOKED_CONFIG")); err != nil {
		return err
	}
	var p config.Problems
	p.Nest("audit", cfg.Store.Audit.Validate())
	p.Check(cfg.User != "" || cfg.Token != "" || cfg.Rule != "", "user", "name a -user, -token or -rule")
	p.Check(cfg.Limit > 0 && cfg.Limit <= 100000, "limit", "must be in [1, 100000]")
	// The API's parser checks the filters the same way for both.
	v := url.Values{}
	for k, s := range map[string]string{"user_id": cfg.User, "token_id": cfg.Token, "rule_id": cfg.Rule, "step": cfg.Outcome, "from": cfg.From, "to": cfg.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	q, err := api.ParseQuery(v)
	p.Nest("", err)
	if err := p.Err(); err != nil {
		return err
	}
	q.Limit = cfg.Limit
	sess, err := cfg.Store.session(ctx, stderr)
	if err != nil {
		return err
	}
	defer sess.Close()
	rows, err := sess.store.History(sess.ctx, q)
	if err != nil {
		return fmt.Errorf("querying the history: %w", err)
	}
	if cfg.AsJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	return api.WriteTable(stdout, rows)
}

// heldConfig is what "consumer held" reads: what "consumer run" reads, to
// verify and carry out an approved command the way the consumer would,
// and the held command's own settings, the same as "detector held" takes.
type heldConfig struct {
	Run    runConfig
	Held   held.Flags
	action string
}

// Validate reports every problem at once; listing needs only the store
// (and Kafka for the detector's held commands, when brokers are given).
func (c heldConfig) Validate() error {
	var p config.Problems
	p.Nest("audit", c.Run.Store.Audit.Validate())
	p.Nest("log", c.Run.Store.Log.Validate())
	p.Nest("", c.Run.TokenIDs.Validate())
	p.Nest("guard", c.Run.Consumer.Guard.Validate())
	p.Nest("", c.Held.Validate(c.action))
	if c.action != "list" {
		p.Nest("", c.Run.Consumer.Validate())
		p.Nest("idp", c.Run.IdP.Validate())
		p.Check(len(c.Run.VerifyKeyFiles) > 0, "verify-key-files", "at least one trusted signing key is required")
	}
	return p.Err()
}

// held lists the commands held for approval, the consumer's and the
// detector's, or approves or rejects one, wherever it is held.
func runHeld(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	action, args := cli.Subcommand(args, "list")
	if !slices.Contains(held.Actions, action) {
		return held.DefaultFlags("").Validate(action)
	}
	cfg := heldConfig{Run: defaultRunConfig(), Held: held.DefaultFlags(os.Getenv("USER")), action: action}
	log, err := cli.Configure(cli.NewFlagSet("consumer held "+action, stderr), args, &cfg, &cfg.Run.Store.Log, stderr)
	if err != nil {
		return err
	}
	if err := cfg.Run.TokenIDs.Apply(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := cfg.Run.Store.open(ctx, log)
	if err != nil {
		return err
	}
	defer store.Close()

	// Listing reads the trail (and the detector's held topic): no token
	// API or keys.
	a := service.NewApprovals(nil, store, nil)
	closeApprovals := func() error { return nil }
	if action != "list" {
		keyring, err := schemas.LoadPublicKeyFiles(cfg.Run.VerifyKeyFiles...)
		if err != nil {
			return err
		}
		var seal *schemas.SealKey
		if cfg.Run.SealKey.IsSet() {
			if seal, err = schemas.ParseSealKey([]byte(cfg.Run.SealKey.Reveal())); err != nil {
				return fmt.Errorf("REVOKED_SEAL_KEY: %w", err)
			}
		}
		client, err := idp.New(cfg.Run.IdP, nil, log)
		if err != nil {
			return err
		}
		checkpoints, err := cfg.Run.checkpointSigner()
		if err != nil {
			return err
		}
		if a, closeApprovals, err = service.OpenApprovals(ctx, cfg.Run.Consumer, service.Deps{
			Store: store, TokenAPI: client, Keyring: keyring, Seal: seal, CheckpointSigner: checkpoints,
		}, cfg.Run.Consumer.Actor+"-cli", log); err != nil {
			return err
		}
	}
	src, closeSources, err := service.HeldSources(cfg.Run.Consumer, a, log)
	if err != nil {
		return errors.Join(err, closeApprovals())
	}
	return errors.Join(held.Run(ctx, action, cfg.Held, src, stdout), closeSources(), closeApprovals())
}
