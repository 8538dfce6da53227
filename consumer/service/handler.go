// Package service is the consumer's command path: it verifies each signed
// RevokeCommand read from Kafka, rejects what must not run, carries out the
// rest against the token API and records every step in the audit trail
// before the reader may commit the message.
package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/guard"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/retry"
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
	guard    *guard.Guard
	replay   *replayIndex
	// stripes serialise the handling of one command id, from the replay
	// check to the audit rows: the reader keeps one key's commands in
	// order, but a command republished under another key could otherwise
	// pass the replay check twice at once.
	stripes [256]sync.Mutex
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
	Guard *guard.Guard

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
	return &Handler{
		keyring: cfg.Keyring, seal: cfg.Seal, revoker: cfg.Revoker, audit: cfg.Audit,
		actor: cfg.Actor, maxSkew: cfg.MaxClockSkew, now: cfg.Now, log: log,
		metrics: cfg.Metrics, observer: cfg.Observe, guard: cfg.Guard, replay: cfg.replay,
	}, nil
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
func (h *Handler) Handle(ctx context.Context, m kafkax.Message) error {
	start := h.now()
	pos := position{topic: m.Topic, partition: int32(m.Partition), offset: m.Offset}

	// 1-2. Signature over the exact bytes, then strict decoding.
	cmd, reason, err := h.verify(m)
	if err != nil {
		return h.reject(ctx, pos, nil, m.Value, reason, true)
	}
	// 3. Freshness.
	switch {
	case cmd.Expired(start):
		return h.reject(ctx, pos, &cmd, nil, fmt.Sprintf("expired at %s", cmd.ExpiresAt.UTC().Format(time.RFC3339)), false)
	case cmd.IssuedAt.After(start.Add(h.maxSkew)):
		return h.reject(ctx, pos, &cmd, nil, fmt.Sprintf("issued_at %s is in the future", cmd.IssuedAt.UTC().Format(time.RFC3339)), false)
	}
	// 4. Replay: a command id runs at most once. A redelivery of the same
	// Kafka message (after a crash before commit) resumes or skips; the
	// same command at another position is a replay.
	mu := h.lock(cmd.CommandID)
	defer mu.Unlock()
	prior, err := h.prior(ctx, &cmd, pos, string(m.Key) == cmd.Target.Key())
	if err != nil {
		return err
	}
	for _, r := range prior {
		if !r.Step.Terminal() {
			continue
		}
		if pos.same(r) {
			h.metrics.Redelivered.Inc()
			h.log.Debug().Str("command_id", cmd.CommandID).Msg("redelivered command already done")
			return nil
		}
		return h.reject(ctx, pos, &cmd, nil, fmt.Sprintf("replayed: already %s from %s[%d]@%d", r.Step, r.SourceTopic, r.SourcePartition, r.SourceOffset), false)
	}

	// 5. A raw token travels only sealed; unseal it now, fingerprint it
	// for the trail, and never let it reach a log or a row.
	rawToken, reason, err := h.unseal(&cmd)
	if err != nil {
		return h.reject(ctx, pos, &cmd, nil, reason, true)
	}

	// The received row is not written ahead of the token API call: it
	// goes with the outcome row in one Write after the call, so the call
	// never waits on the audit store and one group commit carries both.
	// What a received row written first would have given, the offset
	// gives: it is committed only once both rows are durable (store or
	// spool). A crash between the call and that group commit leaves the
	// message uncommitted and without a terminal row, so it is delivered
	// again at the same position, is not a replay, and runs again; the
	// token API's calls are idempotent (revoking twice is harmless), and
	// the second run records the revocation. The one case the trail then
	// tells differently is a redelivery that arrives after the command
	// expired: it is rejected as expired, though the first run may have
	// revoked (harmless to the tokens, and the source topic still holds
	// the command).
	received := h.row(&cmd, pos, schemas.StepReceived, start)
	switch {
	case cmd.Mode == schemas.ModeDryRun:
		done := h.row(&cmd, pos, schemas.StepDryRun, h.now())
		done.Detail = "dry run: nothing revoked"
		return h.write(ctx, received, done)
	case cmd.Action == schemas.ActionNotify:
		done := h.row(&cmd, pos, schemas.StepNotified, h.now())
		done.Detail = "action notify: nothing revoked"
		return h.write(ctx, received, done)
	}

	// 6. The consumer's own guards: allowlists refuse, the kill switch and
	// the budget hold the command for a human (see Approvals).
	if d := h.guard.Check(&cmd); d.Verdict != guard.Allow {
		step := schemas.StepHeld
		if d.Verdict == guard.Refuse {
			step = schemas.StepRejected
		}
		done := h.row(&cmd, pos, step, h.now())
		done.Detail = d.Reason
		if err := h.write(ctx, received, done); err != nil {
			return err
		}
		if step == schemas.StepHeld {
			h.metrics.Held.Inc()
			h.log.Warn().Str("command_id", cmd.CommandID).Str("rule_id", cmd.Reason.RuleID).Str("reason", d.Reason).
				Msg("command held for approval")
		} else {
			h.metrics.Rejected.Inc()
			h.log.Info().Str("command_id", cmd.CommandID).Str("reason", d.Reason).Msg("command refused by the allowlist")
		}
		return nil
	}

	err = h.execute(ctx, &cmd, pos, rawToken, "", true, received)
	if errors.Is(err, ErrTerminal) {
		return kafkax.Poison("token API: "+strings.TrimPrefix(err.Error(), ErrTerminal.Error()+": "), err)
	}
	return err
}

