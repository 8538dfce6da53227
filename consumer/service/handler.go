// Package service is the consumer's command path: it verifies each signed
// RevokeCommand read from Kafka, rejects what must not run, carries out the
// rest against the token API and records every step in the audit trail
// before the reader may commit the message.
package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/guard"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Outcome is what the token API answered for one command.
type Outcome struct {
	// Status is the HTTP status of the final answer.
	Status int
	// Revoked is how many tokens were revoked: the answer's count, else
	// the count the proof gives (0 when neither says).
	Revoked int
	// CountKnown says whether Revoked comes from the answer or the proof.
	CountKnown bool
	// Verdict is the outcome the proof settled: schemas.StepConfirmed,
	// StepUnconfirmed or StepNotEffective. Empty is taken as unconfirmed.
	Verdict schemas.Step
	// Response is a short, sanitised excerpt of the answer for the audit
	// trail. It never holds a token.
	Response string
	// Attempts is how many calls it took.
	Attempts int
	// Proof says what the token API's proof showed (introspection, its
	// list of live tokens), or why there is none.
	Proof string
	// FromLineage is how many of Revoked were downscoped tokens known only
	// from token.exchanged events (the lineage index), revoked by id.
	FromLineage int
}

// Revoker carries out one verified command against the token API. rawToken
// is the unsealed token of a token target that carried one, else empty.
// Revoke blocks until the command reached a final answer or ctx is done;
// it retries transient failures itself. An error for which
// errors.Is(err, ErrTerminal) holds means retrying cannot help (a 4xx
// answer); any other error is transient.
type Revoker interface {
	Revoke(ctx context.Context, cmd *schemas.RevokeCommand, rawToken string) (Outcome, error)
}

// ErrTerminal marks revocation failures that retrying cannot fix.
var ErrTerminal = errors.New("terminal failure")

// AuditLog is the part of the audit trail the handler needs.
type AuditLog interface {
	// Write appends rows to the hash chain; it returns once they are durable.
	Write(ctx context.Context, rows ...schemas.AuditRow) error
	// CommandRows returns every row already recorded for a command.
	CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error)
}

// Handler verifies and executes commands. It is safe for concurrent use by
// the reader's partition workers.
type Handler struct {
	keyring  *schemas.Keyring
	seal     *schemas.SealKey
	revoker  Revoker
	audit    AuditLog
	actor    string
	maxSkew  time.Duration
	now      func() time.Time
	log      zerolog.Logger
	metrics  *Metrics
	observer func(schemas.AuditRow)
	guard    *guard.Consumer
	replay   *replayIndex
	// stripes serialise the handling of one command id, from the replay
	// check to the audit rows: the reader keeps one key's commands in
	// order, but a command republished under another key could otherwise
	// pass the replay check twice at once.
	stripes [256]sync.Mutex
	// chain is the command path, composed once from the steps.
	chain next
}

// HandlerConfig holds the handler's dependencies.
type HandlerConfig struct {
	Keyring *schemas.Keyring
	// Seal opens sealed tokens; nil rejects commands that carry one.
	Seal    *schemas.SealKey
	Revoker Revoker
	Audit   AuditLog
	// Actor names this consumer in the audit trail.
	Actor string
	// MaxClockSkew bounds how far in the future issued_at may be.
	MaxClockSkew time.Duration
	Now          func() time.Time
	Metrics      *Metrics
	// Observe, when set, sees every audit row after it was written.
	Observe func(schemas.AuditRow)
	// Guard, when set, holds commands over budget or under the kill switch
	// and refuses allowlisted targets.
	Guard *guard.Consumer

	// replay, when set, answers the replay check without the store
	// while it can (see replayIndex). Nil: every check reads the audit
	// log.
	replay *replayIndex
}

