package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/revoked-dev/revoked/internal/guard"
	"github.com/revoked-dev/revoked/internal/held"
)

// Source returns the commands the consumer held, as the held workflow
// lists and decides them (held.Source): each names the consumer as the
// component that held it and keeps its audit rows as its record.
func (a *Approvals) Source() held.Source { return approvalsSource{a} }

type approvalsSource struct{ a *Approvals }

func (s approvalsSource) List(ctx context.Context, all bool, limit int) ([]held.Held, error) {
	list, err := s.a.List(ctx, all, limit)
	if err != nil {
		return nil, err
	}
	out := make([]held.Held, 0, len(list))
	for _, hc := range list {
		out = append(out, hc.AsHeld())
	}
	return out, nil
}

func (s approvalsSource) Get(ctx context.Context, id string) (held.Held, error) {
	hc, err := s.a.Get(ctx, id)
	if err != nil {
		return held.Held{CommandID: id}, err
	}
	return hc.AsHeld(), nil
}

func (s approvalsSource) Approve(ctx context.Context, id, approver, _ string) (held.Held, error) {
	hc, err := s.a.Approve(ctx, id, approver)
	return hc.AsHeld(), decisionError(err)
}

func (s approvalsSource) Reject(ctx context.Context, id, approver, note string) (held.Held, error) {
	hc, err := s.a.Reject(ctx, id, approver, note)
	return hc.AsHeld(), decisionError(err)
}

// decisionError marks the consumer's own refusals with the held workflow's
// errors: the kill switch blocks an approval for now, a terminal refusal
// of the token API or a message that is not the held command refuses it
// for good.
func decisionError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, guard.ErrKillSwitch):
		return fmt.Errorf("%w: %w", held.ErrBlocked, err)
	case errors.Is(err, ErrTerminal), errors.Is(err, ErrMismatch):
		return fmt.Errorf("%w: %w", held.ErrRefused, err)
	}
	return err
}

// AsHeld describes hc in the held workflow's terms; its record is hc.
func (hc HeldCommand) AsHeld() held.Held {
	if hc.CommandID == "" {
		return held.Held{}
	}
	r := hc.Held
	h := held.Held{
		CommandID: hc.CommandID, HeldBy: held.ByConsumer, State: held.State(hc.State), Reason: r.Detail, HeldAt: r.Time,
		RuleID: r.RuleID, TargetKind: string(r.TargetKind), Target: commandFromRow(r).Target.ID(),
		Action: string(r.Action), ExpiresAt: r.ExpiresAt, Record: hc,
	}
	if d := hc.Decision; d != nil {
		h.Decision = &held.Decision{By: d.Approver, At: d.Time, Note: d.Detail}
	}
	return h
}