// maxRefreshWaits bounds how many refreshes of the replay index one
// replay check waits for: the one under way at start and the one its
// partitions' appearance asked for after it.
const maxRefreshWaits = 3

// prior returns the terminal steps already recorded for the command:
// from the replay index alone when it is sure (see replayIndex), else from
// the audit log (the store, and the spool's ledger while the store is
// down). The caller holds the command id's lock.
func (h *Handler) prior(ctx context.Context, cmd *schemas.RevokeCommand, pos position, canonicalKey bool) ([]schemas.AuditRow, error) {
	if h.replay != nil {
		rows, sure := h.replay.lookup(cmd, pos, canonicalKey)
		// Unsure while a refresh reads the store: wait for it rather
		// than read the store for this one command (a failed refresh
		// leaves the lookup unsure, and the store answers below).
		for waits := 0; waits < maxRefreshWaits && !sure && !slices.ContainsFunc(rows, pos.same) && h.replay.await(ctx, cmd, canonicalKey); waits++ {
			rows, sure = h.replay.lookup(cmd, pos, canonicalKey)
		}
		if sure || slices.ContainsFunc(rows, pos.same) {
			h.metrics.ReplayChecks.WithLabelValues("index").Inc()
			return rows, nil
		}
	}
	h.metrics.ReplayChecks.WithLabelValues("store").Inc()
	rows, err := h.audit.CommandRows(ctx, cmd.CommandID)
	if err != nil {
		return nil, fmt.Errorf("reading the command's audit rows: %w", err)
	}
	if h.replay != nil {
		h.replay.record(rows)
	}
	return rows, nil
}

func (h *Handler) lock(commandID string) *sync.Mutex {
	f := fnv.New32a()
	f.Write([]byte(commandID))
	mu := &h.stripes[f.Sum32()%uint32(len(h.stripes))]
	mu.Lock()
	return mu
}

// verify checks the signature over the exact bytes, then decodes and
// validates the command. On failure it returns the reason for the trail.
func (h *Handler) verify(m kafkax.Message) (schemas.RevokeCommand, string, error) {
	if err := h.keyring.Verify(header(&m, schemas.HeaderKeyID), header(&m, schemas.HeaderSignature), m.Value); err != nil {
		return schemas.RevokeCommand{}, "signature: " + err.Error(), err
	}
	cmd, err := schemas.DecodeCommand(m.Value)
	if err != nil {
		return cmd, err.Error(), err
	}
	return cmd, "", nil
}

// unseal opens a sealed raw token and puts its fingerprint in the target.
func (h *Handler) unseal(cmd *schemas.RevokeCommand) (raw, reason string, err error) {
	if cmd.Target.SealedToken == "" {
		return "", "", nil
	}
	if h.seal == nil {
		reason = "command carries a sealed token but this consumer has no sealing key"
		return "", reason, errors.New(reason)
	}
	raw, err = h.seal.Open(cmd.Target.SealedToken)
	if err != nil {
		return "", err.Error(), err
	}
	fp := schemas.Fingerprint(raw)
	if cmd.Target.TokenID != "" && cmd.Target.TokenID != fp {
		reason = "sealed token does not match target.token_id"
		return "", reason, errors.New(reason)
	}
	cmd.Target.TokenID = fp
	return raw, "", nil
}

