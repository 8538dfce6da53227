package held

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

func signedMessage(t *testing.T, s *schemas.Signer, id string, issued time.Time) kafkax.Message {
	t.Helper()
	cmd := schemas.RevokeCommand{CommandID: id, IssuedAt: issued, ExpiresAt: issued.Add(time.Hour), Issuer: "revoked-detector",
		Target: schemas.Target{Kind: schemas.TargetUser, UserID: "u-" + id}, Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
		Reason: schemas.Reason{RuleID: "r1", RuleVersion: 1, Severity: schemas.SeverityHigh}}
	v, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return kafkax.Message{Key: []byte(cmd.Target.Key()), Value: v, Headers: []kafkax.Header{
		{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaRevokeCommandV1)},
		{Key: schemas.HeaderKeyID, Value: []byte(s.KeyID())},
		{Key: schemas.HeaderSignature, Value: []byte(s.Sign(v))},
	}}
}

// Held commands are listed; an approval republishes the signed value to
// the command topic with the approver named, a rejection publishes
// nothing, and both are recorded and final.
func TestHeldStore(t *testing.T) {
	topics := Topics{Held: TopicHeld, Decisions: TopicHeldDecisions, Commands: schemas.TopicRevokeCommands}
	c := kafkatest.New(t, topics.Held, topics.Decisions, topics.Commands)
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := schemas.NewSigner(priv)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c.Produce(t, topics.Held,
		HeldMessage(signedMessage(t, signer, "cmd_a", now), "budget_global", now),
		HeldMessage(signedMessage(t, signer, "cmd_b", now.Add(time.Second)), "budget_rule", now.Add(time.Second)),
		HeldMessage(signedMessage(t, signer, "cmd_old", now.Add(-2*time.Hour)), "budget_rule", now.Add(-2*time.Hour)),
	)
	reader, err := kafkax.NewClient([]string{c.Addr()}, kafkax.Security{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	w, err := kafkax.NewWriter(kafkax.WriterConfig{Brokers: []string{c.Addr()}, BatchTimeout: time.Millisecond, BatchSize: 1, BatchBytes: 1 << 20, WriteTimeout: 5 * time.Second, MaxAttempts: 3, ClientID: "test"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	store := &TopicStore{Topics: topics, Reader: reader, Publisher: w, Now: func() time.Time { return now.Add(time.Minute) }}
	ctx := t.Context()

	list, err := store.List(ctx, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Newest first; the command that expired undecided says so.
	if len(list) != 3 || list[2].CommandID != "cmd_old" || list[2].State != Expired || list[1].Reason != "budget_global" ||
		list[1].State != Pending || list[1].Decision != nil || list[1].HeldBy != ByDetector || list[1].Target != "u-cmd_a" {
		t.Fatalf("list %+v", list)
	}
	if pending, err := store.List(ctx, false, 0); err != nil || len(pending) != 2 {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	if _, err := store.Approve(ctx, "cmd_a", " ", ""); !errors.Is(err, ErrNoApprover) {
		t.Errorf("approving without an approver: %v", err)
	}

	if _, err := store.Approve(ctx, "cmd_a", "alice", "checked with the user"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reject(ctx, "cmd_b", "bob", "false positive"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Approve(ctx, "cmd_old", "alice", ""); !errors.Is(err, ErrExpired) {
		t.Errorf("approving an expired command: %v", err)
	}
	if _, err := store.Approve(ctx, "cmd_b", "alice", ""); !errors.Is(err, ErrDecided) {
		t.Errorf("approving a rejected command: %v", err)
	}
	if _, err := store.Reject(ctx, "cmd_a", "bob", ""); !errors.Is(err, ErrDecided) {
		t.Errorf("rejecting an approved command: %v", err)
	}
	if _, err := store.Approve(ctx, "cmd_nope", "alice", ""); !errors.Is(err, ErrNotHeld) {
		t.Errorf("approving an unknown command: %v", err)
	}

	cmds := c.Records(t, topics.Commands)
	if len(cmds) != 1 {
		t.Fatalf("%d commands published, want the approved one", len(cmds))
	}
	got := cmds[0]
	if err := schemas.NewKeyring(priv.Public().(ed25519.PublicKey)).Verify(headerValue(got, schemas.HeaderKeyID), headerValue(got, schemas.HeaderSignature), got.Value); err != nil {
		t.Errorf("approved command does not verify: %v", err)
	}
	if headerValue(got, HeaderApprovedBy) != "alice" || headerValue(got, HeaderHeldReason) != "budget_global" || string(got.Key) != "u-cmd_a" {
		t.Errorf("approved command headers %v key %q", got.Headers, got.Key)
	}
	list, err = store.List(ctx, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Held{}
	for _, h := range list {
		byID[h.CommandID] = h
	}
	if h := byID["cmd_a"]; h.State != Approved || h.Decision == nil || h.Decision.By != "alice" || h.Decision.Note != "checked with the user" {
		t.Errorf("cmd_a %+v", h)
	}
	if h := byID["cmd_b"]; h.State != Rejected || h.Decision == nil || h.Decision.By != "bob" {
		t.Errorf("cmd_b %+v", h)
	}
	if h := byID["cmd_old"]; h.Decision != nil || h.State != Expired {
		t.Errorf("cmd_old %+v", h)
	}
	if pending, err := store.List(ctx, false, 0); err != nil || len(pending) != 0 {
		t.Errorf("pending after the decisions %+v, %v", pending, err)
	}
}

func TestKafkaTopicReaderMissingTopic(t *testing.T) {
	c := kafkatest.New(t, TopicHeld)
	r, err := kafkax.NewClient([]string{c.Addr()}, kafkax.Security{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := r.ReadTopic(t.Context(), "no.such.topic")
	if err != nil || len(msgs) != 0 {
		t.Errorf("ReadTopic of a missing topic = %d, %v", len(msgs), err)
	}
	if err := r.CheckTopic(t.Context(), "no.such.topic"); !errors.Is(err, kafkax.ErrNoTopic) {
		t.Errorf("CheckTopic of a missing topic = %v", err)
	}
	if err := r.CheckTopic(t.Context(), TopicHeld); err != nil {
		t.Errorf("CheckTopic(%s) = %v", TopicHeld, err)
	}
}
