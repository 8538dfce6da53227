// Command consumer carries out signed revoke commands against the token API
// and keeps the audit trail in ClickHouse.
//
//	consumer [run] [flags]          read revoke.commands, revoke, audit (default)
//	consumer history [flags]        print a user's revocation history as a table
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
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/api"
	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/audit/backends"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
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
	}
	return fmt.Errorf("unknown command %q (want run or history)", cmd)
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
	// VerifyKeyFiles name the PEM files of the Ed25519 public keys whose
	// signatures the consumer trusts.
	VerifyKeyFiles []string `flag:"verify-key-files" env:"REVOKED_VERIFY_KEY_FILES" yaml:"verify_key_files" usage:"files holding the trusted command-signing public keys (PKIX PEM), comma-separated"`
	// SealKey opens sealed raw tokens (base64 X25519 private key).
	SealKey config.Secret `env:"REVOKED_SEAL_KEY" yaml:"-"`
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

func defaultRunConfig() runConfig {
	o := ops.DefaultServerConfig()
	o.Addr = "127.0.0.1:8080"
	return runConfig{
		Consumer: service.DefaultConfig(),
		Store:    defaultStoreConfig(),
		IdP:      idp.Config{AuthMethod: idp.AuthClientSecretBasic},
		Ops:      o,
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
	p.Check(len(c.VerifyKeyFiles) > 0, "verify-key-files", "at least one trusted signing key is required")
	return p.Err()
}

func runConsumer(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := defaultRunConfig()
	log, err := cli.Configure(cli.NewFlagSet("consumer run", stderr), args, &cfg, &cfg.Store.Log, stderr)
	if err != nil {
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
	client, err := idp.New(cfg.IdP, nil, log)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := cfg.Store.open(ctx, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating the audit store: %w", err)
	}

	reg := ops.NewRegistry()
	svc, err := service.New(ctx, cfg.Consumer, service.Deps{
		Store: store, TokenAPI: client, Keyring: keyring, Seal: seal, Registry: reg,
	}, log)
	if err != nil {
		return err
	}
	srv, err := ops.NewServer(cfg.Ops, log, reg)
	if err != nil {
		return err
	}
	if err := srv.AddCheck("audit-store", svc.Check); err != nil {
		return err
	}
	mountAPI(srv, store, log)
	log.Info().Int("trusted_keys", keyring.Len()).Bool("sealing_key", seal != nil).
		Str("audit_backend", cfg.Store.Audit.Backend).Str("http", cfg.Ops.Addr).Msg("consumer configured")

	return cli.RunWithOps(ctx, stop, srv, svc.Run)
}

// mountAPI serves the analysts' API beside /livez, /readyz and /metrics.
func mountAPI(srv *ops.Server, store audit.Store, log zerolog.Logger) {
	srv.Handle("GET /api/", api.New(store, log).Handler())
}

// historyConfig is what "consumer history" reads.
type historyConfig struct {
	Store  storeConfig `yaml:"-"`
	User   string      `flag:"user" usage:"user id whose history to print"`
	Token  string      `flag:"token" usage:"token id (fingerprint) whose history to print"`
	Rule   string      `flag:"rule" usage:"only commands of this rule"`
	Limit  int         `flag:"limit" usage:"most rows to print"`
	AsJSON bool        `flag:"json" usage:"print JSON lines instead of a table"`
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
	if err := p.Err(); err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Store.Log, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := cfg.Store.open(ctx, log)
	if err != nil {
		return err
	}
	defer store.Close()
	rows, err := store.History(ctx, audit.Query{UserID: cfg.User, TokenID: cfg.Token, RuleID: cfg.Rule, Limit: cfg.Limit})
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
