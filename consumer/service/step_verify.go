package service

import (
	"context"
	"fmt"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// verifyStep checks the signature over the exact bytes, then decodes the
// command strictly. A message that fails is audited as rejected and
// dead-lettered: nothing in it can be trusted.
func (h *Handler) verifyStep(ctx context.Context, f *flight, next next) error {
	cmd, reason, err := h.verify(f.msg)
	if err != nil {
		return h.reject(ctx, f.pos, nil, f.msg.Value, reason, true)
	}
	f.cmd = cmd
	return next(ctx, f)
}

// freshStep refuses a command past its expiry, or issued further in the
// future than the clock skew allows. Both are audited, not dead-lettered:
// the command is genuine, only late or early.
func (h *Handler) freshStep(ctx context.Context, f *flight, next next) error {
	switch cmd := &f.cmd; {
	case cmd.Expired(f.start):
		return h.reject(ctx, f.pos, cmd, nil, fmt.Sprintf("expired at %s", cmd.ExpiresAt.UTC().Format(time.RFC3339)), false)
	case cmd.IssuedAt.After(f.start.Add(h.maxSkew)):
		return h.reject(ctx, f.pos, cmd, nil, fmt.Sprintf("issued_at %s is in the future", cmd.IssuedAt.UTC().Format(time.RFC3339)), false)
	}
	return next(ctx, f)
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