// execute carries out a verified command and audits the outcome, each row
// naming approver when a human approved it. It returns nil once the
// revocation is done and audited, an error wrapping ErrTerminal once a
// terminal refusal is audited (dead_lettered), and any other error for a
// transient failure (audited as failed when the trail could be written).
// With deferred, a carried-out revocation returns a kafkax.Later instead
// of nil, and its rows become durable after it returns (writeLater).
func (h *Handler) execute(ctx context.Context, cmd *schemas.RevokeCommand, pos position, rawToken, approver string, deferred bool, lead ...schemas.AuditRow) error {
	out, err := h.revoker.Revoke(ctx, cmd, rawToken)
	end := h.now()
	stamp := func(rows []schemas.AuditRow) []schemas.AuditRow {
		for i := range rows {
			rows[i].Approver = approver
		}
		return rows
	}
	switch {
	case err == nil && out.Verdict == schemas.StepNotEffective:
		// The token API accepted the call and its own proof says a
		// targeted token is still active after every repeat and
		// fallback: a failure, recorded with the proof, and the
		// command dead-lettered.
		ne := h.row(cmd, pos, schemas.StepNotEffective, end)
		fillOutcome(&ne, out)
		ne.Proof = out.Proof
		ne.Detail = "dead-lettered: the token API's proof shows a targeted token still active"
		if err := h.write(ctx, stamp(append(lead, ne))...); err != nil {
			return err
		}
		h.metrics.NotEffective.WithLabelValues(string(cmd.Target.Kind)).Inc()
		h.metrics.DeadLettered.Inc()
		h.log.Error().Str("command_id", cmd.CommandID).Str("target_kind", string(cmd.Target.Kind)).Str("proof", out.Proof).
			Msg("revocation not effective: the token API's proof shows a targeted token still active")
		return fmt.Errorf("%w: not effective: %s", ErrTerminal, out.Proof)
	case err == nil:
		verdict := out.Verdict
		if verdict != schemas.StepConfirmed {
			verdict = schemas.StepUnconfirmed
		}
		done := h.row(cmd, pos, verdict, end)
		fillOutcome(&done, out)
		done.Proof = out.Proof
		h.metrics.Revoked.WithLabelValues(string(cmd.Target.Kind), string(verdict)).Inc()
		if !cmd.Reason.LastEventTime.IsZero() {
			h.metrics.EventToRevoke.Observe(end.Sub(cmd.Reason.LastEventTime).Seconds())
		}
		if deferred {
			return h.writeLater(ctx, stamp(append(lead, done))...)
		}
		return h.write(ctx, stamp(append(lead, done))...)
	case errors.Is(err, ErrTerminal):
		done := h.row(cmd, pos, schemas.StepDeadLettered, end)
		fillOutcome(&done, out)
		done.Detail = sanitise(err.Error(), rawToken)
		if werr := h.write(ctx, stamp(append(lead, done))...); werr != nil {
			return werr
		}
		h.metrics.DeadLettered.Inc()
		return fmt.Errorf("%w: %s", ErrTerminal, done.Detail)
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		// Transient: record the failed attempt (deterministic row, so a
		// later identical failure is the same row) and let the caller retry.
		failed := h.row(cmd, pos, schemas.StepFailed, end)
		fillOutcome(&failed, out)
		failed.Detail = sanitise(err.Error(), rawToken)
		if werr := h.write(ctx, stamp(append(lead, failed))...); werr != nil {
			return werr
		}
		h.metrics.Failed.Inc()
		return fmt.Errorf("revoking %s: %s", cmd.CommandID, failed.Detail)
	}
}

type position struct {
	topic     string
	partition int32
	offset    int64
}

func (p position) same(r schemas.AuditRow) bool {
	return r.SourceTopic == p.topic && r.SourcePartition == p.partition && r.SourceOffset == p.offset
}

func (h *Handler) row(cmd *schemas.RevokeCommand, pos position, step schemas.Step, at time.Time) schemas.AuditRow {
	r := schemas.RowFromCommand(cmd)
	r.RowID = schemas.AuditRowID(cmd.CommandID, step, pos.topic, pos.partition, pos.offset)
	r.Step = step
	r.Time = at.UTC()
	r.Actor = h.actor
	r.SourceTopic, r.SourcePartition, r.SourceOffset = pos.topic, pos.partition, pos.offset
	if t := cmd.Reason.LastEventTime; !t.IsZero() {
		if d := cmd.Reason.DetectedAt; !d.IsZero() {
			r.DetectLatencyMs = d.Sub(t).Milliseconds()
		}
		if step != schemas.StepReceived {
			r.RevokeLatencyMs = at.Sub(t).Milliseconds()
		}
	}
	return r
}

func fillOutcome(r *schemas.AuditRow, out Outcome) {
	r.IdPStatus = uint16(out.Status)
	r.IdPResponse = out.Response
	r.TokensRevoked = uint32(max(out.Revoked, 0))
	r.Attempts = uint32(max(out.Attempts, 0))
}

