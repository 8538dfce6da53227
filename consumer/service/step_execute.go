package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// executeStep carries the command out against the token API and audits
// the outcome with the received row. A carried-out revocation returns a
// kafkax.Later whose rows become durable after it returns; a terminal
// refusal of the token API is dead-lettered once audited.
func (h *Handler) executeStep(ctx context.Context, f *flight, _ next) error {
	err := h.execute(ctx, &f.cmd, f.pos, f.rawToken, "", true, f.received(h))
	if errors.Is(err, ErrTerminal) {
		return kafkax.Poison("token API: "+strings.TrimPrefix(err.Error(), ErrTerminal.Error()+": "), err)
	}
	return err
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
