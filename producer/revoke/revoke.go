// Package revoke builds, signs and publishes manual RevokeCommands: an
// operator revoking a user, a token, a session or a client by hand.
//
// A raw token given to revoke travels only sealed to the consumer's sealing
// public key (a schemas.Sealer, one ephemeral key per Revoker); the command
// names it by fingerprint, and the raw value is never logged, printed or
// published in the clear.
package revoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Publisher writes messages to Kafka; *kafkax.Writer satisfies it.
//
// WriteMessages blocks until every message is acknowledged (as the writer's
// RequiredAcks say) or returns an error; ctx cancels the wait. A command
// counts as published only when it returned nil. Messages name their Topic,
// so a *kafkax.Writer used here must be created without one.
type Publisher = kafkax.Publisher

// RuleID is the reason.rule_id of every manual command.
const RuleID = "manual"

// IssuerPrefix starts the issuer of manual commands: "manual:<operator>".
const IssuerPrefix = "manual:"

// Errors of Build.
var (
	// ErrRequest wraps every problem with a Request.
	ErrRequest = errors.New("invalid revoke request")
	// ErrNoSealKey means a raw token was given but no sealing public key
	// is configured, so it cannot travel safely.
	ErrNoSealKey = errors.New("a raw token needs the consumer's sealing public key (seal-public-key)")
)

// Config configures a Revoker.
type Config struct {
	// Topic receives the commands.
	Topic string `flag:"topic" env:"TOPIC" yaml:"topic" usage:"topic for revoke commands"`
	// Operator is who is revoking; the issuer is "manual:<operator>".
	Operator string `flag:"operator" env:"OPERATOR" yaml:"operator" usage:"who is revoking (issuer manual:<operator>)"`
	// TTL is how long a command stays valid when the request names none.
	TTL time.Duration `flag:"ttl" env:"TTL" yaml:"ttl" usage:"how long a command stays valid before the consumer drops it"`
	// SealPublicKey is the base64 X25519 public key of the consumer, used
	// to seal raw tokens. Without it raw tokens are refused.
	SealPublicKey string `flag:"seal-public-key" env:"SEAL_PUBLIC_KEY" yaml:"seal_public_key" usage:"base64 sealing public key of the consumer (needed to revoke a raw token)"`
}

// DefaultConfig publishes to the default topic with a one-hour TTL.
func DefaultConfig() Config {
	return Config{Topic: schemas.TopicRevokeCommands, TTL: time.Hour}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var p config.Problems
	p.Check(c.Topic != "", "topic", "required")
	p.Check(c.Operator != "", "operator", "required: who is revoking")
	p.Check(validOperator(c.Operator) || c.Operator == "", "operator", "use letters, digits and . _ @ + - only (at most 200)")
	p.Check(c.TTL > 0 && c.TTL <= schemas.MaxCommandTTL, "ttl", "must be positive and at most %s", schemas.MaxCommandTTL)
	if c.SealPublicKey != "" {
		if _, err := schemas.ParseSealPublicKey(c.SealPublicKey); err != nil {
			p.Addf("seal-public-key", "%v", err)
		}
	}
	return p.Err()
}

func validOperator(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@+-", r)) {
			return false
		}
	}
	return true
}

// Request is one manual revocation.
type Request struct {
	// Kind is what to revoke; the matching id below is required.
	Kind schemas.TargetKind
	// UserID names the user (required for Kind user; context otherwise,
	// which also keys the command to the user's partition).
	UserID string
	// TokenID names a token by id or fingerprint.
	TokenID string
	// RawToken is a raw token to revoke (Kind token). It is sealed to the
	// consumer's key and TokenID is set to its fingerprint; it prints as
	// ******** and appears nowhere in the clear.
	RawToken config.Secret
	// SessionID names the session (Kind session).
	SessionID string
	// ClientID names the OAuth client (Kind client).
	ClientID string
	// Action defaults to revoke.
	Action schemas.Action
	// DryRun asks the consumer to audit the command without executing it.
	DryRun bool
	// IncludeDownscoped also revokes tokens exchanged from the target.
	IncludeDownscoped bool
	// Severity defaults to high.
	Severity schemas.Severity
	// Summary says why, for the audit trail; defaults to a generic line.
	Summary string
	// TTL overrides Config.TTL for this command.
	TTL time.Duration
}

// Revoker builds, signs and publishes manual commands. It is safe for
// concurrent use if its Publisher is.
type Revoker struct {
	cfg    Config
	signer *schemas.Signer
	sealer *schemas.Sealer
	pub    Publisher
	log    zerolog.Logger
	now    func() time.Time
	rand   io.Reader
}

