package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/internal/held"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Errors of Approvals, the held workflow's own (package held).
var (
	// ErrNotHeld: the audit trail holds no held row for the command.
	ErrNotHeld = held.ErrNotHeld
	// ErrDecided: the held command was already decided the other way
	// (approving a rejected command, or rejecting an executed one).
	ErrDecided = held.ErrDecided
	// ErrNoApprover: an approval or rejection must name who made it.
	ErrNoApprover = held.ErrNoApprover
	// ErrMismatch: the message at the held row's Kafka position is not the
	// held command (the topic was recreated, or the row is not genuine).
	ErrMismatch = errors.New("the message at the held position is not the held command")
)

// errListingOnly: the approvals were opened without the handler that
// carries a decision out.
var errListingOnly = errors.New("approvals: opened for listing only")

// HeldState is where a held command stands.
type HeldState string

// Held states.
const (
	// HeldPending waits for a decision.
	HeldPending HeldState = "pending"
	// HeldApproved was approved and carried out.
	HeldApproved HeldState = "approved"
	// HeldRejected was rejected by a human, or expired before approval.
	HeldRejected HeldState = "rejected"
	// HeldFailed was approved, but the token API refused it for good.
	HeldFailed HeldState = "failed"
)

// HeldCommand is one held command and its state.
type HeldCommand struct {
	CommandID string    `json:"command_id"`
	State     HeldState `json:"state"`
	// Held is the row that held it: target, reason, the hold's reason in
	// Detail, and the Kafka position the command came from.
	Held schemas.AuditRow `json:"held"`
	// Decision is the row that decided it, when one did.
	Decision *schemas.AuditRow `json:"decision,omitempty"`
}

// HeldStore is the part of the audit store Approvals reads.
type HeldStore interface {
	History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error)
	CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error)
}

// MessageFetcher reads one message back from Kafka by its position.
type MessageFetcher interface {
	FetchAt(ctx context.Context, topic string, partition int32, offset int64) (kafkax.Message, error)
}

// Approvals lists held commands and lets a human approve or reject them.
//
// A held command is stored nowhere but in the audit trail: its held row
// names the Kafka position of the signed message. Approval reads that
// message back, verifies its signature again and checks its expiry, so
// what runs is exactly what the issuer signed; the resulting rows carry
// the approver and share the held row's position, so they are the same
// rows however often an approval is retried. Approving an approved command
// again reports it approved without running it; decisions of one process
// are serialised, and two processes racing on the same command at worst
// revoke twice (harmless) and write the same rows.
type Approvals struct {
	h     *Handler
	store HeldStore
	fetch MessageFetcher
	mu    sync.Mutex
}

// NewApprovals returns the approvals over store, carrying approved
// commands out with h and fetch. With a nil h or fetch it can only list.
func NewApprovals(h *Handler, store HeldStore, fetch MessageFetcher) *Approvals {
	return &Approvals{h: h, store: store, fetch: fetch}
}

// List returns held commands, newest first: only pending ones unless all.
func (a *Approvals) List(ctx context.Context, all bool, limit int) ([]HeldCommand, error) {
	rows, err := a.store.History(ctx, audit.Query{Steps: []schemas.Step{schemas.StepHeld}, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("listing held rows: %w", err)
	}
	out := []HeldCommand{}
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.CommandID] {
			continue
		}
		seen[r.CommandID] = true
		hc, err := a.state(ctx, r.CommandID)
		if err != nil {
			return nil, err
		}
		if all || hc.State == HeldPending {
			out = append(out, hc)
		}
	}
	return out, nil
}

// Get returns one held command's state.
func (a *Approvals) Get(ctx context.Context, commandID string) (HeldCommand, error) {
	return a.state(ctx, commandID)
}

func (a *Approvals) state(ctx context.Context, commandID string) (HeldCommand, error) {
	rows, err := a.store.CommandRows(ctx, commandID)
	if err != nil {
		return HeldCommand{}, fmt.Errorf("reading the command's audit rows: %w", err)
	}
	return heldState(commandID, rows)
}