// reject audits a command that must not run. Messages that are not a valid
// signed command at all are also dead-lettered (poison); valid commands that
// are stale or replayed are only audited.
func (h *Handler) reject(ctx context.Context, pos position, cmd *schemas.RevokeCommand, value []byte, reason string, poison bool) error {
	var r schemas.AuditRow
	if cmd != nil {
		r = schemas.RowFromCommand(cmd)
		r.SessionID, r.TokenID = cmd.Target.SessionID, cmd.Target.TokenID
	} else {
		// Nothing in an unverified value can be trusted, so the row names
		// the message by the hash of its bytes, not by its claimed id.
		sum := sha256.Sum256(value)
		r.CommandID = "unverified:" + hex.EncodeToString(sum[:16])
	}
	r.RowID = schemas.AuditRowID(r.CommandID, schemas.StepRejected, pos.topic, pos.partition, pos.offset)
	r.Step = schemas.StepRejected
	r.Time = h.now().UTC()
	r.Actor = h.actor
	r.Detail = reason
	r.SourceTopic, r.SourcePartition, r.SourceOffset = pos.topic, pos.partition, pos.offset
	if err := h.write(ctx, r); err != nil {
		return err
	}
	h.metrics.Rejected.Inc()
	h.log.Warn().Str("command_id", r.CommandID).Str("reason", reason).
		Str("topic", pos.topic).Int32("partition", pos.partition).Int64("offset", pos.offset).
		Msg("command rejected")
	if poison {
		return kafkax.Poison(reason, errors.New(reason))
	}
	return nil
}

// auditQueue is an AuditLog that can queue rows and wait for them later
// (audit.Writer.Enqueue).
type auditQueue interface {
	Enqueue(rows ...schemas.AuditRow) (wait func(context.Context) error, err error)
}

var errNoQueue = errors.New("the audit log cannot queue rows")

// writeLater queues the rows of a carried-out revocation and returns a
// kafkax.Later, so the reader's lane takes its next command while the
// rows wait for their group commit, and the offset is committed only
// once they are durable (store or spool). The replay index learns the
// command at once: a replay behind it must be refused before its rows
// land. A failed wait queues the same rows again (their ids are
// deterministic) until they are durable or the reader stops; stopped, the
// message is not committed and its redelivery runs the (idempotent)
// revocation again. An AuditLog that cannot queue is written through.
func (h *Handler) writeLater(ctx context.Context, rows ...schemas.AuditRow) error {
	q, ok := h.audit.(auditQueue)
	if !ok {
		return h.write(ctx, rows...)
	}
	wait, err := q.Enqueue(rows...)
	if errors.Is(err, errNoQueue) {
		return h.write(ctx, rows...)
	}
	if err != nil {
		h.metrics.AuditErrors.Inc()
		return fmt.Errorf("writing audit rows: %w", err)
	}
	if h.replay != nil {
		h.replay.record(rows)
	}
	return kafkax.Later(func(ctx context.Context) error {
		sched := retry.New(10*time.Millisecond, time.Second)
		for {
			err := wait(ctx)
			if err == nil {
				h.observe(rows)
				return nil
			}
			h.metrics.AuditErrors.Inc()
			if ctx.Err() != nil {
				return fmt.Errorf("writing audit rows: %w", err)
			}
			pause := sched.Next()
			h.log.Warn().Err(err).Dur("retry_in", pause).Msg("audit rows of a carried-out revocation not yet durable; queueing them again")
			if !retry.Sleep(ctx, pause) {
				return fmt.Errorf("writing audit rows: %w", err)
			}
			if wait, err = q.Enqueue(rows...); err != nil {
				return fmt.Errorf("writing audit rows: %w", err)
			}
		}
	})
}

func (h *Handler) write(ctx context.Context, rows ...schemas.AuditRow) error {
	if err := h.audit.Write(ctx, rows...); err != nil {
		h.metrics.AuditErrors.Inc()
		return fmt.Errorf("writing audit rows: %w", err)
	}
	if h.replay != nil {
		h.replay.record(rows)
	}
	h.observe(rows)
	return nil
}

// observe hands durable rows to the observer, if any.
func (h *Handler) observe(rows []schemas.AuditRow) {
	if h.observer != nil {
		for _, r := range rows {
			h.observer(r)
		}
	}
}

var _ AuditLog = (*auditLog)(nil)

// auditLog joins the chain writer and the store's reads.
type auditLog struct {
	w *audit.Writer
	s audit.Store
}

// Enqueue implements auditQueue.
func (a *auditLog) Enqueue(rows ...schemas.AuditRow) (func(context.Context) error, error) {
	return a.w.Enqueue(rows...)
}

func (a *auditLog) Write(ctx context.Context, rows ...schemas.AuditRow) error {
	return a.w.Write(ctx, rows...)
}

func (a *auditLog) CommandRows(ctx context.Context, id string) ([]schemas.AuditRow, error) {
	return a.s.CommandRows(ctx, id)
}

// NewAuditLog combines an audit chain writer and the store behind it.
func NewAuditLog(w *audit.Writer, s audit.Store) AuditLog { return &auditLog{w: w, s: s} }
