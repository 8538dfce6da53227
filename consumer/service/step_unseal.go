package service

import (
	"context"
	"errors"

	"github.com/revoked-dev/revoked/schemas"
)

// unsealStep opens a raw token that travels sealed, fingerprints it for
// the trail, and keeps it in the flight only: it never reaches a log or a
// row. A token that cannot be opened, or that is not the one the target
// names, is rejected and dead-lettered.
func (h *Handler) unsealStep(ctx context.Context, f *flight, next next) error {
	raw, reason, err := h.unseal(&f.cmd)
	if err != nil {
		return h.reject(ctx, f.pos, &f.cmd, nil, reason, true)
	}
	f.rawToken = raw
	return next(ctx, f)
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
