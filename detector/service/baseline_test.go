package service

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/revoked-dev/revoked/detector/state"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/schemas"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Baselines the engine learns from an event are written to the partition
// of the baseline topic that matches the event's before the event counts
// as handled (so before its offset is committed); a failed handling keeps
// them for the retry. A detector that takes the partition on later reads
// them back before its first event there.
func TestBaselinesSavedBeforeCommitAndRestored(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicAuditEvents: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	newService := func() *Service {
		t.Helper()
		return recoveringService(t, ctx, c, "detector-baselines", &flakyPublisher{})
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	value, _ := json.Marshal(schemas.AuditEvent{ID: "e1", Time: now, Type: schemas.EventLoginSuccess, UserID: "alice"})
	m := kafkax.Message{Topic: schemas.TopicAuditEvents, Partition: 1, Offset: 0, Value: value, Time: now}
	learnt := []state.Baseline{
		{Rule: "new_device", Key: "alice", Field: "device_id", Value: "d1", FirstSeen: now, LastSeen: now},
		{Rule: "new_country", Key: "alice", Field: "geo.country", Value: "FR", FirstSeen: now, LastSeen: now},
	}

	s := newService()
	fail := errors.New("publishing failed")
	h := s.rec.wrap(func(context.Context, kafkax.Message) error {
		s.rec.learn(m.Partition, learnt)
		return fail
	})
	if err := h(ctx, m); !errors.Is(err, fail) {
		t.Fatalf("handler error %v, want %v", err, fail)
	}
	stored, _, err := s.rec.store.Load(ctx, 1)
	if err != nil || len(stored) != 0 {
		t.Fatalf("saved %+v (%v) for an event that was not handled", stored, err)
	}
	h = s.rec.wrap(func(context.Context, kafkax.Message) error { return nil })
	if err := settled(ctx, h(ctx, m)); err != nil {
		t.Fatal(err)
	}
	if stored, _, err = s.rec.store.Load(ctx, 1); err != nil || !reflect.DeepEqual(stored, []state.Baseline{learnt[1], learnt[0]}) {
		t.Errorf("partition 1 holds %+v (%v), want both baselines", stored, err)
	}
	if other, _, err := s.rec.store.Load(ctx, 0); err != nil || len(other) != 0 {
		t.Errorf("partition 0 holds %+v (%v)", other, err)
	}
	if got := counterValue(t, s.rec.metrics.persisted); got != 2 {
		t.Errorf("persisted %v, want 2", got)
	}

	next := newService()
	m.Offset = 1
	if err := settled(ctx, next.rec.wrap(func(context.Context, kafkax.Message) error { return nil })(ctx, m)); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, next.rec.metrics.restored); got != 2 {
		t.Errorf("restored %v baselines, want 2", got)
	}
}

// A value the engine forgets while handling another partition's event is
// deleted from its own partition only once this detector handles a
// message there, which shows it owns that partition; a rebuild of the
// partition (others handled it meanwhile) drops the deletion.
func TestForgottenBaselineDeletedByItsPartitionsOwner(t *testing.T) {
	c := kafkatest.NewWithPartitions(t, map[string]int{schemas.TopicAuditEvents: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s := recoveringService(t, ctx, c, "detector-forget", &flakyPublisher{})

	now := time.Now().UTC().Truncate(time.Millisecond)
	seen := state.Baseline{Rule: "new_device", Key: "bob", Field: "device_id", Value: "d1", FirstSeen: now, LastSeen: now}
	forgotten := seen
	forgotten.LastSeen = time.Time{}
	handle := func(partition int, offset int64, learnt ...state.Baseline) {
		t.Helper()
		h := s.rec.wrap(func(context.Context, kafkax.Message) error {
			s.rec.learn(partition, learnt)
			return nil
		})
		if err := settled(ctx, h(ctx, kafkax.Message{Topic: schemas.TopicAuditEvents, Partition: partition, Offset: offset, Time: now})); err != nil {
			t.Fatal(err)
		}
	}
	holds := func(want int) {
		t.Helper()
		got, _, err := s.rec.store.Load(ctx, 1)
		if err != nil || len(got) != want {
			t.Fatalf("partition 1 holds %+v (%v), want %d entries", got, err, want)
		}
	}

	handle(1, 0, seen)
	holds(1)
	handle(0, 0, forgotten) // a sweep while handling partition 0
	holds(1)
	handle(1, 1) // partition 1 is still this detector's
	holds(0)

	handle(1, 2, seen)
	holds(1)
	handle(0, 1, forgotten)
	handle(1, 9) // 3 to 8 were handled elsewhere: the state forgotten from is stale
	holds(1)
}
