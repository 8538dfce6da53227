package service

import (
	"context"

	"github.com/revoked-dev/revoked/schemas"
)

// modeStep settles what revokes nothing: a dry run, and the notify action.
// Both are audited with the received row, durable later (writeLater) like
// a revocation's: the lane goes on to its next command while the rows
// wait for their group commit, and only the offset commit waits for them.
func (h *Handler) modeStep(ctx context.Context, f *flight, next next) error {
	var step schemas.Step
	var detail string
	switch {
	case f.cmd.Mode == schemas.ModeDryRun:
		step, detail = schemas.StepDryRun, "dry run: nothing revoked"
	case f.cmd.Action == schemas.ActionNotify:
		step, detail = schemas.StepNotified, "action notify: nothing revoked"
	default:
		return next(ctx, f)
	}
	done := h.row(&f.cmd, f.pos, step, h.now())
	done.Detail = detail
	return h.writeLater(ctx, f.received(h), done)
}