// NewHandler checks the dependencies and returns a Handler.
func NewHandler(cfg HandlerConfig, log zerolog.Logger) (*Handler, error) {
	var errs []error
	if cfg.Keyring == nil || cfg.Keyring.Len() == 0 {
		errs = append(errs, errors.New("no trusted command signing keys"))
	}
	if cfg.Revoker == nil {
		errs = append(errs, errors.New("no revoker"))
	}
	if cfg.Audit == nil {
		errs = append(errs, errors.New("no audit log"))
	}
	if cfg.Actor == "" {
		errs = append(errs, errors.New("actor is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = time.Minute
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	h := &Handler{
		keyring: cfg.Keyring, seal: cfg.Seal, revoker: cfg.Revoker, audit: cfg.Audit,
		actor: cfg.Actor, maxSkew: cfg.MaxClockSkew, now: cfg.Now, log: log,
		metrics: cfg.Metrics, observer: cfg.Observe, guard: cfg.Guard, replay: cfg.replay,
	}
	h.chain = chain(h.verifyStep, h.freshStep, h.replayStep, h.unsealStep, h.modeStep, h.guardStep, h.executeStep)
	return h, nil
}

func header(m *kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Handle is the reader's handler for revoke.commands. It returns nil once
// the command reached a terminal state and that state is in the audit
// trail; a *kafkax.LaterError once a revocation is carried out and its
// rows are queued for the trail (the reader commits the message when they
// are durable); a *kafkax.PoisonError (dead-letter, then commit) for
// messages that must never run, after auditing the rejection; any other
// error is transient and the reader retries the same message.
//
// A command goes through the steps of the chain in order, each in its own
// file: verify (signature and strict decoding), fresh (expiry and clock
// skew), replay (one run per command id), unseal (a sealed raw token),
// mode (dry runs and notifications), guard (allowlists, kill switch and
// budget) and execute (the token API, then the audit rows). A step either
// settles the command, returning what the reader does with the message,
// or hands it to the next.
func (h *Handler) Handle(ctx context.Context, m kafkax.Message) error {
	f := &flight{msg: m, pos: position{topic: m.Topic, partition: int32(m.Partition), offset: m.Offset}, start: h.now()}
	return h.chain(ctx, f)
}

// flight is one command on its way through the steps.
type flight struct {
	msg   kafkax.Message
	pos   position
	start time.Time
	// cmd is set by the verify step; the unseal step fills its target's
	// token id from a sealed token and sets rawToken.
	cmd      schemas.RevokeCommand
	rawToken string
}

// received is the row of the command's arrival. It is not written ahead
// of the token API call: it goes with the outcome row in one write after
// the call, so the call never waits on the audit store and one group
// commit carries both. What a received row written first would have
// given, the offset gives: it is committed only once both rows are
// durable (store or spool). A crash between the call and that group
// commit leaves the message uncommitted and without a terminal row, so it
// is delivered again at the same position, is not a replay, and runs
// again; the token API's calls are idempotent (revoking twice is
// harmless), and the second run records the revocation. The one case the
// trail then tells differently is a redelivery that arrives after the
// command expired: it is rejected as expired, though the first run may
// have revoked (harmless to the tokens, and the source topic still holds
// the command).
func (f *flight) received(h *Handler) schemas.AuditRow {
	return h.row(&f.cmd, f.pos, schemas.StepReceived, f.start)
}

// next hands a command in flight to the rest of the chain.
type next func(ctx context.Context, f *flight) error

// step is one link of the command path: it settles the command or calls
// next, and returns what the reader does with the message.
type step func(ctx context.Context, f *flight, next next) error

// chain composes steps into one handler: the first step runs first, and
// the end of the chain settles nothing.
func chain(steps ...step) next {
	run := next(func(context.Context, *flight) error { return nil })
	for i := len(steps) - 1; i >= 0; i-- {
		s, rest := steps[i], run
		run = func(ctx context.Context, f *flight) error { return s(ctx, f, rest) }
	}
	return run
}
