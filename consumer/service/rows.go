package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/retry"
	"github.com/revoked-dev/revoked/schemas"
)

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
// signed command at all are also dead-lettered (poison), once their row is
// durable; valid commands that are stale or replayed are only audited, and
// their row becomes durable after the lane goes on (writeLater), so that a
// backlog of expired commands after an outage, or a flood of replays,
// takes one group commit at a time rather than one store insert per
// command and lane.
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
	var err error
	if poison {
		err = h.write(ctx, r)
	} else {
		err = h.writeLater(ctx, r)
	}
	var later *kafkax.LaterError
	if err != nil && !errors.As(err, &later) {
		return err
	}
	h.metrics.Rejected.Inc()
	h.log.Warn().Str("command_id", r.CommandID).Str("reason", reason).
		Str("topic", pos.topic).Int32("partition", pos.partition).Int64("offset", pos.offset).
		Msg("command rejected")
	if poison {
		return kafkax.Poison(reason, errors.New(reason))
	}
	return err
}

// auditQueue is an AuditLog that can queue rows and wait for them later
// (audit.Writer.Enqueue).
type auditQueue interface {
	Enqueue(rows ...schemas.AuditRow) (wait func(context.Context) error, err error)
}

var errNoQueue = errors.New("the audit log cannot queue rows")

// writeLater queues the rows of a settled command (a carried-out
// revocation, a notify, a dry run, a refused stale or replayed command)
// and returns a kafkax.Later, so the reader's lane takes its next command
// while the rows wait for their group commit, and the offset is committed
// only once they are durable (store or spool). The replay index learns
// the command at once: a replay behind it must be refused before its rows
// land. A failed wait queues the same rows again (their ids are
// deterministic) until they are durable or the reader stops; stopped, the
// message is not committed and its redelivery settles the command again
// (a revocation is idempotent). An AuditLog that cannot queue is written
// through.
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
			h.log.Warn().Err(err).Dur("retry_in", pause).Msg("audit rows of a settled command not yet durable; queueing them again")
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
