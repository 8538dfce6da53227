package service

import (
	"context"

	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/schemas"
)

// guardStep applies the consumer's own guards: an allowlisted target is
// refused (a rejected row), and the kill switch and the budget hold the
// command for a human (a held row; see Approvals).
func (h *Handler) guardStep(ctx context.Context, f *flight, next next) error {
	d := h.guard.Check(&f.cmd)
	if d.Verdict == guard.Allow {
		return next(ctx, f)
	}
	step := schemas.StepHeld
	if d.Verdict == guard.Refuse {
		step = schemas.StepRejected
	}
	done := h.row(&f.cmd, f.pos, step, h.now())
	done.Detail = d.Reason
	if err := h.write(ctx, f.received(h), done); err != nil {
		return err
	}
	if step == schemas.StepHeld {
		h.metrics.Held.Inc()
		h.log.Warn().Str("command_id", f.cmd.CommandID).Str("rule_id", f.cmd.Reason.RuleID).Str("reason", d.Reason).
			Msg("command held for approval")
	} else {
		h.metrics.Rejected.Inc()
		h.log.Info().Str("command_id", f.cmd.CommandID).Str("reason", d.Reason).Msg("command refused by the allowlist")
	}
	return nil
}