// New returns a Revoker signing with signer and publishing through pub.
func New(cfg Config, signer *schemas.Signer, pub Publisher, log zerolog.Logger) (*Revoker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, errors.New("revoke: nil signer")
	}
	if pub == nil {
		return nil, errors.New("revoke: nil publisher")
	}
	r := &Revoker{cfg: cfg, signer: signer, pub: pub, log: log.With().Str("component", "revoke").Logger(), now: time.Now, rand: rand.Reader}
	if cfg.SealPublicKey != "" {
		k, err := schemas.ParseSealPublicKey(cfg.SealPublicKey)
		if err != nil {
			return nil, fmt.Errorf("sealing public key: %w", err)
		}
		// One Sealer for the Revoker's life (a producer run): every token
		// it seals shares one ephemeral key, so the consumer derives the
		// box key once, not once per token.
		if r.sealer, err = schemas.NewSealer(k); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Build turns req into a complete, valid command with a fresh random id
// ("cmd_" and 32 hex digits). It seals a raw token; it neither signs nor
// publishes. Problems with req wrap ErrRequest (all reported at once).
func (r *Revoker) Build(req Request) (schemas.RevokeCommand, error) {
	var p config.Problems
	switch req.Kind {
	case schemas.TargetUser:
		p.Check(req.UserID != "", "user", "required to revoke a user")
	case schemas.TargetToken:
		p.Check(req.TokenID != "" || req.RawToken.IsSet(), "token", "give a token id (or fingerprint) or a raw token")
	case schemas.TargetSession:
		p.Check(req.SessionID != "", "session", "required to revoke a session")
	case schemas.TargetClient:
		p.Check(req.ClientID != "", "client", "required to revoke a client")
	default:
		p.Addf("kind", "want user, token, session or client, got %q", req.Kind)
	}
	raw := strings.TrimSpace(req.RawToken.Reveal())
	tokenID := req.TokenID
	if raw != "" {
		p.Check(req.Kind == schemas.TargetToken, "token", "a raw token only goes with a token target")
		fp := schemas.Fingerprint(raw)
		p.Check(tokenID == "" || tokenID == fp, "token-id", "does not match the raw token's fingerprint; give one or the other")
		tokenID = fp
	}
	action := req.Action
	if action == "" {
		action = schemas.ActionRevoke
	}
	severity := req.Severity
	if severity == "" {
		severity = schemas.SeverityHigh
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = r.cfg.TTL
	}
	p.Check(ttl > 0 && ttl <= schemas.MaxCommandTTL, "ttl", "must be positive and at most %s", schemas.MaxCommandTTL)
	if err := p.Err(); err != nil {
		return schemas.RevokeCommand{}, fmt.Errorf("%w: %w", ErrRequest, err)
	}

	var sealed string
	if raw != "" {
		if r.sealer == nil {
			return schemas.RevokeCommand{}, ErrNoSealKey
		}
		s, err := r.sealer.Seal(raw)
		if err != nil {
			return schemas.RevokeCommand{}, err
		}
		sealed = s
	}
	id, err := r.commandID()
	if err != nil {
		return schemas.RevokeCommand{}, err
	}
	summary := req.Summary
	if summary == "" {
		summary = "manual revocation by " + r.cfg.Operator
	}
	mode := schemas.ModeEnforce
	if req.DryRun {
		mode = schemas.ModeDryRun
	}
	now := r.now().UTC()
	cmd := schemas.RevokeCommand{
		CommandID: id,
		IssuedAt:  now,
		ExpiresAt: now.Add(ttl),
		Issuer:    IssuerPrefix + r.cfg.Operator,
		Target: schemas.Target{
			Kind:              req.Kind,
			UserID:            req.UserID,
			TokenID:           tokenID,
			SessionID:         req.SessionID,
			ClientID:          req.ClientID,
			SealedToken:       sealed,
			IncludeDownscoped: req.IncludeDownscoped,
		},
		Action: action,
		Mode:   mode,
		Reason: schemas.Reason{
			RuleID:      RuleID,
			RuleVersion: 1,
			Severity:    severity,
			Summary:     summary,
			DetectedAt:  now,
		},
	}
	if err := cmd.Validate(); err != nil {
		return schemas.RevokeCommand{}, fmt.Errorf("%w: %w", ErrRequest, err)
	}
	return cmd, nil
}

// commandID is "cmd_" and 128 random bits in hex.
func (r *Revoker) commandID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r.rand, b[:]); err != nil {
		return "", fmt.Errorf("generating command id: %w", err)
	}
	return "cmd_" + hex.EncodeToString(b[:]), nil
}

// Message encodes cmd as the signed message to publish: the JSON value, the
// signature over exactly those bytes, the key id and the schema in headers,
// keyed by the target key (see schemas.Target.Key).
func (r *Revoker) Message(cmd schemas.RevokeCommand) (kafkax.Message, error) {
	return kafkax.SignedCommand(r.signer, r.cfg.Topic, &cmd)
}

// Revoke builds, signs and publishes the command for req and returns it once
// Kafka acknowledged it. It blocks until then; ctx cancels the wait, after
// which the command may or may not have been published (publishing it again
// is harmless: revocation is idempotent).
func (r *Revoker) Revoke(ctx context.Context, req Request) (schemas.RevokeCommand, error) {
	cmd, err := r.Build(req)
	if err != nil {
		return cmd, err
	}
	msg, err := r.Message(cmd)
	if err != nil {
		return cmd, err
	}
	if err := r.pub.WriteMessages(ctx, msg); err != nil {
		return cmd, fmt.Errorf("publishing command %s: %w", cmd.CommandID, err)
	}
	r.log.Info().
		Str("command_id", cmd.CommandID).
		Str("kind", string(cmd.Target.Kind)).
		Str("target", cmd.Target.ID()).
		Str("key", cmd.Target.Key()).
		Str("action", string(cmd.Action)).
		Str("mode", string(cmd.Mode)).
		Bool("include_downscoped", cmd.Target.IncludeDownscoped).
		Bool("sealed_token", cmd.Target.SealedToken != "").
		Time("expires_at", cmd.ExpiresAt).
		Msg("revoke command published")
	return cmd, nil
}
