// Package held is the one workflow for commands a guard held for a human:
// both components hold commands over their revocation budget (and the
// consumer every enforcing command while its kill switch is engaged), and
// an operator lists, approves or rejects them the same way, whichever
// component held them.
//
// A command the detector held is a signed message in the held topic
// (TopicStore): approving it republishes it, signed as it was, to the
// command topic. A command the consumer held is a held row in its audit
// trail: approving it re-reads the signed message from Kafka and carries it
// out. Both are a Source; Sources joins them, so one list, one CLI table
// (Print) and one HTTP API (API) show every held command, each naming who
// held it.
package held

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Who held a command.
const (
	ByDetector = "detector"
	ByConsumer = "consumer"
)

// State is where a held command stands.
type State string

// States of a held command.
const (
	// Pending waits for a decision.
	Pending State = "pending"
	// Approved was approved: republished (detector) or carried out
	// (consumer).
	Approved State = "approved"
	// Rejected was rejected by a human, or expired before approval
	// (consumer).
	Rejected State = "rejected"
	// Failed was approved, but the token API refused it for good.
	Failed State = "failed"
	// Expired waits for no decision any more: the command expired
	// undecided, and an approval would be refused.
	Expired State = "expired"
)

// Errors of a Source. Implementations wrap them, so that errors.Is tells
// the CLI and the API what happened.
var (
	// ErrNotHeld: no held command with this id.
	ErrNotHeld = errors.New("command is not held")
	// ErrDecided: the held command was already decided the other way.
	ErrDecided = errors.New("held command already decided")
	// ErrExpired: the command expired before it was approved.
	ErrExpired = errors.New("held command has expired")
	// ErrNoApprover: a decision must name who made it.
	ErrNoApprover = errors.New("approver is required")
	// ErrBlocked: the decision cannot be carried out now (the kill
	// switch is engaged).
	ErrBlocked = errors.New("held command cannot be carried out now")
	// ErrRefused: the approved command was refused for good (the token
	// API refused it, or the message at its position is not the command).
	ErrRefused = errors.New("approved command refused")
)

// Decision is who decided a held command, when, and what they noted.
type Decision struct {
	By   string    `json:"by"`
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"`
}

// Held is one held command as every Source describes it.
type Held struct {
	CommandID string `json:"command_id"`
	// HeldBy is the component that held it: ByDetector or ByConsumer.
	HeldBy string `json:"held_by"`
	State  State  `json:"state"`
	// Reason is why it was held (budget_global, budget_rule, the kill
	// switch).
	Reason     string    `json:"reason"`
	HeldAt     time.Time `json:"held_at"`
	RuleID     string    `json:"rule_id"`
	TargetKind string    `json:"target_kind"`
	Target     string    `json:"target"`
	Action     string    `json:"action"`
	ExpiresAt  time.Time `json:"expires_at"`
	Decision   *Decision `json:"decision,omitempty"`
	// Record is the holding component's own record of the command: for
	// the consumer, its held audit row and the row that decided it.
	Record any `json:"record,omitempty"`
}

// Source lists held commands and decides on them.
type Source interface {
	// List returns held commands, newest first: only pending ones unless
	// all, at most limit (0: no limit).
	List(ctx context.Context, all bool, limit int) ([]Held, error)
	// Get returns one held command, or an error wrapping ErrNotHeld.
	Get(ctx context.Context, id string) (Held, error)
	// Approve approves the held command id on behalf of approver.
	// Approving an approved command again reports it and does nothing.
	Approve(ctx context.Context, id, approver, note string) (Held, error)
	// Reject rejects it; it is never carried out.
	Reject(ctx context.Context, id, approver, note string) (Held, error)
}

// Sources joins the held commands of several components into one Source.
type Sources []Source

// List returns every source's held commands, newest first. It fails when
// any source fails: a partial list would hide commands waiting for a
// decision.
func (ss Sources) List(ctx context.Context, all bool, limit int) ([]Held, error) {
	out := []Held{}
	for _, s := range ss {
		l, err := s.List(ctx, all, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Approve approves id at the source that holds it pending.
func (ss Sources) Approve(ctx context.Context, id, approver, note string) (Held, error) {
	return ss.decide(ctx, id, func(s Source) (Held, error) { return s.Approve(ctx, id, approver, note) })
}

// Reject rejects id at the source that holds it pending.
func (ss Sources) Reject(ctx context.Context, id, approver, note string) (Held, error) {
	return ss.decide(ctx, id, func(s Source) (Held, error) { return s.Reject(ctx, id, approver, note) })
}

// Get returns id from the source where it is pending, else from the
// first source that holds it.
func (ss Sources) Get(ctx context.Context, id string) (Held, error) {
	s, err := ss.find(ctx, id)
	if err != nil {
		return Held{CommandID: id}, err
	}
	return s.Get(ctx, id)
}

// decide decides id at the source where it is pending: a command both
// components held (the detector's approval, then held again by a consumer
// over its own budget) is decided where it is still undecided. Where it
// is decided everywhere, the first source that holds it answers (an
// approval again is no change; the other decision is ErrDecided).
func (ss Sources) decide(ctx context.Context, id string, fn func(Source) (Held, error)) (Held, error) {
	s, err := ss.find(ctx, id)
	if err != nil {
		return Held{CommandID: id}, err
	}
	return fn(s)
}

func (ss Sources) find(ctx context.Context, id string) (Source, error) {
	var first Source
	for _, s := range ss {
		h, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotHeld):
			continue
		case err != nil:
			return nil, err
		case h.State == Pending:
			return s, nil
		case first == nil:
			first = s
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotHeld, id)
	}
	return first, nil
}

// Sort orders held commands newest first, by command id within a time.
func Sort(l []Held) {
	slices.SortStableFunc(l, func(a, b Held) int {
		if c := b.HeldAt.Compare(a.HeldAt); c != 0 {
			return c
		}
		return strings.Compare(a.CommandID, b.CommandID)
	})
}
