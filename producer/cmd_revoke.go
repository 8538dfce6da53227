package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/revoked-dev/revoked/internal/cli"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/producer/revoke"
	"github.com/revoked-dev/revoked/schemas"
)

// revokeConfig is everything "producer revoke" reads.
type revokeConfig struct {
	Common kafkaConfig
	// Revoke's settings sit at the top level: -operator, -ttl,
	// -seal-public-key; REVOKED_REVOKE_OPERATOR and so on.
	Revoke            revoke.Config `env:"REVOKED_REVOKE" yaml:"revoke"`
	SealPublicKeyFile string        `flag:"seal-public-key-file" env:"REVOKED_SEAL_PUBLIC_KEY_FILE" yaml:"seal_public_key_file" usage:"file holding the consumer's base64 sealing public key (seal.pub)"`
	Signing           cli.SigningKey

	// The request itself: flags only.
	Kind              string        `flag:"kind" usage:"what to revoke: user, token, session or client (default: inferred from the ids given)"`
	User              string        `flag:"user" usage:"user id to revoke (or context for another kind)"`
	TokenID           string        `flag:"token-id" usage:"token id or fingerprint to revoke"`
	TokenFile         string        `flag:"token-file" usage:"file holding a raw token to revoke, - for stdin; it is sealed to the consumer's key"`
	Session           string        `flag:"session" usage:"session id to revoke"`
	Client            string        `flag:"client" usage:"OAuth client id to revoke"`
	Action            string        `flag:"action" usage:"revoke, revoke_and_reverify or notify"`
	DryRun            bool          `flag:"dry-run" usage:"audit the command without executing it"`
	IncludeDownscoped bool          `flag:"include-downscoped" usage:"also revoke tokens exchanged from the target"`
	Severity          string        `flag:"severity" usage:"low, medium, high or critical"`
	Reason            string        `flag:"reason" usage:"why, for the audit trail"`
	ExpiresIn         time.Duration `flag:"expires-in" usage:"validity of this command (default: -ttl)"`
	Print             bool          `flag:"print" usage:"print the published command as JSON"`
}

func defaultRevokeConfig() revokeConfig {
	return revokeConfig{Common: defaultKafkaConfig(), Revoke: revoke.DefaultConfig(), Action: string(schemas.ActionRevoke), Severity: string(schemas.SeverityHigh)}
}

func (c revokeConfig) validate() error {
	var p config.Problems
	c.Common.validate(&p)
	p.Nest("", c.Revoke.Validate())
	p.Nest("", c.Signing.Validate())
	p.Check(c.Revoke.SealPublicKey == "" || c.SealPublicKeyFile == "", "seal-public-key-file", "give the sealing key one way")
	p.Check(c.TokenID == "" || c.TokenFile == "", "token-id", "give --token-id or --token-file, not both")
	p.Check(c.User != "" || c.TokenID != "" || c.TokenFile != "" || c.Session != "" || c.Client != "", "user",
		"name a target: --user, --token-id, --token-file, --session or --client")
	return p.Err()
}

// kind is the explicit kind, or the most specific id given.
func (c revokeConfig) kind() schemas.TargetKind {
	switch {
	case c.Kind != "":
		return schemas.TargetKind(c.Kind)
	case c.TokenID != "" || c.TokenFile != "":
		return schemas.TargetToken
	case c.Session != "":
		return schemas.TargetSession
	case c.Client != "":
		return schemas.TargetClient
	}
	return schemas.TargetUser
}

func runRevoke(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg := defaultRevokeConfig()
	if err := cli.Load(cli.NewFlagSet("producer revoke", stderr), args, &cfg); err != nil {
		return err
	}
	if cfg.SealPublicKeyFile != "" {
		pub, err := os.ReadFile(cfg.SealPublicKeyFile)
		if err != nil {
			return fmt.Errorf("reading sealing public key: %w", err)
		}
		cfg.Revoke.SealPublicKey = string(pub)
		cfg.SealPublicKeyFile = ""
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := cfg.Common.TokenIDs.Apply(); err != nil {
		return err
	}
	req := revoke.Request{
		Kind:              cfg.kind(),
		UserID:            cfg.User,
		TokenID:           cfg.TokenID,
		SessionID:         cfg.Session,
		ClientID:          cfg.Client,
		Action:            schemas.Action(cfg.Action),
		DryRun:            cfg.DryRun,
		IncludeDownscoped: cfg.IncludeDownscoped,
		Severity:          schemas.Severity(cfg.Severity),
		Summary:           cfg.Reason,
		TTL:               cfg.ExpiresIn,
	}
	if cfg.TokenFile != "" {
		raw, err := readSecretFile(cfg.TokenFile, stdin)
		if err != nil {
			return fmt.Errorf("reading the token to revoke: %w", err)
		}
		req.RawToken = config.NewSecret(raw)
	}
	signer, err := cfg.Signing.Signer()
	if err != nil {
		return err
	}
	log, err := ops.NewLogger(cfg.Common.Log, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := cfg.Common.writer(ctx, log, cfg.Revoke.Topic)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	r, err := revoke.New(cfg.Revoke, signer, w, log)
	if err != nil {
		return err
	}
	cmd, err := r.Revoke(ctx, req)
	if err != nil {
		return err
	}
	if cfg.Print {
		// Safe to print: a raw token travels only sealed.
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cmd)
	}
	fmt.Fprintf(stdout, "published %s: %s %s %s (%s), key %s, expires %s\n", cmd.CommandID, cmd.Action, cmd.Target.Kind,
		cmd.Target.ID(), cmd.Mode, cmd.Target.Key(), cmd.ExpiresAt.Format(time.RFC3339))
	return nil
}