func heldState(commandID string, rows []schemas.AuditRow) (HeldCommand, error) {
	hc := HeldCommand{CommandID: commandID, State: HeldPending}
	found := false
	for _, r := range rows {
		if r.Step == schemas.StepHeld {
			hc.Held, found = r, true
		}
	}
	if !found {
		return hc, fmt.Errorf("%w: %s", ErrNotHeld, commandID)
	}
	pos := position{topic: hc.Held.SourceTopic, partition: hc.Held.SourcePartition, offset: hc.Held.SourceOffset}
	for _, r := range rows {
		if !pos.same(r) {
			continue
		}
		var s HeldState
		switch r.Step {
		case schemas.StepConfirmed, schemas.StepUnconfirmed, schemas.StepRevoked:
			s = HeldApproved
		case schemas.StepRejected:
			s = HeldRejected
		case schemas.StepDeadLettered:
			s = HeldFailed
		default:
			continue
		}
		hc.State, hc.Decision = s, &r
	}
	return hc, nil
}

// Approve carries out a held command on behalf of approver. It re-reads
// the signed message from Kafka, verifies it, refuses it once expired
// (recording a rejected row), and refuses while the kill switch is
// engaged; the budget does not apply to an approved command. Approving an
// approved command returns its state and runs nothing. An error wrapping
// ErrTerminal means the token API refused it for good (audited as
// dead_lettered); other errors leave it pending and approval may be
// retried.
func (a *Approvals) Approve(ctx context.Context, commandID, approver string) (HeldCommand, error) {
	if strings.TrimSpace(approver) == "" {
		return HeldCommand{}, ErrNoApprover
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	hc, err := a.state(ctx, commandID)
	if err != nil {
		return hc, err
	}
	if a.h == nil || a.fetch == nil {
		return hc, errListingOnly
	}
	switch hc.State {
	case HeldApproved:
		return hc, nil
	case HeldRejected, HeldFailed:
		return hc, fmt.Errorf("%w: %s is %s", ErrDecided, commandID, hc.State)
	}
	if err := a.h.guard.Enforcing(); err != nil {
		return hc, err
	}
	held := hc.Held
	m, err := a.fetch.FetchAt(ctx, held.SourceTopic, held.SourcePartition, held.SourceOffset)
	if err != nil {
		return hc, fmt.Errorf("re-reading the held command from Kafka: %w", err)
	}
	cmd, reason, err := a.h.verify(m)
	if err != nil {
		return hc, fmt.Errorf("%w: %s", ErrMismatch, reason)
	}
	if cmd.CommandID != commandID {
		return hc, fmt.Errorf("%w: found %s", ErrMismatch, cmd.CommandID)
	}
	pos := position{topic: held.SourceTopic, partition: held.SourcePartition, offset: held.SourceOffset}
	if now := a.h.now(); cmd.Expired(now) {
		err := a.decide(ctx, &cmd, pos, approver, fmt.Sprintf("expired at %s before approval", cmd.ExpiresAt.UTC().Format(time.RFC3339)))
		return a.after(ctx, commandID, errors.Join(errors.New("command expired before approval"), err))
	}
	rawToken, reason, err := a.h.unseal(&cmd)
	if err != nil {
		return hc, errors.New(reason)
	}
	err = a.h.execute(ctx, &cmd, pos, rawToken, approver, false)
	a.h.metrics.Decided.Inc()
	a.h.log.Warn().Str("command_id", commandID).Str("approver", approver).AnErr("error", err).Msg("held command approved")
	return a.after(ctx, commandID, err)
}

// Reject records that approver rejected a held command: a rejected row
// with the approver. Rejecting a rejected command again changes nothing.
func (a *Approvals) Reject(ctx context.Context, commandID, approver, reason string) (HeldCommand, error) {
	if strings.TrimSpace(approver) == "" {
		return HeldCommand{}, ErrNoApprover
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	hc, err := a.state(ctx, commandID)
	if err != nil {
		return hc, err
	}
	if a.h == nil {
		return hc, errListingOnly
	}
	switch hc.State {
	case HeldRejected:
		return hc, nil
	case HeldApproved, HeldFailed:
		return hc, fmt.Errorf("%w: %s is %s", ErrDecided, commandID, hc.State)
	}
	cmd := commandFromRow(hc.Held)
	pos := position{topic: hc.Held.SourceTopic, partition: hc.Held.SourcePartition, offset: hc.Held.SourceOffset}
	detail := "rejected by " + approver
	if reason != "" {
		detail += ": " + reason
	}
	err = a.decide(ctx, &cmd, pos, approver, detail)
	a.h.log.Warn().Str("command_id", commandID).Str("approver", approver).Msg("held command rejected")
	return a.after(ctx, commandID, err)
}

// decide writes a rejected row for a held command.
func (a *Approvals) decide(ctx context.Context, cmd *schemas.RevokeCommand, pos position, approver, detail string) error {
	r := a.h.row(cmd, pos, schemas.StepRejected, a.h.now())
	r.Approver, r.Detail = approver, sanitise(detail, "")
	if err := a.h.write(ctx, r); err != nil {
		return err
	}
	a.h.metrics.Decided.Inc()
	return nil
}

func (a *Approvals) after(ctx context.Context, commandID string, err error) (HeldCommand, error) {
	hc, serr := a.state(ctx, commandID)
	if err != nil {
		return hc, err
	}
	return hc, serr
}

// commandFromRow rebuilds the audited fields of a command from its held
// row, for rows about a rejection (which runs nothing, so needs no
// signature). The evidence context comes back from its entries (an entry
// that does not decode is left out).
func commandFromRow(r schemas.AuditRow) schemas.RevokeCommand {
	var ctx []schemas.EventContext
	for _, e := range r.EvidenceContext {
		if c, err := schemas.ParseEventContext(e); err == nil {
			ctx = append(ctx, c)
		}
	}
	return schemas.RevokeCommand{
		CommandID: r.CommandID, IssuedAt: r.IssuedAt, ExpiresAt: r.ExpiresAt, Issuer: r.Issuer,
		Target: schemas.Target{Kind: r.TargetKind, UserID: r.UserID, TokenID: r.TokenID, SessionID: r.SessionID,
			ClientID: r.ClientID, IncludeDownscoped: r.IncludeDownscoped},
		Action: r.Action, Mode: r.Mode,
		Reason: schemas.Reason{RuleID: r.RuleID, RuleVersion: int(r.RuleVersion), Severity: r.Severity, Summary: r.Summary,
			Evidence: r.Evidence, FirstEventTime: r.FirstEventTime, LastEventTime: r.LastEventTime, DetectedAt: r.DetectedAt,
			Context: ctx},
	}
}

var _ MessageFetcher = (*KafkaFetcher)(nil)

// KafkaFetcher reads single messages by position, outside any consumer
// group (it commits nothing).
type KafkaFetcher struct {
	cfg     kafkax.ReaderConfig
	timeout time.Duration
}

// NewKafkaFetcher reads from the brokers of cfg with its security settings.
func NewKafkaFetcher(cfg kafkax.ReaderConfig) *KafkaFetcher {
	return &KafkaFetcher{cfg: cfg, timeout: 10 * time.Second}
}

// FetchAt implements MessageFetcher. It blocks until the message is read,
// the fetcher's timeout passes or ctx ends.
func (f *KafkaFetcher) FetchAt(ctx context.Context, topic string, partition int32, offset int64) (kafkax.Message, error) {
	client, err := kafkax.NewClient(f.cfg.Brokers, f.cfg.Security, f.cfg.Component+"-approvals")
	if err != nil {
		return kafkax.Message{}, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return client.FetchAt(ctx, topic, int(partition), offset)
}
