package held

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// Headers of held commands and of approved ones. They annotate the signed
// value; the signature covers the value alone, as on every command.
const (
	// HeaderHeldReason says why a command was held: budget_global or
	// budget_rule.
	HeaderHeldReason = "held-reason"
	// HeaderHeldAt is when the detector held it (RFC 3339).
	HeaderHeldAt = "held-at"
	// HeaderApprovedBy names who approved a held command; it travels on
	// the approved command in the command topic.
	HeaderApprovedBy = "approved-by"
	// HeaderApprovedAt is when (RFC 3339).
	HeaderApprovedAt = "approved-at"
)

// Outcomes of a Resolution are the states Approved and Rejected.

// Default topics of held commands and of the decisions taken on them.
const (
	TopicHeld          = "revoke.held"
	TopicHeldDecisions = "revoke.held.decisions"
)

// Resolution is an operator's decision on a held command, the value of a
// message in the decisions topic (keyed by command id).
type Resolution struct {
	CommandID string    `json:"command_id"`
	Outcome   State     `json:"outcome"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	Note      string    `json:"note,omitempty"`
}

// entry is a command held in the held topic, with the decision taken on it
// if any.
type entry struct {
	Command    schemas.RevokeCommand
	Message    kafkax.Message // as held: value, key and signature headers
	Reason     string
	HeldAt     time.Time
	Resolution *Resolution
}

// HeldMessage turns the signed message of a command into its held form:
// the same key, value and signature headers, plus why and when it was
// held.
func HeldMessage(signed kafkax.Message, reason string, at time.Time) kafkax.Message {
	m := kafkax.Message{Key: signed.Key, Value: signed.Value, Headers: slices.Clone(signed.Headers)}
	m.Headers = append(m.Headers,
		kafkax.Header{Key: HeaderHeldReason, Value: []byte(reason)},
		kafkax.Header{Key: HeaderHeldAt, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
	)
	return m
}

// Publisher writes messages, each naming its topic; *kafkax.Writer built
// without a topic satisfies it.
type Publisher = kafkax.Publisher

var _ Source = (*TopicStore)(nil)

// TopicStore is the Source of the commands the detector held: the held
// topic, and the decisions topic beside it. Approving
// publishes the held message, value and signature unchanged, to the command
// topic with HeaderApprovedBy and HeaderApprovedAt added, then records a
// Resolution; rejecting records a Resolution only. Decisions are final: a
// command decided once cannot be decided again. An approval that published
// but failed to record can be repeated: the consumer executes a command id
// once.
type TopicStore struct {
	Topics    Topics
	Reader    TopicReader
	Publisher Publisher
	// Now stamps decisions and judges expiry. Defaults to time.Now.
	Now func() time.Time
}

// Topics names the topics a TopicStore uses.
type Topics struct {
	Held      string
	Decisions string
	Commands  string
}

// TopicReader returns every message a topic holds now; a topic that does
// not exist holds none.
type TopicReader interface {
	ReadTopic(ctx context.Context, topic string) ([]kafkax.Message, error)
}

var _ TopicReader = (*kafkax.Client)(nil)

func (s *TopicStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// entries returns the held commands, oldest first, with their
// resolutions. A message of the held topic that is not a valid command is
// skipped and reported in the returned error, after the others.
func (s *TopicStore) entries(ctx context.Context) ([]entry, error) {
	msgs, err := s.Reader.ReadTopic(ctx, s.Topics.Held)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.Topics.Held, err)
	}
	decs, err := s.Reader.ReadTopic(ctx, s.Topics.Decisions)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.Topics.Decisions, err)
	}
	resolved := make(map[string]*Resolution)
	for _, m := range decs {
		var r Resolution
		if json.Unmarshal(m.Value, &r) != nil || r.CommandID == "" {
			continue
		}
		if _, seen := resolved[r.CommandID]; !seen {
			resolved[r.CommandID] = &r // the first decision stands
		}
	}
	var out []entry
	var errs []error
	seen := make(map[string]bool)
	for _, m := range msgs {
		cmd, err := schemas.DecodeCommand(m.Value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err))
			continue
		}
		if seen[cmd.CommandID] {
			continue // held again after a redelivery
		}
		seen[cmd.CommandID] = true
		h := entry{Command: cmd, Message: m, Reason: headerValue(m, HeaderHeldReason), Resolution: resolved[cmd.CommandID]}
		h.HeldAt, _ = time.Parse(time.RFC3339Nano, headerValue(m, HeaderHeldAt))
		out = append(out, h)
	}
	slices.SortStableFunc(out, func(a, b entry) int { return a.HeldAt.Compare(b.HeldAt) })
	return out, errors.Join(errs...)
}

// approve publishes the held command id to the command topic on behalf of
// approver and records the approval. It refuses a command that is
// unknown, decided already or expired (a stale command must not be
// executed; the consumer would reject it anyway).
func (s *TopicStore) approve(ctx context.Context, id, approver, note string) (entry, error) {
	h, err := s.pending(ctx, id)
	if err != nil {
		return h, err
	}
	now := s.now().UTC()
	if h.Command.Expired(now) {
		return h, fmt.Errorf("%w: %s expired at %s", ErrExpired, id, h.Command.ExpiresAt.Format(time.RFC3339))
	}
	m := kafkax.Message{Topic: s.Topics.Commands, Key: h.Message.Key, Value: h.Message.Value}
	for _, hd := range h.Message.Headers {
		switch hd.Key {
		case schemas.HeaderSchema, schemas.HeaderKeyID, schemas.HeaderSignature, HeaderHeldReason, HeaderHeldAt:
			m.Headers = append(m.Headers, hd)
		}
	}
	m.Headers = append(m.Headers,
		kafkax.Header{Key: HeaderApprovedBy, Value: []byte(approver)},
		kafkax.Header{Key: HeaderApprovedAt, Value: []byte(now.Format(time.RFC3339Nano))},
	)
	if err := s.Publisher.WriteMessages(ctx, m); err != nil {
		return h, fmt.Errorf("publishing approved command %s to %s: %w", id, s.Topics.Commands, err)
	}
	return s.record(ctx, h, Approved, approver, note, now)
}

// reject records that approver rejected the held command id. It is never
// published.
func (s *TopicStore) reject(ctx context.Context, id, approver, note string) (entry, error) {
	h, err := s.pending(ctx, id)
	if err != nil {
		return h, err
	}
	return s.record(ctx, h, Rejected, approver, note, s.now().UTC())
}

func (s *TopicStore) pending(ctx context.Context, id string) (entry, error) {
	list, err := s.entries(ctx)
	if list == nil && err != nil {
		return entry{}, err
	}
	for _, h := range list {
		if h.Command.CommandID != id {
			continue
		}
		if h.Resolution != nil {
			return h, fmt.Errorf("%w: %s was %s by %s at %s", ErrDecided, id, h.Resolution.Outcome, h.Resolution.By, h.Resolution.At.Format(time.RFC3339))
		}
		return h, nil
	}
	return entry{}, fmt.Errorf("%w: %q in %s", ErrNotHeld, id, s.Topics.Held)
}

func (s *TopicStore) record(ctx context.Context, h entry, outcome State, by, note string, at time.Time) (entry, error) {
	r := Resolution{CommandID: h.Command.CommandID, Outcome: outcome, By: by, At: at, Note: note}
	v, err := json.Marshal(r)
	if err != nil {
		return h, err
	}
	if err := s.Publisher.WriteMessages(ctx, kafkax.Message{Topic: s.Topics.Decisions, Key: []byte(r.CommandID), Value: v}); err != nil {
		return h, fmt.Errorf("recording the %s decision on %s in %s: %w", outcome, r.CommandID, s.Topics.Decisions, err)
	}
	h.Resolution = &r
	return h, nil
}

func headerValue(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// List implements Source: the held topic's commands, newest first, with
// the decisions of the decisions topic. Invalid messages of the held
// topic are left out and reported in the error, after the others.
func (s *TopicStore) List(ctx context.Context, all bool, limit int) ([]Held, error) {
	entries, err := s.entries(ctx)
	if entries == nil && err != nil {
		return nil, err
	}
	now := s.now()
	out := []Held{}
	for _, e := range entries {
		h := e.held(now)
		if all || h.State == Pending {
			out = append(out, h)
		}
	}
	Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// Get implements Source.
func (s *TopicStore) Get(ctx context.Context, id string) (Held, error) {
	entries, err := s.entries(ctx)
	if entries == nil && err != nil {
		return Held{CommandID: id}, err
	}
	for _, e := range entries {
		if e.Command.CommandID == id {
			return e.held(s.now()), nil
		}
	}
	return Held{CommandID: id}, fmt.Errorf("%w: %q in %s", ErrNotHeld, id, s.Topics.Held)
}

// Approve implements Source: it republishes the held command, signed as
// it was, to the command topic with the approver named, and records the
// approval. A decided, expired or unknown command is refused.
func (s *TopicStore) Approve(ctx context.Context, id, approver, note string) (Held, error) {
	if strings.TrimSpace(approver) == "" {
		return Held{CommandID: id}, ErrNoApprover
	}
	e, err := s.approve(ctx, id, approver, note)
	return e.held(s.now()), err
}

// Reject implements Source: it records the rejection; the command is
// never published.
func (s *TopicStore) Reject(ctx context.Context, id, approver, note string) (Held, error) {
	if strings.TrimSpace(approver) == "" {
		return Held{CommandID: id}, ErrNoApprover
	}
	e, err := s.reject(ctx, id, approver, note)
	return e.held(s.now()), err
}

// held describes an entry as a Held at now.
func (e entry) held(now time.Time) Held {
	c := e.Command
	h := Held{
		CommandID: c.CommandID, HeldBy: ByDetector, State: Pending, Reason: e.Reason, HeldAt: e.HeldAt,
		RuleID: c.Reason.RuleID, TargetKind: string(c.Target.Kind), Target: c.Target.ID(), Action: string(c.Action),
		ExpiresAt: c.ExpiresAt,
	}
	switch r := e.Resolution; {
	case r != nil:
		h.State = Rejected
		if r.Outcome == Approved {
			h.State = Approved
		}
		h.Decision = &Decision{By: r.By, At: r.At, Note: r.Note}
	case c.CommandID != "" && c.Expired(now):
		h.State = Expired
	}
	return h
}
