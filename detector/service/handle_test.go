package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

// flakyPublisher fails its first failures calls, then records messages.
type flakyPublisher struct {
	mu       sync.Mutex
	failures int
	calls    int
	got      []kafkax.Message
}

func (p *flakyPublisher) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.calls <= p.failures {
		return errors.New("broker unavailable")
	}
	p.got = append(p.got, msgs...)
	return nil
}

func newTestService(t *testing.T, mutate func(*Config), pub Publisher, now time.Time) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Reader.Brokers = []string{"127.0.0.1:1"} // never contacted: Run is not called
	if mutate != nil {
		mutate(&cfg)
	}
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, schemas.NewSigner(priv), zerolog.Nop(), WithPublisher(pub), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bruteForce(t *testing.T, t0 time.Time) []kafkax.Message {
	t.Helper()
	var out []kafkax.Message
	for i := range 6 {
		typ := schemas.EventLoginFailure
		if i == 5 {
			typ = schemas.EventLoginSuccess
		}
		ev := schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: t0.Add(time.Duration(i) * time.Minute), Type: typ, UserID: "u1"}
		v, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kafkax.Message{Topic: schemas.TopicAuditEvents, Partition: 3, Offset: int64(i), Key: []byte("u1"), Value: v})
	}
	return out
}

// settled is err once the wait of a Later in it has returned: what the
// reader waits for before it commits the message.
func settled(ctx context.Context, err error) error {
	var le *kafkax.LaterError
	if errors.As(err, &le) {
		return le.Wait(ctx)
	}
	return err
}

// A failed publish is retried by the outbox with the very same signed
// commands, without feeding the event to the engine again; the event is
// settled (committable) only once they are acknowledged.
func TestPublishFailureRetriesSameCommands(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	pub := &flakyPublisher{failures: 2}
	s := newTestService(t, func(c *Config) { c.Reader.RetryMin, c.Reader.RetryMax = time.Millisecond, 2*time.Millisecond }, pub, now)
	ctx := context.Background()
	msgs := bruteForce(t, now.Add(-time.Hour))
	for _, m := range msgs[:5] {
		if err := settled(ctx, s.handle(ctx, m)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.handle(ctx, msgs[5])
	var le *kafkax.LaterError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want the commands to be published later", err)
	}
	if err := le.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if pub.calls != 3 {
		t.Errorf("%d publish attempts, want 2 failed and 1 accepted", pub.calls)
	}
	if len(pub.got) != 1 {
		t.Fatalf("published %d messages, want 1", len(pub.got))
	}
	st := s.eng.eng.Stats()
	for _, r := range st.Rules {
		if r.RuleID == "brute_force_success" && (r.Matched != 6 || r.Duplicates != 0 || r.Detections != 1) {
			t.Errorf("engine saw the retried event again: %+v", r)
		}
	}
	cmd, err := schemas.DecodeCommand(pub.got[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	// The wire carries the detector's clock; the id does not depend on it.
	if !cmd.IssuedAt.Equal(now) || !cmd.ExpiresAt.Equal(now.Add(s.cfg.Engine.CommandTTL)) || !cmd.Reason.DetectedAt.Equal(now) {
		t.Errorf("stamps: issued %s expires %s detected %s", cmd.IssuedAt, cmd.ExpiresAt, cmd.Reason.DetectedAt)
	}
	if !cmd.Reason.FirstEventTime.Equal(now.Add(-time.Hour)) {
		t.Errorf("first_event_time %s", cmd.Reason.FirstEventTime)
	}
}

func TestGlobalDryRun(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	pub := &flakyPublisher{}
	s := newTestService(t, func(c *Config) { c.Engine.DryRun = true }, pub, now)
	var seen []schemas.RevokeCommand
	s.onDetection = func(c schemas.RevokeCommand) { seen = append(seen, c) }
	for _, m := range bruteForce(t, now.Add(-time.Hour)) {
		if err := settled(context.Background(), s.handle(context.Background(), m)); err != nil {
			t.Fatal(err)
		}
	}
	if len(pub.got) != 1 || len(seen) != 1 {
		t.Fatalf("published %d, observed %d", len(pub.got), len(seen))
	}
	cmd, err := schemas.DecodeCommand(pub.got[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Mode != schemas.ModeDryRun || seen[0].Mode != schemas.ModeDryRun || seen[0].CommandID != cmd.CommandID {
		t.Errorf("mode %s, observed %+v", cmd.Mode, seen[0])
	}
}

func TestPoisonEvents(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newTestService(t, nil, &flakyPublisher{}, now)
	good, _ := json.Marshal(schemas.AuditEvent{ID: "a", Time: now, Type: schemas.EventLogout, UserID: "u1"})
	future, _ := json.Marshal(schemas.AuditEvent{ID: "b", Time: now.Add(6 * time.Minute), Type: schemas.EventLogout, UserID: "u1"})
	cases := []struct {
		name string
		m    kafkax.Message
		want string
	}{
		{"not json", kafkax.Message{Value: []byte("login failed for bob")}, "invalid audit event"},
		{"missing fields", kafkax.Message{Value: []byte(`{"id":"a"}`)}, `invalid audit event: field "time": required (RFC 3339); field "type": required; field "user_id": required`},
		{"wrong schema", kafkax.Message{Value: good, Headers: []kafkax.Header{{Key: schemas.HeaderSchema, Value: []byte("revoke-command/v1")}}}, "unexpected schema"},
		{"future", kafkax.Message{Value: future}, "6m0s ahead of the detector's clock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.handle(context.Background(), tc.m)
			var pe *kafkax.PoisonError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a poison error", err)
			}
			if !strings.Contains(pe.Error(), tc.want) {
				t.Errorf("%q lacks %q", pe.Error(), tc.want)
			}
			if tc.name != "wrong schema" && tc.name != "future" && !errors.Is(err, schemas.ErrInvalidEvent) {
				t.Errorf("%v does not wrap ErrInvalidEvent", err)
			}
		})
	}
	if err := s.handle(context.Background(), kafkax.Message{Value: good}); err != nil {
		t.Errorf("a valid event after poison ones: %v", err)
	}
}
