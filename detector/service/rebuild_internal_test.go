package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

// A partition is rebuilt before its first message, not again for the
// messages that follow or for one redelivered, and again when its messages
// skip ahead (others handled the ones between while it was away). The
// replay covers the horizon before the first message's time: older
// messages are not read.
func TestRebuildOnTakeOverAndAfterAGap(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicAuditEvents: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s := recoveringService(t, ctx, c, "detector-gap", &flakyPublisher{})

	// Offsets 0 and 1 are older than the replay from offset 4's event
	// reaches; the rest are a minute apart.
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := now.Add(-s.rec.replaySpan() - s.cfg.State.ReplaySlack - time.Hour)
	times := []time.Time{old, old}
	for i := range 8 {
		times = append(times, now.Add(time.Duration(i-8)*time.Minute))
	}
	var msgs []kafkax.Message
	for i, at := range times {
		v, _ := json.Marshal(schemas.AuditEvent{ID: fmt.Sprintf("e%d", i), Time: at, Type: schemas.EventLoginFailure, UserID: "u1"})
		msgs = append(msgs, kafkax.Message{Key: []byte("u1"), Value: v, Time: at})
	}
	c.ProduceTo(t, schemas.TopicAuditEvents, 1, msgs...)
	stored := c.Records(t, schemas.TopicAuditEvents)

	var handled []int64
	h := s.rec.wrap(func(_ context.Context, m kafkax.Message) error {
		handled = append(handled, m.Offset)
		return nil
	})
	rebuilds := func() uint64 {
		var m dto.Metric
		if err := s.rec.metrics.duration.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	for _, step := range []struct {
		offset   int64
		rebuilds uint64
		replayed float64
	}{
		{4, 1, 2}, // taken on at 4: replays 2 and 3, not the old 0 and 1
		{5, 1, 2}, // the next one
		{4, 1, 2}, // redelivered
		{6, 1, 2}, // the next one
		{9, 2, 9}, // 7 and 8 handled elsewhere: replays 2 to 8
	} {
		if err := settled(ctx, h(ctx, stored[step.offset])); err != nil {
			t.Fatalf("offset %d: %v", step.offset, err)
		}
		if got := rebuilds(); got != step.rebuilds {
			t.Errorf("after offset %d: %d rebuilds, want %d", step.offset, got, step.rebuilds)
		}
		if got := counterValue(t, s.rec.metrics.replayed); got != step.replayed {
			t.Errorf("after offset %d: %v replayed, want %v", step.offset, got, step.replayed)
		}
	}
	if fmt.Sprint(handled) != "[4 5 4 6 9]" {
		t.Errorf("handled %v", handled)
	}
	if got := s.eng.eng.Stats().Events; got != 9 {
		t.Errorf("the engine was given %d events, want 9: 2 and 3, then 2 to 8 (the handler here feeds it nothing)", got)
	}
}

// The replay reaches back the engine's horizon (capped by MaxReplay) plus
// the slack from the earlier of the event's time and its Kafka timestamp.
func TestReplayFrom(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	value := func(at time.Time) []byte {
		v, _ := json.Marshal(schemas.AuditEvent{ID: "e", Time: at, Type: schemas.EventLogout, UserID: "u1"})
		return v
	}
	s := newTestService(t, nil, &flakyPublisher{}, now)
	h := s.eng.eng.Horizon() + s.cfg.State.ReplaySlack
	for _, tc := range []struct {
		name string
		m    kafkax.Message
		want time.Time
	}{
		{"written after it happened", kafkax.Message{Value: value(now.Add(-time.Hour)), Time: now}, now.Add(-time.Hour - h)},
		{"stamped before its event time", kafkax.Message{Value: value(now), Time: now.Add(-time.Minute)}, now.Add(-time.Minute - h)},
		{"not an event", kafkax.Message{Value: []byte("x"), Time: now}, now.Add(-h)},
		{"no timestamp", kafkax.Message{Value: []byte("x")}, now.Add(-h)},
	} {
		if got := s.rec.replayFrom(tc.m); !got.Equal(tc.want) {
			t.Errorf("%s: from %s, want %s", tc.name, got, tc.want)
		}
	}
	capped := newTestService(t, func(c *Config) { c.State.MaxReplay = 10 * time.Minute }, &flakyPublisher{}, now)
	if got, want := capped.rec.replayFrom(kafkax.Message{Value: []byte("x"), Time: now}), now.Add(-10*time.Minute-capped.cfg.State.ReplaySlack); !got.Equal(want) {
		t.Errorf("capped: from %s, want %s", got, want)
	}
}

// A detector that published a detection but stopped before committing its
// event hands the event to the next owner, which rebuilds from the
// previous commit and detects again: the command it publishes is the same
// command, id and all, so the consumer takes it once.
func TestRedeliveredDetectionIsTheSameCommand(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	newService := func(pub Publisher) *Service {
		t.Helper()
		return recoveringService(t, ctx, c, "detector-redelivery", pub)
	}
	msgs := bruteForce(t, time.Now().Add(-10*time.Minute).UTC().Truncate(time.Millisecond))
	for i := range msgs {
		msgs[i].Topic, msgs[i].Partition, msgs[i].Offset = "", 0, 0
	}
	c.Produce(t, schemas.TopicAuditEvents, msgs...)
	stored := c.Records(t, schemas.TopicAuditEvents)

	var published [2]*flakyPublisher
	for i := range published {
		published[i] = &flakyPublisher{}
		s := newService(published[i])
		h := s.rec.wrap(s.handle)
		// The first owner handles everything; the second takes over at
		// the last event, the one whose commit was lost.
		from := 0
		if i == 1 {
			from = len(stored) - 1
		}
		for _, m := range stored[from:] {
			if err := settled(ctx, h(ctx, m)); err != nil {
				t.Fatalf("owner %d, offset %d: %v", i, m.Offset, err)
			}
		}
		if len(published[i].got) != 1 {
			t.Fatalf("owner %d published %d commands, want 1", i, len(published[i].got))
		}
	}
	var ids [2]string
	for i, p := range published {
		cmd, err := schemas.DecodeCommand(p.got[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = cmd.CommandID
	}
	if ids[0] != ids[1] {
		t.Errorf("command ids %s and %s, want the same", ids[0], ids[1])
	}
}

// A rebuild ends when the detector stops, though the handler's own context
// lives on through the shutdown: the message stays uncommitted.
func TestRebuildEndsWhenTheDetectorStops(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicAuditEvents)
	run, stop := context.WithCancel(context.Background())
	s := recoveringService(t, run, c, "detector-stop", &flakyPublisher{})
	stop()
	called := false
	h := s.rec.wrap(func(context.Context, kafkax.Message) error { called = true; return nil })
	err := h(context.Background(), kafkax.Message{Topic: schemas.TopicAuditEvents, Offset: 5, Time: time.Now()})
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("got %v (handler called: %v), want the rebuild cancelled", err, called)
	}
}

// recoveringService returns a detector on c, reading audit events as
// group and publishing through pub, whose recovery (rebuilds and
// baselines) runs under ctx; the recovery is closed when the test ends,
// and an error closing it fails the test.
func recoveringService(t *testing.T, ctx context.Context, c *kafkatest.Cluster, group string, pub Publisher) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Reader = c.ReaderConfig(schemas.TopicAuditEvents, group)
	cfg.Reader.Component = "detector"
	cfg.Writer = c.WriterConfig(schemas.TopicRevokeCommands)
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, schemas.NewSigner(priv), zerolog.Nop(), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	s.rec.start(ctx)
	t.Cleanup(func() {
		if err := s.rec.close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
